"""Decoder configuration, read from and written back to Hugging Face `config.json` dictionaries.

One frozen dataclass describes every supported decoder. Two families share it:
- ``llama``: Llama 2/3, Mistral, Qwen2 and SmolLM2 (pre-norm, SwiGLU, GQA, RoPE; optional q/k/v biases);
- ``gemma3``: Gemma 3 text decoders (q/k norms, sandwich norms, embedding scaling, interleaved sliding
  and global attention with their own RoPE bases).

The original HF config dictionary is kept verbatim (as JSON) so that an export writes back exactly the
fields it read, with only what zett_jax changes (the vocabulary size, tying) updated.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from zett_jax.errors import ZettError

# HF model_type -> family. Architectures listed here are the ones whose forward pass we implement.
MODEL_TYPES = {
    "llama": "llama",
    "mistral": "llama",
    "qwen2": "llama",
    "gemma3_text": "gemma3",
}
ARCHITECTURES = {
    "llama": "LlamaForCausalLM",
    "mistral": "MistralForCausalLM",
    "qwen2": "Qwen2ForCausalLM",
    "gemma3_text": "Gemma3ForCausalLM",
}

SLIDING = "sliding_attention"
FULL = "full_attention"


@dataclasses.dataclass(frozen=True)
class Rope:
    """Rotary embedding of one attention kind (HF ``rope_parameters`` entry)."""

    theta: float
    kind: str = "default"  # default | linear | llama3
    factor: float = 1.0
    low_freq_factor: float = 1.0
    high_freq_factor: float = 4.0
    original_max_position_embeddings: int = 8192


@dataclasses.dataclass(frozen=True)
class DecoderConfig:
    model_type: str
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    rms_norm_eps: float
    tie_word_embeddings: bool
    rope: Rope  # global (full) attention
    rope_local: Rope | None = None  # sliding-window layers, where they use another base (Gemma 3)
    layer_types: tuple[str, ...] = ()
    sliding_window: int | None = None
    qkv_bias: bool = False
    o_bias: bool = False
    mlp_bias: bool = False
    query_pre_attn_scalar: float | None = None
    final_logit_softcapping: float | None = None
    attn_logit_softcapping: float | None = None
    max_position_embeddings: int = 8192
    hf_config_json: str = "{}"

    @property
    def family(self) -> str:
        return MODEL_TYPES[self.model_type]

    @property
    def attn_scale(self) -> float:
        if self.query_pre_attn_scalar is not None:
            return float(self.query_pre_attn_scalar) ** -0.5
        return self.head_dim**-0.5

    def replace(self, **kw: Any) -> "DecoderConfig":
        return dataclasses.replace(self, **kw)

    # ------------------------------------------------------------------ HF config.json round trip
    @classmethod
    def from_hf(cls, hf: dict, source: str = "config.json") -> "DecoderConfig":
        """Read a Hugging Face config dict. ``source`` names the file in error messages."""
        if "text_config" in hf and hf.get("model_type") == "gemma3":
            hf = {**hf["text_config"], "model_type": "gemma3_text"}
        model_type = hf.get("model_type")
        if model_type not in MODEL_TYPES:
            raise ZettError(
                f"{source}: model_type {model_type!r} is not supported; expected one of {sorted(MODEL_TYPES)}"
            )

        def need(key: str) -> Any:
            if key not in hf or hf[key] is None:
                raise ZettError(f"{source}: required key {key!r} is missing (model_type {model_type})")
            return hf[key]

        hidden = int(need("hidden_size"))
        heads = int(need("num_attention_heads"))
        head_dim = int(hf.get("head_dim") or hidden // heads)
        num_layers = int(need("num_hidden_layers"))
        family = MODEL_TYPES[model_type]
        gemma = family == "gemma3"
        rope_params = hf.get("rope_parameters") or {}
        if gemma:
            global_params = rope_params.get(FULL) or {}
            local_params = rope_params.get(SLIDING) or {}
            legacy = hf.get("rope_scaling") or {}
            rope = _rope(
                {**legacy, **global_params}, hf.get("rope_theta", 1_000_000.0), source
            )
            rope_local = _rope(local_params, hf.get("rope_local_base_freq", 10_000.0), source)
        else:
            legacy = hf.get("rope_scaling") or {}
            rope = _rope({**legacy, **rope_params}, hf.get("rope_theta", 10_000.0), source)
            rope_local = None

        sliding_window = hf.get("sliding_window")
        layer_types = hf.get("layer_types")
        if layer_types is None:
            if gemma:
                pattern = int(hf.get("sliding_window_pattern", 6))
                layer_types = [SLIDING if (i + 1) % pattern else FULL for i in range(num_layers)]
            elif model_type == "qwen2":
                window_on = bool(hf.get("use_sliding_window", False)) and sliding_window is not None
                start = int(hf.get("max_window_layers", num_layers))
                layer_types = [SLIDING if window_on and i >= start else FULL for i in range(num_layers)]
            else:
                layer_types = [SLIDING if sliding_window else FULL for _ in range(num_layers)]
        if len(layer_types) != num_layers or any(t not in (SLIDING, FULL) for t in layer_types):
            raise ZettError(
                f"{source}: layer_types must list {num_layers} entries of {SLIDING!r}/{FULL!r}, got {layer_types!r}"
            )
        if SLIDING in layer_types and not sliding_window:
            raise ZettError(f"{source}: sliding attention layers need a positive 'sliding_window'")
        if model_type == "qwen2" and not hf.get("use_sliding_window", False):
            sliding_window = None

        if hf.get("hidden_act", hf.get("hidden_activation", "silu")) not in (
            "silu",
            "gelu_pytorch_tanh",
        ):
            raise ZettError(
                f"{source}: activation {hf.get('hidden_act', hf.get('hidden_activation'))!r} is not supported"
            )
        attention_bias = bool(hf.get("attention_bias", False))
        return cls(
            model_type=model_type,
            vocab_size=int(need("vocab_size")),
            hidden_size=hidden,
            intermediate_size=int(need("intermediate_size")),
            num_layers=num_layers,
            num_heads=heads,
            num_kv_heads=int(hf.get("num_key_value_heads") or heads),
            head_dim=head_dim,
            rms_norm_eps=float(hf.get("rms_norm_eps", 1e-6)),
            tie_word_embeddings=bool(hf.get("tie_word_embeddings", gemma)),
            rope=rope,
            rope_local=rope_local,
            layer_types=tuple(layer_types),
            sliding_window=int(sliding_window) if sliding_window and SLIDING in layer_types else None,
            qkv_bias=model_type == "qwen2" or attention_bias,
            o_bias=attention_bias and model_type != "qwen2",
            mlp_bias=bool(hf.get("mlp_bias", False)),
            query_pre_attn_scalar=hf.get("query_pre_attn_scalar") if gemma else None,
            final_logit_softcapping=hf.get("final_logit_softcapping"),
            attn_logit_softcapping=hf.get("attn_logit_softcapping"),
            max_position_embeddings=int(hf.get("max_position_embeddings", 8192)),
            hf_config_json=json.dumps(hf, sort_keys=True),
        )

    def to_hf(self) -> dict:
        """The HF config dict to write next to exported weights."""
        hf = json.loads(self.hf_config_json)
        hf.update(
            model_type=self.model_type,
            architectures=[ARCHITECTURES[self.model_type]],
            vocab_size=self.vocab_size,
            hidden_size=self.hidden_size,
            intermediate_size=self.intermediate_size,
            num_hidden_layers=self.num_layers,
            num_attention_heads=self.num_heads,
            num_key_value_heads=self.num_kv_heads,
            head_dim=self.head_dim,
            rms_norm_eps=self.rms_norm_eps,
            tie_word_embeddings=self.tie_word_embeddings,
            max_position_embeddings=self.max_position_embeddings,
        )
        hf.pop("torch_dtype", None)
        hf.setdefault("dtype", "float32")
        if self.family == "gemma3":
            hf["layer_types"] = list(self.layer_types)
            hf["sliding_window"] = self.sliding_window
            hf["rope_parameters"] = {FULL: _rope_to_hf(self.rope), SLIDING: _rope_to_hf(self.rope_local)}
            hf.pop("rope_scaling", None)
            hf.pop("rope_theta", None)
            hf.pop("rope_local_base_freq", None)
            hf.pop("sliding_window_pattern", None)
            hf.setdefault("hidden_activation", "gelu_pytorch_tanh")
            hf["query_pre_attn_scalar"] = self.query_pre_attn_scalar
        else:
            hf["rope_parameters"] = _rope_to_hf(self.rope)
            hf.pop("rope_scaling", None)
            hf.pop("rope_theta", None)
            hf.setdefault("hidden_act", "silu")
            if self.model_type != "qwen2":
                hf["attention_bias"] = self.qkv_bias
                hf["mlp_bias"] = self.mlp_bias
        return hf


def _rope(params: dict, default_theta: float, source: str) -> Rope:
    kind = params.get("rope_type", params.get("type", "default")) or "default"
    theta = float(params.get("rope_theta", default_theta))
    if kind == "default":
        return Rope(theta=theta)
    if kind == "linear":
        return Rope(theta=theta, kind="linear", factor=float(params["factor"]))
    if kind == "llama3":
        try:
            return Rope(
                theta=theta,
                kind="llama3",
                factor=float(params["factor"]),
                low_freq_factor=float(params["low_freq_factor"]),
                high_freq_factor=float(params["high_freq_factor"]),
                original_max_position_embeddings=int(params["original_max_position_embeddings"]),
            )
        except KeyError as e:
            raise ZettError(f"{source}: llama3 rope scaling lacks {e.args[0]!r}") from None
    raise ZettError(f"{source}: rope type {kind!r} is not supported; expected default, linear or llama3")


def _rope_to_hf(rope: Rope | None) -> dict:
    if rope is None:
        return {"rope_type": "default", "rope_theta": 10_000.0}
    out: dict[str, Any] = {"rope_type": rope.kind, "rope_theta": rope.theta}
    if rope.kind == "linear":
        out["factor"] = rope.factor
    if rope.kind == "llama3":
        out.update(
            factor=rope.factor,
            low_freq_factor=rope.low_freq_factor,
            high_freq_factor=rope.high_freq_factor,
            original_max_position_embeddings=rope.original_max_position_embeddings,
        )
    return out
