"""HF -> zett_jax -> HF: same logits as PyTorch, exact tensors back, loadable by transformers."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hf_tiny import CONFIGS, build_torch_model  # noqa: E402

from zett_jax.convert.hf import model_from_tensors, read_config, read_safetensors, save_hf  # noqa: E402
from zett_jax.models.config import DecoderConfig  # noqa: E402


def _tokens(vocab: int, B: int = 2, T: int = 19, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, vocab, size=(B, T), dtype=np.int32)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_import_matches_torch_and_export_round_trips(name, tmp_path):
    import transformers

    torch_model = build_torch_model(name)
    src = tmp_path / "src"
    torch_model.save_pretrained(src)

    config = DecoderConfig.from_hf(read_config(src), source=str(src / "config.json"))
    tensors = read_safetensors(src)
    model, emb = model_from_tensors(config, tensors, source=str(src))
    tokens = _tokens(config.vocab_size)
    ours = np.asarray(model(emb, tokens))
    with torch.no_grad():
        ref = torch_model(torch.from_numpy(tokens).long()).logits.numpy()
    assert ours.shape == ref.shape
    assert np.max(np.abs(ours - ref)) <= 1e-4, np.max(np.abs(ours - ref))

    out = tmp_path / "out"
    save_hf(out, config, model, emb)
    back = read_safetensors(out)
    original = {k: v for k, v in tensors.items() if not (k == "lm_head.weight" and config.tie_word_embeddings)}
    assert back.keys() == original.keys()
    for k in original:
        assert back[k].dtype == original[k].dtype and np.array_equal(back[k], original[k]), k

    reloaded = transformers.AutoModelForCausalLM.from_pretrained(out, attn_implementation="eager").eval()
    with torch.no_grad():
        again = reloaded(torch.from_numpy(tokens).long()).logits.numpy()
    assert np.max(np.abs(again - ref)) <= 1e-5
