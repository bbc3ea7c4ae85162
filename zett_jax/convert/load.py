"""One way in for every model source: an asset name, a GGUF file, a local HF directory or a hub id."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax.numpy as jnp

from zett_jax.convert.hf import check_vocab
from zett_jax.errors import ZettError
from zett_jax.models.config import DecoderConfig
from zett_jax.models.decoder import Decoder, Embeddings
from zett_jax.tokenizers.core import LoadedTokenizer


@dataclasses.dataclass
class LoadedModel:
    config: DecoderConfig
    model: Decoder
    embeddings: Embeddings
    tokenizer: LoadedTokenizer
    source: str

    def with_embeddings(self, embeddings: Embeddings, tokenizer: LoadedTokenizer) -> "LoadedModel":
        """The same body with another tokenizer's tables: a tokenizer swap is a table swap."""
        check_vocab(tokenizer, embeddings, self.source)
        config = self.config.replace(
            vocab_size=embeddings.vocab_size, tie_word_embeddings=embeddings.output_VxD is None
        )
        return dataclasses.replace(self, config=config, embeddings=embeddings, tokenizer=tokenizer)


def resolve_model_path(spec: str) -> Path | str:
    """An asset name becomes its cached file; anything else is returned for the loaders to judge."""
    from zett_jax import assets

    if assets.is_asset(spec):
        asset = assets.ASSETS[spec]
        if asset.kind != "model":
            raise ZettError(f"{spec}: is a {asset.kind} asset, not a model")
        return assets.fetch(spec)
    return spec


def load_model(spec: str, *, dtype=jnp.float32, param_dtype=jnp.float32) -> LoadedModel:
    """Load a causal LM and its tokenizer from an asset name, a ``.gguf`` file, an HF directory or a hub id."""
    from zett_jax.convert import gguf as gguf_io
    from zett_jax.convert import hf as hf_io
    from zett_jax.tokenizers.load import load_tokenizer

    resolved = resolve_model_path(spec)
    path = Path(resolved)
    if path.is_file():
        with open(path, "rb") as f:
            magic = f.read(4)
        if path.suffix != ".gguf" and magic != b"GGUF":
            raise ZettError(f"{path}: expected a .gguf file or a Hugging Face model directory")
        from zett_jax.tokenizers.gguf_vocab import tokenizer_from_gguf

        hf, tensors, reader = gguf_io.read_gguf_model(path)
        tokenizer = tokenizer_from_gguf(reader)
        source = str(path)
    else:
        model_dir = hf_io.resolve_hf_dir(str(resolved))
        hf = hf_io.read_config(model_dir)
        tensors = hf_io.read_safetensors(model_dir)
        tokenizer = load_tokenizer(model_dir)
        source = str(model_dir)
    config = DecoderConfig.from_hf(hf, source=f"{source} (config)")
    model, embeddings = hf_io.model_from_tensors(
        config, tensors, source=source, dtype=dtype, param_dtype=param_dtype
    )
    del tensors
    check_vocab(tokenizer, embeddings, source)
    return LoadedModel(config, model, embeddings, tokenizer, source)
