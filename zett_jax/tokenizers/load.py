"""One entry point for every tokenizer format zett_jax reads.

`load_tokenizer(spec)` accepts a tokenizer.json file, a Hugging Face tokenizer directory, a `.gguf` file
(vocab-only or a full model: only its metadata is read), a `.tiktoken` rank file, or, where a hub is
reachable, a Hugging Face hub id. `convert_to_hf_dir` writes any of them as a Hugging Face directory.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import tokenizers

from zett_jax.errors import ZettError
from zett_jax.fileio import atomic_directory, looks_like_hub_id
from zett_jax.tokenizers.core import LoadedTokenizer

_ROLES = ("bos", "eos", "pad", "unk")
# Used only when no tokenizer_config.json / special_tokens_map.json names the roles.
_ROLE_GUESSES = {
    "bos": ("<s>", "<bos>", "<|begin_of_text|>", "<|startoftext|>", "[CLS]"),
    "eos": ("</s>", "<eos>", "<|end_of_text|>", "<|endoftext|>", "<|im_end|>", "[SEP]"),
    "pad": ("<pad>", "[PAD]", "<|pad|>", "<|padding|>"),
    "unk": ("<unk>", "[UNK]", "<|unk|>"),
}


def load_tokenizer(spec: str | os.PathLike) -> LoadedTokenizer:
    """A `LoadedTokenizer` from a path (file or directory) or hub id; ZettError naming the input if the
    input is not a tokenizer zett_jax can read."""
    path = Path(spec)
    if path.is_dir():
        return _from_hf_dir(path)
    if not path.exists():
        if looks_like_hub_id(str(spec)):
            return _from_transformers(str(spec))
        raise ZettError(f"{spec}: no such file or directory (expected a tokenizer file, directory or hub id)")
    name = path.name.lower()
    if name.endswith(".gguf") or _is_gguf(path):
        from zett_jax.tokenizers.gguf_vocab import tokenizer_from_gguf

        return tokenizer_from_gguf(path)
    if name.endswith(".tiktoken"):
        from zett_jax.tokenizers.tiktoken_files import tokenizer_from_tiktoken

        return tokenizer_from_tiktoken(path)
    if name.endswith(".json"):
        return _from_tokenizer_json(path, config_dir=path.parent if name == "tokenizer.json" else None)
    raise ZettError(f"{spec}: unknown tokenizer file type (expected tokenizer.json, .gguf, .tiktoken or a directory)")


def convert_to_hf_dir(spec: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Write the tokenizer at ``spec`` as a Hugging Face tokenizer directory at ``out_dir``.

    The directory is assembled next to ``out_dir`` and moved into place, so a reader never sees half a
    directory and an interrupted run leaves any previous ``out_dir`` intact.
    """
    lt = load_tokenizer(spec)
    with atomic_directory(out_dir, overwrite=True) as tmp:
        lt.save_hf(tmp)
    return Path(out_dir)


