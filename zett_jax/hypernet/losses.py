"""The hypernetwork's objectives (ZeTT, Minixhofer, Ponti & Vulić 2024, §3.1-3.3).

- Language-modelling loss (§3.1, Eq. 1): the frozen base model runs on text tokenized with a sampled
  tokenizer, with the embedding tables the hypernetwork predicts for that tokenizer; the loss is the
  next-token cross-entropy over the sampled vocabulary. Only the hypernetwork is differentiated.
- Auxiliary loss (§3.3, "auxiliary loss"): on the tokens the sampled vocabulary shares with the base one
  (decomposition = one base piece with the same bytes), the squared distance between prediction and the
  base row, normalised by the base rows' mean norm (reference ``lexical_loss``, ``train.py``).
- Warm-up (§3.3, "warm-up"): before the LM phase, train the hypernetwork to reproduce the base table for
  base tokens given as single pieces (reference ``identity_train_step``: squared distance, summed over
  features, averaged over tokens; input and output tables averaged when untied).

Special tokens of the sampled tokenizer have no text: their rows are the base model's rows of the same
role, copied in before the base model runs (the reference sets ``special_indices`` the same way).

Shape letters: B batch, T positions, V sampled vocabulary, S pieces per token, W base rows, D width,
R special tokens.
"""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp
from flax import nnx

from zett_jax.hypernet.model import Hypernet, source_table
from zett_jax.models.decoder import Embeddings, token_logprobs
from zett_jax.train import LanguageModel


@flax.struct.dataclass
class HypernetBatch:
    """One sampled tokenizer and a batch of text tokenized with it (host numpy or device arrays)."""

    pieces_VxS: jax.Array  # int32: each sampled token's decomposition into base pieces
    mask_VxS: jax.Array  # bool
    shared_V: jax.Array  # bool: the token is one base token with the same bytes (auxiliary loss)
    base_id_V: jax.Array  # int32: that base token (0 where not shared)
    special_ids_R: jax.Array  # int32: sampled-vocabulary ids of the special tokens
    special_base_ids_R: jax.Array  # int32: the base ids with the same roles
    inputs_BxT: jax.Array
    targets_BxT: jax.Array
    valid_BxT: jax.Array


@flax.struct.dataclass
class WarmupBatch:
    """Base token ids whose rows the hypernetwork learns to reproduce."""

    ids_V: jax.Array  # int32
    pieces_VxS: jax.Array
    mask_VxS: jax.Array


@flax.struct.dataclass
class LossParts:
    lm: jax.Array
    aux: jax.Array
    shared_fraction: jax.Array


class HypernetWithBase(nnx.Module):
    """The trainable hypernetwork next to the frozen base model, so one NNX filter splits them."""

    def __init__(self, hypernet: Hypernet, base: LanguageModel):
        self.hypernet = hypernet
        self.base = base


TRAINABLE = nnx.All(nnx.Param, nnx.PathContains("hypernet"))


def predict_tables(
    module: HypernetWithBase, pieces_VxS, mask_VxS, special_ids_R, special_base_ids_R, short: tuple[int, int] = (0, 0)
) -> Embeddings:
    """The hypernetwork's tables for one vocabulary, special tokens copied from the base by role.

    ``short = (rows, width)``: the first ``rows`` tokens have at most ``width`` pieces (the batch was built
    so, `zett_jax.hypernet.data.subsample_vocabulary`) and are encoded at that width, the rest at full
    width. The result is the same as one full-width pass (padding is masked out of attention and readout),
    at a fraction of the encoder's cost.
    """
    base = module.base.embeddings
    source_WxC = source_table(base.input_VxD, base.output_VxD)
    rows, width = short
    if rows:
        a_in, a_out = module.hypernet(source_WxC, pieces_VxS[:rows, :width], mask_VxS[:rows, :width])
        b_in, b_out = module.hypernet(source_WxC, pieces_VxS[rows:], mask_VxS[rows:])
        in_VxD = jnp.concatenate([a_in, b_in])
        out_VxD = None if a_out is None else jnp.concatenate([a_out, b_out])
    else:
        in_VxD, out_VxD = module.hypernet(source_WxC, pieces_VxS, mask_VxS)
    in_VxD = in_VxD.at[special_ids_R].set(base.input_VxD[special_base_ids_R].astype(in_VxD.dtype))
    if out_VxD is not None:
        out_VxD = out_VxD.at[special_ids_R].set(base.output_VxD[special_base_ids_R].astype(out_VxD.dtype))
    return Embeddings(in_VxD, out_VxD)


