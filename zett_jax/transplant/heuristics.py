"""Donor-free transplant methods: zero, mean, FVT, FOCUS-like and TokenAdapt-like.

Every method here is a pure function ``(source: Embeddings, plan: TokenPlan, options, donor=None) ->
Embeddings`` for the target vocabulary (the plan carries the source and target tokenizers, their overlap
and the decomposition of each target token into source pieces). Shared tokens always keep their source
rows exactly (`plan.assemble`); the methods differ only in the rows of new tokens.

Target special tokens that match no source role, and tokens with no source pieces at all (bytes the
source vocabulary lacks, e.g. SmolLM2 has no token for b"\xc0"), get the source mean row in `fvt`, `focus` and `tokenadapt` (logged): there is no text to compose them from.

Auxiliary space (FOCUS, TokenAdapt). Both papers measure token similarity in an auxiliary embedding space
(FOCUS: fastText trained on target-language text; TokenAdapt: an external sentence embedder). Here the
auxiliary space is the SOURCE MODEL'S OWN input embeddings: a shared token is represented by its source
input row, a new token by its FVT vector (mean of its source pieces' input rows). Similarities are
cosines. The weights found there are applied to each table (input, and output when untied).

Shape letters: V target vocabulary, U source rows, D width, S pieces, N anchors (shared tokens),
B new tokens, M candidate neighbours.
"""

from __future__ import annotations

import functools
import logging

import jax
import jax.numpy as jnp
import numpy as np

from zett_jax.models.decoder import Embeddings
from zett_jax.transplant.plan import TokenPlan, TransplantOptions, per_table, piece_sum, source_mean

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- zero, mean
def zero(source: Embeddings, plan: TokenPlan, options: TransplantOptions, donor=None) -> Embeddings:
    """New rows are zero vectors (the weakest baseline of Goddard & Fernandes 2025, Table 1)."""

    def rows(table_UxD, which):
        return jnp.zeros((plan.target_size, table_UxD.shape[1]), table_UxD.dtype)

    return per_table(source, options, rows, plan)


def mean(source: Embeddings, plan: TokenPlan, options: TransplantOptions, donor=None) -> Embeddings:
    """New rows are the mean of the source rows of real tokens (ids below the source tokenizer's size;
    padding rows excluded), per table."""

    def rows(table_UxD, which):
        return jnp.broadcast_to(source_mean(table_UxD, plan), (plan.target_size, table_UxD.shape[1]))

    return per_table(source, options, rows, plan)


# ----------------------------------------------------------------------------- FVT
def _fvt_weights(plan: TokenPlan) -> tuple[np.ndarray, np.ndarray]:
    """Uniform weights 1/len over each token's pieces (Gee et al. 2022, §3, Eq. 1), and the mask of
    tokens without pieces."""
    d = plan.decomposition
    lengths_V = d.lengths_V
    weights_VxS = d.mask_VxS / np.maximum(lengths_V, 1)[:, None]
    empty_V = lengths_V == 0
    return weights_VxS.astype(np.float32), empty_V


def _with_mean_fallback(rows_VxD, table_UxD, empty_V: np.ndarray, plan: TokenPlan):
    if not empty_V.any():
        return rows_VxD
    return jnp.where(jnp.asarray(empty_V)[:, None], source_mean(table_UxD, plan), rows_VxD)


def _log_empty(name: str, empty_V: np.ndarray, plan: TokenPlan) -> None:
    n = int((empty_V & ~plan.overlap.shared_V).sum())
    if n:
        log.info("%s: %d new target tokens have no source pieces (special tokens without a source role, or "
                 "bytes the source cannot spell); they get the source mean row", name, n)


def fvt(source: Embeddings, plan: TokenPlan, options: TransplantOptions, donor=None) -> Embeddings:
    """Fast Vocabulary Transfer (Gee et al. 2022, §3, Eq. 1): a new token's row is the mean of the rows of
    the source pieces the source tokenizer splits it into. Works without any overlap."""
    weights_VxS, empty_V = _fvt_weights(plan)
    _log_empty("fvt", empty_V, plan)

    def rows(table_UxD, which):
        out_VxD = piece_sum(table_UxD, plan.decomposition.pieces_VxS, weights_VxS)
        return _with_mean_fallback(out_VxD, table_UxD, empty_V, plan)

    return per_table(source, options, rows, plan)


# ----------------------------------------------------------------------------- neighbours
def _normalize(x_BxD):
    return x_BxD / jnp.maximum(jnp.linalg.norm(x_BxD, axis=-1, keepdims=True), 1e-12)


@functools.partial(jax.jit, static_argnames="m")
def _top_cosine(query_BxD, anchors_NxD, m: int):
    sims_BxN = jnp.dot(_normalize(query_BxD), _normalize(anchors_NxD).T, precision=jax.lax.Precision.HIGHEST)
    return jax.lax.top_k(sims_BxN, m)


