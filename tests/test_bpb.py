"""Bits per byte (ROADMAP.md protocol): windows, batching, and agreement with the torch reference.

The reference is ``tools/bpb_torch.py``: transformers + PyTorch, one window at a time, no padding, the HF
tokenizer. A tiny random model with a tiny trained BPE tokenizer is enough to pin the arithmetic: every
window boundary, bucket and padding row has to come out the same as scoring windows one by one.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hf_tiny import build_torch_model  # noqa: E402

from zett_jax.convert.load import load_model  # noqa: E402
from zett_jax.data.text import read_documents, resolve_data_path, take_prefix  # noqa: E402
from zett_jax.errors import ZettError  # noqa: E402
from zett_jax.eval.bpb import batches, bits_per_byte, bucket_lengths, make_windows  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from bpb_torch import torch_bits_per_byte  # noqa: E402

# threads=1 for the reference: with the cores shared, torch's default thread pool made 76 tiny
# forwards take 25 s instead of 0.3 s.


# --------------------------------------------------------------------------------------------- windows
def test_make_windows_hand_checked():
    docs = [[1, 2, 3, 4, 5], [6], [], [7, 8]]
    got = [w.tolist() for w in make_windows(docs, prefix=0, max_length=3)]
    # chunks of L - 1 = 2 tokens, each after the prefix; the empty document gives no window
    assert got == [[0, 1, 2], [0, 3, 4], [0, 5], [0, 6], [0, 7, 8]]
    assert [w.tolist() for w in make_windows([[4, 5, 6]], prefix=9, max_length=2)] == [[9, 4], [9, 5], [9, 6]]
    assert [w.tolist() for w in make_windows([[4, 5, 6]], prefix=9, max_length=100)] == [[9, 4, 5, 6]]
    assert all(w.dtype == np.int32 for w in make_windows(docs, 0, 3))
    with pytest.raises(ZettError, match="at least 2"):
        make_windows(docs, prefix=0, max_length=1)


def test_make_windows_every_token_scored_once():
    rng = np.random.default_rng(0)
    docs = [rng.integers(3, 50, size=n).tolist() for n in (0, 1, 6, 7, 8, 50)]
    for L in (2, 3, 7, 8, 64):
        windows = make_windows(docs, prefix=1, max_length=L)
        assert all(2 <= len(w) <= L and w[0] == 1 for w in windows)
        assert [t for w in windows for t in w[1:].tolist()] == [t for d in docs for t in d]
        assert len(windows) == sum(math.ceil(len(d) / (L - 1)) for d in docs)


def test_bucket_lengths():
    assert bucket_lengths(1024) == [64, 128, 256, 512, 1023]
    assert bucket_lengths(200) == [64, 128, 199]
    assert bucket_lengths(129) == [64, 128]
    assert bucket_lengths(65) == [64]
    assert bucket_lengths(8) == [7]


@pytest.mark.parametrize("max_length,batch_size", [(8, 1), (8, 3), (200, 2), (1024, 8)])
def test_batches_cover_every_window_once_and_padding_is_never_valid(max_length, batch_size):
    rng = np.random.default_rng(max_length + batch_size)
    windows = [
        rng.integers(1, 1000, size=int(n)).astype(np.int32)
        for n in rng.integers(2, max_length + 1, size=37)
    ]
    seen = []
    n_valid = 0
    buckets = bucket_lengths(max_length)
    for inputs, targets, valid in batches(windows, max_length, batch_size):
        B, T = inputs.shape
        assert targets.shape == valid.shape == (B, T) and valid.dtype == bool
        assert T in buckets
        assert B & (B - 1) == 0  # a power of two
        assert B == 1 or B * T <= batch_size * (max_length - 1)
        n = valid.sum(axis=1)
        # valid is a prefix of each row; everything after it is padding, zero, and never counted
        assert np.array_equal(valid, np.arange(T)[None, :] < n[:, None])
        assert not inputs[~valid].any() and not targets[~valid].any()
        n_valid += int(valid.sum())
        for r in range(B):
            if n[r] == 0:
                continue
            # inputs and targets are the same window shifted by one
            assert np.array_equal(inputs[r, 1 : n[r]], targets[r, : n[r] - 1])
            seen.append((inputs[r, 0], *targets[r, : n[r]].tolist()))
            # the smallest bucket that fits
            assert T == next(b for b in buckets if b >= n[r])
    assert Counter(seen) == Counter(tuple(w.tolist()) for w in windows)
    assert n_valid == sum(len(w) - 1 for w in windows)


# ------------------------------------------------------------------------------ against the reference
ALPHABET = list("abcdefghijklmnopqrstuvwxyz") + ["é", "ß", "ö"]


def _documents(seed: int, n: int) -> list[str]:
    rng = np.random.default_rng(seed)
    docs = []
    for _ in range(n):
        words = ["".join(rng.choice(ALPHABET, size=rng.integers(1, 8))) for _ in range(rng.integers(1, 120))]
        docs.append(" ".join(words) + ".")
    return docs


def _write_tiny_hf_dir(out: Path, *, bos: bool = True) -> None:
    """A random llama (vocab 101) with a BPE tokenizer trained to fit it, as an ordinary HF directory."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    model = build_torch_model("llama-tied")
    model.save_pretrained(out)
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    specials = ["<unk>", "<s>", "</s>"]
    tok.train_from_iterator(
        _documents(123, 200) + [" ".join(ALPHABET) + " ."],
        trainers.BpeTrainer(vocab_size=model.config.vocab_size, special_tokens=specials, show_progress=False),
    )
    assert tok.get_vocab_size() <= model.config.vocab_size
    tok.save(str(out / "tokenizer.json"))
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": "</s>", "unk_token": "<unk>"}
    if bos:
        config["bos_token"] = "<s>"
    (out / "tokenizer_config.json").write_text(json.dumps(config))


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("bpb")
    _write_tiny_hf_dir(root / "with-bos", bos=True)
    # The same model and tokenizer; only the tokenizer config stops naming a BOS token.
    shutil.copytree(root / "with-bos", root / "eos-only")
    config = json.loads((root / "eos-only" / "tokenizer_config.json").read_text())
    del config["bos_token"]
    (root / "eos-only" / "tokenizer_config.json").write_text(json.dumps(config))
    return {True: root / "with-bos", False: root / "eos-only"}


