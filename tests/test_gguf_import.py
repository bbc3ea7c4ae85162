"""GGUF -> zett_jax: tiny random HF models written as llama.cpp's converter lays them out, read back.

The files are written here with ``gguf.GGUFWriter`` exactly as ``convert_hf_to_gguf.py`` would: llama
Q/K rows permuted for adjacent-pair RoPE, Gemma 3 norms stored with their ``+1``, llama.cpp tensor names
and metadata keys. Reading them back must give the HF state dict (exactly, for F32) and the torch logits.
"""

from __future__ import annotations

import re

import gguf
import jax
import numpy as np
import pytest
from flax import nnx

torch = pytest.importorskip("torch")

from hf_tiny import TINY  # noqa: E402

from zett_jax.convert import gguf as gguf_io  # noqa: E402
from zett_jax.convert.gguf import read_gguf_model, unpermute_qk  # noqa: E402
from zett_jax.convert.hf import model_from_tensors  # noqa: E402
from zett_jax.errors import ZettError  # noqa: E402
from zett_jax.models.config import DecoderConfig  # noqa: E402

# Our own configs (not hf_tiny.CONFIGS: adding to that dict would change test_hf_roundtrip's parameters).
# Gemma 3 in GGUF has llama.cpp's fixed pattern of 5 sliding layers then 1 global, and 1/sqrt(head_dim).
GGUF_CONFIGS = {
    "llama-tied": ("llama", dict(model_type="llama", tie_word_embeddings=True, rope_theta=10000.0, **TINY)),
    "llama-untied": ("llama", dict(model_type="llama", tie_word_embeddings=False, rope_theta=100000.0, **TINY)),
    "qwen2-bias": ("qwen2", dict(model_type="qwen2", tie_word_embeddings=False, rope_theta=1000000.0, **TINY)),
    "gemma3": (
        "gemma3",
        dict(
            model_type="gemma3_text",
            tie_word_embeddings=True,
            head_dim=32,
            query_pre_attn_scalar=32,
            sliding_window=4,
            layer_types=["sliding_attention"] * 5 + ["full_attention"],
            rope_theta=1000000.0,
            rope_local_base_freq=10000.0,
            **{**TINY, "num_hidden_layers": 6, "num_attention_heads": 2, "num_key_value_heads": 1},
        ),
    ),
}

_LAYER = {
    "input_layernorm": "attn_norm",
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "self_attn.q_norm": "attn_q_norm",
    "self_attn.k_norm": "attn_k_norm",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
    "pre_feedforward_layernorm": "ffn_norm",
    "post_feedforward_layernorm": "post_ffw_norm",
}


def torch_model(name: str, seed: int = 0):
    """A random transformers model with random norms and biases (as hf_tiny.build_torch_model)."""
    import transformers

    cfg = dict(GGUF_CONFIGS[name][1])
    config = transformers.AutoConfig.for_model(cfg.pop("model_type"), **cfg)
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    with torch.no_grad():
        for _, p in model.named_parameters():
            if p.ndim == 1:
                p.copy_(torch.randn_like(p) * 0.1 + (0.0 if name == "gemma3" else 1.0))
            else:
                p.normal_(0.0, 0.05)
    return model.eval()


