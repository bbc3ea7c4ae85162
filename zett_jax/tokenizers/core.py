"""A tokenizer together with the special-token facts the rest of zett_jax needs.

The `tokenizers` library object does the work; this wrapper only records which ids play the
bos/eos/pad/unk roles (they are not reliably recoverable from a tokenizer.json alone) and knows how to
write a Hugging Face tokenizer directory that `transformers.AutoTokenizer` loads.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import tokenizers

from zett_jax.errors import ZettError


@dataclasses.dataclass(frozen=True)
class LoadedTokenizer:
    tokenizer: tokenizers.Tokenizer
    bos_id: int | None = None
    eos_id: int | None = None
    pad_id: int | None = None
    unk_id: int | None = None
    add_bos: bool = False  # whether the original adds BOS by default (HF add_bos_token)
    name: str = ""
    hf_class: str | None = None  # the tokenizer_class of the original tokenizer_config.json, if it had one

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size(with_added_tokens=True)

    def prefix_id(self) -> int:
        """The token every bits-per-byte window starts with: BOS if there is one, else EOS (ROADMAP.md)."""
        if self.bos_id is not None:
            return self.bos_id
        if self.eos_id is not None:
            return self.eos_id
        raise ZettError(f"tokenizer {self.name or '<unnamed>'} has neither a BOS nor an EOS token")

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text, without special tokens."""
        return [e.ids for e in self.tokenizer.encode_batch(texts, add_special_tokens=False)]

    def token(self, token_id: int | None) -> str | None:
        return None if token_id is None else self.tokenizer.id_to_token(token_id)

    def save_hf(self, out_dir: str | os.PathLike) -> None:
        """Write tokenizer.json, tokenizer_config.json and special_tokens_map.json into ``out_dir``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save(str(out / "tokenizer.json"))
        roles = {
            "bos_token": self.token(self.bos_id),
            "eos_token": self.token(self.eos_id),
            "pad_token": self.token(self.pad_id),
            "unk_token": self.token(self.unk_id),
        }
        roles = {k: v for k, v in roles.items() if v is not None}
        config = {
            "tokenizer_class": self.hf_class or infer_hf_class(self.tokenizer),
            "add_bos_token": self.add_bos,
            "add_eos_token": False,
            "clean_up_tokenization_spaces": False,
            "model_max_length": 1_000_000_000,
            **roles,
        }
        (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False))
        (out / "special_tokens_map.json").write_text(json.dumps(roles, indent=2, ensure_ascii=False))


def infer_hf_class(tok: tokenizers.Tokenizer) -> str:
    """The ``tokenizer_class`` to write for a tokenizer that came without one (GGUF, tiktoken, bare json).

    The class matters beyond transformers: tools key behaviour on it (``mergekit-tokensurgeon`` strips the
    word-start marker ``▁`` only for SentencePiece-family classes and assumes GPT-2's ``Ġ`` otherwise, so
    a Gemma tokenizer under the generic class matches almost none of its words). But a specific class is
    only written where transformers then reproduces the tokenizer.json exactly: in transformers 5 several
    classes rebuild the pre-tokenizer or normalizer from their own defaults (``GPT2Tokenizer`` drops
    Llama-3's split regex, ``LlamaTokenizer`` adds a prefix space to Gemma's), so byte-level BPE and
    Llama-style SentencePiece keep the generic class, which loads tokenizer.json verbatim.
    ``tests/test_tokenizer_hf_class.py`` checks every tokenizer asset under transformers.

    - WordPiece with BERT normalisation -> ``BertTokenizer``;
    - Gemma-style SentencePiece BPE (spaces replaced by ``▁`` with no dummy prefix, byte fallback) ->
      ``GemmaTokenizer``;
    - anything else -> ``PreTrainedTokenizerFast``.
    """
    model = type(tok.model).__name__
    normalizers = pipeline_steps(tok.normalizer)
    decoders = {step["type"] for step in pipeline_steps(tok.decoder)}
    if model == "WordPiece" and [n["type"] for n in normalizers] == ["BertNormalizer"]:
        return "BertTokenizer"
    if (model == "BPE" and [n["type"] for n in normalizers] == ["Replace"]
            and normalizers[0].get("content") == "\u2581" and "ByteFallback" in decoders):
        return "GemmaTokenizer"
    return "PreTrainedTokenizerFast"


def pipeline_steps(component) -> list[dict]:
    """The steps of a tokenizers normalizer, pre-tokenizer or decoder as tokenizer.json dicts, in order,
    Sequences flattened; [] for none. Reads the component's own JSON, not the vocabulary-sized file."""
    if component is None:
        return []

    def flatten(step: dict) -> list[dict]:
        if step.get("type") != "Sequence":
            return [step]
        inner = next((v for v in step.values() if isinstance(v, list)), [])
        return [leaf for s in inner for leaf in flatten(s)]

    return flatten(json.loads(component.__getstate__()))
