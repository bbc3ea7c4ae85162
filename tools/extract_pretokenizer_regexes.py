"""Extract llama.cpp's BPE pre-tokenizer regexes into zett_jax/tokenizers/pretokenizer_regexes.json.

GGUF files name their pre-tokenizer (`tokenizer.ggml.pre`) but do not carry its regexes; those live in
`src/llama-vocab.cpp`. This script reads that file (or the llama-cpp-python sdist that vendors it) and
records, per pre-tokenizer type, the regex list and the `byte_encode` flag, and per `.pre` name the type
and the `ignore_merges` flag. The json is written with \\u escapes so no editor or tool can NFC-normalise
the character classes (a hand-copied deepseek-llm regex breaks that way).

    python tools/extract_pretokenizer_regexes.py llama_cpp_python-0.3.36.tar.gz
"""

from __future__ import annotations

import argparse
import json
import re
import tarfile
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "zett_jax" / "tokenizers" / "pretokenizer_regexes.json"
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"', "'": "'", "0": "\0"}


def read_source(path: str) -> tuple[str, str]:
    """The text of llama-vocab.cpp and a short description of where it came from."""
    if path.endswith((".tar.gz", ".tgz")):
        with tarfile.open(path) as tar:
            for member in tar.getmembers():
                if member.name.endswith("vendor/llama.cpp/src/llama-vocab.cpp"):
                    return tar.extractfile(member).read().decode("utf-8"), f"{Path(path).name}:{member.name}"
        raise SystemExit(f"{path}: no vendor/llama.cpp/src/llama-vocab.cpp inside")
    return Path(path).read_text(encoding="utf-8"), Path(path).name


def lex(code: str) -> list[tuple[str, str]]:
    """C++ tokens we care about: ('str', decoded literal), ('punct', c), ('word', w); comments dropped."""
    out, i, n = [], 0, len(code)
    while i < n:
        c = code[i]
        if code.startswith("//", i):
            i = code.index("\n", i) if "\n" in code[i:] else n
        elif code.startswith("/*", i):
            i = code.index("*/", i) + 2
        elif c == '"':
            j, buf = i + 1, []
            while code[j] != '"':
                if code[j] == "\\":
                    buf.append(_ESCAPES[code[j + 1]])
                    j += 2
                else:
                    buf.append(code[j])
                    j += 1
            if out and out[-1][0] == "str":  # adjacent literals concatenate
                out[-1] = ("str", out[-1][1] + "".join(buf))
            else:
                out.append(("str", "".join(buf)))
            i = j + 1
        elif c.isalnum() or c == "_":
            m = re.match(r"\w+", code[i:])
            out.append(("word", m.group()))
            i += m.end()
        elif c.isspace():
            i += 1
        else:
            out.append(("punct", c))
            i += 1
    return out


def extract_pre_types(src: str) -> dict[str, dict]:
    start = src.index("llm_tokenizer_bpe(const llama_vocab & vocab) {")
    end = src.index("std::vector<std::string> regex_exprs;", start)
    toks = lex(src[start:end])
    result, labels, i = {}, [], 0
    while i < len(toks):
        kind, val = toks[i]
        if kind == "word" and val == "case":
            labels.append(toks[i + 1][1].removeprefix("LLAMA_VOCAB_PRE_TYPE_"))
            i += 2
        elif kind == "word" and val == "default":
            labels.append("DEFAULT")
            i += 1
        elif kind == "word" and val == "regex_exprs":
            j = i + 3  # regex_exprs = {
            regexes = []
            while toks[j] != ("punct", "}"):
                if toks[j][0] == "str":
                    regexes.append(toks[j][1])
                j += 1
            for label in labels:
                result[label] = {"regexes": regexes, "byte_encode": True}
            i = j
        elif kind == "word" and val == "byte_encode":
            for label in labels:
                result[label]["byte_encode"] = toks[i + 2][1] == "true"
            i += 3
        elif kind == "word" and val == "break":
            labels = []
            i += 1
        else:
            i += 1
    return result


def extract_names(src: str) -> dict[str, dict]:
    start = src.index("if (tokenizer_pre.empty())")
    end = src.index("unknown pre-tokenizer type", start)
    region = src[start:end]
    names = {}
    for cond, body in re.findall(r"if \(((?:\s*tokenizer_pre == \"[^\"]*\"\s*(?:\|\|)?)+)\)\s*\{(.*?)\}", region, re.S):
        pre = re.search(r"pre_type = LLAMA_VOCAB_PRE_TYPE_(\w+);", body)
        if pre is None:  # e.g. minicpm5 keeps the DEFAULT type but sets other flags
            pre_type = "DEFAULT"
        else:
            pre_type = pre.group(1)
        for name in re.findall(r"\"([^\"]*)\"", cond):
            names[name] = {"pre_type": pre_type, "ignore_merges": "ignore_merges = true" in body}
    return names


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", help="llama-cpp-python sdist (.tar.gz) or a llama-vocab.cpp file")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    src, origin = read_source(args.source)
    pre_types = extract_pre_types(src)
    names = extract_names(src)
    missing = sorted({v["pre_type"] for v in names.values()} - set(pre_types))
    if missing:
        raise SystemExit(f"pre-tokenizer types named but without regexes: {missing}")
    data = {"source": origin, "pre_types": dict(sorted(pre_types.items())), "names": dict(sorted(names.items()))}
    Path(args.out).write_text(json.dumps(data, indent=1, ensure_ascii=True) + "\n", encoding="ascii")
    print(f"wrote {args.out}: {len(pre_types)} pre-tokenizer types, {len(names)} names")


if __name__ == "__main__":
    main()
