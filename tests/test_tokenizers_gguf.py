"""GGUF tokenizer metadata -> `tokenizers`: token ids must equal llama.cpp's reference outputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import gguf
import numpy as np
import pytest
from tokenizer_assets import LLAMA_CPP_VOCABS, WITH_REFERENCE, gemma3_gguf, llama_cpp_dir, read_reference, smollm2_gguf

from zett_jax.errors import ZettError
from zett_jax.tokenizers.gguf_vocab import read_gguf_metadata, tokenizer_from_gguf

REPO = Path(__file__).resolve().parent.parent

SAMPLES = [
    "The capital of France is Paris.",
    "def f(x):\n    if x:\n        return  x   + 1\n\treturn None\n",
    "Größenwahn und Übermut: Äpfel, Öl und Straße.",
    "你好，世界！这是一个测试。",
    "emoji 🤖🎉 and a family 👩‍👩‍👧 ok",
    "    x",
]


@pytest.fixture(scope="module")
def vocab_dir() -> Path:
    return llama_cpp_dir()


@pytest.mark.parametrize("name", WITH_REFERENCE)
def test_reference_token_ids(vocab_dir, name):
    path = vocab_dir / f"ggml-vocab-{name}.gguf"
    lt = tokenizer_from_gguf(path)
    cases = read_reference(path)
    assert len(cases) >= 40
    wrong = []
    for text, want in cases:
        got = lt.tokenizer.encode(text, add_special_tokens=False).ids
        if got != want:
            wrong.append(f"{text!r}: got {got} want {want}")
    assert not wrong, f"{name}: {len(wrong)}/{len(cases)} cases differ:\n" + "\n".join(wrong[:5])


@pytest.mark.parametrize("name", [n for n, has in LLAMA_CPP_VOCABS.items() if not has])
def test_vocabs_without_reference_build_and_round_trip(vocab_dir, name):
    lt = tokenizer_from_gguf(vocab_dir / f"ggml-vocab-{name}.gguf")
    assert lt.vocab_size == len(read_gguf_metadata(vocab_dir / f"ggml-vocab-{name}.gguf")["tokenizer.ggml.tokens"])
    text = "Hello world, this is a test of 42 tokens."
    ids = lt.tokenizer.encode(text, add_special_tokens=False).ids
    assert lt.unk_id not in ids or name == "nomic-bert-moe"
    assert lt.tokenizer.decode(ids) == text


def test_metadata_reader_agrees_with_gguf_package(vocab_dir):
    path = vocab_dir / "ggml-vocab-phi-3.gguf"
    ours = read_gguf_metadata(path)
    reader = gguf.GGUFReader(path)
    assert set(ours) == {k for k in reader.fields if not k.startswith("GGUF.")}
    for key, field in reader.fields.items():
        if key.startswith("GGUF."):
            continue
        theirs = field.contents()
        if isinstance(ours[key], np.ndarray):
            np.testing.assert_array_equal(ours[key], np.asarray(theirs), err_msg=key)
        else:
            assert ours[key] == theirs, key
    # a GGUFReader is accepted in place of a path
    a = tokenizer_from_gguf(reader)
    b = tokenizer_from_gguf(path)
    assert a.tokenizer.encode("Hello  world 你好").ids == b.tokenizer.encode("Hello  world 你好").ids


def test_extracted_regexes_are_current(vocab_dir, tmp_path):
    """The committed json is what the extraction script makes of this llama-vocab.cpp."""
    cpp = vocab_dir / "llama-vocab.cpp"
    if not cpp.is_file():
        cpp = vocab_dir.parent / "src" / "llama-vocab.cpp"  # a raw sdist checkout
    out = tmp_path / "regexes.json"
    subprocess.run([sys.executable, str(REPO / "tools/extract_pretokenizer_regexes.py"), str(cpp), "--out", str(out)],
                   check=True, capture_output=True)
    committed = json.loads((REPO / "zett_jax/tokenizers/pretokenizer_regexes.json").read_text())
    fresh = json.loads(out.read_text())
    assert fresh["pre_types"] == committed["pre_types"]
    assert fresh["names"] == committed["names"]


def _write_gguf(path: Path, model: str | None, with_tokens: bool = True) -> None:
    w = gguf.GGUFWriter(str(path), arch="llama")
    if model is not None:
        w.add_tokenizer_model(model)
    if with_tokens:
        w.add_token_list(["<unk>", "a", "b", "ab"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.close()


def test_bad_inputs_raise_one_line_errors(tmp_path):
    unknown = tmp_path / "unknown.gguf"
    _write_gguf(unknown, "rwkv")
    with pytest.raises(ZettError, match=r"unknown\.gguf.*unknown GGUF tokenizer model 'rwkv'"):
        tokenizer_from_gguf(unknown)
    no_model = tmp_path / "nomodel.gguf"
    _write_gguf(no_model, None)
    with pytest.raises(ZettError, match=r"nomodel\.gguf.*tokenizer\.ggml\.model"):
        tokenizer_from_gguf(no_model)
    no_merges = tmp_path / "nomerges.gguf"
    _write_gguf(no_merges, "gpt2")
    with pytest.raises(ZettError, match=r"nomerges\.gguf.*tokenizer\.ggml\.merges"):
        tokenizer_from_gguf(no_merges)
    garbage = tmp_path / "garbage.gguf"
    garbage.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 40)
    with pytest.raises(ZettError, match=r"garbage\.gguf"):
        tokenizer_from_gguf(garbage)
    with pytest.raises(ZettError, match="missing.gguf"):
        tokenizer_from_gguf(tmp_path / "missing.gguf")


def test_tiny_spm_gguf(tmp_path):
    """A hand-made SentencePiece GGUF: merges follow the scores, unknown characters fall back to bytes."""
    path = tmp_path / "tiny.gguf"
    tokens = ["<unk>", "<s>", "</s>", "▁", "a", "b", "ab", "▁ab", "<0x21>"]
    types = [2, 3, 3, 1, 1, 1, 1, 1, 6]
    w = gguf.GGUFWriter(str(path), arch="llama")
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores([0.0, 0.0, 0.0, -1.0, -2.0, -3.0, -4.0, -5.0, 0.0])
    w.add_token_types(types)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.close()
    lt = tokenizer_from_gguf(path)
    assert (lt.bos_id, lt.eos_id, lt.unk_id, lt.add_bos) == (1, 2, 0, True)
    enc = lt.tokenizer.encode("ab!", add_special_tokens=False)
    assert enc.tokens == ["▁ab", "<0x21>"]
    assert lt.tokenizer.decode(enc.ids) == "ab!"
    assert lt.tokenizer.encode("ab").ids == [1, 7]


@pytest.fixture(scope="module")
def smollm2():
    return tokenizer_from_gguf(smollm2_gguf())


@pytest.fixture(scope="module")
def gemma3():
    return tokenizer_from_gguf(gemma3_gguf())


def test_smollm2_tokenizer(smollm2):
    assert smollm2.vocab_size == 49152
    assert (smollm2.bos_id, smollm2.eos_id, smollm2.add_bos) == (1, 2, False)
    for text in SAMPLES:
        enc = smollm2.tokenizer.encode(text, add_special_tokens=False)
        assert smollm2.tokenizer.decode(enc.ids) == text
        assert not set(enc.ids) & {0, 1, 2}, "special tokens emitted for plain text"
    # starcoder-style pre-tokenizer: digits one by one
    assert smollm2.tokenizer.encode("2024", add_special_tokens=False).tokens == ["2", "0", "2", "4"]
    assert smollm2.tokenizer.encode(" Paris", add_special_tokens=False).tokens == ["ĠParis"]


def test_gemma3_tokenizer(gemma3):
    assert gemma3.vocab_size == 262144
    assert (gemma3.bos_id, gemma3.eos_id, gemma3.pad_id, gemma3.add_bos) == (2, 1, 0, True)
    for text in SAMPLES:
        ids = gemma3.tokenizer.encode(text, add_special_tokens=False).ids
        assert gemma3.tokenizer.decode(ids) == text
        assert not set(ids) & {0, 1, 2, 3}
    # runs of spaces are single tokens (ids 138..167 hold 2..31 spaces)
    ids = gemma3.tokenizer.encode("    x", add_special_tokens=False).ids
    assert 138 <= ids[0] <= 167 and gemma3.tokenizer.id_to_token(ids[0]) == "    "
    code = SAMPLES[1]
    ids = gemma3.tokenizer.encode(code, add_special_tokens=False).ids
    assert sum(138 <= i <= 167 for i in ids) >= 2
    # no dummy prefix, BOS added by default
    assert gemma3.tokenizer.encode("Hello").tokens == ["<bos>", "Hello"]
    assert gemma3.tokenizer.encode(" Hello", add_special_tokens=False).tokens == ["▁Hello"]


def test_every_known_pre_tokenizer_compiles():
    """All llama.cpp regexes run in the `tokenizers` (Oniguruma) engine, except the two that stand for
    hand-written C++ and are refused with a clear error."""
    from tokenizers import pre_tokenizers

    from zett_jax.tokenizers.pretokenizers import bpe_pre_tokenizer_spec, known_names, split_sequence

    raw = (REPO / "zett_jax/tokenizers/pretokenizer_regexes.json").read_bytes()
    assert raw.isascii(), "regex table must stay \\u-escaped"
    refused = []
    for name in known_names():
        try:
            spec = bpe_pre_tokenizer_spec(name)
        except ZettError:
            refused.append(name)
            continue
        pieces = pre_tokenizers.Sequence(split_sequence(spec.regexes)).pre_tokenize_str("Hi  it's 12345 你好\n\n x")
        assert "".join(p for p, _ in pieces) == "Hi  it's 12345 你好\n\n x", name
    assert refused == ["afmoe", "kimi-k2"]
    with pytest.raises(ZettError, match="unknown GGUF pre-tokenizer 'no-such-pre'"):
        bpe_pre_tokenizer_spec("no-such-pre")