DOCS = _documents(7, 6) + ["ab"]  # a one-window document too


def test_tiny_setup_spans_windows_and_buckets(tiny_dirs):
    loaded = load_model(str(tiny_dirs[True]))
    lengths = [len(ids) for ids in loaded.tokenizer.encode_batch(DOCS)]
    assert max(lengths) > 2 * 199 and min(lengths) < 7  # several windows at L=200, and a short one
    windows = make_windows(loaded.tokenizer.encode_batch(DOCS), 1, 200)
    used = {next(b for b in bucket_lengths(200) if b >= len(w) - 1) for w in windows}
    assert used == {64, 128, 199}  # every bucket of L=200 holds windows
    assert loaded.tokenizer.unk_id is not None
    assert loaded.tokenizer.unk_id not in {t for ids in loaded.tokenizer.encode_batch(DOCS) for t in ids}


@pytest.mark.parametrize("max_length", [8, 16, 200])
def test_bits_per_byte_equals_torch_reference(tiny_dirs, max_length):
    loaded = load_model(str(tiny_dirs[True]))
    assert loaded.tokenizer.prefix_id() == loaded.tokenizer.tokenizer.token_to_id("<s>")
    ours = bits_per_byte(loaded, DOCS, max_length=max_length, batch_size=2, progress=False)
    ref = torch_bits_per_byte(str(tiny_dirs[True]), DOCS, max_length, threads=1)
    assert ours.tokens == ref["tokens"] and ours.bytes == ref["bytes"] == sum(len(d.encode()) for d in DOCS)
    assert ours.bytes > sum(len(d) for d in DOCS)  # UTF-8 bytes, not characters
    assert ours.documents == len(DOCS)
    assert ours.windows == sum(math.ceil(n / (max_length - 1)) for n in map(len, loaded.tokenizer.encode_batch(DOCS)))
    assert ours.bits_per_byte == pytest.approx(ref["bits_per_byte"], rel=1e-5)
    assert ours.nll_nats == pytest.approx(ref["nll_nats"], rel=1e-5)
    # a random model over ~100 tokens: about ln(100) nats a token
    assert 3.0 < ours.nll_nats / ours.tokens < 6.0


def test_prefix_falls_back_to_eos(tiny_dirs):
    loaded = load_model(str(tiny_dirs[False]))
    assert loaded.tokenizer.bos_id is None
    assert loaded.tokenizer.prefix_id() == loaded.tokenizer.eos_id == loaded.tokenizer.tokenizer.token_to_id("</s>")
    L = 16
    ours = bits_per_byte(loaded, DOCS, max_length=L, batch_size=4, progress=False)
    ref = torch_bits_per_byte(str(tiny_dirs[False]), DOCS, L, threads=1)
    assert ours.bits_per_byte == pytest.approx(ref["bits_per_byte"], rel=1e-5)
    # same model and text, another prefix: the first token of every window is scored differently
    with_bos = bits_per_byte(load_model(str(tiny_dirs[True])), DOCS, max_length=L, batch_size=4, progress=False)
    assert with_bos.tokens == ours.tokens and with_bos.bits_per_byte != pytest.approx(ours.bits_per_byte, rel=1e-6)


