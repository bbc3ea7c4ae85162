"""A small pure-Python reader for SWORD ``zText`` Bible modules.

A zText module (as shipped by the Debian ``sword-text-*`` packages under
``usr/share/sword/modules/texts/ztext/<module>/``) stores each testament in three files:

``ot.bzs`` / ``nt.bzs``
    Block index: one 12-byte little-endian record per compressed block,
    ``uint32 offset``, ``uint32 compressed size``, ``uint32 uncompressed size`` (offsets into ``.bzz``).
``ot.bzz`` / ``nt.bzz``
    The blocks themselves, each zlib-compressed (``CompressType=ZIP``).
``ot.bzv`` / ``nt.bzv``
    Entry (verse) index: one record per versification slot, ``uint32 block``, ``uint32 offset inside the
    decompressed block``, then the entry size as ``uint16`` (10-byte records, SWORD's usual layout) or
    ``uint32`` (12-byte records, "large" modules). :func:`read_testament` works out which by checking
    that every record points inside its block.

Slots follow the module's versification: slot 0 is the module heading, slot 1 the testament
heading, then for every book a book-heading slot, and for every chapter a chapter-heading slot followed
by one slot per verse. The text is OSIS markup (``<w lemma=...>``, ``<note>``, ``<chapter sID=.../>``,
...). Rather than carrying the versification tables, :func:`chapters` finds chapter boundaries from the
``<chapter ... sID="Gen.1"/>`` milestones that osis2mod writes into each chapter-heading slot and from the
``<div type="book" sID=...>`` milestones of book headings.

The corpus granularity is one document per chapter (verses joined with single spaces): a verse is too
short to be a useful document for language-model evaluation (often a dozen words), a book is too
long and too few (66), while chapters (1189 in the KJV versification) are paragraph-to-page sized and
stay aligned across translations that share the versification (KJV and Reina-Valera 1909 both use it),
so chapter ``i`` of one corpus translates chapter ``i`` of the other.
"""

from __future__ import annotations

import html
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from zett_jax.errors import ZettError

__all__ = ["Chapter", "read_testament", "read_module", "chapters", "osis_to_text"]


def _read_blocks(bzs: bytes, path: Path) -> list[tuple[int, int, int]]:
    if len(bzs) % 12:
        raise ZettError(f"{path}: block index size {len(bzs)} is not a multiple of 12 bytes, expected a SWORD .bzs file")
    return [struct.unpack_from("<III", bzs, i) for i in range(0, len(bzs), 12)]


def _parse_entries(bzv: bytes, record: int) -> list[tuple[int, int, int]]:
    fmt = "<IIH" if record == 10 else "<III"
    return [struct.unpack_from(fmt, bzv, i) for i in range(0, len(bzv), record)]


def read_testament(directory: str | Path, testament: str) -> list[str]:
    """All entries of one testament (``"ot"`` or ``"nt"``) as raw UTF-8 markup strings, in slot order.

    Empty slots come back as ``""``. Raises :class:`ZettError` when the files are missing or inconsistent.
    """
    directory = Path(directory)
    paths = {ext: directory / f"{testament}.{ext}" for ext in ("bzs", "bzv", "bzz")}
    for p in paths.values():
        if not p.is_file():
            raise ZettError(f"{p}: missing, expected a SWORD zText module file")
    blocks = _read_blocks(paths["bzs"].read_bytes(), paths["bzs"])
    bzv = paths["bzv"].read_bytes()
    bzz = paths["bzz"].read_bytes()
    for off, csize, _ in blocks:
        if off + csize > len(bzz):
            raise ZettError(f"{paths['bzz']}: block at {off}+{csize} runs past the end ({len(bzz)} bytes)")

    decompressed: dict[int, bytes] = {}

    def block(i: int) -> bytes:
        if i not in decompressed:
            off, csize, usize = blocks[i]
            try:
                data = zlib.decompress(bzz[off : off + csize])
            except zlib.error as exc:
                raise ZettError(f"{paths['bzz']}: block {i} is not valid zlib data ({exc})") from None
            if len(data) != usize:
                raise ZettError(f"{paths['bzz']}: block {i} inflates to {len(data)} bytes, index says {usize}")
            decompressed[i] = data
        return decompressed[i]

    def plausible(entries: list[tuple[int, int, int]]) -> bool:
        for b, o, s in entries:
            if s == 0:
                continue
            if b >= len(blocks) or o + s > blocks[b][2]:
                return False
        return True

    chosen = None
    for record in (10, 12):
        if len(bzv) % record == 0:
            entries = _parse_entries(bzv, record)
            if plausible(entries):
                chosen = entries
                break
    if chosen is None:
        raise ZettError(
            f"{paths['bzv']}: {len(bzv)} bytes do not form a verse index of 10- or 12-byte records "
            "pointing inside the blocks of the .bzs file"
        )
    out = []
    for b, o, s in chosen:
        out.append("" if s == 0 else block(b)[o : o + s].decode("utf-8", errors="replace"))
    return out


