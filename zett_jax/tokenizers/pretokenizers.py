"""llama.cpp's BPE pre-tokenizers as `tokenizers` pipelines.

A GGUF file names its pre-tokenizer (`tokenizer.ggml.pre`, e.g. "llama-bpe", "smollm"); the regexes
behind each name are in llama.cpp's `llama-vocab.cpp`, extracted once by
`tools/extract_pretokenizer_regexes.py` into `pretokenizer_regexes.json` (shipped with the package).
llama.cpp applies its regexes one after another, each splitting the pieces of the previous one and
keeping the matches and the gaps; `Split(Regex(r), "isolated")` per regex in a `Sequence` is the same.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

from tokenizers import Regex, pre_tokenizers

from zett_jax.errors import ZettError

_DATA = Path(__file__).with_name("pretokenizer_regexes.json")

# Pre-tokenizer types whose llama.cpp regexes trigger hand-written C++ code rather than a regex
# (`\p{AFMoE_digits}`, the Kimi-K2 Han handler); the regex text alone does not describe them.
_CUSTOM_CODE = {"AFMOE", "KIMI_K2"}


@dataclasses.dataclass(frozen=True)
class PreTokenizerSpec:
    name: str  # the tokenizer.ggml.pre value
    pre_type: str  # llama.cpp's LLAMA_VOCAB_PRE_TYPE_* suffix
    regexes: tuple[str, ...]
    byte_encode: bool  # GPT-2 byte-to-unicode alphabet (False: raw UTF-8 pieces, SentencePiece style)
    ignore_merges: bool  # a pre-token that is itself in the vocabulary is taken whole


@functools.cache
def _table() -> dict:
    return json.loads(_DATA.read_text(encoding="ascii"))


def known_names() -> list[str]:
    return sorted(_table()["names"])


def bpe_pre_tokenizer_spec(name: str) -> PreTokenizerSpec:
    """The llama.cpp pre-tokenizer for a `tokenizer.ggml.pre` value; ZettError for unknown names."""
    table = _table()
    entry = table["names"].get(name or "default")
    if entry is None:
        raise ZettError(f"unknown GGUF pre-tokenizer '{name}' (expected one of llama.cpp's: "
                        f"{', '.join(known_names())})")
    pre_type = entry["pre_type"]
    if pre_type in _CUSTOM_CODE:
        raise ZettError(f"GGUF pre-tokenizer '{name}' relies on custom C++ code in llama.cpp, not supported")
    body = table["pre_types"][pre_type]
    return PreTokenizerSpec(name, pre_type, tuple(body["regexes"]), body["byte_encode"], entry["ignore_merges"])


def split_sequence(regexes: tuple[str, ...] | list[str]) -> list[pre_tokenizers.PreTokenizer]:
    """One isolating `Split` per regex, applied in order like llama.cpp's `unicode_regex_split`."""
    return [pre_tokenizers.Split(Regex(r), behavior="isolated", invert=False) for r in regexes]


def byte_level_pre_tokenizer(regexes: tuple[str, ...] | list[str]) -> pre_tokenizers.PreTokenizer:
    """Regex splits, then the GPT-2 byte-to-unicode mapping (which must not split again)."""
    return pre_tokenizers.Sequence(
        split_sequence(regexes) + [pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]
    )