def llama_cpp_permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """``LlamaModel.permute`` of llama.cpp's convert_hf_to_gguf.py."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def gguf_name(hf: str, arch: str) -> str:
    top = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
           "lm_head.weight": "output.weight"}
    if hf in top:
        return top[hf]
    m = re.match(r"model\.layers\.(\d+)\.(.+)\.(weight|bias)$", hf)
    layer, module, suffix = m.groups()
    if module == "post_attention_layernorm":
        kind = "post_attention_norm" if arch == "gemma3" else "ffn_norm"
    else:
        kind = _LAYER[module]
    return f"blk.{layer}.{kind}.{suffix}"


def write_gguf(path, model, arch: str, *, quant: gguf.GGMLQuantizationType | None = None,
               with_tensors: bool = True, vocab: bool = True) -> dict[str, np.ndarray]:
    """Write ``model`` as llama.cpp would; returns the HF state dict (what a reader must give back)."""
    c = model.config
    sd = {k: v.detach().numpy().astype(np.float32) for k, v in model.state_dict().items()}
    if c.tie_word_embeddings:
        sd.pop("lm_head.weight", None)
    w = gguf.GGUFWriter(str(path), arch)
    w.add_block_count(c.num_hidden_layers)
    w.add_context_length(c.max_position_embeddings)
    w.add_embedding_length(c.hidden_size)
    w.add_feed_forward_length(c.intermediate_size)
    w.add_head_count(c.num_attention_heads)
    w.add_head_count_kv(c.num_key_value_heads)
    w.add_layer_norm_rms_eps(c.rms_norm_eps)
    rope = c.rope_parameters
    w.add_rope_freq_base((rope["full_attention"] if arch == "gemma3" else rope)["rope_theta"])
    if arch == "gemma3":
        w.add_key_length(c.head_dim)
        w.add_value_length(c.head_dim)
        w.add_sliding_window(c.sliding_window)
    else:
        w.add_rope_dimension_count(c.hidden_size // c.num_attention_heads)
    if vocab:
        w.add_tokenizer_model("gpt2")
        w.add_token_list([f"t{i}" for i in range(c.vocab_size)])
        w.add_bos_token_id(1)
        w.add_eos_token_id(2)
    if with_tensors:
        for hf, arr in sd.items():
            if arch == "llama" and hf.endswith("q_proj.weight"):
                arr = llama_cpp_permute(arr, c.num_attention_heads)
            elif arch == "llama" and hf.endswith("k_proj.weight"):
                arr = llama_cpp_permute(arr, c.num_key_value_heads)
            if arch == "gemma3" and hf.endswith("norm.weight"):
                arr = arr + 1.0
            if quant is not None and arr.ndim == 2:  # llama.cpp keeps 1-D tensors in F32
                w.add_tensor(gguf_name(hf, arch), gguf.quants.quantize(arr, quant), raw_dtype=quant)
            else:
                w.add_tensor(gguf_name(hf, arch), np.ascontiguousarray(arr))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return sd


def tokens(vocab: int, B: int = 2, T: int = 19, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, vocab, size=(B, T), dtype=np.int32)


def import_and_run(path, toks):
    hf, tensors, _ = read_gguf_model(path)
    config = DecoderConfig.from_hf(hf, source=str(path))
    model, emb = model_from_tensors(config, tensors, source=str(path))
    # Jitted: one compile is several times faster on CPU than op-by-op dispatch of a first eager call.
    graphdef, state = nnx.split(model)
    forward = jax.jit(lambda state, emb, toks: nnx.merge(graphdef, state)(emb, toks))
    return hf, tensors, config, np.asarray(forward(state, emb, toks))


def torch_logits(model, toks) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(toks).long()).logits.numpy()


# --------------------------------------------------------------------------------------- F32 exact
@pytest.mark.parametrize("name", sorted(GGUF_CONFIGS))
def test_f32_gguf_gives_hf_tensors_and_torch_logits(name, tmp_path):
    arch = GGUF_CONFIGS[name][0]
    tm = torch_model(name)
    path = tmp_path / f"{name}.gguf"
    sd = write_gguf(path, tm, arch)
    toks = tokens(tm.config.vocab_size)
    hf, tensors, config, ours = import_and_run(path, toks)

    assert tensors.keys() == sd.keys()
    for k in sd:
        want = sd[k]
        if arch == "gemma3" and k.endswith("norm.weight"):
            # The file holds x + 1 in float32; x + 1 - 1 is all the bits there are (within 2**-24 of x).
            assert np.max(np.abs(tensors[k] - want)) <= 2.0**-23, k
            want = (want + np.float32(1)) - np.float32(1)
        assert tensors[k].dtype == np.float32 and np.array_equal(tensors[k], want), k
    assert config.tie_word_embeddings == tm.config.tie_word_embeddings
    if arch == "gemma3":
        assert config.layer_types == tuple(tm.config.layer_types)
        assert hf["query_pre_attn_scalar"] == tm.config.head_dim
        assert config.sliding_window == tm.config.sliding_window
    ref = torch_logits(tm, toks)
    assert ours.shape == ref.shape
    assert np.max(np.abs(ours - ref)) <= 1e-4, np.max(np.abs(ours - ref))


def test_without_unpermute_llama_logits_differ(tmp_path, monkeypatch):
    """The Q/K fix-up is what makes the llama case pass (the check above could not pass by accident)."""
    tm = torch_model("llama-tied")
    path = tmp_path / "m.gguf"
    write_gguf(path, tm, "llama")
    monkeypatch.setattr(gguf_io, "unpermute_qk", lambda w, n: w)
    toks = tokens(tm.config.vocab_size)
    *_, ours = import_and_run(path, toks)
    assert np.max(np.abs(ours - torch_logits(tm, toks))) > 1e-3


@pytest.mark.parametrize("name", ["llama-untied", "gemma3"])
def test_q8_0_gguf_is_close(name, tmp_path):
    arch = GGUF_CONFIGS[name][0]
    tm = torch_model(name)
    path = tmp_path / f"{name}.q8.gguf"
    sd = write_gguf(path, tm, arch, quant=gguf.GGMLQuantizationType.Q8_0)
    toks = tokens(tm.config.vocab_size, T=24)
    _, tensors, _, ours = import_and_run(path, toks)
    for k in sd:  # quantised: near, not equal (Q8_0 error is at most half a step of max|block|/127)
        err = np.max(np.abs(tensors[k] - sd[k]))
        assert err <= np.max(np.abs(sd[k])) / 127, (k, err)
    assert any(not np.array_equal(tensors[k], sd[k]) for k in sd)
    ref = torch_logits(tm, toks)
    # 8-bit weights through 3 or 6 random layers: a few percent of the logits' scale (measured 1.6% for
    # llama, 3.3% for gemma3); a wrong layout would be about 140%. Random models have near-ties, hence
    # argmax agreement on most positions rather than all (measured 94% and 88%).
    rel_rms = np.sqrt(np.mean((ours - ref) ** 2) / np.mean(ref**2))
    assert 0 < rel_rms < 0.1, rel_rms
    assert np.mean(ours.argmax(-1) == ref.argmax(-1)) >= 0.8


# ------------------------------------------------------------------------------------ unpermute_qk
@pytest.mark.parametrize("n_heads,head_dim,cols", [(1, 2, 3), (4, 8, 16), (3, 64, 5), (9, 64, 576), (2, 6, 0)])
def test_unpermute_qk_inverts_llama_cpp_permutation(n_heads, head_dim, cols):
    rng = np.random.default_rng(n_heads * 1000 + head_dim)
    shape = (n_heads * head_dim,) if cols == 0 else (n_heads * head_dim, cols)  # cols 0: a bias vector
    w = rng.standard_normal(shape).astype(np.float32)
    p = llama_cpp_permute(w, n_heads)
    assert np.array_equal(unpermute_qk(p, n_heads), w)
    if head_dim > 2:
        assert not np.array_equal(p, w)  # a real permutation, so the round trip means something


def test_unpermute_qk_hand_checked_example():
    """One head of dim 4: HF rotates pairs (0, 2), (1, 3); llama.cpp stores them adjacent: rows 0, 2, 1, 3."""
    hf = np.arange(4, dtype=np.float32)
    assert llama_cpp_permute(hf, 1).tolist() == [0, 2, 1, 3]
    assert unpermute_qk(np.array([0, 2, 1, 3], np.float32), 1).tolist() == [0, 1, 2, 3]
    # Two heads: the permutation stays inside each head.
    two = np.arange(8, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    assert unpermute_qk(two, 2)[:, 0].tolist() == [0, 2, 1, 3, 4, 6, 5, 7]


# ----------------------------------------------------------------------------------------- errors
@pytest.fixture(scope="module")
def small_gguf(tmp_path_factory):
    path = tmp_path_factory.mktemp("gguf") / "small.gguf"
    write_gguf(path, torch_model("llama-tied"), "llama")
    return path


@pytest.mark.parametrize("keep", [0.5, 30, 200, 2000, -4])
def test_truncated_file_raises_naming_it(small_gguf, tmp_path, keep):
    """Cut in the header, in the metadata, in the tensor infos, in the data, and 4 bytes short."""
    cut = tmp_path / "cut.gguf"
    data = small_gguf.read_bytes()
    cut.write_bytes(data[: int(len(data) * keep) if isinstance(keep, float) else keep])
    with pytest.raises(ZettError, match=re.escape(str(cut))):
        read_gguf_model(cut)


def test_non_gguf_file_raises_naming_it(tmp_path):
    bad = tmp_path / "notes.gguf"
    bad.write_text("this is not a GGUF file\n" * 10)
    with pytest.raises(ZettError, match=re.escape(str(bad))):
        read_gguf_model(bad)
    with pytest.raises(ZettError, match="no such GGUF file"):
        read_gguf_model(tmp_path / "missing.gguf")


def test_unsupported_architecture_raises(tmp_path):
    tm = torch_model("llama-tied")
    path = tmp_path / "falcon.gguf"
    write_gguf(path, tm, "falcon")
    with pytest.raises(ZettError, match=r"architecture 'falcon' is not supported") as e:
        read_gguf_model(path)
    assert str(path) in str(e.value)


def test_tensor_type_gguf_cannot_dequantize_raises(small_gguf, monkeypatch):
    def refuse(data, qtype):
        raise NotImplementedError(f"Dequantization for {qtype.name} is not yet implemented")

    monkeypatch.setattr(gguf.quants, "dequantize", refuse)
    with pytest.raises(ZettError, match=r"token_embd\.weight uses quantisation F32, which gguf cannot dequantize") as e:
        read_gguf_model(small_gguf)
    assert str(small_gguf) in str(e.value)


def test_vocabulary_only_file_raises(tmp_path):
    path = tmp_path / "vocab.gguf"
    write_gguf(path, torch_model("llama-tied"), "llama", with_tensors=False)
    with pytest.raises(ZettError, match="holds no tensors") as e:
        read_gguf_model(path)
    assert str(path) in str(e.value)


def test_missing_required_metadata_names_the_key(tmp_path):
    """No vocabulary at all (neither ``llama.vocab_size`` nor ``tokenizer.ggml.tokens``)."""
    path = tmp_path / "novocab.gguf"
    write_gguf(path, torch_model("llama-tied"), "llama", vocab=False)
    with pytest.raises(ZettError, match=r"lacks 'llama\.vocab_size'"):
        read_gguf_model(path)


def test_unexpected_tensor_is_named(tmp_path):
    path = tmp_path / "extra.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    for key, value in dict(block_count=1, embedding_length=8, feed_forward_length=8, head_count=2,
                           layer_norm_rms_eps=1e-5, vocab_size=4).items():
        getattr(w, f"add_{key}")(value)
    w.add_tensor("blk.0.mystery.weight", np.zeros((8, 8), np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(ZettError, match=r"unexpected tensor 'blk\.0\.mystery\.weight'"):
        read_gguf_model(path)
