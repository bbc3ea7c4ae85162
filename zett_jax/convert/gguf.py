"""GGUF model files in: metadata to an HF config, dequantised tensors to HF names.

Read with the ``gguf`` package (llama.cpp's own reader). Three layout fix-ups turn llama.cpp tensors back
into Hugging Face ones:
- llama.cpp permutes the rows of Q and K in ``llama``-arch files so that RoPE rotates adjacent pairs;
  HF Llama rotates halves. :func:`unpermute_qk` inverts that permutation. Gemma 3 and Qwen2 files use
  the rotate-half (NEOX) layout and are stored unpermuted.
- Gemma files store RMSNorm weights with the ``+1`` already added; HF Gemma adds it at run time.
- Shapes in GGUF are listed innermost first; ``GGUFReader`` already gives numpy (row-major) shapes.
"""

from __future__ import annotations

import re
from pathlib import Path

import gguf
import numpy as np

from zett_jax.errors import ZettError

ARCH_MODEL_TYPE = {"llama": "llama", "qwen2": "qwen2", "gemma3": "gemma3_text"}

_LAYER_NAMES = {
    "attn_norm": "input_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "attn_q_norm": "self_attn.q_norm",
    "attn_k_norm": "self_attn.k_norm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
    "post_attention_norm": "post_attention_layernorm",
    "post_ffw_norm": "post_feedforward_layernorm",
}
_TOP_NAMES = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}
_BLOCK = re.compile(r"^blk\.(\d+)\.([a-z_]+)\.(weight|bias)$")


def open_gguf(path: str | Path) -> gguf.GGUFReader:
    path = Path(path)
    if not path.is_file():
        raise ZettError(f"{path}: no such GGUF file")
    try:
        return gguf.GGUFReader(str(path))
    except Exception as e:  # noqa: BLE001 — the reader raises many types on a damaged file
        raise ZettError(f"{path}: not a readable GGUF file ({type(e).__name__}: {e})") from None


def field(reader: gguf.GGUFReader, key: str, default=None, *, path: str = "", required: bool = False):
    f = reader.fields.get(key)
    if f is None:
        if required:
            raise ZettError(f"{path}: GGUF metadata lacks {key!r}")
        return default
    return f.contents()


