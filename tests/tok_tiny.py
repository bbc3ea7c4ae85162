"""Tiny tokenizers built in the tests with the `tokenizers` library (no assets, well under a second)."""

from __future__ import annotations

import tokenizers
from tokenizers import decoders, models, normalizers, pre_tokenizers, trainers

from zett_jax.tokenizers.core import LoadedTokenizer

SOURCE_TEXT = [
    "the cat sat on the mat. the dog sat on the log.",
    "cats and dogs are the best of friends, said the cat.",
] * 20
TARGET_TEXT = [
    "the theory of the thermometer is that the heat rises.",
    "a cat in the hat sat there; the other cats stared.",
    "中文 字符 and naïve café",
] * 20


def byte_level_bpe(texts: list[str], vocab_size: int) -> LoadedTokenizer:
    """A byte-level BPE (GPT-2 alphabet, all 256 bytes) trained on ``texts``, with <s> and </s>."""
    tok = tokenizers.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    return LoadedTokenizer(tok, bos_id=0, eos_id=1, name=f"bytelevel-{vocab_size}")


def sentencepiece_bpe(pieces: list[str], merges: list[tuple[str, str]]) -> LoadedTokenizer:
    """A SentencePiece-style BPE (`▁` for spaces, `<0xNN>` byte fallback) over the given pieces."""
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for p in pieces:
        vocab.setdefault(p, len(vocab))
    tok = tokenizers.Tokenizer(models.BPE(vocab, merges, unk_token="<unk>", byte_fallback=True))
    tok.normalizer = normalizers.Replace(" ", "▁")
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    tok.add_special_tokens(["<unk>", "<s>", "</s>"])
    return LoadedTokenizer(tok, bos_id=1, eos_id=2, unk_id=0, name="sp-tiny")


def word_level(words: list[str]) -> LoadedTokenizer:
    """A word-level vocabulary without roles (shares nothing with a byte-level vocab of single bytes)."""
    tok = tokenizers.Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token=words[0]))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return LoadedTokenizer(tok, name="words")
