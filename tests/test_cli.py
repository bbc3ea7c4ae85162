"""The ``zett`` command: user errors are one line on stderr and exit status 2; eval and export work.

Most cases call ``zett_jax.cli.main`` in-process (fast); one runs the installed console script, to pin
what a user's shell sees.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from test_bpb import _documents, _write_tiny_hf_dir  # noqa: E402  (the tiny llama + BPE tokenizer dir)

from zett_jax import assets  # noqa: E402
from zett_jax.cli import main  # noqa: E402


def run_error(capsys, argv: list[str], *, match: str) -> str:
    """Run ``zett argv``; it must exit 2 with exactly one line on stderr, containing ``match``."""
    rc = main(argv)
    out, err = capsys.readouterr()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2, (rc, out, err)
    assert len(lines) == 1, err
    assert lines[0].startswith("zett: error: ") and match in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("cli") / "tiny"
    _write_tiny_hf_dir(d)
    return d


@pytest.fixture
def model_copy(tiny_dir, tmp_path) -> Path:
    d = tmp_path / "model"
    shutil.copytree(tiny_dir, d)
    return d


@pytest.fixture
def text_file(tmp_path) -> Path:
    f = tmp_path / "text.txt"
    f.write_text("\n\n".join(_documents(3, 3)) + "\n", encoding="utf-8")
    return f


# ------------------------------------------------------------------------------------------- errors
def test_unknown_asset_name(capsys):
    line = run_error(capsys, ["assets", "fetch", "smollm-135m"], match="unknown asset 'smollm-135m'")
    assert "smollm2-135m" in line  # a close match is suggested
    run_error(capsys, ["eval", "--model", "smollm2-135m", "--data", "wiki-english"], match="wiki-english")


def test_missing_data_file(capsys, tiny_dir, tmp_path):
    missing = tmp_path / "nope.txt"
    run_error(capsys, ["eval", "--model", str(tiny_dir), "--data", str(missing)], match=f"{missing}: no such data file")


def test_non_utf8_data_file(capsys, tiny_dir, tmp_path):
    f = tmp_path / "latin1.txt"
    f.write_bytes(b"caf\xe9\n")
    run_error(capsys, ["eval", "--model", str(tiny_dir), "--data", str(f)], match=f"{f}: not UTF-8")


def test_config_missing_required_key(capsys, model_copy):
    cfg = json.loads((model_copy / "config.json").read_text())
    del cfg["hidden_size"]
    (model_copy / "config.json").write_text(json.dumps(cfg))
    run_error(capsys, ["generate", "--model", str(model_copy), "--prompt", "ab"],
              match="required key 'hidden_size' is missing")


def test_unsupported_architecture(capsys, model_copy):
    cfg = json.loads((model_copy / "config.json").read_text())
    cfg["model_type"] = "bert"
    (model_copy / "config.json").write_text(json.dumps(cfg))
    line = run_error(capsys, ["generate", "--model", str(model_copy), "--prompt", "ab"],
                     match="model_type 'bert' is not supported")
    assert str(model_copy) in line


def test_truncated_safetensors(capsys, model_copy):
    f = model_copy / "model.safetensors"
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2])
    run_error(capsys, ["generate", "--model", str(model_copy), "--prompt", "ab"],
              match=f"{f}: not a valid safetensors file")
    f.write_bytes(b"\x00" * 64)
    run_error(capsys, ["generate", "--model", str(model_copy), "--prompt", "ab"], match=str(f))


def test_corrupt_gguf_and_unknown_model_file(capsys, tmp_path):
    from test_gguf_import import torch_model, write_gguf

    good = tmp_path / "tiny.gguf"
    write_gguf(good, torch_model("llama-tied"), "llama")
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(good.read_bytes()[:1000])
    run_error(capsys, ["generate", "--model", str(cut), "--prompt", "ab"], match=f"{cut}: not a readable GGUF file")
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    run_error(capsys, ["generate", "--model", str(notes), "--prompt", "ab"],
              match=f"{notes}: expected a .gguf file or a Hugging Face model directory")


def test_tokenizer_larger_than_embedding_table(capsys, model_copy):
    import tokenizers

    tok = tokenizers.Tokenizer.from_file(str(model_copy / "tokenizer.json"))
    rows = json.loads((model_copy / "config.json").read_text())["vocab_size"]
    tok.add_tokens([f"extra{i}" for i in range(rows + 5 - tok.get_vocab_size())])
    tok.save(str(model_copy / "tokenizer.json"))
    run_error(capsys, ["generate", "--model", str(model_copy), "--prompt", "ab"],
              match=f"the tokenizer has {rows + 5} tokens but the embedding table only {rows} rows")


def test_export_into_non_empty_dir_needs_overwrite(capsys, tiny_dir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    run_error(capsys, ["export", "--model", str(tiny_dir), "--out", str(out)], match="pass --overwrite")
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_unreachable_registry(capsys, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("ZETT_CACHE", str(cache))
    calls = []

    def offline(cmd, *, cwd=None):
        calls.append(cmd)
        return subprocess.CompletedProcess(
            cmd, 1, "", "WARNING: Retrying after connection broken by 'NewConnectionError: [Errno 101] "
            "Network is unreachable'\nERROR: Could not find a version that satisfies the requirement\n"
        )

    monkeypatch.setattr(assets, "_run", offline)
    rc = main(["assets", "fetch", "lee-news"])
    _, err = capsys.readouterr()
    assert rc == 2 and calls and "pip" in calls[0] and "download" in calls[0]
    errors = [ln for ln in err.splitlines() if ln.startswith("zett: error:")]
    assert len(errors) == 1 and err.strip().splitlines()[-1] == errors[0]  # progress lines may come before
    assert "gensim==4.4.0" in errors[0] and "lee-news" in errors[0], errors[0]
    assert "Traceback" not in err
    assert not (cache / "corpora" / "lee-news").exists()


def test_console_script_reports_one_line(tmp_path):
    """The installed ``zett`` entry point, in a fresh process: status 2, one stderr line, no traceback."""
    zett = Path(sys.executable).parent / "zett"
    cmd = [str(zett)] if zett.is_file() else [sys.executable, "-m", "zett_jax.cli"]
    missing = tmp_path / "missing.jsonl"
    res = subprocess.run(cmd + ["eval", "--model", "smollm2-135m", "--data", str(missing)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2, res
    assert res.stderr.strip().splitlines() == [f"zett: error: {missing}: no such data file or corpus asset "
                                               "(try `zett assets list`)"]
    assert res.stdout == ""


# -------------------------------------------------------------------------------------- eval, export
def test_eval_json_last_line(capsys, tiny_dir, text_file):
    rc = main(["eval", "--model", str(tiny_dir), "--data", str(text_file), "--max-length", "16", "--json",
               "--no-progress"])
    out, _ = capsys.readouterr()
    assert rc == 0
    result = json.loads(out.strip().splitlines()[-1])
    assert {"bits_per_byte", "tokens", "bytes", "documents", "tokens_per_byte"} <= result.keys()
    assert result["documents"] == 3
    assert result["bytes"] == sum(len(d.encode()) for d in _documents(3, 3))
    assert result["tokens_per_byte"] == pytest.approx(result["tokens"] / result["bytes"])
    assert 0 < result["bits_per_byte"] < 10 and result["max_length"] == 16


def test_interrupted_export_leaves_nothing(capsys, tiny_dir, tmp_path, monkeypatch):
    import zett_jax.convert.hf as hf_io

    def one_file_then_interrupt(out_dir, tensors, max_shard_bytes=0):
        (Path(out_dir) / "model-00001-of-00002.safetensors").write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(hf_io, "write_tensors", one_file_then_interrupt)
    parent = tmp_path / "exports"
    parent.mkdir()
    out = parent / "new"
    rc = main(["export", "--model", str(tiny_dir), "--out", str(out)])
    assert rc == 130 and "interrupted" in capsys.readouterr().err
    assert not out.exists()
    assert list(parent.iterdir()) == []  # no partial directory left beside it either

    # Replacing an existing export: the old one survives the interruption untouched.
    out.mkdir()
    (out / "config.json").write_text("{}")
    rc = main(["export", "--model", str(tiny_dir), "--out", str(out), "--overwrite"])
    assert rc == 130
    assert sorted(p.name for p in parent.iterdir()) == ["new"]
    assert [p.name for p in out.iterdir()] == ["config.json"] and (out / "config.json").read_text() == "{}"


def test_export_loads_in_transformers_with_same_logits(capsys, tiny_dir, tmp_path):
    import transformers

    out = tmp_path / "exported"
    assert main(["export", "--model", str(tiny_dir), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(out)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left

    src = transformers.AutoModelForCausalLM.from_pretrained(tiny_dir, attn_implementation="eager").eval()
    got = transformers.AutoModelForCausalLM.from_pretrained(out, attn_implementation="eager").eval()
    toks = torch.from_numpy(np.random.default_rng(0).integers(0, src.config.vocab_size, size=(2, 13))).long()
    with torch.no_grad():
        assert torch.allclose(got(toks).logits, src(toks).logits, atol=1e-5, rtol=0)
    tok_src = transformers.AutoTokenizer.from_pretrained(tiny_dir)
    tok_out = transformers.AutoTokenizer.from_pretrained(out)
    text = _documents(5, 1)[0]
    assert tok_out(text, add_special_tokens=False)["input_ids"] == tok_src(text, add_special_tokens=False)["input_ids"]
    assert (tok_out.bos_token, tok_out.eos_token) == (tok_src.bos_token, tok_src.eos_token) == ("<s>", "</s>")

    # Exporting again over it needs --overwrite, and then works.
    assert main(["export", "--model", str(tiny_dir), "--out", str(out), "--overwrite"]) == 0
    assert (out / "config.json").is_file()


HYPERNET_CONFIG = Path(__file__).resolve().parents[1] / "experiments" / "hypernet" / "smollm2_cpu.py"


def test_hypernet_train_rejects_bad_configs_before_any_work(capsys, tmp_path):
    run_error(capsys, ["hypernet", "train", "--config", str(tmp_path / "missing.py")], match="no such file")
    run_error(capsys, ["hypernet", "train", "--config", str(HYPERNET_CONFIG), "train.no_such_key=1"],
              match="no_such_key")
    no_fn = tmp_path / "cfg.py"
    no_fn.write_text("x = 1\n")
    run_error(capsys, ["hypernet", "train", "--config", str(no_fn)], match="get_config")
    bad_json = tmp_path / "cfg.json"
    bad_json.write_text("{not json")
    run_error(capsys, ["hypernet", "train", "--config", str(bad_json)], match="not valid JSON")


def test_transplant_hypernet_needs_a_hypernet_directory(capsys, tiny_dir, tmp_path):
    run_error(capsys, ["transplant", "--model", str(tiny_dir), "--tokenizer", str(tiny_dir), "--method",
                       "hypernet", "--out", str(tmp_path / "o")], match="--hypernet")
    run_error(capsys, ["transplant", "--model", str(tiny_dir), "--tokenizer", str(tiny_dir), "--method",
                       "hypernet", "--hypernet", str(tmp_path), "--out", str(tmp_path / "o")],
              match="not a hypernetwork directory")


def test_hypernet_export_refuses_a_non_run_directory(capsys, tmp_path):
    run_error(capsys, ["hypernet", "export", "--hypernet", str(tmp_path), "--out", str(tmp_path / "o")],
              match="not a hypernetwork directory")
