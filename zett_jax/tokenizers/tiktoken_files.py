"""Byte-level BPE tokenizers from tiktoken rank files (`*.tiktoken`), without the `tiktoken` package.

A rank file lists every token's bytes (base64) with its rank; the rank is both the token id and the
merge priority. BPE merges are not stored, but they are implied: a token of rank r is produced by
running BPE on its own bytes with only the tokens of rank < r, which ends in exactly two parts; those
two parts are its merge, and merges are ordered by r (the same reconstruction HF's tiktoken converter
does). GPT-2's `gpt2.tiktoken` gives the same ids as GPT-2's original tokenizer.
"""

from __future__ import annotations

import base64
from pathlib import Path

import tokenizers
from tokenizers import AddedToken, Regex, decoders, models, pre_tokenizers

from zett_jax.errors import ZettError
from zett_jax.tokenizers.bytes_form import bytes_to_unicode
from zett_jax.tokenizers.core import LoadedTokenizer

# The split regex of GPT-2 and Whisper (tiktoken's "gpt2" / Whisper's encodings).
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def read_ranks(path: str | Path) -> tuple[dict[bytes, int], int]:
    """(token bytes -> rank, number of rank slots). Entries with empty bytes (Whisper's multilingual file
    has one, rank 50256) are not tokens and are left out, but their rank still counts as a slot."""
    ranks: dict[bytes, int] = {}
    n_slots = 0
    try:
        for n, line in enumerate(Path(path).read_text(encoding="ascii").splitlines(), 1):
            if not line.strip():
                continue
            b64, rank = line.split()
            token = base64.b64decode(b64)  # lenient like tiktoken: Whisper's bogus "=" entry decodes to b""
            n_slots = max(n_slots, int(rank) + 1)
            if token:
                ranks[token] = int(rank)
    except (ValueError, UnicodeDecodeError) as e:
        raise ZettError(f"{path}: not a tiktoken rank file (expected '<base64> <rank>' per line): {e}") from None
    if not ranks:
        raise ZettError(f"{path}: empty tiktoken rank file")
    return ranks, n_slots


def _merge_parts(ranks: dict[bytes, int], token: bytes, max_rank: int) -> list[bytes]:
    """BPE on ``token`` using only tokens ranked below ``max_rank``: lowest-rank adjacent pair first."""
    parts = [token[i : i + 1] for i in range(len(token))]
    while len(parts) > 1:
        best, best_rank = -1, max_rank
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1])
            if r is not None and r < best_rank:
                best, best_rank = i, r
        if best < 0:
            break
        parts[best : best + 2] = [parts[best] + parts[best + 1]]
    return parts


def merges_from_ranks(ranks: dict[bytes, int]) -> list[tuple[bytes, bytes]]:
    """The merge that creates each multi-byte token, in rank order."""
    merges = []
    for token, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(token) < 2:
            continue
        parts = _merge_parts(ranks, token, rank)
        if len(parts) != 2:
            raise ZettError(f"tiktoken token {token!r} (rank {rank}) is not the merge of two lower-ranked tokens")
        merges.append((parts[0], parts[1]))
    return merges


def tokenizer_from_tiktoken(
    path: str | Path,
    pattern: str = GPT2_PATTERN,
    special_tokens: tuple[str, ...] = ("<|endoftext|>",),
) -> LoadedTokenizer:
    """A byte-level BPE `LoadedTokenizer` from a tiktoken rank file.

    ``special_tokens`` get the ids after the highest rank, in order (tiktoken's `n_vocab` convention:
    GPT-2's <|endoftext|> is 50256, Whisper multilingual's 50257). The first one plays BOS and EOS.
    A rank left unused by an empty entry is filled with a special placeholder so that ids stay dense.
    """
    ranks, n_ranks = read_ranks(path)
    byte_map = bytes_to_unicode()

    def as_text(b: bytes) -> str:
        return "".join(byte_map[x] for x in b)

    vocab = {as_text(t): r for t, r in ranks.items()}
    merges = [(as_text(a), as_text(b)) for a, b in merges_from_ranks(ranks)]
    tok = tokenizers.Tokenizer(models.BPE(vocab, merges))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(pattern), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    holes = sorted(set(range(n_ranks)) - set(ranks.values()))
    # add_special_tokens assigns ids in order after the current vocabulary, so the holes go first
    for hole in holes:
        if hole != len(vocab):
            raise ZettError(f"{path}: ranks are not dense (rank {hole} missing inside the table)")
        tok.add_special_tokens([AddedToken(f"<|tiktoken_unused_{hole}|>", special=True, normalized=False)])
        vocab[f"<|tiktoken_unused_{hole}|>"] = hole
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in special_tokens])
    eot = tok.token_to_id(special_tokens[0]) if special_tokens else None
    return LoadedTokenizer(tokenizer=tok, bos_id=eot, eos_id=eot, pad_id=None, unk_id=None, add_bos=False,
                           name=Path(path).name)
