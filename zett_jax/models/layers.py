"""Building blocks shared by the decoder families: linear maps, RMSNorm, RoPE, grouped-query attention.

Shape letters: B batch, T query positions, S key positions, D model width, H query heads, K key/value
heads, G = H / K query heads per key/value head, E head width, F feed-forward width.

Weights are stored in Hugging Face layout (``[out, in]`` for linear maps) so that the checkpoint name
map is a plain rename; XLA fuses the transpose into the matmul.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from zett_jax.models.config import Rope

_MASKED = -1e30  # large negative instead of -inf keeps fully masked (padding) rows finite


class Linear(nnx.Module):
    def __init__(self, d_in: int, d_out: int, *, bias: bool, dtype, param_dtype, rngs: nnx.Rngs):
        scale = 1.0 / math.sqrt(d_in)
        self.weight = nnx.Param(
            jax.random.uniform(rngs.params(), (d_out, d_in), param_dtype, -scale, scale)
        )
        self.bias = nnx.Param(jnp.zeros((d_out,), param_dtype)) if bias else None
        self.dtype = dtype

    def __call__(self, x_BxTxI: jax.Array) -> jax.Array:
        w_OxI = self.weight[...].astype(self.dtype)
        y_BxTxO = jnp.einsum("bti,oi->bto", x_BxTxI.astype(self.dtype), w_OxI)
        if self.bias is not None:
            y_BxTxO = y_BxTxO + self.bias[...].astype(self.dtype)
        return y_BxTxO


class RMSNorm(nnx.Module):
    """RMSNorm computed in float32. ``offset=True`` is Gemma's ``x * (1 + w)`` with w initialised to 0."""

    def __init__(self, dim: int, *, eps: float, offset: bool, param_dtype):
        init = jnp.zeros if offset else jnp.ones
        self.weight = nnx.Param(init((dim,), param_dtype))
        self.eps = eps
        self.offset = offset

    def __call__(self, x: jax.Array) -> jax.Array:
        x32 = x.astype(jnp.float32)
        normed = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)
        w = self.weight[...].astype(jnp.float32)
        if self.offset:
            # Gemma multiplies in float32, then casts (HF Gemma3RMSNorm).
            return (normed * (1.0 + w)).astype(x.dtype)
        # Llama casts first, then multiplies (HF LlamaRMSNorm).
        return self.weight[...].astype(x.dtype) * normed.astype(x.dtype)


def rope_inv_freq(rope: Rope, head_dim: int) -> np.ndarray:
    """Inverse frequencies of RoPE (Su et al. 2021), with linear or Llama-3 frequency scaling.

    Llama 3 scaling (Meta, "The Llama 3 Herd of Models", 2024): wavelengths longer than
    ``original_max / low_freq_factor`` are divided by ``factor``, shorter than
    ``original_max / high_freq_factor`` are kept, and the band between is interpolated smoothly.
    """
    inv = 1.0 / (rope.theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim))
    if rope.kind == "linear":
        inv = inv / rope.factor
    elif rope.kind == "llama3":
        low_wl = rope.original_max_position_embeddings / rope.low_freq_factor
        high_wl = rope.original_max_position_embeddings / rope.high_freq_factor
        wavelen = 2 * np.pi / inv
        scaled = np.where(wavelen > low_wl, inv / rope.factor, inv)
        smooth = (rope.original_max_position_embeddings / wavelen - rope.low_freq_factor) / (
            rope.high_freq_factor - rope.low_freq_factor
        )
        smoothed = (1 - smooth) * scaled / rope.factor + smooth * scaled
        medium = (wavelen >= high_wl) & (wavelen <= low_wl)
        inv = np.where(medium, smoothed, scaled)
    return inv.astype(np.float32)


def rope_tables(rope: Rope, head_dim: int, positions_BxT: jax.Array) -> tuple[jax.Array, jax.Array]:
    """cos and sin, each ``[B, T, E]``, in the rotate-half layout of HF."""
    inv_E2 = jnp.asarray(rope_inv_freq(rope, head_dim))
    angles_BxTxE2 = positions_BxT.astype(jnp.float32)[..., None] * inv_E2
    angles_BxTxE = jnp.concatenate([angles_BxTxE2, angles_BxTxE2], axis=-1)
    return jnp.cos(angles_BxTxE), jnp.sin(angles_BxTxE)


def apply_rope(x_BxTxNxE: jax.Array, cos_BxTxE: jax.Array, sin_BxTxE: jax.Array) -> jax.Array:
    half = x_BxTxNxE.shape[-1] // 2
    x1, x2 = x_BxTxNxE[..., :half], x_BxTxNxE[..., half:]
    rotated = jnp.concatenate([-x2, x1], axis=-1)
    cos = cos_BxTxE[:, :, None, :].astype(x_BxTxNxE.dtype)
    sin = sin_BxTxE[:, :, None, :].astype(x_BxTxNxE.dtype)
    return x_BxTxNxE * cos + rotated * sin


def attention_mask(
    valid_BxS: jax.Array, positions_BxT: jax.Array, window: int | None
) -> jax.Array:
    """Boolean ``[B, T, S]``: causal, within ``window`` positions (HF: ``kv > q - window``), key not padding."""
    q_BxTx1 = positions_BxT[:, :, None]
    k_Bx1xS = positions_BxT[:, None, :]
    mask_BxTxS = (k_Bx1xS <= q_BxTx1) & valid_BxS[:, None, :]
    if window is not None:
        mask_BxTxS = mask_BxTxS & (k_Bx1xS > q_BxTx1 - window)
    return mask_BxTxS


def grouped_attention(
    q_BxTxHxE: jax.Array,
    k_BxSxKxE: jax.Array,
    v_BxSxKxE: jax.Array,
    mask_BxTxS: jax.Array,
    *,
    scale: float,
    softcap: float | None = None,
) -> jax.Array:
    """Softmax attention with H query heads sharing K key/value heads; returns ``[B, T, H*E]``."""
    B, T, H, E = q_BxTxHxE.shape
    K = k_BxSxKxE.shape[2]
    q_BxTxKxGxE = q_BxTxHxE.reshape(B, T, K, H // K, E)
    scores_BxKxGxTxS = jnp.einsum(
        "btkge,bske->bkgts", q_BxTxKxGxE, k_BxSxKxE, preferred_element_type=jnp.float32
    ) * scale
    if softcap is not None:
        scores_BxKxGxTxS = jnp.tanh(scores_BxKxGxTxS / softcap) * softcap
    scores_BxKxGxTxS = jnp.where(mask_BxTxS[:, None, None], scores_BxKxGxTxS, _MASKED)
    probs = jax.nn.softmax(scores_BxKxGxTxS, axis=-1).astype(v_BxSxKxE.dtype)
    out_BxTxKxGxE = jnp.einsum("bkgts,bske->btkge", probs, v_BxSxKxE)
    return out_BxTxKxGxE.reshape(B, T, H * E)
