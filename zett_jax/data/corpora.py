"""Text extraction for the real corpora registered in :mod:`zett_jax.assets`.

Every corpus ends up as a JSON-lines file, one document per line in the field ``text``; documents are
stripped, non-empty, and come in a deterministic order (so that a sha256 of the file can be pinned).

* :func:`wikitext_to_text` / :func:`wiki_dump_documents`: MediaWiki XML dump to plain prose.
* :func:`fortune_entries` / :func:`decode_fortune_bytes`: ``fortune`` cookie files (entries separated by ``%`` lines).
* :func:`python_source_documents`: the interpreter's standard library as a code corpus.
* :func:`write_jsonl` / :func:`read_jsonl`: the on-disk format.
"""

from __future__ import annotations

import bz2
import html
import json
import os
import re
import sys
import sysconfig
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import IO, Iterable, Iterator

from zett_jax.errors import ZettError

__all__ = [
    "write_jsonl",
    "read_jsonl",
    "wikitext_to_text",
    "wiki_dump_documents",
    "fortune_entries",
    "decode_fortune_bytes",
    "clean_fortune_text",
    "line_documents",
    "python_source_documents",
]


# --------------------------------------------------------------------------------------------------
# JSON lines


def write_jsonl(docs: Iterable[str], fh: IO[str]) -> tuple[int, int]:
    """Write documents as ``{"text": ...}`` lines; returns (number of documents, UTF-8 bytes of text).

    Documents are stripped; empty ones are skipped. ``ensure_ascii=False`` keeps the file readable and
    its bytes identical across platforms."""
    n = 0
    nbytes = 0
    for doc in docs:
        doc = doc.strip()
        if not doc:
            continue
        fh.write(json.dumps({"text": doc}, ensure_ascii=False) + "\n")
        n += 1
        nbytes += len(doc.encode("utf-8"))
    return n, nbytes


def read_jsonl(path: str | Path) -> Iterator[str]:
    """The ``text`` field of every line of a corpus file."""
    path = Path(path)
    with open(path, encoding="utf-8") as fh:
        for i, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)["text"]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise ZettError(f"{path}:{i}: not a JSON object with a 'text' field") from None


# --------------------------------------------------------------------------------------------------
# MediaWiki markup

_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.S)
# elements dropped together with their content
_DROP_ELEMENTS = (
    "ref", "references", "gallery", "math", "timeline", "syntaxhighlight", "source", "score", "imagemap",
    "mapframe", "chem", "ce", "hiero", "graph", "templatedata", "noinclude", "includeonly",
)
_DROP_ELEMENT_RE = re.compile(
    r"<(" + "|".join(_DROP_ELEMENTS) + r")\b[^>]*?/>|<(" + "|".join(_DROP_ELEMENTS) + r")\b[^>]*>.*?</\2\s*>",
    re.S | re.I,
)
_BR = re.compile(r"<br\s*/?>", re.I)
_HTML_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*\b[^>]*>")
_MAGIC_WORD = re.compile(r"__[A-Z]+__")
_EXTERNAL_LINK = re.compile(r"\[(?:https?:|ftp:)?//[^\s\]]+(?:\s+([^\]]*))?\]")
_BOLD_ITALIC = re.compile(r"'{2,}")
_HEADING = re.compile(r"^(=+)\s*(.*?)\s*\1\s*$")
_DROPPED_NAMESPACES = {"file", "image", "category", "media", "wikipedia", "wp", "template", "help", "portal", "special", "wikt", "wiktionary"}
_INTERLANGUAGE = re.compile(r"^[a-z]{2,3}(?:-[a-z]{2,8})?$")
# section headings whose content is lists of references/links rather than prose
_DROPPED_SECTIONS = {
    "references", "external links", "see also", "further reading", "notes", "bibliography", "sources",
    "footnotes", "citations", "notes and references", "references and notes", "works cited",
}


def _matching_end(text: str, start: int, open_tok: str, close_tok: str) -> int:
    """Index just past the ``close_tok`` that balances the ``open_tok`` at ``start``; -1 if unbalanced."""
    depth = 0
    i = start
    n = len(text)
    while i < n:
        if text.startswith(open_tok, i):
            depth += 1
            i += len(open_tok)
        elif text.startswith(close_tok, i):
            depth -= 1
            i += len(close_tok)
            if depth == 0:
                return i
        else:
            i += 1
    return -1


def _split_params(body: str) -> list[str]:
    """Split template/link content at top-level ``|`` (not inside nested ``{{}}`` or ``[[]]``)."""
    parts, depth, cur, i = [], 0, [], 0
    while i < len(body):
        two = body[i : i + 2]
        if two in ("{{", "[["):
            depth += 1
            cur.append(two)
            i += 2
            continue
        if two in ("}}", "]]"):
            depth = max(0, depth - 1)
            cur.append(two)
            i += 2
            continue
        if body[i] == "|" and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(body[i])
        i += 1
    parts.append("".join(cur))
    return parts