def hf_config_from_gguf(reader: gguf.GGUFReader, path: str) -> dict:
    """The HF ``config.json`` dictionary equivalent to a GGUF file's metadata."""
    arch = field(reader, "general.architecture", path=path, required=True)
    if arch not in ARCH_MODEL_TYPE:
        raise ZettError(f"{path}: GGUF architecture {arch!r} is not supported; expected one of {sorted(ARCH_MODEL_TYPE)}")

    def meta(key: str, default=None, required: bool = True):
        return field(reader, f"{arch}.{key}", default, path=path, required=required and default is None)

    tokens = reader.fields.get("tokenizer.ggml.tokens")
    vocab = meta("vocab_size", len(tokens.data) if tokens is not None else None)
    hidden = int(meta("embedding_length"))
    heads = int(meta("attention.head_count"))
    names = {t.name for t in reader.tensors}
    hf = {
        "model_type": ARCH_MODEL_TYPE[arch],
        "vocab_size": int(vocab),
        "hidden_size": hidden,
        "intermediate_size": int(meta("feed_forward_length")),
        "num_hidden_layers": int(meta("block_count")),
        "num_attention_heads": heads,
        "num_key_value_heads": int(meta("attention.head_count_kv", heads)),
        "rms_norm_eps": float(meta("attention.layer_norm_rms_epsilon")),
        "max_position_embeddings": int(meta("context_length", 8192)),
        "tie_word_embeddings": "output.weight" not in names,
        "bos_token_id": field(reader, "tokenizer.ggml.bos_token_id"),
        "eos_token_id": field(reader, "tokenizer.ggml.eos_token_id"),
        "pad_token_id": field(reader, "tokenizer.ggml.padding_token_id"),
    }
    head_dim = meta("attention.key_length", meta("rope.dimension_count", hidden // heads))
    hf["head_dim"] = int(head_dim)
    theta = float(meta("rope.freq_base", 10_000.0))
    scaling = field(reader, f"{arch}.rope.scaling.type")
    if "rope_freqs.weight" in names:
        raise ZettError(
            f"{path}: Llama-3.1-style rope_freqs tensors are not supported from GGUF; import the HF checkpoint instead"
        )
    if arch == "gemma3":
        # llama.cpp uses 1/sqrt(head_dim) except for the 62-layer 27B model (hidden / heads).
        scalar = hidden // heads if hf["num_hidden_layers"] == 62 else hf["head_dim"]
        global_rope = {"rope_type": "default", "rope_theta": theta}
        if scaling == "linear":
            global_rope = {"rope_type": "linear", "rope_theta": theta, "factor": float(meta("rope.scaling.factor"))}
        hf.update(
            query_pre_attn_scalar=scalar,
            sliding_window=int(meta("attention.sliding_window")),
            sliding_window_pattern=6,
            hidden_activation="gelu_pytorch_tanh",
            rope_parameters={
                "full_attention": global_rope,
                # llama.cpp hard-codes the local base of Gemma 3's sliding layers.
                "sliding_attention": {"rope_type": "default", "rope_theta": 10_000.0},
            },
        )
    else:
        rope: dict = {"rope_type": "default", "rope_theta": theta}
        if scaling == "linear":
            rope = {"rope_type": "linear", "rope_theta": theta, "factor": float(meta("rope.scaling.factor"))}
        elif scaling not in (None, "none"):
            raise ZettError(f"{path}: rope scaling {scaling!r} in GGUF is not supported")
        hf.update(hidden_act="silu", rope_parameters=rope)
    return hf


def unpermute_qk(w_OxI: np.ndarray, n_heads: int) -> np.ndarray:
    """Invert llama.cpp's Q/K row permutation (adjacent-pair RoPE back to rotate-half).

    llama.cpp's converter reshapes rows to ``[heads, 2, E/2]`` and swaps the last two axes; the inverse
    reshapes to ``[heads, E/2, 2]`` and swaps back. Works for weights ``[O, I]`` and biases ``[O]``.
    """
    rows = w_OxI.shape[0]
    rest = w_OxI.shape[1:]
    return w_OxI.reshape(n_heads, rows // n_heads // 2, 2, *rest).swapaxes(1, 2).reshape(w_OxI.shape)


def _hf_tensor_name(name: str, arch: str) -> str | None:
    m = _BLOCK.match(name)
    if m:
        layer, kind, suffix = m.groups()
        if kind == "ffn_norm":
            # Llama's second norm sits before the MLP under HF's name post_attention_layernorm; Gemma has both.
            hf = "pre_feedforward_layernorm" if arch == "gemma3" else "post_attention_layernorm"
        else:
            hf = _LAYER_NAMES.get(kind)
        return None if hf is None else f"model.layers.{layer}.{hf}.{suffix}"
    base, _, suffix = name.rpartition(".")
    return f"{_TOP_NAMES[base]}.{suffix}" if base in _TOP_NAMES else None


def dequantize(tensor, path: str) -> np.ndarray:
    try:
        return np.asarray(gguf.quants.dequantize(tensor.data, tensor.tensor_type), dtype=np.float32)
    except NotImplementedError:
        raise ZettError(
            f"{path}: tensor {tensor.name} uses quantisation {tensor.tensor_type.name}, which gguf cannot dequantize"
        ) from None


def hf_tensors_from_gguf(reader: gguf.GGUFReader, hf_config: dict, path: str) -> dict[str, np.ndarray]:
    """All model tensors, dequantised to float32, fixed up and named as in an HF checkpoint."""
    arch = field(reader, "general.architecture")
    heads, kv_heads = hf_config["num_attention_heads"], hf_config["num_key_value_heads"]
    out: dict[str, np.ndarray] = {}
    for t in reader.tensors:
        name = _hf_tensor_name(t.name, arch)
        if name is None:
            raise ZettError(f"{path}: unexpected tensor {t.name!r} for GGUF architecture {arch}")
        arr = dequantize(t, path)
        if arch == "llama" and ".self_attn.q_proj." in name:
            arr = unpermute_qk(arr, heads)
        elif arch == "llama" and ".self_attn.k_proj." in name:
            arr = unpermute_qk(arr, kv_heads)
        if arch == "gemma3" and name.endswith("norm.weight"):
            arr = arr - 1.0
        out[name] = arr
    return out


def read_gguf_model(path: str | Path) -> tuple[dict, dict[str, np.ndarray], gguf.GGUFReader]:
    """(HF config dict, HF-named float32 tensors, the reader) of a GGUF model file."""
    reader = open_gguf(path)
    if not reader.tensors:
        raise ZettError(f"{path}: GGUF file holds no tensors (a vocabulary-only file?); expected a model")
    hf = hf_config_from_gguf(reader, str(path))
    return hf, hf_tensors_from_gguf(reader, hf, str(path)), reader
