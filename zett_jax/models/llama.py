"""The Llama family block: Llama 2/3, Mistral, Qwen2 (q/k/v biases), SmolLM2.

Pre-norm residual block (Touvron et al. 2023): ``x + Attn(RMSNorm(x))`` then ``x + SwiGLU(RMSNorm(x))``,
grouped-query attention (Ainslie et al. 2023) with rotary positions. Names mirror the Hugging Face
modules (``self_attn.q_proj``, ``mlp.gate_proj``, ...). Shape letters as in :mod:`zett_jax.models.layers`.
"""

from __future__ import annotations

import jax
from flax import nnx

from zett_jax.models.config import DecoderConfig
from zett_jax.models.layers import Linear, RMSNorm, apply_rope, grouped_attention


class Attention(nnx.Module):
    def __init__(self, cfg: DecoderConfig, *, qk_norm: bool, dtype, param_dtype, rngs: nnx.Rngs):
        D, H, K, E = cfg.hidden_size, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
        kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.q_proj = Linear(D, H * E, bias=cfg.qkv_bias, **kw)
        self.k_proj = Linear(D, K * E, bias=cfg.qkv_bias, **kw)
        self.v_proj = Linear(D, K * E, bias=cfg.qkv_bias, **kw)
        self.o_proj = Linear(H * E, D, bias=cfg.o_bias, **kw)
        if qk_norm:
            self.q_norm = RMSNorm(E, eps=cfg.rms_norm_eps, offset=True, param_dtype=param_dtype)
            self.k_norm = RMSNorm(E, eps=cfg.rms_norm_eps, offset=True, param_dtype=param_dtype)
        else:
            self.q_norm = self.k_norm = None
        self.shape = (H, K, E)
        self.scale = cfg.attn_scale
        self.softcap = cfg.attn_logit_softcapping

    def __call__(self, x_BxTxD, cos_BxTxE, sin_BxTxE, mask_BxTxS) -> jax.Array:
        H, K, E = self.shape
        B, T, _ = x_BxTxD.shape
        q_BxTxHxE = self.q_proj(x_BxTxD).reshape(B, T, H, E)
        k_BxTxKxE = self.k_proj(x_BxTxD).reshape(B, T, K, E)
        v_BxTxKxE = self.v_proj(x_BxTxD).reshape(B, T, K, E)
        if self.q_norm is not None:
            q_BxTxHxE, k_BxTxKxE = self.q_norm(q_BxTxHxE), self.k_norm(k_BxTxKxE)
        q_BxTxHxE = apply_rope(q_BxTxHxE, cos_BxTxE, sin_BxTxE)
        k_BxTxKxE = apply_rope(k_BxTxKxE, cos_BxTxE, sin_BxTxE)
        out_BxTxHE = grouped_attention(
            q_BxTxHxE, k_BxTxKxE, v_BxTxKxE, mask_BxTxS, scale=self.scale, softcap=self.softcap
        )
        return self.o_proj(out_BxTxHE)


class GatedMLP(nnx.Module):
    def __init__(self, cfg: DecoderConfig, *, activation, dtype, param_dtype, rngs: nnx.Rngs):
        D, F = cfg.hidden_size, cfg.intermediate_size
        kw = dict(bias=cfg.mlp_bias, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.gate_proj = Linear(D, F, **kw)
        self.up_proj = Linear(D, F, **kw)
        self.down_proj = Linear(F, D, **kw)
        self.activation = activation

    def __call__(self, x_BxTxD) -> jax.Array:
        return self.down_proj(self.activation(self.gate_proj(x_BxTxD)) * self.up_proj(x_BxTxD))


class LlamaBlock(nnx.Module):
    def __init__(self, cfg: DecoderConfig, layer: int, *, dtype, param_dtype, rngs: nnx.Rngs):
        kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.self_attn = Attention(cfg, qk_norm=False, **kw)
        self.mlp = GatedMLP(cfg, activation=jax.nn.silu, **kw)
        norm = dict(eps=cfg.rms_norm_eps, offset=False, param_dtype=param_dtype)
        self.input_layernorm = RMSNorm(cfg.hidden_size, **norm)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, **norm)
        self.layer_type = cfg.layer_types[layer]

    def __call__(self, x_BxTxD, cos_BxTxE, sin_BxTxE, mask_BxTxS) -> jax.Array:
        x_BxTxD = x_BxTxD + self.self_attn(self.input_layernorm(x_BxTxD), cos_BxTxE, sin_BxTxE, mask_BxTxS)
        return x_BxTxD + self.mlp(self.post_attention_layernorm(x_BxTxD))