def nearest_anchors(query_BxD, anchors_NxD, m: int, chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """The m anchors of highest cosine similarity to each query, most similar first: (sims, indices)."""
    m = min(m, anchors_NxD.shape[0])
    sims, idx = [], []
    for start in range(0, query_BxD.shape[0], chunk):
        s, i = _top_cosine(query_BxD[start : start + chunk], anchors_NxD, m)
        sims.append(np.asarray(s))
        idx.append(np.asarray(i))
    return np.concatenate(sims), np.concatenate(idx)


def _aux_space(source: Embeddings, plan: TokenPlan):
    """FVT vectors of the new target tokens and the input rows of the anchors (see the module doc)."""
    new_t = plan.overlap.new_target_ids
    anchor_t, anchor_s = plan.overlap.anchors()
    d = plan.decomposition
    weights_VxS, empty_V = _fvt_weights(plan)
    aux_BxD = piece_sum(source.input_VxD, d.pieces_VxS[new_t], weights_VxS[new_t])
    return new_t, anchor_s, aux_BxD, source.input_VxD[jnp.asarray(anchor_s)], empty_V


def _scatter_new(values_BxD, new_t: np.ndarray, V: int):
    out_VxD = jnp.zeros((V, values_BxD.shape[1]), values_BxD.dtype)
    return out_VxD.at[jnp.asarray(new_t)].set(values_BxD)


# ----------------------------------------------------------------------------- FOCUS
def sparsemax_sorted(z_BxM: np.ndarray) -> np.ndarray:
    """Sparsemax (Martins & Astudillo 2016, Eq. 2 with the closed form of Prop. 1) of scores already
    sorted in decreasing order along the last axis: p = max(z - tau, 0), sum p = 1."""
    m = z_BxM.shape[-1]
    k_M = np.arange(1, m + 1, dtype=z_BxM.dtype)
    cumsum_BxM = np.cumsum(z_BxM, axis=-1)
    support_BxM = 1 + k_M * z_BxM > cumsum_BxM
    k_B = support_BxM.sum(axis=-1)  # the support is a prefix of the sorted scores
    tau_B = (np.take_along_axis(cumsum_BxM, (k_B - 1)[:, None], axis=-1)[:, 0] - 1) / k_B
    return np.maximum(z_BxM - tau_B[:, None], 0)


def focus(source: Embeddings, plan: TokenPlan, options: TransplantOptions, donor=None) -> Embeddings:
    """FOCUS-like (Dobler & de Melo 2023, §2, Eqs. 2-4): a new token's row is a sparsemax-weighted
    combination of the rows of shared ("overlapping") tokens, the weights being sparsemax of the cosine
    similarities between the new token and the shared tokens in an auxiliary space.

    Differences from the paper: the auxiliary space is the source model's own input embeddings (new
    token: its FVT vector; see the module doc) instead of fastText; sparsemax runs over the
    ``options.focus_candidates`` most similar shared tokens (exact whenever the sparsemax support is
    smaller, which the log reports). Without any shared token it falls back to FVT (logged).
    """
    if plan.overlap.anchors()[0].size == 0:
        log.warning("focus: no shared tokens to combine; falling back to fvt")
        return fvt(source, plan, options)
    new_t, anchor_s, aux_BxD, anchors_NxD, empty_V = _aux_space(source, plan)
    sims_BxM, idx_BxM = nearest_anchors(aux_BxD, anchors_NxD, options.focus_candidates, options.chunk)
    weights_BxM = sparsemax_sorted(sims_BxM.astype(np.float64)).astype(np.float32)
    full = int((weights_BxM[:, -1] > 0).sum())
    log.info("focus: sparsemax support mean %.1f tokens; %d of %d new tokens fill all %d candidates "
             "(truncated)", float((weights_BxM > 0).sum(1).mean()), full, len(new_t), sims_BxM.shape[1])
    _log_empty("focus", empty_V, plan)

    def rows(table_UxD, which):
        new_BxD = piece_sum(table_UxD[jnp.asarray(anchor_s)], idx_BxM, weights_BxM)
        out_VxD = _scatter_new(new_BxD, new_t, plan.target_size)
        return _with_mean_fallback(out_VxD, table_UxD, empty_V, plan)

    return per_table(source, options, rows, plan)


# ----------------------------------------------------------------------------- TokenAdapt
def _tokenadapt_local_weights(source: Embeddings, plan: TokenPlan, aux_BxD, new_t, options) -> np.ndarray:
    """w_s ∝ len_bytes(piece_s) * exp(max(cos(aux(token), E[piece_s]) - threshold, 0) / temperature)."""
    from zett_jax.tokenizers.bytes_form import token_bytes

    d = plan.decomposition
    pieces_BxS, mask_BxS = d.pieces_VxS[new_t], d.mask_VxS[new_t]
    piece_len_U = np.array([len(b) if b else 1 for b in token_bytes(plan.source)], dtype=np.float32)
    piece_len_U = np.pad(piece_len_U, (0, max(0, source.vocab_size - piece_len_U.size)), constant_values=1)
    sims_BxS = np.asarray(_piece_cosines(source.input_VxD, jnp.asarray(pieces_BxS), aux_BxD))
    boost_BxS = np.exp(np.maximum(sims_BxS - options.tokenadapt_threshold, 0) / options.tokenadapt_temperature)
    w_BxS = piece_len_U[pieces_BxS] * boost_BxS * mask_BxS
    return (w_BxS / np.maximum(w_BxS.sum(axis=1, keepdims=True), 1e-12)).astype(np.float32)


@jax.jit
def _piece_cosines(table_UxD, pieces_BxS, aux_BxD):
    aux_BxD = _normalize(aux_BxD)
    # one piece column at a time: B x D in memory, never B x S x D
    sims_SxB = jax.lax.map(lambda ids_B: jnp.sum(aux_BxD * _normalize(table_UxD[ids_B]), axis=1), pieces_BxS.T)
    return sims_SxB.T


def tokenadapt(source: Embeddings, plan: TokenPlan, options: TransplantOptions, donor=None) -> Embeddings:
    """TokenAdapt-like hybrid (Sharthak et al. 2025, §3.2-3.3): (1 - beta) * local + beta * global.

    local: a weighted mean of the token's source pieces, weights ∝ byte length of the piece times
      exp(max(sim - threshold, 0) / temperature), sim = cosine of piece and token in the auxiliary space
      (length normalisation plus the paper's similarity boost for pieces close to the whole token).
    global: the ``tokenadapt_neighbours`` shared tokens nearest to the token in the auxiliary space;
      those with cosine >= ``tokenadapt_threshold`` are averaged with softmax(sim / temperature) weights.
    beta = ``tokenadapt_global_weight`` (0.3, TokenAdapt's default) where some neighbour passes the
      threshold, else 0 (local only). Auxiliary space: the source model's input embeddings (module doc),
      not TokenAdapt's external embedder. Without shared tokens the global part is dropped (logged).
    """
    new_t, anchor_s, aux_BxD, anchors_NxD, empty_V = _aux_space(source, plan)
    local_BxS = _tokenadapt_local_weights(source, plan, aux_BxD, new_t, options)
    beta = options.tokenadapt_global_weight
    if anchor_s.size == 0:
        log.warning("tokenadapt: no shared tokens for the global estimate; using the local one only")
        beta = 0.0
        sims_BxM = np.full((len(new_t), 1), -1.0, np.float32)
        idx_BxM = np.zeros((len(new_t), 1), np.int32)
    else:
        sims_BxM, idx_BxM = nearest_anchors(aux_BxD, anchors_NxD, options.tokenadapt_neighbours, options.chunk)
    keep_BxM = sims_BxM >= options.tokenadapt_threshold
    logits_BxM = np.where(keep_BxM, sims_BxM / options.tokenadapt_temperature, -np.inf)
    has_global_B = keep_BxM.any(axis=1)
    glob_BxM = np.exp(logits_BxM - np.where(has_global_B, logits_BxM.max(axis=1), 0)[:, None])
    glob_BxM = glob_BxM / np.maximum(glob_BxM.sum(axis=1, keepdims=True), 1e-12)
    beta_B = np.where(has_global_B, beta, 0.0).astype(np.float32)
    log.info("tokenadapt: %d of %d new tokens have a global neighbour with cosine >= %.2f",
             int(has_global_B.sum()), len(new_t), options.tokenadapt_threshold)
    _log_empty("tokenadapt", empty_V, plan)
    # One weighted sum over [pieces | neighbours]: local weights scaled by 1 - beta, global by beta.
    pieces_BxS = plan.decomposition.pieces_VxS[new_t]
    weights_BxR = np.concatenate([local_BxS * (1 - beta_B)[:, None], glob_BxM * beta_B[:, None]], axis=1)

    ids_BxR = np.concatenate([pieces_BxS, idx_BxM + source.vocab_size], axis=1)

    def rows(table_UxD, which):
        anchors_NxD = table_UxD[jnp.asarray(anchor_s)] if anchor_s.size else jnp.zeros_like(table_UxD[:1])
        new_BxD = piece_sum(jnp.concatenate([table_UxD, anchors_NxD]), ids_BxR, weights_BxR)
        out_VxD = _scatter_new(new_BxD, new_t, plan.target_size)
        return _with_mean_fallback(out_VxD, table_UxD, empty_V, plan)

    return per_table(source, options, rows, plan)
