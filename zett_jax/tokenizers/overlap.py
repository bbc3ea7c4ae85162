"""Overlap of two vocabularies and decomposition of target tokens into source pieces.

Both work in the byte-level normal form of `bytes_form.token_bytes`, so vocabularies of different
spelling conventions (`Ġ`, `▁`, `<0xNN>`, `##`) compare exactly.

Overlap. A target token is *shared* when some source token stands for exactly the same bytes. Where the
source has several ids for the same bytes (SentencePiece vocabularies hold both `▁` and `<0x20>`), the
id the source tokenizer itself emits for that text wins, else the lowest id. Special tokens (no bytes)
are matched by role: the target's bos/eos/pad/unk map to the source's token of the same role.

Decomposition (FVT, Gee et al. 2022, §3: "tokenize the new token with the old tokenizer"). Each target
token's bytes are tokenized by the SOURCE tokenizer into source pieces, returned as a padded int matrix
``pieces_VxS`` with ``mask_VxS``. How bytes become source pieces:
- The bytes are split into maximal valid UTF-8 runs and runs of bytes that are not valid UTF-8 on their
  own (byte-level BPE vocabularies hold tokens such as b"\\xe4\\xb8", half a CJK character).
- Valid runs are decoded and tokenized with the source's ``encode_batch`` (one batched call over all
  target tokens, no special tokens added).
- Invalid runs: for a byte-level source (GPT-2 byte alphabet), the run is spelled in the byte alphabet
  and handed to the source's BPE model directly (``model.tokenize``: merges without pre-tokenization,
  the "raw-byte path"), which expresses any bytes exactly. For other sources each byte becomes the
  source's single-byte token (SentencePiece `<0xNN>` byte fallback) if it has one, else its unk token.
- ``exact_V`` records whether the pieces' bytes concatenate to exactly the target token's bytes. They do
  not where the source cannot express the bytes (no byte fallback: unk pieces), where its normaliser
  rewrites text, or where it adds a dummy-prefix space (Llama-2 style SentencePiece). Such tokens keep
  their (approximate) pieces; `decompose` logs how many there are.
- Target special tokens without text get no pieces (``special_V``); methods give them the row of the
  source token with the same role (via the overlap) or a documented fallback.

Shape letters: V target vocabulary, S pieces per token (padded).
"""

from __future__ import annotations

import dataclasses
import logging
import re

import numpy as np

from zett_jax.tokenizers.bytes_form import _decoder_kinds, bytes_to_unicode, special_roles, token_bytes
from zett_jax.tokenizers.core import LoadedTokenizer

log = logging.getLogger(__name__)

_INVALID_RUN = re.compile("([\udc80-\udcff]+)")  # surrogateescape'd bytes that are not valid UTF-8


@dataclasses.dataclass(frozen=True)
class VocabOverlap:
    """Which target tokens the source already has.

    ``source_of_target_V[t]`` is the source id standing for target token t (same bytes, or the same
    special role), -1 for a new token. ``role_pairs`` lists (role, target id, source id) for specials.
    """

    source_of_target_V: np.ndarray
    role_pairs: tuple[tuple[str, int, int], ...]

    @property
    def shared_V(self) -> np.ndarray:
        return self.source_of_target_V >= 0

    @property
    def shared_target_ids(self) -> np.ndarray:
        return np.flatnonzero(self.shared_V).astype(np.int32)

    @property
    def shared_source_ids(self) -> np.ndarray:
        return self.source_of_target_V[self.shared_V].astype(np.int32)

    @property
    def new_target_ids(self) -> np.ndarray:
        return np.flatnonzero(~self.shared_V).astype(np.int32)

    @property
    def num_shared(self) -> int:
        return int(self.shared_V.sum())

    def anchors(self) -> tuple[np.ndarray, np.ndarray]:
        """(target ids, source ids) of the tokens shared by bytes, i.e. without the role-matched specials."""
        role_targets = np.array([t for _, t, _ in self.role_pairs], dtype=np.int64)
        keep_V = self.shared_V.copy()
        keep_V[role_targets] = False
        target_ids = np.flatnonzero(keep_V).astype(np.int32)
        return target_ids, self.source_of_target_V[target_ids].astype(np.int32)


@dataclasses.dataclass(frozen=True)
class Decomposition:
    """Each target token as a sequence of source pieces (see the module docstring)."""

    pieces_VxS: np.ndarray  # int32, 0 where masked
    mask_VxS: np.ndarray  # bool
    exact_V: np.ndarray  # bool: the pieces' bytes equal the token's bytes
    special_V: np.ndarray  # bool: a target special token (no text, no pieces)

    @property
    def lengths_V(self) -> np.ndarray:
        return self.mask_VxS.sum(axis=1)

    @property
    def shared_V(self) -> np.ndarray:
        """The target token is one source token with the same bytes (that token is ``pieces_VxS[:, 0]``)."""
        return (self.lengths_V == 1) & self.exact_V & ~self.special_V


def _is_byte_level(lt: LoadedTokenizer) -> bool:
    return "ByteLevel" in _decoder_kinds(lt)