def _row_distance(pred_VxD: jax.Array, target_VxD: jax.Array, weight_V: jax.Array) -> jax.Array:
    """Weighted mean squared L2 distance, over the targets' mean norm (reference ``lexical_loss``)."""
    d_V = jnp.square(pred_VxD - target_VxD).sum(-1)
    norm = jnp.linalg.norm(target_VxD, axis=-1)
    mean_norm = (norm * weight_V).sum() / jnp.maximum(weight_V.sum(), 1.0)
    return (d_V * weight_V).sum() / jnp.maximum(weight_V.sum(), 1.0) / jnp.maximum(mean_norm, 1e-8)


def aux_loss(predicted: Embeddings, base: Embeddings, base_id_V: jax.Array, shared_V: jax.Array) -> jax.Array:
    """ZeTT §3.3 auxiliary loss on the shared tokens (averaged over the input and output tables)."""
    weight_V = shared_V.astype(jnp.float32)
    loss = _row_distance(predicted.input_VxD, base.input_VxD[base_id_V], weight_V)
    if predicted.output_VxD is not None:
        loss = (loss + _row_distance(predicted.output_VxD, base.output_VxD[base_id_V], weight_V)) / 2
    return loss


def lm_and_aux_loss(
    module: HypernetWithBase, batch: HypernetBatch, aux_weight: float, short: tuple[int, int] = (0, 0)
) -> tuple[jax.Array, LossParts]:
    """``L = L_LM + aux_weight * L_aux`` (ZeTT §3.3; the paper's weight is 0.5). ``short``: see
    :func:`predict_tables`."""
    predicted = predict_tables(module, batch.pieces_VxS, batch.mask_VxS, batch.special_ids_R,
                               batch.special_base_ids_R, short)
    logp_BxT = token_logprobs(module.base.decoder, predicted, batch.inputs_BxT, batch.targets_BxT, batch.valid_BxT)
    valid_BxT = batch.valid_BxT.astype(jnp.float32)
    lm = -(logp_BxT * valid_BxT).sum() / jnp.maximum(valid_BxT.sum(), 1.0)
    aux = aux_loss(predicted, module.base.embeddings, batch.base_id_V, batch.shared_V)
    parts = LossParts(lm=lm, aux=aux, shared_fraction=batch.shared_V.astype(jnp.float32).mean())
    return lm + aux_weight * aux, parts


def warmup_loss(module: HypernetWithBase, batch: WarmupBatch) -> tuple[jax.Array, LossParts]:
    """ZeTT §3.3 warm-up: squared distance to the base rows of ``batch.ids_V`` (summed over D, mean over V)."""
    base = module.base.embeddings
    in_VxD, out_VxD = module.hypernet(source_table(base.input_VxD, base.output_VxD), batch.pieces_VxS, batch.mask_VxS)
    loss = jnp.square(in_VxD - base.input_VxD[batch.ids_V]).sum(-1).mean()
    if out_VxD is not None:
        loss = (loss + jnp.square(out_VxD - base.output_VxD[batch.ids_V]).sum(-1).mean()) / 2
    zero = jnp.zeros((), jnp.float32)
    return loss, LossParts(lm=zero, aux=loss, shared_fraction=jnp.ones((), jnp.float32))
