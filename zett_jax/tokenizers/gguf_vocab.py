"""Rebuild a Hugging Face `tokenizers` object from the tokenizer metadata inside a GGUF file.

llama.cpp stores the whole tokenizer in `tokenizer.ggml.*` keys: the model kind (`gpt2` byte-level BPE,
`llama` SentencePiece BPE, `bert` WordPiece, `t5` Unigram), the pre-tokenizer name, the pieces with their
scores and types, and for BPE the merges. This module turns them back into the pipeline the original
Hugging Face tokenizer used, so that token ids match llama.cpp's reference outputs
(`models/ggml-vocab-*.gguf.out`, which were produced by the original HF tokenizers).

Only the key/value header is read (`read_gguf_metadata`); tensors are never touched, so a 250 MB model
file costs the same as a vocab-only one.
"""

from __future__ import annotations

import dataclasses
import mmap
import re
import os
import struct
from pathlib import Path

import numpy as np
import tokenizers
from tokenizers import AddedToken, Regex, decoders, models, normalizers, pre_tokenizers, processors

from zett_jax.errors import ZettError
from zett_jax.tokenizers.core import LoadedTokenizer
from zett_jax.tokenizers.pretokenizers import bpe_pre_tokenizer_spec, byte_level_pre_tokenizer, split_sequence

# llama.cpp token types (llama_token_type in gguf-py: gguf.TokenType).
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6

# GGUF value types: numpy dtype of the scalar types; 8 = string, 9 = array.
_GGUF_DTYPES = {
    0: np.uint8, 1: np.int8, 2: np.uint16, 3: np.int16, 4: np.uint32, 5: np.int32,
    6: np.float32, 7: np.bool_, 10: np.uint64, 11: np.int64, 12: np.float64,
}
_STRING, _ARRAY = 8, 9