def _inline_template(body: str) -> str:
    """Text that an inline template contributes to prose; most templates (infoboxes, citations,
    maintenance tags, navboxes) contribute nothing."""
    params = [p.strip() for p in _split_params(body)]
    name = params[0].lower().replace("_", " ").strip()
    positional = [p for p in params[1:] if "=" not in p]
    if name in ("convert", "cvt") and len(positional) >= 2:
        # {{convert|10|km|mi}} -> "10 km"; {{convert|1|to|3|m}} -> "1 to 3 m"
        if len(positional) >= 4 and positional[1] in ("to", "-", "and", "or", "by", "x", "–"):
            return f"{positional[0]} {positional[1]} {positional[2]} {positional[3]}"
        return f"{positional[0]} {positional[1]}"
    if name in ("lang", "transl", "transliteration") and len(positional) >= 2:
        return positional[-1]
    if name.startswith("lang-") and positional:
        return positional[0]
    if name in ("nowrap", "nobr", "small", "smaller", "big", "nowrap begin", "abbr", "sic", "em", "strong", "mvar", "math", "var", "not a typo", "lang2") and positional:
        return positional[0]
    if name == "as of" and positional:
        return "as of " + " ".join(positional[:3])
    if name in ("circa", "c.") and positional:
        return "c. " + positional[0]
    if name in ("snd", "spaced ndash", "ndashb"):
        return " – "
    if name in ("ndash", "–"):
        return "–"
    if name in ("mdash", "mdashb", "—"):
        return "—"
    if name in ("spaced mdash", "spd"):
        return " — "
    if name in ("nq", "nihongo", "keypress", "code", "samp", "tt", "kbd", "visible anchor", "anchor", "vanchor") and positional:
        return positional[0]
    if name in ("'", "' \""):
        return "'"
    if name in ("frac",) and positional:
        return "/".join(positional)
    if name in ("nbsp", "sp"):
        return " "
    return ""


def _expand(text: str, open_tok: str, close_tok: str, replace) -> str:
    """Replace every balanced ``open_tok ... close_tok`` region (innermost first) by ``replace(body)``."""
    out = []
    i = 0
    while True:
        j = text.find(open_tok, i)
        if j < 0:
            out.append(text[i:])
            break
        end = _matching_end(text, j, open_tok, close_tok)
        if end < 0:  # unbalanced: drop the opener and go on
            out.append(text[i:j])
            i = j + len(open_tok)
            continue
        out.append(text[i:j])
        body = _expand(text[j + len(open_tok) : end - len(close_tok)], open_tok, close_tok, replace)
        out.append(replace(body))
        i = end
    return "".join(out)


def _link_text(body: str) -> str:
    parts = _split_params(body)
    target = parts[0].strip()
    if target.startswith(":"):
        target = target[1:]
    if ":" in target:
        prefix = target.split(":", 1)[0].strip().lower()
        if prefix in _DROPPED_NAMESPACES or _INTERLANGUAGE.match(prefix):
            return ""
    if len(parts) > 1:
        label = parts[-1].strip()
        return label if label else target.split("(")[0].strip()  # pipe trick [[Foo (bar)|]] -> Foo
    return target


def _drop_tables(text: str) -> str:
    """Remove ``{| ... |}`` tables (nested too). Tables open with ``{|`` at a line start."""
    out = []
    depth = 0
    for line in text.split("\n"):
        s = line.lstrip()
        if s.startswith("{|"):
            depth += 1
            continue
        if depth:
            if s.startswith("|}"):
                depth -= 1
            continue
        out.append(line)
    return "\n".join(out)


_LIST_PREFIX = re.compile(r"^[*#:;]+\s*")
_SPACES = re.compile(r"[ \t\u00a0]+")
_SPACE_BEFORE_PUNCT = re.compile(r" +([,.;:)\]])(?=\s|$)")
_SPACE_AFTER_OPEN = re.compile(r"([(\[]) +")
_EMPTY_PARENS = re.compile(r"\(\s*[,;:]*\s*\)|\[\s*\]")
_REPEATED_PUNCT = re.compile(r"([,;])\s*(?:[,;]\s*)+")
_JUNK_LINE = re.compile(r"^[\s|!{}\[\]=*#:;,.'\"\-–—]*$")


