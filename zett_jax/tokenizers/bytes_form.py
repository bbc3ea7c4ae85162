"""The byte-level normal form of a vocabulary: the exact bytes each token stands for.

Tokenizers spell their tokens in different alphabets: byte-level BPE (GPT-2, Llama-3, Qwen, SmolLM2)
writes each byte as one printable character (`Ġ` is the space byte); SentencePiece writes spaces as `▁`
and unknown characters as `<0xNN>` byte pieces; WordPiece marks continuations with `##` and drops the
space in front of words. Comparing vocabularies across tokenizers (overlap, decomposition, bits per
byte) needs one spelling; this module maps every id to its bytes.

Conventions:
- SentencePiece `▁` is the space byte, also the dummy prefix that a decoder strips at the start of a
  text: "▁the" is b" the" everywhere.
- WordPiece: a word-initial piece "the" is b" the" (BERT drops the whitespace before words, so the space
  is where a word boundary was); a continuation "##ing" is b"ing".
- Added tokens that are not special (llama.cpp's user-defined pieces, e.g. Gemma-3's runs of spaces or
  DeepSeek's literal "ü") stand for their literal text, because that is what they match in the input,
  even where the tokenizer's decoder would render them differently.
- Special tokens (BOS, EOS, control tokens) stand for no text: None. `special_roles` names the roles.
"""

from __future__ import annotations

import functools
import re

from zett_jax.tokenizers.core import LoadedTokenizer, pipeline_steps

_BYTE_PIECE = re.compile(r"<0x([0-9A-Fa-f]{2})>")


@functools.cache
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character map: printable Latin-1 bytes stand for themselves, the rest
    (controls, space, 0x7F-0xA0, 0xAD) take the code points from 256 upwards in byte order."""
    keep = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]
    out, extra = {}, 0
    for b in range(256):
        if b in keep:
            out[b] = chr(b)
        else:
            out[b] = chr(256 + extra)
            extra += 1
    return out


@functools.cache
def unicode_to_bytes() -> dict[str, int]:
    return {c: b for b, c in bytes_to_unicode().items()}


def _decoder_kinds(lt: LoadedTokenizer) -> set[str]:
    """The step types of the tokenizer's decoder."""
    return {step["type"] for step in pipeline_steps(lt.tokenizer.decoder)}


def token_texts(lt: LoadedTokenizer) -> list[str | None]:
    """Token string of every id 0..vocab_size-1 (None for ids without a token)."""
    vocab = lt.tokenizer.get_vocab(with_added_tokens=True)
    out: list[str | None] = [None] * max(lt.vocab_size, max(vocab.values(), default=-1) + 1)
    for text, i in vocab.items():
        out[i] = text
    return out


def token_bytes(lt: LoadedTokenizer) -> list[bytes | None]:
    """Bytes of every token id (index = id); None for special tokens and unused ids. See module doc."""
    kinds = _decoder_kinds(lt)
    model_kind = type(lt.tokenizer.model).__name__
    added = lt.tokenizer.get_added_tokens_decoder()
    texts = token_texts(lt)

    if "ByteLevel" in kinds:
        inv = unicode_to_bytes()

        def piece(t: str) -> bytes:
            # characters outside the byte alphabet do not occur in byte-level pieces; keep them as UTF-8
            return b"".join(bytes([inv[c]]) if c in inv else c.encode("utf-8") for c in t)
    elif model_kind == "WordPiece":
        prefix = next((step.get("prefix", "##") for step in pipeline_steps(lt.tokenizer.decoder)
                       if step["type"] == "WordPiece"), "##")

        def piece(t: str) -> bytes:
            return t[len(prefix):].encode("utf-8") if t.startswith(prefix) else b" " + t.encode("utf-8")
    else:  # SentencePiece spelling (BPE with ▁ and byte fallback, Unigram with Metaspace)
        byte_fallback = "ByteFallback" in kinds or getattr(lt.tokenizer.model, "byte_fallback", False)

        def piece(t: str) -> bytes:
            if byte_fallback:
                m = _BYTE_PIECE.fullmatch(t)
                if m:
                    return bytes([int(m.group(1), 16)])
            return t.replace("▁", " ").encode("utf-8")

    out: list[bytes | None] = []
    for i, t in enumerate(texts):
        tok = added.get(i)
        if t is None or (tok is not None and tok.special):
            out.append(None)
        elif tok is not None:
            out.append(tok.content.encode("utf-8"))
        else:
            out.append(piece(t))
    return out


def special_roles(lt: LoadedTokenizer) -> dict[str, int]:
    """{"bos": id, "eos": id, "pad": id, "unk": id} for the roles this tokenizer has."""
    roles = {"bos": lt.bos_id, "eos": lt.eos_id, "pad": lt.pad_id, "unk": lt.unk_id}
    return {k: v for k, v in roles.items() if v is not None}


def special_ids(lt: LoadedTokenizer) -> list[int]:
    """Ids of all special added tokens (the ids `token_bytes` maps to None, besides unused ids)."""
    return sorted(i for i, t in lt.tokenizer.get_added_tokens_decoder().items() if t.special)