def _is_gguf(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == b"GGUF"


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ZettError(f"{path}: not valid JSON ({e})") from None


def _role_tokens(config_dir: Path | None) -> tuple[dict[str, str] | None, bool | None, str | None]:
    """Role -> token text from special_tokens_map.json and tokenizer_config.json (the latter wins), and
    tokenizer_config's add_bos_token and tokenizer_class if it says. None instead of the dict if neither
    file exists."""
    roles: dict[str, str] = {}
    add_bos = hf_class = None
    found = False
    for fname in ("special_tokens_map.json", "tokenizer_config.json"):
        f = config_dir / fname if config_dir is not None else None
        if f is None or not f.is_file():
            continue
        found = True
        cfg = _read_json(f)
        for role in _ROLES:
            value = cfg.get(f"{role}_token")
            if isinstance(value, dict):
                value = value.get("content")
            if isinstance(value, str):
                roles[role] = value
        if fname == "tokenizer_config.json" and isinstance(cfg.get("add_bos_token"), bool):
            add_bos = cfg["add_bos_token"]
        if fname == "tokenizer_config.json" and isinstance(cfg.get("tokenizer_class"), str):
            hf_class = cfg["tokenizer_class"]
    return (roles if found else None), add_bos, hf_class


def _from_tokenizer_json(path: Path, config_dir: Path | None) -> LoadedTokenizer:
    try:
        tok = tokenizers.Tokenizer.from_file(str(path))
    except Exception as e:  # the Rust side raises a bare Exception for every parse problem
        raise ZettError(f"{path}: not a tokenizers tokenizer.json ({str(e).splitlines()[0]})") from None
    tok.no_padding()
    tok.no_truncation()
    roles, add_bos, hf_class = _role_tokens(config_dir)
    ids: dict[str, int | None] = {}
    for role in _ROLES:
        if roles is not None:  # the configs are authoritative, also about a role being absent
            ids[role] = tok.token_to_id(roles[role]) if role in roles else None
        else:
            ids[role] = next((tok.token_to_id(t) for t in _ROLE_GUESSES[role] if tok.token_to_id(t) is not None), None)
    if add_bos is None:
        # what the tokenizer.json's post-processor does is what the original does by default
        first = tok.encode("a", add_special_tokens=True).ids[:1]
        add_bos = ids["bos"] is not None and first == [ids["bos"]]
    name = (config_dir or path.parent).name if path.name == "tokenizer.json" else path.name
    return LoadedTokenizer(tokenizer=tok, bos_id=ids["bos"], eos_id=ids["eos"], pad_id=ids["pad"],
                           unk_id=ids["unk"], add_bos=bool(add_bos), name=name, hf_class=hf_class)


def _from_hf_dir(path: Path) -> LoadedTokenizer:
    if (path / "tokenizer.json").is_file():
        return _from_tokenizer_json(path / "tokenizer.json", config_dir=path)
    return _from_transformers(str(path))


def _from_transformers(spec: str) -> LoadedTokenizer:
    """Directories without tokenizer.json (sentencepiece .model, vocab.txt, ...) and hub ids."""
    try:
        from transformers import AutoTokenizer

        hf = AutoTokenizer.from_pretrained(spec)
    except Exception as e:
        raise ZettError(f"{spec}: cannot load a tokenizer with transformers ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    backend = getattr(hf, "backend_tokenizer", None)
    if backend is None:
        raise ZettError(f"{spec}: transformers gives no fast (tokenizers-backed) tokenizer for it")
    backend.no_padding()
    backend.no_truncation()
    return LoadedTokenizer(
        tokenizer=backend, bos_id=hf.bos_token_id, eos_id=hf.eos_token_id, pad_id=hf.pad_token_id,
        unk_id=hf.unk_token_id, add_bos=bool(getattr(hf, "add_bos_token", False)), name=Path(spec).name,
    )


def resolve_tokenizer(spec: str | os.PathLike) -> LoadedTokenizer:
    """Like :func:`load_tokenizer`, but a name from ``zett assets list`` works too: a tokenizer asset
    loads from its raw source, a model asset gives the model's own tokenizer."""
    from zett_jax import assets

    if isinstance(spec, str) and assets.is_asset(spec):
        asset = assets.ASSETS[spec]
        if asset.kind not in ("tokenizer", "model"):
            raise ZettError(f"{spec}: is a {asset.kind} asset, expected a tokenizer or a model")
        lt = load_tokenizer(assets.fetch(spec))
        return dataclasses.replace(lt, name=spec)
    return load_tokenizer(spec)


def converted_tokenizer_dir(name: str) -> Path:
    """An HF tokenizer directory (tokenizer.json + configs) for an asset, converted once and cached."""
    from zett_jax import assets

    out = assets.cache_dir() / "tokenizers" / "converted" / name
    if not (out / "tokenizer.json").is_file():
        lt = resolve_tokenizer(name)
        with atomic_directory(out, overwrite=True) as tmp:
            lt.save_hf(tmp)
    return out