def read_gguf_metadata(path: str | os.PathLike, prefix: str = "") -> dict[str, object]:
    """The key/value header of a GGUF file (keys starting with ``prefix``), without reading tensors.

    `gguf.GGUFReader` also parses every tensor descriptor and wraps each array element in numpy views,
    which takes seconds for a 262k-piece vocabulary; this reader walks the header once. Numeric arrays
    come back as numpy arrays, string arrays as lists of str, scalars as Python values.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            return _parse_header(buf, prefix)
    except OSError as e:
        raise ZettError(f"{path}: cannot read GGUF file ({e.strerror or e})") from None
    except (ValueError, struct.error, KeyError, UnicodeDecodeError, IndexError) as e:
        raise ZettError(f"{path}: not a readable GGUF file (expected a GGUF v2/v3 header): {e}") from None


def _parse_header(buf, prefix: str) -> dict[str, object]:
    if buf[:4] != b"GGUF":
        raise ValueError("bad magic")
    version, _n_tensors, n_kv = struct.unpack_from("<IQQ", buf, 4)
    if version not in (2, 3):
        raise ValueError(f"unsupported version {version}")
    pos = 24
    unpack_q = struct.Struct("<Q").unpack_from
    unpack_i = struct.Struct("<I").unpack_from

    def read_str(p: int) -> tuple[str, int]:
        (n,) = unpack_q(buf, p)
        return buf[p + 8 : p + 8 + n].decode("utf-8"), p + 8 + n

    out: dict[str, object] = {}
    for _ in range(n_kv):
        key, pos = read_str(pos)
        (vtype,) = unpack_i(buf, pos)
        pos += 4
        if vtype == _ARRAY:
            etype, n = struct.unpack_from("<IQ", buf, pos)
            pos += 12
            if etype == _STRING:
                items = []
                for _ in range(n):
                    s, pos = read_str(pos)
                    items.append(s)
                value: object = items
            else:
                dtype = np.dtype(_GGUF_DTYPES[etype])
                value = np.frombuffer(buf, dtype=dtype, count=n, offset=pos).copy()
                pos += dtype.itemsize * n
        elif vtype == _STRING:
            value, pos = read_str(pos)
        else:
            dtype = np.dtype(_GGUF_DTYPES[vtype])
            value = np.frombuffer(buf, dtype=dtype, count=1, offset=pos)[0].item()
            pos += dtype.itemsize
        if key.startswith(prefix):
            out[key] = value
    return out


def _metadata_from_reader(reader) -> dict[str, object]:
    """The same dict as `read_gguf_metadata`, from an already opened `gguf.GGUFReader`."""
    out = {}
    for key, field in reader.fields.items():
        if key.startswith("GGUF."):  # the reader's pseudo-fields for the header counts
            continue
        value = field.contents()
        if isinstance(value, list) and value and not isinstance(value[0], str):
            value = np.asarray(value)
        out[key] = value
    return out


@dataclasses.dataclass(frozen=True)
class GGUFVocab:
    """The tokenizer fields of one GGUF file, named as llama.cpp reads them."""

    source: str
    model: str
    pre: str
    tokens: list[str]
    types_V: np.ndarray  # int32 token types, NORMAL if absent
    scores_V: np.ndarray | None  # float32
    merges: list[str] | None
    meta: dict[str, object]

    def opt_id(self, key: str, default: int | None) -> int | None:
        value = self.meta.get(f"tokenizer.ggml.{key}", default)
        if value is None or value < 0 or value >= len(self.tokens):
            return None
        return int(value)

    def flag(self, key: str, default: bool) -> bool:
        return bool(self.meta.get(f"tokenizer.ggml.{key}", default))


def read_vocab(path_or_reader) -> GGUFVocab:
    if isinstance(path_or_reader, (str, os.PathLike)):
        source = str(path_or_reader)
        meta = read_gguf_metadata(path_or_reader)
    else:
        source = str(getattr(path_or_reader, "path", "<GGUFReader>"))
        meta = _metadata_from_reader(path_or_reader)
    for key in ("tokenizer.ggml.model", "tokenizer.ggml.tokens"):
        if key not in meta:
            raise ZettError(f"{source}: GGUF file has no '{key}' (expected tokenizer metadata)")
    if meta["tokenizer.ggml.model"] in ("gpt2", "gemma4") and "tokenizer.ggml.merges" not in meta:
        raise ZettError(f"{source}: GGUF BPE tokenizer has no 'tokenizer.ggml.merges' (expected BPE merges)")
    tokens = meta["tokenizer.ggml.tokens"]
    types = meta.get("tokenizer.ggml.token_type")
    types_V = np.full(len(tokens), NORMAL, np.int32) if types is None else np.asarray(types, np.int32)
    scores = meta.get("tokenizer.ggml.scores")
    return GGUFVocab(
        source=source,
        model=str(meta["tokenizer.ggml.model"]),
        pre=str(meta.get("tokenizer.ggml.pre", "default")),
        tokens=list(tokens),
        types_V=types_V,
        scores_V=None if scores is None else np.asarray(scores, np.float32),
        merges=meta.get("tokenizer.ggml.merges"),
        meta=meta,
    )


# ---------------------------------------------------------------------------------------------------
# One builder per `tokenizer.ggml.model`. Each returns the bare pipeline; added tokens and the
# post-processor are attached afterwards by `tokenizer_from_gguf`.


def _first_index(tokens: list[str]) -> dict[str, int]:
    """token -> id; where a text occurs twice (e.g. a byte-level piece and a literal added token) the
    lower id wins, because that is the one the model itself produces."""
    vocab: dict[str, int] = {}
    for i, t in enumerate(tokens):
        vocab.setdefault(t, i)
    return vocab


def _split_merges(v: GGUFVocab, vocab: dict[str, int]) -> list[tuple[str, str]]:
    """GGUF merges are "left right"; llama.cpp splits at the first space after position 0. Merges whose
    parts or result are not pieces cannot fire in llama.cpp either and are dropped."""
    out = []
    for m in v.merges or ():
        pos = m.find(" ", 1)
        if pos < 0:
            continue
        left, right = m[:pos], m[pos + 1 :]
        if left in vocab and right in vocab and left + right in vocab:
            out.append((left, right))
    return out


def _byte_level_bpe(v: GGUFVocab) -> tokenizers.Tokenizer:
    spec = bpe_pre_tokenizer_spec(v.pre)
    if not spec.byte_encode:  # raw UTF-8 pieces with ▁ for spaces and <0xNN> byte fallback (sarvam-moe)
        return _spm_style_bpe(v, merges_from_file=True)
    vocab = _first_index(v.tokens)
    tok = tokenizers.Tokenizer(models.BPE(vocab, _split_merges(v, vocab), ignore_merges=spec.ignore_merges))
    tok.pre_tokenizer = byte_level_pre_tokenizer(spec.regexes)
    tok.decoder = decoders.ByteLevel()
    return tok


def _gemma4(v: GGUFVocab) -> tokenizers.Tokenizer:
    return _spm_style_bpe(v, merges_from_file=True)


def _spm_style_bpe(v: GGUFVocab, merges_from_file: bool) -> tokenizers.Tokenizer:
    """SentencePiece BPE: spaces become ▁, pieces are raw UTF-8, unknown characters fall back to the
    <0xNN> byte pieces. Llama-2/phi-3/Gemma-3 GGUFs (`llama`) carry scores instead of merges; llama.cpp
    merges the adjacent pair whose concatenation is the piece with the highest score, which is BPE with
    merges ranked by that score (HF's SentencePieceExtractor does the same)."""
    vocab = _first_index(v.tokens)
    if merges_from_file:
        merges = _split_merges(v, vocab)
    else:
        merges = _merges_from_scores(v, vocab)
    unk_id = v.opt_id("unknown_token_id", 0 if v.model == "llama" else None)
    model = models.BPE(
        vocab,
        merges,
        unk_token=None if unk_id is None else v.tokens[unk_id],
        byte_fallback=True,
        fuse_unk=True,
    )
    tok = tokenizers.Tokenizer(model)
    prefix = v.flag("add_space_prefix", v.model == "llama")
    steps = [normalizers.Prepend("▁")] if prefix else []
    tok.normalizer = normalizers.Sequence(steps + [normalizers.Replace(" ", "▁")])
    if v.model == "gemma4" or v.pre in ("gemma4", "sarvam-moe"):
        # llama.cpp's GEMMA4 pre-type only cuts the text at newline runs (BPE pieces never span them)
        spec = bpe_pre_tokenizer_spec("gemma4")
        tok.pre_tokenizer = pre_tokenizers.Sequence(split_sequence(spec.regexes))
    dec = [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()]
    if prefix:
        dec.append(decoders.Strip(" ", 1, 0))
    tok.decoder = decoders.Sequence(dec)
    return tok


def _merges_from_scores(v: GGUFVocab, vocab: dict[str, int]) -> list[tuple[str, str]]:
    """Every split of a NORMAL piece into two pieces, ordered by the piece's score (best first)."""
    scores = v.scores_V if v.scores_V is not None else -np.arange(len(v.tokens), dtype=np.float32)
    mergeable = (v.types_V == NORMAL) | (v.types_V == UNUSED)
    left_ids, right_ids, piece_ids = [], [], []
    for i, piece in enumerate(v.tokens):
        if not mergeable[i] or len(piece) < 2:
            continue
        for cut in range(1, len(piece)):
            li, ri = vocab.get(piece[:cut]), vocab.get(piece[cut:])
            if li is not None and ri is not None:
                left_ids.append(li)
                right_ids.append(ri)
                piece_ids.append(i)
    piece_M = np.asarray(piece_ids, np.int64)
    left_M, right_M = np.asarray(left_ids, np.int64), np.asarray(right_ids, np.int64)
    # best score first; ties by piece id, then by the ids of the parts (as HF's extractor orders them)
    order_M = np.lexsort((right_M, left_M, piece_M, -scores[piece_M].astype(np.float64)))
    tokens = v.tokens
    return [(tokens[left_M[k]], tokens[right_M[k]]) for k in order_M.tolist()]


def _spm_bpe(v: GGUFVocab) -> tokenizers.Tokenizer:
    return _spm_style_bpe(v, merges_from_file=False)


def _wordpiece(v: GGUFVocab) -> tokenizers.Tokenizer:
    """llama.cpp stores BERT's word-initial pieces as "▁x" and continuations without "##" (bracketed
    specials as they are); undo that. Lower-casing is not recorded in GGUF: a vocabulary without any
    ASCII capital outside [BRACKETED] specials is taken to be uncased, as bert-base-uncased is (it does
    hold a few non-ASCII capitals such as "ℝ", which lower-casing leaves alone)."""
    pieces = []
    for t, kind in zip(v.tokens, v.types_V.tolist()):
        if kind == CONTROL or (t.startswith("[") and t.endswith("]")):
            pieces.append(t)
        elif t.startswith("▁"):
            pieces.append(t[1:])
        else:
            pieces.append("##" + t)
    vocab = _first_index(pieces)
    unk_id = v.opt_id("unknown_token_id", 100)
    tok = tokenizers.Tokenizer(models.WordPiece(vocab, unk_token=pieces[unk_id], max_input_chars_per_word=100))
    lowercase = not any(
        re.search("[A-Z]", p) for p in pieces if not (p.startswith("[") and p.endswith("]"))
    )
    tok.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=lowercase
    )
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##")
    return tok


