"""What every transplant method shares: the token plan, the options, checks, and table assembly.

A method computes rows for the target vocabulary from one source table. `assemble` then copies the
rows of shared tokens exactly (every method: a token the source already has keeps its trained row) and
`per_table` runs the method once per table: input and output separately when the source is untied (or
untying is requested), one tied table otherwise.

Shape letters: V target vocabulary, U source vocabulary (rows of the source table), D width,
S pieces per token, N anchors (shared tokens).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from zett_jax.errors import ZettError
from zett_jax.models.decoder import Embeddings
from zett_jax.tokenizers.core import LoadedTokenizer
from zett_jax.tokenizers.overlap import Decomposition, VocabOverlap, decompose, vocab_overlap

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class TransplantOptions:
    """Knobs of the methods; the defaults are the ones the results tables use.

    k: OMP anchors per new token (Goddard & Fernandes 2025 use 64 in mergekit-tokensurgeon).
    untie: give a tied source separate input and output tables (they start equal for the donor-free
      methods; OMP fills the output table from the donor's output table when the donor is untied).
    focus_candidates: FOCUS sparsemax runs over this many most similar shared tokens (see heuristics).
    tokenadapt_*: TokenAdapt's defaults (temperature 0.3, 3 neighbours, global weight 0.3, similarity
      threshold 0.6; Sharthak et al. 2025 and their released tool).
    chunk: target rows processed per jitted call (memory ~ chunk x N floats for similarities).
    """

    k: int = 64
    untie: bool = False
    focus_candidates: int = 64
    tokenadapt_temperature: float = 0.3
    tokenadapt_neighbours: int = 3
    tokenadapt_global_weight: float = 0.3
    tokenadapt_threshold: float = 0.6
    chunk: int = 4096


@dataclasses.dataclass(frozen=True)
class TokenPlan:
    """The two tokenizers and what the methods need to know about them (computed once)."""

    source: LoadedTokenizer
    target: LoadedTokenizer
    overlap: VocabOverlap
    decomposition: Decomposition

    @property
    def target_size(self) -> int:
        return self.target.vocab_size


def plan_tokens(source: LoadedTokenizer, target: LoadedTokenizer) -> TokenPlan:
    """Overlap and decomposition of ``target`` against ``source`` (see `zett_jax.tokenizers.overlap`)."""
    overlap = vocab_overlap(source, target)
    decomposition = decompose(source, target)
    log.info(
        "plan: %d target tokens, %d shared with the source (%d by role), %d new",
        target.vocab_size, overlap.num_shared, len(overlap.role_pairs), target.vocab_size - overlap.num_shared,
    )
    return TokenPlan(source, target, overlap, decomposition)


def check_finite(name: str, table_UxD) -> None:
    """ZettError naming the table and how many rows hold NaN or inf (a broken checkpoint, not ours to fix)."""
    bad_U = ~np.isfinite(np.asarray(table_UxD)).all(axis=1)
    if bad_U.any():
        first = np.flatnonzero(bad_U)[:5].tolist()
        raise ZettError(
            f"{name} has {int(bad_U.sum())} of {bad_U.size} rows with NaN or inf (first ids {first}); "
            "refusing to transplant from a broken table"
        )


def check_source(source: Embeddings, tokenizer: LoadedTokenizer) -> None:
    """The source tables must be finite and have a row per source token."""
    if source.vocab_size < tokenizer.vocab_size:
        raise ZettError(
            f"source embedding table has {source.vocab_size} rows but its tokenizer {tokenizer.vocab_size} tokens"
        )
    check_finite("source input embedding table", source.input_VxD)
    if source.output_VxD is not None:
        check_finite("source output embedding table", source.output_VxD)


def source_mean(table_UxD: jax.Array, plan: TokenPlan) -> jax.Array:
    """Mean of the source rows of real tokens: ids below the source tokenizer's size, padding rows left
    out (a padded table's extra rows were never trained)."""
    return jnp.mean(table_UxD[: plan.source.vocab_size], axis=0)


def assemble(new_VxD: jax.Array, table_UxD: jax.Array, plan: TokenPlan) -> jax.Array:
    """Target table: the method's rows, with every shared token's source row copied exactly."""
    shared_t = jnp.asarray(plan.overlap.shared_target_ids)
    shared_s = jnp.asarray(plan.overlap.shared_source_ids)
    return new_VxD.astype(table_UxD.dtype).at[shared_t].set(table_UxD[shared_s])


def per_table(
    source: Embeddings, options: TransplantOptions, rows: Callable[[jax.Array, str], jax.Array], plan: TokenPlan
) -> Embeddings:
    """Run ``rows(table, which)`` on the input table, and on the output table when there is one to make.

    ``which`` is "input" or "output"; a tied source gives "output" only when ``options.untie``.
    """
    out_in = assemble(rows(source.input_VxD, "input"), source.input_VxD, plan)
    if source.output_VxD is None and not options.untie:
        return Embeddings(out_in, None)
    head_UxD = source.head_VxD
    return Embeddings(out_in, assemble(rows(head_UxD, "output"), head_UxD, plan))


def piece_sum(table_UxD: jax.Array, pieces_VxS: np.ndarray, weights_VxS) -> jax.Array:
    """sum_s weights[v, s] * table[pieces[v, s]], one piece column at a time (never V x S x D in memory)."""
    return _piece_sum(table_UxD, jnp.asarray(pieces_VxS.T), jnp.asarray(weights_VxS, table_UxD.dtype).T)


@jax.jit
def _piece_sum(table_UxD, pieces_SxV, weights_SxV):
    def add(acc_VxD, col):
        ids_V, w_V = col
        return acc_VxD + w_V[:, None] * table_UxD[ids_V], None

    init_VxD = jnp.zeros((pieces_SxV.shape[1], table_UxD.shape[1]), table_UxD.dtype)
    return jax.lax.scan(add, init_VxD, (pieces_SxV, weights_SxV))[0]
