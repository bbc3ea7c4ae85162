"""Documents of a text file, as the bits-per-byte protocol of ROADMAP.md defines them.

A ``.jsonl`` file holds one document per line in the field ``text``; any other file is UTF-8 text whose
documents are its blank-line-separated paragraphs. Documents are stripped; empty ones are skipped.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from zett_jax.errors import ZettError

_BLANK_LINE = re.compile(r"\n[ \t\r\f\v]*\n")


def resolve_data_path(spec: str) -> Path:
    """A corpus asset name becomes its cached ``.jsonl``; anything else must be an existing file."""
    from zett_jax import assets

    if assets.is_asset(spec):
        asset = assets.ASSETS[spec]
        if asset.kind != "corpus":
            raise ZettError(f"{spec}: is a {asset.kind} asset, not a corpus")
        return assets.fetch(spec)
    path = Path(spec).expanduser()
    if not path.is_file():
        raise ZettError(f"{spec}: no such data file or corpus asset (try `zett assets list`)")
    return path


def read_documents(path: str | Path) -> list[str]:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ZettError(f"{path}: cannot read ({e.strerror or e})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ZettError(f"{path}: not UTF-8 text (invalid byte at offset {e.start}, line {line})") from None
    if path.suffix == ".jsonl":
        docs = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise ZettError(f"{path}:{n}: not a JSON object ({e.msg})") from None
            if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                raise ZettError(f"{path}:{n}: expected a JSON object with a string field 'text'")
            docs.append(record["text"].strip())
    else:
        docs = [p.strip() for p in _BLANK_LINE.split(text.replace("\r\n", "\n"))]
    docs = [d for d in docs if d]
    if not docs:
        raise ZettError(f"{path}: holds no non-empty documents")
    return docs


def take_prefix(
    docs: list[str], max_documents: int | None = None, max_bytes: int | None = None, *, cut: bool = False
) -> list[str]:
    """The first documents, up to a count and a UTF-8 byte budget.

    The document that crosses the budget is kept whole, or with ``cut=True`` cut on a character boundary
    so that the prefix holds at most ``max_bytes`` (one 60 kB Wikipedia article cannot blow the budget).
    """
    if max_documents is not None:
        docs = docs[:max_documents]
    if max_bytes is not None:
        out, total = [], 0
        for d in docs:
            if total >= max_bytes:
                break
            out.append(d)
            total += len(d.encode("utf-8"))
        docs = out
        if cut and total > max_bytes:
            head = total - len(docs[-1].encode("utf-8"))
            last = docs[-1].encode("utf-8")[: max_bytes - head].decode("utf-8", errors="ignore").strip()
            docs = docs[:-1] + ([last] if last else [])
    return docs
