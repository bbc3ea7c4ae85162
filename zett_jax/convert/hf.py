"""Hugging Face checkpoints in and out: ``config.json`` + safetensors (single or sharded), no torch.

The name map is declarative: zett_jax modules mirror HF module names and keep HF weight layouts, so a
parameter at path ``layers/3/self_attn/q_proj/weight`` is the HF tensor ``model.layers.3.self_attn.q_proj.weight``.
The embedding tables live outside the module (see :class:`~zett_jax.models.decoder.Embeddings`) and map
to ``model.embed_tokens.weight`` and, when untied, ``lm_head.weight``. Format-specific fix-ups (GGUF's
permuted Q/K, Gemma's norm offset) happen in the GGUF reader, before tensors get HF names.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import safetensors
import safetensors.numpy
from flax import nnx

from zett_jax.errors import ZettError
from zett_jax.fileio import atomic_directory, looks_like_hub_id
from zett_jax.models.config import DecoderConfig
from zett_jax.models.decoder import Decoder, Embeddings, abstract_model

EMBED = "model.embed_tokens.weight"
LM_HEAD = "lm_head.weight"
INDEX = "model.safetensors.index.json"


def hf_name(path: tuple) -> str:
    return "model." + ".".join(str(p) for p in path)


# ---------------------------------------------------------------------------------------------- reading
def read_config(model_dir: Path) -> dict:
    path = model_dir / "config.json"
    if not path.is_file():
        raise ZettError(f"{model_dir}: no config.json; expected a Hugging Face model directory")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ZettError(f"{path}: not valid JSON ({e})") from None


def read_safetensors(model_dir: Path) -> dict[str, np.ndarray]:
    """All tensors of a model directory as numpy arrays (``model.safetensors`` or a sharded index)."""
    index = model_dir / INDEX
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise ZettError(f"{index}: expected a JSON object with a 'weight_map' ({e})") from None
        files = sorted(set(weight_map.values()))
    elif (model_dir / "model.safetensors").is_file():
        files = ["model.safetensors"]
    else:
        raise ZettError(f"{model_dir}: no model.safetensors or {INDEX}; expected safetensors weights")
    tensors: dict[str, np.ndarray] = {}
    for name in files:
        path = model_dir / name
        if not path.is_file():
            raise ZettError(f"{path}: listed in {INDEX} but missing")
        try:
            tensors.update(safetensors.numpy.load_file(str(path)))
        except (safetensors.SafetensorError, OSError, ValueError) as e:
            raise ZettError(f"{path}: not a valid safetensors file ({e})") from None
    return tensors


def model_from_tensors(
    config: DecoderConfig,
    tensors: dict[str, np.ndarray],
    *,
    source: str,
    dtype=jnp.float32,
    param_dtype=jnp.float32,
) -> tuple[Decoder, Embeddings]:
    """Build a :class:`Decoder` and its :class:`Embeddings` from HF-named tensors, checking every name and shape."""
    graphdef, abstract_state = nnx.split(abstract_model(config, dtype=dtype, param_dtype=param_dtype))
    flat = nnx.to_flat_state(abstract_state)
    expected = {hf_name(path) for path, _ in flat} | {EMBED}
    if not config.tie_word_embeddings:
        expected.add(LM_HEAD)
    missing = sorted(expected - tensors.keys())
    if missing:
        raise ZettError(f"{source}: missing tensors {missing[:4]}{' ...' if len(missing) > 4 else ''}")
    # Ignored on purpose: rotary caches some old checkpoints store, and a redundant tied lm_head.
    unexpected = sorted(
        k for k in tensors.keys() - expected if not k.endswith("rotary_emb.inv_freq") and k != LM_HEAD
    )
    if unexpected:
        raise ZettError(f"{source}: unexpected tensors {unexpected[:4]} for model_type {config.model_type}")

    def take(name: str, shape: tuple) -> jax.Array:
        arr = tensors[name]
        if tuple(arr.shape) != tuple(shape):
            raise ZettError(f"{source}: tensor {name} has shape {tuple(arr.shape)}, expected {tuple(shape)}")
        return jnp.asarray(arr, dtype=param_dtype)

    leaves = [(path, var.replace(take(hf_name(path), var.shape))) for path, var in flat]
    model = nnx.merge(graphdef, nnx.from_flat_state(leaves))
    V, D = config.vocab_size, config.hidden_size
    table_in = take(EMBED, (V, D))
    table_out = None if config.tie_word_embeddings else take(LM_HEAD, (V, D))
    return model, Embeddings(table_in, table_out)


def model_to_tensors(model: Decoder, embeddings: Embeddings, dtype=None) -> dict[str, np.ndarray]:
    """HF-named numpy tensors of a model and its tables (``dtype`` casts, e.g. to ``jnp.bfloat16``)."""

    def host(x) -> np.ndarray:
        x = jax.device_get(x)
        return np.asarray(x if dtype is None else x.astype(dtype))

    out = {hf_name(path): host(var[...]) for path, var in nnx.to_flat_state(nnx.state(model, nnx.Param))}
    out[EMBED] = host(embeddings.input_VxD)
    if embeddings.output_VxD is not None:
        out[LM_HEAD] = host(embeddings.output_VxD)
    return out


# ---------------------------------------------------------------------------------------------- writing
def write_tensors(out_dir: Path, tensors: dict[str, np.ndarray], max_shard_bytes: int = 5 * 2**30) -> None:
    """Write safetensors, sharded with an index once the total passes ``max_shard_bytes``."""
    shards: list[dict[str, np.ndarray]] = [{}]
    size = 0
    for name in sorted(tensors):
        arr = np.ascontiguousarray(tensors[name])
        if shards[-1] and size + arr.nbytes > max_shard_bytes:
            shards.append({})
            size = 0
        shards[-1][name] = arr
        size += arr.nbytes
    meta = {"format": "pt"}  # transformers expects this tag on safetensors it loads into torch
    if len(shards) == 1:
        safetensors.numpy.save_file(shards[0], str(out_dir / "model.safetensors"), metadata=meta)
        return
    weight_map = {}
    for i, shard in enumerate(shards):
        fname = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        safetensors.numpy.save_file(shard, str(out_dir / fname), metadata=meta)
        weight_map.update({name: fname for name in shard})
    total = sum(a.nbytes for a in tensors.values())
    (out_dir / INDEX).write_text(json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))


def check_vocab(tokenizer, embeddings: Embeddings, source: str) -> None:
    """Every token id the tokenizer can emit must have a row; extra (padding) rows are fine."""
    if tokenizer.vocab_size > embeddings.vocab_size:
        raise ZettError(
            f"{source}: the tokenizer has {tokenizer.vocab_size} tokens but the embedding table only "
            f"{embeddings.vocab_size} rows; expected at least one row per token"
        )
    if embeddings.output_VxD is not None and embeddings.output_VxD.shape != embeddings.input_VxD.shape:
        raise ZettError(
            f"{source}: input embeddings {embeddings.input_VxD.shape} and output embeddings "
            f"{embeddings.output_VxD.shape} differ in shape"
        )


def save_hf(
    out_dir: str | os.PathLike,
    config: DecoderConfig,
    model: Decoder,
    embeddings: Embeddings,
    tokenizer=None,
    *,
    dtype=None,
    overwrite: bool = False,
) -> Path:
    """Write a directory that ``transformers.AutoModelForCausalLM`` and ``AutoTokenizer`` load."""
    if embeddings.vocab_size != config.vocab_size:
        config = config.replace(vocab_size=embeddings.vocab_size)
    config = config.replace(tie_word_embeddings=embeddings.output_VxD is None)
    if tokenizer is not None:
        check_vocab(tokenizer, embeddings, str(out_dir))
    hf = config.to_hf()
    if dtype is not None:
        hf["dtype"] = jnp.dtype(dtype).name
    if tokenizer is not None:
        for role in ("bos", "eos", "pad"):
            tid = getattr(tokenizer, f"{role}_id")
            if tid is not None:
                hf[f"{role}_token_id"] = tid
    with atomic_directory(out_dir, overwrite=overwrite) as tmp:
        write_tensors(tmp, model_to_tensors(model, embeddings, dtype))
        if tokenizer is not None:
            tokenizer.save_hf(tmp)
        # config.json last: its presence marks a complete directory for anyone listing files early.
        (tmp / "config.json").write_text(json.dumps(hf, indent=2, sort_keys=True))
    return Path(out_dir)


# ---------------------------------------------------------------------------------------------- hub ids
def resolve_hf_dir(spec: str) -> Path:
    """A local HF directory, or a hub id ``org/name`` downloaded through huggingface_hub."""
    path = Path(spec).expanduser()
    if path.is_dir():
        return path
    if looks_like_hub_id(spec):
        try:
            from huggingface_hub import snapshot_download

            return Path(
                snapshot_download(
                    spec, allow_patterns=["*.json", "*.safetensors", "tokenizer*", "*.model"]
                )
            )
        except Exception as e:  # noqa: BLE001 — any hub failure is one user-facing line
            raise ZettError(f"{spec}: could not download from the Hugging Face hub ({type(e).__name__}: {e})") from None
    raise ZettError(f"{spec}: not a directory, a .gguf file, an asset name or a hub id")
