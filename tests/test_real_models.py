"""Real pretrained models (ASSETS.md), imported from their GGUF files: they behave, and they agree with
independent implementations (transformers' own GGUF loader; the torch bits-per-byte reference).

Slow: they use the cached assets (downloaded on first use) and run 135M/270M-parameter models on CPU.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from zett_jax import assets  # noqa: E402
from zett_jax.convert.hf import save_hf  # noqa: E402
from zett_jax.convert.load import load_model  # noqa: E402
from zett_jax.data.text import read_documents  # noqa: E402
from zett_jax.eval.bpb import bits_per_byte  # noqa: E402
from zett_jax.generate import greedy  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from bpb_torch import torch_bits_per_byte  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smollm2():
    return load_model("smollm2-135m")


def test_smollm2_knows_the_capital_of_france(smollm2):
    assert smollm2.config.num_layers == 30 and smollm2.config.vocab_size == 49152
    completion = greedy(smollm2, "The capital of France is", max_new_tokens=6)
    assert "Paris" in completion, completion


def test_smollm2_export_matches_torch_bits_per_byte(smollm2, tmp_path):
    out = save_hf(tmp_path / "smollm2-hf", smollm2.config, smollm2.model, smollm2.embeddings, smollm2.tokenizer)
    docs = read_documents(assets.fetch("lee-news"))[:3]
    ours = bits_per_byte(smollm2, docs, max_length=256, batch_size=4, progress=False)
    # threads=1: with the cores shared by other jobs, torch's thread pool is much slower than one thread.
    ref = torch_bits_per_byte(str(out), docs, 256, threads=1)
    assert ours.tokens == ref["tokens"] and ours.bytes == ref["bytes"]
    assert ours.tokens > 255  # more than one window
    assert ours.bits_per_byte == pytest.approx(ref["bits_per_byte"], rel=5e-3)
    # a real model on English news: well under a random model's ~15 bits per token
    assert 0.5 < ours.bits_per_byte < 1.5, ours.bits_per_byte


def test_gemma3_logits_match_transformers_gguf_loader():
    import transformers

    path = assets.fetch("gemma3-270m")
    ours = load_model(str(path))
    assert ours.config.num_layers == 18 and ours.config.layer_types[5] == "full_attention"
    ids = [ours.tokenizer.prefix_id()] + ours.tokenizer.encode_batch(["The quick brown fox jumps over the lazy dog."])[0]
    tokens_1xT = np.asarray([ids], np.int32)
    logits = np.asarray(ours.model(ours.embeddings, tokens_1xT))[0]
    del ours

    torch.set_num_threads(1)
    ref_model = transformers.AutoModelForCausalLM.from_pretrained(
        str(path.parent), gguf_file=path.name, dtype=torch.float32, attn_implementation="eager"
    ).eval()
    assert ref_model.config.query_pre_attn_scalar == 256 and ref_model.config.sliding_window == 512
    with torch.no_grad():
        ref = ref_model(torch.from_numpy(tokens_1xT).long()).logits[0].numpy()
    assert logits.shape == ref.shape
    diff = np.max(np.abs(logits - ref))
    assert diff < 1e-3, diff
    assert np.array_equal(logits.argmax(-1), ref.argmax(-1))


def test_shipped_hypernet_predicts_the_base_rows_of_shared_tokens(smollm2):
    """The committed hypernetwork is a trained one: for gpt-2 tokens that are one SmolLM2 token, its
    prediction is nearer to that token's own row than to any other row, for almost all tokens (an untrained
    one would be near none)."""
    from zett_jax.hypernet.apply import predict_embeddings, pretrained_hypernet
    from zett_jax.hypernet.train import restore_hypernet
    from zett_jax.tokenizers.load import resolve_tokenizer
    from zett_jax.tokenizers.overlap import decompose

    path = pretrained_hypernet("smollm2-135m")
    assert path is not None
    hypernet, meta = restore_hypernet(path, smollm2)
    assert meta["base_model"] == "smollm2-135m" and meta["dtype"] == "bfloat16"
    target = resolve_tokenizer("gpt-2")
    tables = predict_embeddings(hypernet, smollm2.embeddings, smollm2.tokenizer, target)
    dec = decompose(smollm2.tokenizer, target)
    shared = np.flatnonzero(dec.shared_V)[::37]
    pred = np.asarray(tables.input_VxD)[shared]
    base = np.asarray(smollm2.embeddings.input_VxD)
    nearest = np.argmin(((pred**2).sum(1)[:, None] - 2 * pred @ base.T + (base**2).sum(1)[None]), axis=1)
    hit_rate = float(np.mean(nearest == dec.pieces_VxS[shared, 0]))
    print(f"shipped hypernet: nearest-row hit rate {hit_rate:.3f} over {shared.size} shared gpt-2 tokens")
    assert hit_rate > 0.9, hit_rate