def wikitext_to_text(wikitext: str) -> str:
    """Plain prose from MediaWiki markup.

    Comments, ``<ref>``s (and similar elements), templates ``{{...}}`` (nested; a few inline ones such as
    ``{{convert}}``/``{{lang}}`` keep their text), tables ``{|...|}``, ``[[File:...]]``/``[[Category:...]]``
    and interlanguage links are removed; ``[[target|label]]`` becomes ``label``, ``[url label]`` becomes
    ``label``, bold/italic quotes and HTML tags go (their text stays), headings ``== X ==`` become a line
    ``X``, list markers are stripped. Sections such as "References" or "External links" are dropped. The
    result has paragraphs separated by one blank line.
    """
    text = _COMMENT.sub("", wikitext)
    text = _DROP_ELEMENT_RE.sub("", text)
    text = _expand(text, "{{", "}}", _inline_template)
    text = _drop_tables(text)
    text = _expand(text, "[[", "]]", _link_text)
    text = _EXTERNAL_LINK.sub(lambda m: m.group(1) or "", text)
    text = _BR.sub("\n", text)
    text = _HTML_TAG.sub("", text)
    text = _MAGIC_WORD.sub("", text)
    text = _BOLD_ITALIC.sub("", text)
    text = html.unescape(text)

    blocks: list[tuple[bool, list[str]]] = []  # (is heading, lines)
    current: list[str] = []
    skip_level = 0  # >0 while inside a dropped section of that heading level
    for raw in text.split("\n"):
        line = raw.strip()
        heading = _HEADING.match(line)
        if heading:
            level = len(heading.group(1))
            title = heading.group(2).strip()
            if skip_level and level > skip_level:
                continue
            skip_level = level if title.lower() in _DROPPED_SECTIONS else 0
            if current:
                blocks.append((False, current))
                current = []
            if not skip_level and title:
                blocks.append((True, [title]))
            continue
        if skip_level:
            continue
        if not line:
            if current:
                blocks.append((False, current))
                current = []
            continue
        if line.startswith(("|", "!")):  # stray table/template rows
            continue
        line = _LIST_PREFIX.sub("", line)
        line = _SPACES.sub(" ", line)
        line = _EMPTY_PARENS.sub("", line)
        line = _REPEATED_PUNCT.sub(r"\1 ", line)
        line = _SPACE_AFTER_OPEN.sub(r"\1", line)
        line = _SPACE_BEFORE_PUNCT.sub(r"\1", line)
        line = _SPACES.sub(" ", line).strip()
        if not line or _JUNK_LINE.match(line):
            continue
        current.append(line)
    if current:
        blocks.append((False, current))
    # a heading followed by another heading (or by nothing) introduces no prose: drop it
    kept = [
        "\n".join(lines)
        for i, (is_heading, lines) in enumerate(blocks)
        if not (is_heading and (i + 1 == len(blocks) or blocks[i + 1][0]))
    ]
    return "\n\n".join(kept).strip()


def wiki_dump_documents(path: str | Path, *, min_chars: int = 1) -> Iterator[tuple[str, str]]:
    """(title, plain text) for every main-namespace, non-redirect page of a MediaWiki XML dump
    (``.xml`` or ``.xml.bz2``), in dump order."""
    path = Path(path)
    opener = bz2.open if path.suffix == ".bz2" else open
    with opener(path, "rb") as fh:
        try:
            for _, elem in ET.iterparse(fh, events=("end",)):
                if not elem.tag.endswith("}page") and elem.tag != "page":
                    continue
                title = ns = text = None
                redirect = False
                for child in elem.iter():
                    tag = child.tag.rsplit("}", 1)[-1]
                    if tag == "title":
                        title = child.text or ""
                    elif tag == "ns":
                        ns = (child.text or "").strip()
                    elif tag == "redirect":
                        redirect = True
                    elif tag == "text":
                        text = child.text or ""
                elem.clear()
                if ns not in (None, "0") or redirect or text is None:
                    continue
                if text.lstrip()[:9].upper() == "#REDIRECT":
                    continue
                plain = wikitext_to_text(text)
                if len(plain) >= min_chars:
                    yield title or "", plain
        except ET.ParseError as exc:
            raise ZettError(f"{path}: not a readable MediaWiki XML dump ({exc})") from None


# --------------------------------------------------------------------------------------------------
# fortune files

_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][0-9A-Za-z]")
_IRC_COLOUR = re.compile(r"\x03(?:\d{1,2}(?:,\d{1,2})?)?")
_OVERSTRIKE = re.compile(r"[^\n]\x08")
_OTHER_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

# single-byte encodings to consider, per language, when a file is not UTF-8
_FALLBACK_ENCODINGS = {
    "ru": ("koi8-r", "cp1251", "cp866"),
    "zh": ("gb18030", "big5"),
    "pl": ("iso-8859-2", "cp1250"),
    "cs": ("iso-8859-2", "cp1250"),
}
_RU_COMMON = set("оеаинтсрвлОЕАИНТСРВЛ")