def _unigram(v: GGUFVocab) -> tokenizers.Tokenizer:
    """SentencePiece Unigram (T5, XLM-R): pieces with log-probabilities and the precompiled charsmap."""
    scores = v.scores_V if v.scores_V is not None else np.zeros(len(v.tokens), np.float32)
    unk_id = v.opt_id("unknown_token_id", 2)
    tok = tokenizers.Tokenizer(
        models.Unigram([(t, float(s)) for t, s in zip(v.tokens, scores.tolist())], unk_id, byte_fallback=False)
    )
    steps = []
    charsmap = v.meta.get("tokenizer.ggml.precompiled_charsmap")
    if charsmap is not None and len(charsmap):
        steps.append(normalizers.Precompiled(np.asarray(charsmap).astype(np.uint8).tobytes()))
    if v.flag("remove_extra_whitespaces", True):
        steps.append(normalizers.Replace(Regex(" {2,}"), " "))
    if steps:
        tok.normalizer = normalizers.Sequence(steps)
    scheme = "always" if v.flag("add_space_prefix", True) else "never"
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme=scheme)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme=scheme)
    return tok


_BUILDERS = {"gpt2": _byte_level_bpe, "llama": _spm_bpe, "gemma4": _gemma4, "bert": _wordpiece, "t5": _unigram}