def _bytes_index(lt: LoadedTokenizer, forms: list[bytes | None]) -> dict[bytes, int]:
    """bytes -> the source id to use for them (the id the tokenizer emits, else the lowest)."""
    index: dict[bytes, int] = {}
    duplicates: dict[bytes, list[int]] = {}
    for i, b in enumerate(forms):
        if b is None:
            continue
        if b in index:
            duplicates.setdefault(b, [index[b]]).append(i)
        else:
            index[b] = i
    if duplicates:
        keys = [b for b in duplicates if _valid_utf8(b)]
        encoded = lt.encode_batch([b.decode("utf-8") for b in keys])
        for b, ids in zip(keys, encoded):
            if len(ids) == 1 and ids[0] in duplicates[b]:
                index[b] = ids[0]
    return index


def _valid_utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def vocab_overlap(source: LoadedTokenizer, target: LoadedTokenizer) -> VocabOverlap:
    """Shared tokens: target id -> source id by exact bytes, and special tokens by role."""
    source_forms = token_bytes(source)
    target_forms = token_bytes(target)
    index = _bytes_index(source, source_forms)
    source_of_target_V = np.full(target.vocab_size, -1, dtype=np.int32)
    for t, b in enumerate(target_forms[: target.vocab_size]):
        if b is not None:
            source_of_target_V[t] = index.get(b, -1)
    source_roles = special_roles(source)
    role_pairs = []
    for role, t in special_roles(target).items():
        if role in source_roles and target_forms[t] is None:
            source_of_target_V[t] = source_roles[role]
            role_pairs.append((role, t, source_roles[role]))
    return VocabOverlap(source_of_target_V, tuple(role_pairs))


def _raw_pieces(source: LoadedTokenizer, raw: bytes, byte_ids: dict[int, int], byte_level: bool) -> list[int]:
    """Source pieces for bytes that are not valid UTF-8 on their own (see the module docstring)."""
    if byte_level:
        alphabet = bytes_to_unicode()
        return [tok.id for tok in source.tokenizer.model.tokenize("".join(alphabet[x] for x in raw))]
    out = []
    for x in raw:
        piece = byte_ids.get(x, source.unk_id)
        if piece is not None:
            out.append(piece)
    return out


def decompose(source: LoadedTokenizer, target: LoadedTokenizer) -> Decomposition:
    """Every target token tokenized by the source tokenizer: ``pieces_VxS``, ``mask_VxS`` and flags."""
    V = target.vocab_size
    target_forms = token_bytes(target)[:V]
    source_forms = token_bytes(source)
    byte_level = _is_byte_level(source)
    byte_ids = {b[0]: i for b, i in _bytes_index(source, source_forms).items() if len(b) == 1}

    # Segments in token order: (owner token, text to encode or None, raw bytes or None).
    owners: list[int] = []
    texts: list[str] = []
    text_slot: list[int] = []  # index into `texts`, or -1 for a raw segment
    raws: dict[int, list[int]] = {}
    for t, b in enumerate(target_forms):
        if not b:
            continue
        s = b.decode("utf-8", errors="surrogateescape")
        parts = [s] if s.isascii() else [p for p in _INVALID_RUN.split(s) if p]
        for p in parts:
            owners.append(t)
            if "\udc80" <= p[0] <= "\udcff":
                text_slot.append(-1)
                raws[len(owners) - 1] = _raw_pieces(
                    source, p.encode("utf-8", errors="surrogateescape"), byte_ids, byte_level
                )
            else:
                text_slot.append(len(texts))
                texts.append(p)
    encoded = source.encode_batch(texts) if texts else []
    segment_ids = [encoded[slot] if slot >= 0 else raws[n] for n, slot in enumerate(text_slot)]

    seg_len = np.fromiter((len(x) for x in segment_ids), dtype=np.int64, count=len(segment_ids))
    lengths_V = np.zeros(V, dtype=np.int64)
    np.add.at(lengths_V, np.asarray(owners, dtype=np.int64), seg_len)
    S = max(int(lengths_V.max(initial=0)), 1)
    flat = np.fromiter((i for x in segment_ids for i in x), dtype=np.int32, count=int(seg_len.sum()))
    row = np.repeat(np.arange(V), lengths_V)
    starts_V = np.cumsum(lengths_V) - lengths_V
    col = np.arange(flat.size) - starts_V[row]
    pieces_VxS = np.zeros((V, S), dtype=np.int32)
    mask_VxS = np.zeros((V, S), dtype=bool)
    pieces_VxS[row, col] = flat
    mask_VxS[row, col] = True

    special_V = np.array([b is None for b in target_forms], dtype=bool)
    pieces_of = np.split(flat, np.cumsum(lengths_V)[:-1])
    exact_V = np.array(
        [
            b is not None
            and all(source_forms[i] is not None for i in p)
            and b"".join(source_forms[i] for i in p) == b
            for b, p in zip(target_forms, pieces_of)
        ],
        dtype=bool,
    )
    inexact = int((~exact_V & ~special_V).sum())
    if inexact:
        examples = [target_forms[t] for t in np.flatnonzero(~exact_V & ~special_V)[:3]]
        log.info(
            "decompose: %d of %d target tokens have no exact spelling in source pieces (e.g. %s); "
            "their pieces are approximate",
            inexact, V, examples,
        )
    return Decomposition(pieces_VxS, mask_VxS, exact_V, special_V)
