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
            "tokenizer_class": "PreTrainedTokenizerFast",
            "add_bos_token": self.add_bos,
            "add_eos_token": False,
            "clean_up_tokenization_spaces": False,
            "model_max_length": 1_000_000_000,
            **roles,
        }
        (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False))
        (out / "special_tokens_map.json").write_text(json.dumps(roles, indent=2, ensure_ascii=False))
