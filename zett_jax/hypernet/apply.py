"""Applying a trained hypernetwork: full embedding tables for any target tokenizer, zero-shot.

ZeTT §3.1: ``E_b = H_phi(E_a[T_a(t)]) for t in V_b``. Each target token is decomposed into base pieces
(`zett_jax.tokenizers.overlap.decompose`), truncated/padded to the hypernetwork's ``max_pieces``, and
predicted in fixed-size batches by one jitted function, grouped by decomposition length so that padding
is not computed (:func:`_predict_by_length`; one compile per length bucket).
Special tokens take the base model's rows of the same role; target specials without a role counterpart
keep their prediction from an empty decomposition (a learned constant) and are logged.

Shape letters: V target vocabulary, N batch of tokens, S pieces, W base rows, C base features, D width.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from zett_jax.errors import ZettError
from zett_jax.hypernet.data import pad_pieces, role_pairs
from zett_jax.hypernet.model import Hypernet, source_table
from zett_jax.models.decoder import Embeddings
from zett_jax.tokenizers.core import LoadedTokenizer
from zett_jax.tokenizers.overlap import decompose

log = logging.getLogger(__name__)


PRETRAINED = Path(__file__).resolve().parent.parent / "pretrained"


def pretrained_hypernet(model: str) -> Path | None:
    """The hypernetwork shipped with the package for the model asset ``model`` (``zett_jax/pretrained/
    hypernet-<model>``, written by ``zett hypernet export``), or None."""
    path = PRETRAINED / f"hypernet-{model}"
    return path if (path / "hypernet.json").is_file() else None


@functools.partial(jax.jit, static_argnums=0)
def _predict(graphdef, params, source_WxC, pieces_NxS, mask_NxS):
    return nnx.merge(graphdef, params)(source_WxC, pieces_NxS, mask_NxS)


def length_buckets(S: int) -> list[int]:
    """Piece counts that tokens are grouped by: 1, 2, 4, ... up to ``S``."""
    out, n = [], 1
    while n < S:
        out.append(n)
        n *= 2
    return [*out, S]


def _predict_by_length(hypernet: Hypernet, source_WxC, pieces_VxS: np.ndarray, mask_VxS: np.ndarray, batch_size: int):
    """Predictions for every row, computed per bucket of decomposition length with the padding cut to the
    bucket's width. Exactly what the full width computes: padded pieces are masked out of attention and
    the readouts, and positional embeddings are indexed from the first piece; most tokens have one or two
    pieces, so this saves most of the encoder's work. One compile per bucket width; the last batch of a
    bucket is padded to the batch size.
    """
    V, S = pieces_VxS.shape
    lengths_V = mask_VxS.sum(1)
    graphdef, params = nnx.split(hypernet)
    D = int(source_WxC.shape[1]) if hypernet.tied else int(source_WxC.shape[1]) // 2
    input_VxD = np.zeros((V, D), np.float32)
    output_VxD = None if hypernet.tied else np.zeros((V, D), np.float32)
    shorter = -1  # the previous bucket's width; length 0 (special tokens) falls in the first bucket
    for width in length_buckets(S):
        ids = np.flatnonzero((lengths_V > shorter) & (lengths_V <= width))
        shorter = width
        if not ids.size:
            continue
        N = min(batch_size, ids.size)
        padded = np.pad(ids, (0, (-ids.size) % N), mode="edge")
        for lo in range(0, padded.size, N):
            rows = padded[lo : lo + N]
            in_NxD, out_NxD = _predict(graphdef, params, source_WxC, pieces_VxS[rows, :width], mask_VxS[rows, :width])
            take = rows[: min(N, ids.size - lo)]  # the edge-padded tail of the last batch is dropped
            input_VxD[take] = np.asarray(in_NxD)[: take.size]
            if output_VxD is not None:
                output_VxD[take] = np.asarray(out_NxD)[: take.size]
    return jnp.asarray(input_VxD), None if output_VxD is None else jnp.asarray(output_VxD)


def copy_shared_rows(tables: Embeddings, base_embeddings: Embeddings, dec) -> Embeddings:
    """``tables`` with the rows of tokens that are one base token with the same bytes (``dec``: the target
    vocabulary's `decompose`) replaced by that token's base rows."""
    ids_T, base_T = np.flatnonzero(dec.shared_V), dec.pieces_VxS[dec.shared_V, 0]
    input_VxD = tables.input_VxD.at[ids_T].set(base_embeddings.input_VxD[base_T].astype(tables.input_VxD.dtype))
    output_VxD = tables.output_VxD
    if output_VxD is not None:
        output_VxD = output_VxD.at[ids_T].set(base_embeddings.output_VxD[base_T].astype(output_VxD.dtype))
    return Embeddings(input_VxD, output_VxD)


def predict_embeddings(
    hypernet: Hypernet,
    base_embeddings: Embeddings,
    base_tokenizer: LoadedTokenizer,
    target: LoadedTokenizer,
    *,
    batch_size: int = 4096,
    copy_shared: bool = False,
) -> Embeddings:
    """The target tokenizer's tables (one row per target id) predicted by ``hypernet``.

    ``copy_shared``: tokens that are one base token with the same bytes keep that token's base rows instead
    of the prediction (the FVT/OMP convention; ZeTT itself predicts every row, the default here).
    """
    rows = base_embeddings.input_VxD.shape[0]
    if hypernet.base_rows != rows or hypernet.tied != (base_embeddings.output_VxD is None):
        raise ZettError(
            f"this hypernetwork was made for a base table of {hypernet.base_rows} rows "
            f"({'tied' if hypernet.tied else 'untied'}), not for the given model ({rows} rows)"
        )
    dec = decompose(base_tokenizer, target)
    unexpressible = ~dec.exact_V & ~dec.special_V
    if unexpressible.any():
        log.warning("%d target tokens have no exact spelling in base pieces; their predictions use the "
                    "nearest decomposition", int(unexpressible.sum()))
    S = hypernet.cfg.max_pieces
    if dec.pieces_VxS.shape[1] > S:
        log.info("%d target tokens decompose into more than %d base pieces and are truncated",
                 int((dec.lengths_V > S).sum()), S)
    pieces_VxS, mask_VxS = pad_pieces(dec.pieces_VxS, dec.mask_VxS, S)
    source_WxC = source_table(base_embeddings.input_VxD, base_embeddings.output_VxD)
    tables = Embeddings(*_predict_by_length(hypernet, source_WxC, pieces_VxS, mask_VxS, batch_size))
    if copy_shared:
        tables = copy_shared_rows(tables, base_embeddings, dec)
    input_VxD, output_VxD = tables.input_VxD, tables.output_VxD
    special_ids, base_ids = role_pairs(target, base_tokenizer)
    unmatched = sorted(set(np.flatnonzero(dec.special_V).tolist()) - set(special_ids.tolist()))
    if unmatched:
        log.warning("%d target special tokens have no base token of the same role (e.g. %s); they keep "
                    "the hypernetwork's prediction for an empty decomposition", len(unmatched),
                    [target.token(i) for i in unmatched[:3]])
    if special_ids.size:
        input_VxD = input_VxD.at[special_ids].set(base_embeddings.input_VxD[base_ids])
        if output_VxD is not None:
            output_VxD = output_VxD.at[special_ids].set(base_embeddings.output_VxD[base_ids])
    return Embeddings(input_VxD, output_VxD)