# llama.cpp's per-model defaults when a GGUF lacks the key (llama_vocab::impl::load).
_DEFAULT_IDS = {
    "llama": {"bos": 1, "eos": 2, "unk": 0, "pad": None},
    "bert": {"bos": 101, "eos": None, "unk": 100, "pad": 0},
    "gpt2": {"bos": 11, "eos": 11, "unk": None, "pad": None},
    "t5": {"bos": None, "eos": 1, "unk": 2, "pad": 0},
    "gemma4": {"bos": None, "eos": None, "unk": None, "pad": None},
}
_DEFAULT_ADD = {"llama": (True, False), "bert": (True, True), "gpt2": (False, False), "t5": (False, True),
                "gemma4": (False, False)}


def tokenizer_from_gguf(path_or_reader) -> LoadedTokenizer:
    """A `LoadedTokenizer` equivalent to the tokenizer described by a GGUF file's metadata.

    ``path_or_reader`` is a path (vocab-only or full model GGUF) or an open `gguf.GGUFReader`.
    CONTROL and UNKNOWN pieces become special added tokens, USER_DEFINED pieces plain added tokens
    matched on the raw text (llama.cpp matches them before any normalisation; Gemma-3's space runs,
    ids 138-167, are such pieces).
    """
    v = read_vocab(path_or_reader)
    builder = _BUILDERS.get(v.model)
    if builder is None:
        raise ZettError(f"{v.source}: unknown GGUF tokenizer model '{v.model}' (expected one of "
                        f"{', '.join(sorted(_BUILDERS))})")
    tok = builder(v)
    content = [_added_content(v, i) for i in range(len(v.tokens))]
    special = np.nonzero((v.types_V == CONTROL) | (v.types_V == UNKNOWN))[0].tolist()
    user = np.nonzero(v.types_V == USER_DEFINED)[0].tolist()
    tok.add_special_tokens([AddedToken(content[i], special=True, normalized=False) for i in special])
    tok.add_tokens([AddedToken(content[i], special=False, normalized=False) for i in user])

    ids = {role: v.opt_id(key, _DEFAULT_IDS[v.model][role]) for role, key in
           (("bos", "bos_token_id"), ("eos", "eos_token_id"), ("unk", "unknown_token_id"), ("pad", "padding_token_id"))}
    if v.model == "bert":  # BERT's roles: [CLS] starts, [SEP] ends
        ids["bos"] = v.opt_id("cls_token_id", ids["bos"])
        ids["eos"] = v.opt_id("seperator_token_id", 102)
    add_bos_default, add_eos_default = _DEFAULT_ADD[v.model]
    add_bos = v.flag("add_bos_token", add_bos_default) and ids["bos"] is not None
    add_eos = v.flag("add_eos_token", add_eos_default) and ids["eos"] is not None
    if v.model == "bert":
        add_eos = v.flag("add_sep_token", True) and ids["eos"] is not None
    _set_post_processor(tok, v, ids, add_bos, add_eos)
    return LoadedTokenizer(
        tokenizer=tok, bos_id=ids["bos"], eos_id=ids["eos"], pad_id=ids["pad"], unk_id=ids["unk"],
        add_bos=add_bos, name=_name(v),
    )


def _added_content(v: GGUFVocab, i: int) -> str:
    t = v.tokens[i]
    if v.model == "bert" and t.startswith("▁"):
        return t[1:]
    return t


def _set_post_processor(tok, v: GGUFVocab, ids, add_bos: bool, add_eos: bool) -> None:
    """What `add_special_tokens=True` adds, so an exported HF directory behaves like the original."""
    if not (add_bos or add_eos):
        return
    bos = [(v.tokens[ids["bos"]], ids["bos"])] if add_bos else []
    eos = [(tok.id_to_token(ids["eos"]), ids["eos"])] if add_eos else []
    head = " ".join(t for t, _ in bos)
    tail = " ".join(t for t, _ in eos)
    single = " ".join(x for x in (head, "$A", tail) if x)
    pair = " ".join(x for x in (head, "$A", tail, "$B:1", tail) if x)
    tok.post_processor = processors.TemplateProcessing(single=single, pair=pair, special_tokens=bos + eos)


def _name(v: GGUFVocab) -> str:
    name = v.meta.get("general.name")
    return str(name) if name else Path(v.source).name
