"""The decoder shell shared by every family: embedding lookup, the blocks, the final norm, the head.

The embedding tables are not part of the module. They travel as an :class:`Embeddings` pytree argument,
so moving a model to another tokenizer is swapping one table for another, and a hypernetwork or a
transplant method can produce tables without touching the transformer body.

Shape letters: B batch, T positions, D model width, E head width, V vocabulary.
"""

from __future__ import annotations

import math

import flax.struct
import jax
import jax.numpy as jnp
from flax import nnx

from zett_jax.models.config import FULL, SLIDING, DecoderConfig
from zett_jax.models.gemma3 import Gemma3Block
from zett_jax.models.layers import RMSNorm, attention_mask, rope_tables
from zett_jax.models.llama import LlamaBlock

BLOCKS = {"llama": LlamaBlock, "gemma3": Gemma3Block}


@flax.struct.dataclass
class Embeddings:
    """Input embeddings, and output embeddings unless the model ties them (then ``output_VxD`` is None)."""

    input_VxD: jax.Array
    output_VxD: jax.Array | None = None

    @property
    def vocab_size(self) -> int:
        return self.input_VxD.shape[0]

    @property
    def head_VxD(self) -> jax.Array:
        return self.input_VxD if self.output_VxD is None else self.output_VxD


class Decoder(nnx.Module):
    """A causal language model body. ``model(embeddings, tokens_BxT) -> logits_BxTxV``."""

    def __init__(self, config: DecoderConfig, *, dtype=jnp.float32, param_dtype=jnp.float32, rngs: nnx.Rngs):
        block = BLOCKS[config.family]
        kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.layers = nnx.List([block(config, i, **kw) for i in range(config.num_layers)])
        self.norm = RMSNorm(
            config.hidden_size,
            eps=config.rms_norm_eps,
            offset=config.family == "gemma3",
            param_dtype=param_dtype,
        )
        self.config = config
        self.dtype = dtype

    def hidden(
        self,
        embeddings: Embeddings,
        tokens_BxT: jax.Array,
        valid_BxT: jax.Array | None = None,
        positions_BxT: jax.Array | None = None,
    ) -> jax.Array:
        """Final-norm hidden states ``[B, T, D]``. ``valid_BxT`` marks real (non-padding) tokens."""
        cfg = self.config
        B, T = tokens_BxT.shape
        if positions_BxT is None:
            positions_BxT = jnp.broadcast_to(jnp.arange(T, dtype=jnp.int32), (B, T))
        if valid_BxT is None:
            valid_BxT = jnp.ones((B, T), dtype=bool)
        x_BxTxD = jnp.take(embeddings.input_VxD, tokens_BxT, axis=0).astype(self.dtype)
        if cfg.family == "gemma3":
            # HF casts the normaliser to the compute dtype first (sqrt(640) becomes 25.25 in bf16).
            x_BxTxD = x_BxTxD * jnp.asarray(math.sqrt(cfg.hidden_size), self.dtype)

        masks = {FULL: attention_mask(valid_BxT, positions_BxT, None)}
        ropes = {FULL: rope_tables(cfg.rope, cfg.head_dim, positions_BxT)}
        if SLIDING in cfg.layer_types:
            masks[SLIDING] = attention_mask(valid_BxT, positions_BxT, cfg.sliding_window)
            ropes[SLIDING] = rope_tables(cfg.rope_local or cfg.rope, cfg.head_dim, positions_BxT)
        for block in self.layers:
            cos_BxTxE, sin_BxTxE = ropes[block.layer_type]
            x_BxTxD = block(x_BxTxD, cos_BxTxE, sin_BxTxE, masks[block.layer_type])
        return self.norm(x_BxTxD)

    def logits(self, embeddings: Embeddings, h_BxTxD: jax.Array) -> jax.Array:
        """Output logits ``[B, T, V]`` (float32) from hidden states."""
        head_VxD = embeddings.head_VxD.astype(self.dtype)
        logits_BxTxV = jnp.einsum("btd,vd->btv", h_BxTxD, head_VxD, preferred_element_type=jnp.float32)
        cap = self.config.final_logit_softcapping
        if cap is not None:
            logits_BxTxV = jnp.tanh(logits_BxTxV / cap) * cap
        return logits_BxTxV

    def __call__(self, embeddings, tokens_BxT, valid_BxT=None, positions_BxT=None) -> jax.Array:
        return self.logits(embeddings, self.hidden(embeddings, tokens_BxT, valid_BxT, positions_BxT))


def init_model(config: DecoderConfig, seed: int = 0, *, dtype=jnp.float32, param_dtype=jnp.float32) -> Decoder:
    return Decoder(config, dtype=dtype, param_dtype=param_dtype, rngs=nnx.Rngs(seed))


def abstract_model(config: DecoderConfig, *, dtype=jnp.float32, param_dtype=jnp.float32) -> Decoder:
    """The model's structure with ``ShapeDtypeStruct`` leaves: nothing is allocated."""
    return nnx.eval_shape(lambda: init_model(config, dtype=dtype, param_dtype=param_dtype))


def init_embeddings(config: DecoderConfig, key: jax.Array, dtype=jnp.float32, std: float = 0.02) -> Embeddings:
    k_in, k_out = jax.random.split(key)
    V, D = config.vocab_size, config.hidden_size
    table_in = std * jax.random.normal(k_in, (V, D), dtype)
    table_out = None if config.tie_word_embeddings else std * jax.random.normal(k_out, (V, D), dtype)
    return Embeddings(table_in, table_out)


def token_logprobs(
    model: Decoder,
    embeddings: Embeddings,
    tokens_BxT: jax.Array,
    targets_BxT: jax.Array,
    valid_BxT: jax.Array | None = None,
    chunk: int = 128,
) -> jax.Array:
    """``log p(targets[b, t] | tokens[b, :t+1])`` as ``[B, T]`` float32.

    The vocabulary projection is done ``chunk`` positions at a time, so the ``[B, T, V]`` logits of a
    262k-token vocabulary never exist at once.
    """
    h_BxTxD = model.hidden(embeddings, tokens_BxT, valid_BxT)
    B, T, D = h_BxTxD.shape
    chunk = min(chunk, T)
    pad = (-T) % chunk
    h_BxTxD = jnp.pad(h_BxTxD, ((0, 0), (0, pad), (0, 0)))
    targets = jnp.pad(targets_BxT, ((0, 0), (0, pad)))
    n = (T + pad) // chunk
    h_NxBxCxD = h_BxTxD.reshape(B, n, chunk, D).swapaxes(0, 1)
    t_NxBxC = targets.reshape(B, n, chunk).swapaxes(0, 1)

    def one(_, xs):
        h_BxCxD, t_BxC = xs
        logits_BxCxV = model.logits(embeddings, h_BxCxD)
        picked_BxC = jnp.take_along_axis(logits_BxCxV, t_BxC[..., None], axis=-1)[..., 0]
        return None, picked_BxC - jax.nn.logsumexp(logits_BxCxV, axis=-1)

    _, lp_NxBxC = jax.lax.scan(one, None, (h_NxBxCxD, t_NxBxC))
    return lp_NxBxC.swapaxes(0, 1).reshape(B, n * chunk)[:, :T]