def decode_fortune_bytes(data: bytes, lang: str = "en") -> tuple[str, str]:
    """Decode a fortune file: UTF-8 if it is valid UTF-8, else the best legacy encoding for ``lang``
    (koi8-r / cp1251 / cp866 for Russian, chosen by how many common Russian letters each gives; gb18030 or
    big5 for Chinese; latin-2 for Polish and Czech; latin-1 otherwise). Returns (text, encoding)."""
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    candidates = _FALLBACK_ENCODINGS.get(lang, ())
    if lang == "ru":
        best = None
        for enc in candidates:
            try:
                text = data.decode(enc)
            except UnicodeDecodeError:
                continue
            score = sum(ch in _RU_COMMON for ch in text)
            if best is None or score > best[0]:
                best = (score, text, enc)
        if best is not None:
            return best[1], best[2]
    for enc in candidates:
        try:
            return data.decode(enc), enc
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1"), "latin-1"


def clean_fortune_text(text: str) -> str:
    """Remove terminal markup that fortune files carry: ANSI colour escapes (the Chinese files colour
    titles), IRC colour codes, backspace overstrike (``_\\bx`` underline, ``x\\bx`` bold) and other control
    characters (tab and newline stay)."""
    text = _ANSI_ESCAPE.sub("", text)
    text = _IRC_COLOUR.sub("", text)
    while "\x08" in text:
        new = _OVERSTRIKE.sub("", text, count=0)
        if new == text:
            break
        text = new
    return _OTHER_CONTROL.sub("", text)


def fortune_entries(text: str) -> list[str]:
    """Split a fortune file into entries (separated by lines holding only ``%``; ``%%`` lines, used by some
    files as section separators, count too). Entries are cleaned of control characters, trailing spaces
    are removed from every line and the entry is stripped; empty entries are dropped."""
    text = clean_fortune_text(text.replace("\r\n", "\n").replace("\r", "\n"))
    entries = []
    current: list[str] = []
    for line in text.split("\n"):
        if line.strip() in ("%", "%%"):
            entry = "\n".join(current).strip("\n")
            if entry.strip():
                entries.append(_strip_entry(entry))
            current = []
        else:
            current.append(line.rstrip())
    entry = "\n".join(current).strip("\n")
    if entry.strip():
        entries.append(_strip_entry(entry))
    return entries


def _strip_entry(entry: str) -> str:
    lines = [ln.rstrip() for ln in entry.split("\n")]
    return "\n".join(lines).strip()


# --------------------------------------------------------------------------------------------------
# plain-text files and Python source


def line_documents(text: str) -> Iterator[str]:
    """One document per blank-line-separated paragraph; if the text has no blank lines at all, one per
    line. A byte-order mark and CR line ends are removed."""
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").strip()
    if re.search(r"\n[ \t]*\n", text):
        for para in re.split(r"\n[ \t]*\n", text):
            if para.strip():
                yield para.strip()
    else:
        for line in text.split("\n"):
            if line.strip():
                yield line.strip()


_EXCLUDED_DIRS = {
    "test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__", "pydoc_data",
    "lib-dynload",
}


def python_source_documents(stdlib: str | Path | None = None, *, max_bytes: int = 12_000_000) -> Iterator[tuple[str, str]]:
    """(relative path, source) for the ``.py`` files of the interpreter's standard library, sorted by
    path, leaving out test suites (``test/``, ``tests/``, ``idlelib/idle_test``), ``site-packages``,
    ``pydoc_data`` (a generated data file), the build-specific ``config-*`` directory and
    ``_sysconfigdata_*``. Stops before the total would pass ``max_bytes`` of UTF-8 text; files that are
    not valid UTF-8 are skipped."""
    root = Path(stdlib or sysconfig.get_paths()["stdlib"])
    if not root.is_dir():
        raise ZettError(f"{root}: the Python standard library directory does not exist")
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d for d in dirnames if d not in _EXCLUDED_DIRS and not d.startswith("config-") and not d.startswith(".")
        )
        for name in filenames:
            if name.endswith(".py") and not name.startswith("_sysconfigdata_"):
                files.append(Path(dirpath, name).relative_to(root).as_posix())
    total = 0
    for rel in sorted(files):
        try:
            src = (root / rel).read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        src = src.lstrip("\ufeff").replace("\r\n", "\n")
        if not src.strip():
            continue
        size = len(src.strip().encode("utf-8"))
        if total + size > max_bytes:
            break
        total += size
        yield rel, src


def python_version() -> str:
    return "%d.%d.%d" % sys.version_info[:3]
