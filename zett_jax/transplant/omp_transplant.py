"""Tokenizer transplantation by Orthogonal Matching Pursuit (Goddard & Fernandes 2025).

"Training-Free Tokenizer Transplantation via Orthogonal Matching Pursuit" (arXiv 2506.06607), §3, the
method of mergekit-tokensurgeon. A *donor* model already speaks the target tokenizer. Anchors are the
tokens the target (= donor) vocabulary shares with the source vocabulary, compared in the byte-level
normal form (role-matched special tokens are copied but are not anchors: they stand for no text).
Each new target token t is handled in the paper's two phases:

  1. sparse coding in the donor space: write the donor row e_donor(t) as a k-sparse combination of
     donor anchor rows, e_donor(t) ~= sum_j c_j e_donor(a_j), by greedy OMP
     (`zett_jax.transplant.omp.batch_omp`, jitted and batched);
  2. transfer: apply the same anchors and coefficients to the source model's rows of those anchors,
     e_new(t) = sum_j c_j e_source(a_j).

Shared tokens keep their source rows exactly. Input and output tables are done separately, each against
the donor's table of the same kind (a tied donor serves both). Every non-shared target id is coded,
including the donor's special tokens without a source role (the donor has a row for them).

Shape letters: V target vocabulary, D donor width, N anchors, B new tokens, K = k.
"""

from __future__ import annotations

import logging
import time

import jax.numpy as jnp
import numpy as np

from zett_jax.errors import ZettError
from zett_jax.models.decoder import Embeddings
from zett_jax.tokenizers.bytes_form import token_bytes
from zett_jax.tokenizers.core import LoadedTokenizer
from zett_jax.transplant.plan import TokenPlan, TransplantOptions, check_finite, per_table, piece_sum

log = logging.getLogger(__name__)


def check_donor(donor: Embeddings, donor_tokenizer: LoadedTokenizer, target: LoadedTokenizer) -> None:
    """The donor must have a finite row for every token of its tokenizer, and its tokenizer must be the
    target tokenizer (same bytes for every id)."""
    if donor.vocab_size < donor_tokenizer.vocab_size:
        # mergekit issue 657: a donor whose table is smaller than its vocabulary makes the anchors' ids
        # index past the table.
        raise ZettError(
            f"donor embedding table has {donor.vocab_size} rows but its tokenizer has "
            f"{donor_tokenizer.vocab_size} tokens; every token needs a row"
        )
    if donor_tokenizer.vocab_size != target.vocab_size:
        raise ZettError(
            f"the donor's tokenizer has {donor_tokenizer.vocab_size} tokens but the target tokenizer "
            f"{target.vocab_size}; OMP needs a donor that uses the target tokenizer"
        )
    donor_forms, target_forms = token_bytes(donor_tokenizer), token_bytes(target)
    if donor_forms != target_forms:
        first = next(i for i, (a, b) in enumerate(zip(donor_forms, target_forms)) if a != b)
        raise ZettError(
            f"the donor's tokenizer differs from the target tokenizer (first at id {first}: "
            f"{donor_forms[first]!r} vs {target_forms[first]!r}); OMP needs a donor that uses the target tokenizer"
        )
    check_finite("donor input embedding table", donor.input_VxD)
    if donor.output_VxD is not None:
        check_finite("donor output embedding table", donor.output_VxD)


def omp(
    source: Embeddings,
    plan: TokenPlan,
    options: TransplantOptions,
    donor: tuple[Embeddings, LoadedTokenizer] | None = None,
) -> Embeddings:
    """OMP transplant (module docstring): new rows are k-sparse anchor combinations found in the donor."""
    if donor is None:
        raise ZettError("method omp needs a donor model that uses the target tokenizer (--donor)")
    donor_tables, donor_tokenizer = donor
    check_donor(donor_tables, donor_tokenizer, plan.target)
    anchor_t, anchor_s = plan.overlap.anchors()
    if anchor_t.size == 0:
        raise ZettError("omp: the source and target vocabularies share no token, so there are no anchors")
    if not 1 <= options.k <= anchor_t.size:
        raise ZettError(
            f"omp: k={options.k} must be between 1 and the number of shared anchor tokens ({anchor_t.size})"
        )
    new_t = plan.overlap.new_target_ids
    codes: dict[int, tuple] = {}  # donor table identity -> (indices, coefs): a tied donor is coded once

    def rows(table_UxD, which):
        donor_VxD = donor_tables.input_VxD if which == "input" else donor_tables.head_VxD
        key = id(donor_VxD)
        if key not in codes:
            start = time.perf_counter()
            idx_BxK, coef_BxK = _phase1(donor_VxD, anchor_t, new_t, options.k)
            log.info("omp: phase 1 (%s table): %d new tokens over %d anchors, k=%d, %.1f s",
                     which, new_t.size, anchor_t.size, options.k, time.perf_counter() - start)
            codes[key] = (idx_BxK, coef_BxK)
        idx_BxK, coef_BxK = codes[key]
        new_BxD = piece_sum(table_UxD[jnp.asarray(anchor_s)], idx_BxK, coef_BxK)
        return jnp.zeros((plan.target_size, table_UxD.shape[1]), table_UxD.dtype).at[jnp.asarray(new_t)].set(new_BxD)

    return per_table(source, options, rows, plan)


def _phase1(donor_VxD, anchor_t: np.ndarray, new_t: np.ndarray, k: int):
    """Phase 1: OMP codes of the donor rows of the new tokens over the donor rows of the anchors."""
    from zett_jax.transplant.omp import batch_omp

    donor_VxD = jnp.asarray(donor_VxD, jnp.float32)
    if new_t.size == 0:
        return np.zeros((0, k), np.int32), np.zeros((0, k), np.float32)
    idx_BxK, coef_BxK = batch_omp(donor_VxD[jnp.asarray(new_t)], donor_VxD[jnp.asarray(anchor_t)], k)
    return np.asarray(idx_BxK), np.asarray(coef_BxK)
