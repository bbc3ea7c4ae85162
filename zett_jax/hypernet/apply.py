"""Applying a trained hypernetwork: full embedding tables for any target tokenizer, zero-shot.

ZeTT §3.1: ``E_b = H_phi(E_a[T_a(t)]) for t in V_b``. Each target token is decomposed into base pieces
(`zett_jax.tokenizers.overlap.decompose`), truncated/padded to the hypernetwork's ``max_pieces``, and
predicted in fixed-size batches by one jitted function (the last batch padded, so it compiles once).
Special tokens take the base model's rows of the same role; target specials without a role counterpart
keep their prediction from an empty decomposition (a learned constant) and are logged.

Shape letters: V target vocabulary, N batch of tokens, S pieces, W base rows, C base features, D width.
"""

from __future__ import annotations

import functools
import logging

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


@functools.partial(jax.jit, static_argnums=0)
def _predict(graphdef, params, source_WxC, pieces_NxS, mask_NxS):
    return nnx.merge(graphdef, params)(source_WxC, pieces_NxS, mask_NxS)


def predict_embeddings(
    hypernet: Hypernet,
    base_embeddings: Embeddings,
    base_tokenizer: LoadedTokenizer,
    target: LoadedTokenizer,
    *,
    batch_size: int = 4096,
) -> Embeddings:
    """The target tokenizer's tables (one row per target id) predicted by ``hypernet``."""
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
    V = pieces_VxS.shape[0]
    N = min(batch_size, V)
    pad = (-V) % N
    pieces_VxS = np.pad(pieces_VxS, ((0, pad), (0, 0)))
    mask_VxS = np.pad(mask_VxS, ((0, pad), (0, 0)))

    graphdef, params = nnx.split(hypernet)
    source_WxC = source_table(base_embeddings.input_VxD, base_embeddings.output_VxD)

    ins, outs = [], []
    for lo in range(0, V + pad, N):
        in_NxD, out_NxD = _predict(graphdef, params, source_WxC, pieces_VxS[lo : lo + N], mask_VxS[lo : lo + N])
        ins.append(np.asarray(in_NxD))
        outs.append(None if out_NxD is None else np.asarray(out_NxD))
    input_VxD = jnp.asarray(np.concatenate(ins)[:V])
    output_VxD = None if outs[0] is None else jnp.asarray(np.concatenate(outs)[:V])

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
