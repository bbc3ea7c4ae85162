"""The Gemma 3 block (Gemma Team 2025, "Gemma 3 Technical Report").

Differences from the Llama block: RMSNorm weights act as ``1 + w``; q and k are RMS-normalised per
head before RoPE; "sandwich" norms after attention and around the feed-forward; GeGLU with tanh GELU;
attention scaled by ``query_pre_attn_scalar ** -0.5``; layers alternate between sliding-window
attention (local RoPE base, 10k) and global attention (global RoPE base, 1M), five to one.
The embedding scaling by sqrt(D) lives in :class:`zett_jax.models.decoder.Decoder`.
"""

from __future__ import annotations

from functools import partial

import jax
from flax import nnx

from zett_jax.models.config import DecoderConfig
from zett_jax.models.layers import RMSNorm
from zett_jax.models.llama import Attention, GatedMLP


class Gemma3Block(nnx.Module):
    def __init__(self, cfg: DecoderConfig, layer: int, *, dtype, param_dtype, rngs: nnx.Rngs):
        kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.self_attn = Attention(cfg, qk_norm=True, **kw)
        self.mlp = GatedMLP(cfg, activation=partial(jax.nn.gelu, approximate=True), **kw)
        norm = dict(eps=cfg.rms_norm_eps, offset=True, param_dtype=param_dtype)
        D = cfg.hidden_size
        self.input_layernorm = RMSNorm(D, **norm)
        self.post_attention_layernorm = RMSNorm(D, **norm)
        self.pre_feedforward_layernorm = RMSNorm(D, **norm)
        self.post_feedforward_layernorm = RMSNorm(D, **norm)
        self.layer_type = cfg.layer_types[layer]

    def __call__(self, x_BxTxD, cos_BxTxE, sin_BxTxE, mask_BxTxS) -> jax.Array:
        attn_BxTxD = self.self_attn(self.input_layernorm(x_BxTxD), cos_BxTxE, sin_BxTxE, mask_BxTxS)
        x_BxTxD = x_BxTxD + self.post_attention_layernorm(attn_BxTxD)
        mlp_BxTxD = self.mlp(self.pre_feedforward_layernorm(x_BxTxD))
        return x_BxTxD + self.post_feedforward_layernorm(mlp_BxTxD)