def test_no_documents_raises(tiny_dirs):
    with pytest.raises(ZettError, match="no documents"):
        bits_per_byte(load_model(str(tiny_dirs[True])), [], max_length=8, progress=False)


def test_as_dict_has_the_cli_fields():
    from zett_jax.eval.bpb import BpbResult

    r = BpbResult(bits_per_byte=1.5, nll_nats=10.0, tokens=6, bytes=12, documents=2, windows=3, max_length=8,
                  seconds=2.0)
    d = r.as_dict()
    assert d["tokens_per_byte"] == 0.5 and d["tokens_per_second"] == 3.0
    assert {"bits_per_byte", "tokens", "bytes", "documents"} <= d.keys()


# ----------------------------------------------------------------------------------------- text files
def test_paragraphs_split_on_blank_lines(tmp_path):
    f = tmp_path / "t.txt"
    f.write_bytes("  first line\nstill first \n\nsecond\n \t \nthird\r\n\r\nfourth\n\n\n\n".encode())
    assert read_documents(f) == ["first line\nstill first", "second", "third", "fourth"]


def test_jsonl_documents(tmp_path):
    f = tmp_path / "d.jsonl"
    f.write_text('{"text": " one "}\n\n{"text": "two\\n\\nstill two", "id": 3}\n{"text": "   "}\n', encoding="utf-8")
    assert read_documents(f) == ["one", "two\n\nstill two"]


def test_jsonl_missing_text_names_the_line(tmp_path):
    f = tmp_path / "d.jsonl"
    f.write_text('{"text": "ok"}\n{"body": "no text field"}\n')
    with pytest.raises(ZettError, match=re.escape(f"{f}:2:") + ".*'text'"):
        read_documents(f)
    f.write_text('{"text": "ok"}\n{"text": "ok"}\nnot json\n')
    with pytest.raises(ZettError, match=re.escape(f"{f}:3:") + " not a JSON object"):
        read_documents(f)
    f.write_text('{"text": 5}\n')
    with pytest.raises(ZettError, match=re.escape(f"{f}:1:")):
        read_documents(f)


@pytest.mark.parametrize("content", [b"", b"\n\n  \n", b'{"text": ""}\n'])
def test_empty_file_raises_naming_it(tmp_path, content):
    f = tmp_path / ("e.jsonl" if content.startswith(b"{") else "e.txt")
    f.write_bytes(content)
    with pytest.raises(ZettError, match=re.escape(str(f)) + ".*no non-empty documents"):
        read_documents(f)


def test_non_utf8_file_raises_naming_it(tmp_path):
    f = tmp_path / "latin1.txt"
    f.write_bytes("first\n\ncaf".encode() + b"\xe9 au lait\n")
    with pytest.raises(ZettError, match=re.escape(str(f)) + r".*not UTF-8.*offset 10, line 3"):
        read_documents(f)


def test_resolve_data_path_missing_file(tmp_path):
    with pytest.raises(ZettError, match="no such data file"):
        resolve_data_path(str(tmp_path / "nope.txt"))
    with pytest.raises(ZettError, match="not a corpus"):
        resolve_data_path("smollm2-135m")


def test_take_prefix():
    docs = ["aaaa", "bb", "cccccc", "d"]
    assert take_prefix(docs, max_documents=2) == ["aaaa", "bb"]
    assert take_prefix(docs, max_bytes=5) == ["aaaa", "bb"]  # the document that crosses the budget is kept
    assert take_prefix(docs, max_bytes=4) == ["aaaa"]
    assert take_prefix(["é" * 3, "x"], max_bytes=6) == ["é" * 3]  # bytes, not characters
    assert take_prefix(docs, max_documents=3, max_bytes=100) == docs[:3]


def test_take_prefix_cut_keeps_within_budget_on_character_boundaries():
    from zett_jax.data.text import take_prefix

    docs = ["aaaa", "bbbbbb", "cc"]
    assert take_prefix(docs, max_bytes=7) == ["aaaa", "bbbbbb"]
    assert take_prefix(docs, max_bytes=7, cut=True) == ["aaaa", "bbb"]
    assert take_prefix(["aaaa", "bbb"], max_bytes=7, cut=True) == ["aaaa", "bbb"]
    # "é" is two bytes: a 3-byte budget keeps one whole character, never half of one
    assert take_prefix(["éé"], max_bytes=3, cut=True) == ["é"]