def read_module(directory: str | Path) -> list[str]:
    """Entries of the whole module: Old Testament then New Testament (a testament that is absent is skipped)."""
    directory = Path(directory)
    out: list[str] = []
    found = False
    for t in ("ot", "nt"):
        if (directory / f"{t}.bzv").exists():
            out.extend(read_testament(directory, t))
            found = True
    if not found:
        raise ZettError(f"{directory}: no ot.bzv or nt.bzv, expected a SWORD zText module directory")
    return out


# Elements dropped together with their content: footnotes/cross references and their anchors.
_DROP_WITH_CONTENT = re.compile(r"<(note|reference)\b[^>]*>.*?</\1>", re.S)
_CHAPTER_START = re.compile(r"<chapter\b[^>]*\bsID=\"([^\"]+)\"[^>]*/>")
_BOOK_START = re.compile(r"<div\b(?=[^>]*\btype=\"book\")(?=[^>]*\bsID=)[^>]*/>")
_EMPTY_OR_BLOCK_TAG = re.compile(r"<[^>]*/>|</?(?:title|l|lg|p|div|lb|item|list|head)\b[^>]*>")
_TAG = re.compile(r"<[^>]+>")
_SPACE_AFTER_OPENER = re.compile(r"([(\[\u00a1\u00bf]) ")
_SPACE = re.compile(r"\s+")
_SPACE_BEFORE_PUNCT = re.compile(r" ([,.;:!?)])")


# Some modules (the Reina-Valera 1909 one) write adjacent <w> and <transChange> elements with no space
# between them. Mostly that stands for a word boundary ("que es</transChange><w>Ramat"), except for Spanish
# enclitic pronouns attached to a verb ("díjo</w><transChange>le</transChange>" is "díjole").
_ENCLITIC = "(?:lo|la|le|los|las|les|se|me|te|nos|os)"
_W_THEN_ADDED = re.compile(r"(\w*)</w>(<transChange\b[^>]*>)(?!" + _ENCLITIC + r"</transChange>)")
_W_THEN_ENCLITIC = re.compile(r"([^\s>]*)</w>(<transChange\b[^>]*>" + _ENCLITIC + r"</transChange>)")
_ADDED_THEN_W = re.compile(r"</transChange>(?=<w\b)")
_ACCENTED = re.compile(r"[áéíóúÁÉÍÓÚ]")


def _separate_adjacent_words(markup: str) -> str:
    markup = _ADDED_THEN_W.sub("</transChange> ", markup)
    markup = _W_THEN_ADDED.sub(r"\1</w> \2", markup)
    # an enclitic joins a verb form that carries a written accent (sáca+lo, díjo+le); otherwise a space
    return _W_THEN_ENCLITIC.sub(
        lambda m: m.group(0) if _ACCENTED.search(m.group(1)) else f"{m.group(1)}</w> {m.group(2)}", markup
    )


def osis_to_text(markup: str) -> str:
    """Plain text of one OSIS fragment: notes dropped, other tags removed (their text kept), entities
    decoded, paragraph marks (``¶``) removed and whitespace collapsed."""
    text = _DROP_WITH_CONTENT.sub(" ", _separate_adjacent_words(markup))
    # milestones and block-level elements separate words; inline elements (<w>, <transChange>, ...) do not
    text = _EMPTY_OR_BLOCK_TAG.sub(" ", text)
    text = _TAG.sub("", text)
    text = html.unescape(text).replace("\u00b6", " ")
    text = _SPACE.sub(" ", text).strip()
    text = _SPACE_AFTER_OPENER.sub(r"\1", text)
    return _SPACE_BEFORE_PUNCT.sub(r"\1", text)


@dataclass(frozen=True)
class Chapter:
    osis_id: str  # e.g. "Gen.1"
    text: str


def chapters(entries: list[str]) -> Iterator[Chapter]:
    """Group module entries into chapters: a chapter starts at the slot holding its ``<chapter sID>``
    milestone and ends before the next chapter or book heading. Text before the first chapter of a book
    (book titles, introductions) is left out."""
    current: str | None = None
    parts: list[str] = []

    def flush():
        if current is not None:
            text = " ".join(p for p in parts if p)
            if text:
                return Chapter(current, text)
        return None

    for entry in entries:
        if not entry:
            continue
        m = _CHAPTER_START.search(entry)
        if m is not None or _BOOK_START.search(entry):
            done = flush()
            if done is not None:
                yield done
            parts = []
            current = m.group(1) if m is not None else None
            # the heading slot itself holds only milestones; text after the chapter milestone (rare) is kept
            entry = entry[m.end() :] if m is not None else ""
        if current is not None:
            parts.append(osis_to_text(entry))
    done = flush()
    if done is not None:
        yield done
