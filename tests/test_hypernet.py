"""The tokenizer hypernetwork (ZeTT) on tiny configs: sampler, warm-up, sharding, resume, config errors."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from tok_tiny import SOURCE_TEXT, TARGET_TEXT, byte_level_bpe

from zett_jax import sharding
from zett_jax import train as shared
from zett_jax.convert.load import LoadedModel
from zett_jax.errors import ZettError
from zett_jax.hypernet import config as hconfig
from zett_jax.hypernet.apply import predict_embeddings
from zett_jax.hypernet.bench import time_split
from zett_jax.hypernet.data import TextBatches, hypernet_batch, pad_pieces, sampled_batches, subsample_vocabulary
from zett_jax.hypernet.losses import TRAINABLE, lm_and_aux_loss
from zett_jax.hypernet.model import HypernetConfig, source_table, identity_pieces
from zett_jax.hypernet.plot import read_metrics
from zett_jax.hypernet.sampler import SamplerConfig, TokenizerSampler
from zett_jax.hypernet.train import build_module, export_compact, make_step, restore_hypernet, train_from_config
from zett_jax.models.config import DecoderConfig
from zett_jax.models.decoder import init_embeddings, init_model
from zett_jax.tokenizers.overlap import decompose

CORPUS = [
    "the cat sat on the mat. the dog sat on the log, and the other cats stared at the dogs.",
    "def add(a, b):\n    return a + b\n\nprint(add(1, 2))  # three",
    "Der schnelle braune Fuchs springt über den faulen Hund. Straße, Größe, Äpfel!",
    "Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "naïve café 中文 字符 😀 tabs\tand  double  spaces\n\nnew paragraphs",
] * 8
UNSEEN = ["Ελληνικά γράμματα", "x = {'k': [1, 2.5e-3]}", "  leading and trailing  ", "\u0301combining", "日本語"]
SAMPLER = SamplerConfig(vocab_size=304, max_piece_length=8, cache_batches=2)  # 304 = 8 x 38 rows
HYPERNET = HypernetConfig(num_layers=1, hidden_size=32, num_heads=2, max_pieces=4)
OPT = shared.OptimizerConfig(learning_rate=3e-3, warmup_steps=1, eps=1e-3, weight_decay=0.0)


@pytest.fixture(scope="module")
def base() -> LoadedModel:
    tok = byte_level_bpe(SOURCE_TEXT + CORPUS, 320)
    cfg = DecoderConfig.from_hf(dict(
        model_type="llama", vocab_size=tok.vocab_size, hidden_size=32, intermediate_size=64,
        num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=False,
    ))
    return LoadedModel(cfg, init_model(cfg, 0), init_embeddings(cfg, jax.random.key(1)), tok, "tiny")


def _config(tmp_path, **train) -> hconfig.ExperimentConfig:
    return hconfig.ExperimentConfig(
        train=hconfig.TrainConfig(base_model="tiny", out_dir=str(tmp_path), warmup_tokens=64, **train),
        data=hconfig.DataConfig(corpora=("tiny",), batch_size=8, block_size=16),
        sampler=SAMPLER, hypernet=HYPERNET, optimizer=OPT,
    )


def test_sampled_tokenizer_is_lossless_and_exact_size(base):
    sampler = TokenizerSampler(base.tokenizer, SAMPLER)
    tok = sampler.sample(CORPUS, np.random.default_rng(0))
    assert tok.vocab_size == SAMPLER.vocab_size
    assert tok.tokenizer.id_to_token(tok.bos_id) == base.tokenizer.token(base.tokenizer.bos_id)
    for text in CORPUS + UNSEEN:
        ids = tok.encode_batch([text])[0]
        assert tok.tokenizer.decode(ids) == text
    assert len(tok.encode_batch(["the cat sat on the mat."])[0]) < len("the cat sat on the mat.")


def test_sampler_noise_and_determinism(base):
    def vocab(seed, noise_mean):
        cfg = dataclasses.replace(SAMPLER, noise_mean=noise_mean)
        return set(TokenizerSampler(base.tokenizer, cfg).sample(CORPUS, np.random.default_rng(seed)).tokenizer.get_vocab())

    assert vocab(0, 1e-2) == vocab(0, 1e-2)
    assert vocab(0, 1e-2) != vocab(1, 1e-2)
    assert vocab(0, 0.0) == vocab(1, 0.0)


def test_sampler_corpus_too_small(base):
    with pytest.raises(ZettError, match="too few"):
        TokenizerSampler(base.tokenizer, SamplerConfig(vocab_size=5000)).sample(["tiny text"], np.random.default_rng(0))


def test_config_errors_and_overrides(tmp_path):
    with pytest.raises(ZettError, match="unknown key 'train.stepz'"):
        hconfig.from_dict({"train": {"stepz": 3}})
    with pytest.raises(ZettError, match="train.steps"):
        hconfig.from_dict({"train": {"steps": "many"}})
    with pytest.raises(ZettError, match="readout"):
        hconfig.from_dict({"hypernet": {"readout": "last"}})
    with pytest.raises(ZettError, match="compute_dtype"):
        hconfig.apply_overrides(hconfig.ExperimentConfig(), ["train.compute_dtype=float8"])
    cfg = hconfig.apply_overrides(hconfig.ExperimentConfig(), ["train.steps=7", "data.corpora=['wiki-en']"])
    assert cfg.train.steps == 7 and cfg.data.corpora == ("wiki-en",)
    assert cfg.optimizer_config().total_steps == cfg.train.warmup_phase_steps + 7


@nnx.jit
def _warmup_distance(hypernet, emb) -> jax.Array:
    pieces, mask = identity_pieces(jnp.arange(emb.input_VxD.shape[0]), hypernet.cfg.max_pieces)
    pred_in, pred_out = hypernet(source_table(emb.input_VxD, emb.output_VxD), pieces, mask)
    return jnp.square(pred_in - emb.input_VxD).sum(-1).mean() + jnp.square(pred_out - emb.output_VxD).sum(-1).mean()


def test_warmup_moves_predictions_to_base_rows(base, tmp_path):
    cfg = _config(tmp_path, warmup_phase_steps=30, steps=0, save_every=30)
    before = float(_warmup_distance(build_module(cfg, base).hypernet, base.embeddings))
    rows = train_from_config(cfg, base=base, documents=CORPUS, mesh=None)
    hypernet, meta = restore_hypernet(tmp_path, base)
    after = float(_warmup_distance(hypernet, base.embeddings))
    assert rows[-1]["loss"] < rows[0]["loss"]
    assert after < 0.5 * before, (before, after)
    assert meta["base_rows"] == base.embeddings.vocab_size
    assert (tmp_path / "loss_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [r["step"] for r in read_metrics(tmp_path / "metrics.jsonl")] == list(range(30))
    (tmp_path / "metrics.jsonl").write_text('{"step": 0}\nnot json\n')
    with pytest.raises(ZettError, match=r"metrics.jsonl:2: expected a JSON object"):
        read_metrics(tmp_path / "metrics.jsonl")


def test_sharded_step_equals_single_device(base, tmp_path):
    assert jax.device_count() == 8
    cfg = _config(tmp_path, warmup_phase_steps=2, steps=3)  # the resume test's: its compiled step is reused
    opt = cfg.optimizer_config()
    texts = TextBatches(CORPUS, 8, 16, 0)
    _, tok, batch, _ = next(sampled_batches(base.tokenizer, texts, SAMPLER, 16, HYPERNET.max_pieces, 0, 0))
    results = []
    for mesh in (None, sharding.make_mesh(data=8)):
        graphdef, state, frozen = shared.init_train_state(build_module(cfg, base), opt, TRAINABLE)
        if mesh is not None:
            state, frozen = sharding.shard(state, mesh), sharding.shard(frozen, mesh)
        step = make_step(graphdef, "lm", 0.5, opt, mesh=mesh, state=state, frozen=frozen, batch=batch)
        state, metrics = step(state, frozen, batch)
        results.append((jax.device_get(state.params), float(metrics.loss)))
    (p1, l1), (p8, l8) = results
    assert np.isclose(l1, l8, rtol=1e-5), (l1, l8)
    worst = max(jax.tree.leaves(jax.tree.map(lambda a, b: float(np.max(np.abs(a - b))), p1, p8)))
    assert worst < 1e-5, worst


def test_resume_after_kill_reproduces_losses(base, tmp_path):
    def run(d, **kw):
        cfg = _config(tmp_path / d, warmup_phase_steps=2, steps=3, save_every=1)
        return train_from_config(cfg, base=base, documents=CORPUS, mesh=None, **kw)

    full = run("full")
    first = run("killed", stop_after=3)
    rest = run("killed")
    assert [r["step"] for r in first + rest] == [r["step"] for r in full] == list(range(5))
    np.testing.assert_allclose([r["loss"] for r in rest], [r["loss"] for r in full[3:]], rtol=1e-6)


def test_nan_loss_stops_and_keeps_checkpoint(base, tmp_path):
    cfg = dataclasses.replace(_config(tmp_path, warmup_phase_steps=3, steps=0, save_every=1),
                              optimizer=dataclasses.replace(OPT, learning_rate=float("nan"), clip_norm=None))
    with pytest.raises(ZettError, match="kept"):
        train_from_config(cfg, base=base, documents=CORPUS, mesh=None)
    assert (tmp_path / "checkpoints" / "1").is_dir()


def test_predict_embeddings_for_a_new_tokenizer(base):
    cfg = _config("/tmp/unused")
    hypernet = build_module(cfg, base).hypernet
    target = byte_level_bpe(TARGET_TEXT, 300)
    a = predict_embeddings(hypernet, base.embeddings, base.tokenizer, target, batch_size=64)
    b = predict_embeddings(hypernet, base.embeddings, base.tokenizer, target, batch_size=1000)
    assert a.input_VxD.shape == (target.vocab_size, 32) and a.output_VxD.shape == a.input_VxD.shape
    np.testing.assert_allclose(a.input_VxD, b.input_VxD, atol=1e-5)
    # Grouping by decomposition length (padding cut away) computes what the full padded width computes.
    dec = decompose(base.tokenizer, target)
    assert dec.lengths_V.max() > 2 and (dec.lengths_V == 1).any()
    pieces, mask = pad_pieces(dec.pieces_VxS, dec.mask_VxS, HYPERNET.max_pieces)
    full_in, full_out = hypernet(source_table(base.embeddings.input_VxD, base.embeddings.output_VxD), pieces, mask)
    plain = ~dec.special_V
    np.testing.assert_allclose(a.input_VxD[plain], full_in[plain], atol=1e-5)
    np.testing.assert_allclose(a.output_VxD[plain], full_out[plain], atol=1e-5)
    c = predict_embeddings(hypernet, base.embeddings, base.tokenizer, target, copy_shared=True)
    shared = dec.shared_V
    np.testing.assert_array_equal(c.input_VxD[shared], base.embeddings.input_VxD[dec.pieces_VxS[shared, 0]])
    np.testing.assert_array_equal(c.output_VxD[~shared], a.output_VxD[~shared])
    np.testing.assert_array_equal(a.input_VxD[target.bos_id], base.embeddings.input_VxD[base.tokenizer.bos_id])
    assert np.isfinite(np.asarray(a.input_VxD)).all()
    wrong = dataclasses.replace(base.embeddings, input_VxD=base.embeddings.input_VxD[:-1])
    with pytest.raises(ZettError, match="made for a base table"):
        predict_embeddings(hypernet, wrong, base.tokenizer, target)


def test_batch_shapes_are_fixed_per_config(base):
    texts = TextBatches(CORPUS, 8, 16, 0)
    shapes = set()
    it = sampled_batches(base.tokenizer, texts, SAMPLER, 16, 4, 0, 0)
    for _ in range(2):
        _, tok, batch, _ = next(it)
        shapes.add(tuple(x.shape for x in jax.tree.leaves(batch)))
        assert batch.shared_V.any() and not batch.shared_V.all()
    assert len(shapes) == 1


def test_token_subsample_keeps_the_batch_and_reindexes_it(base):
    texts = TextBatches(CORPUS, 2, 16, 0)
    texts_0 = texts(0)
    sampler = TokenizerSampler(base.tokenizer, SAMPLER)
    tok = sampler.sample(texts_0, np.random.default_rng(0))
    full = hypernet_batch(base.tokenizer, tok, texts_0, 16, 4)
    sub = hypernet_batch(base.tokenizer, tok, texts_0, 16, 4, token_subsample=96, rng=np.random.default_rng(7))
    ids_N = subsample_vocabulary(full.inputs_BxT, full.targets_BxT, full.valid_BxT, full.special_ids_R,
                                 tok.vocab_size, 96, np.random.default_rng(7))
    assert sub.pieces_VxS.shape == (96, 4) and ids_N.shape == (96,) and len(set(ids_N.tolist())) == 96
    # The subsampled batch is the full one seen through ids_N: same text, same tokens, same decompositions.
    np.testing.assert_array_equal(ids_N[sub.inputs_BxT], full.inputs_BxT)
    np.testing.assert_array_equal(ids_N[sub.targets_BxT][full.valid_BxT], full.targets_BxT[full.valid_BxT])
    np.testing.assert_array_equal(ids_N[sub.special_ids_R], full.special_ids_R)
    np.testing.assert_array_equal(sub.pieces_VxS, full.pieces_VxS[ids_N])
    np.testing.assert_array_equal(sub.shared_V, full.shared_V[ids_N])
    np.testing.assert_array_equal(sub.base_id_V, full.base_id_V[ids_N])
    # Negatives are drawn too: the batch alone uses fewer than 96 ids.
    used = np.union1d(full.inputs_BxT, full.targets_BxT[full.valid_BxT]).size
    assert used < 96
    with pytest.raises(ZettError, match="data.token_subsample=16 is smaller"):
        hypernet_batch(base.tokenizer, tok, texts_0, 16, 4, token_subsample=16)
    with pytest.raises(ZettError, match="token_subsample"):
        hconfig.DataConfig(token_subsample=3)


def test_compact_export_round_trip(base, tmp_path):
    cfg = _config(tmp_path / "run", warmup_phase_steps=2, steps=0, save_every=2)
    train_from_config(cfg, base=base, documents=CORPUS, mesh=None, progress=False)
    trained, _ = restore_hypernet(tmp_path / "run", base)
    out = export_compact(tmp_path / "run", base, tmp_path / "compact", dtype="float32")
    assert sorted(f.name for f in out.iterdir()) == ["hypernet.json", "hypernet.safetensors"]
    again, meta = restore_hypernet(out, base)
    target = byte_level_bpe(TARGET_TEXT, 300)
    a = predict_embeddings(trained, base.embeddings, base.tokenizer, target)
    b = predict_embeddings(again, base.embeddings, base.tokenizer, target)
    np.testing.assert_array_equal(a.input_VxD, b.input_VxD)
    half = export_compact(tmp_path / "run", base, tmp_path / "bf16")
    assert (half / "hypernet.safetensors").stat().st_size < 0.6 * (out / "hypernet.safetensors").stat().st_size
    c = predict_embeddings(restore_hypernet(half, base)[0], base.embeddings, base.tokenizer, target)
    assert float(jnp.abs(c.input_VxD - a.input_VxD).max()) < 0.05 * float(jnp.abs(a.input_VxD).max())
    # A compact file from another architecture is refused with the tensor named.
    import safetensors.numpy
    tensors = safetensors.numpy.load_file(str(out / "hypernet.safetensors"))
    tensors["positions_SxH"] = tensors["positions_SxH"][:2]
    safetensors.numpy.save_file(tensors, str(out / "hypernet.safetensors"))
    with pytest.raises(ZettError, match="positions_SxH"):
        restore_hypernet(out, base)


def test_short_bucket_step_equals_full_width(base):
    """Encoding the short-token rows at their own width gives the full-width loss, gradients included."""
    texts_0 = TextBatches(CORPUS, 2, 16, 0)(0)
    tok = TokenizerSampler(base.tokenizer, SAMPLER).sample(texts_0, np.random.default_rng(0))
    short = (48, 2)
    batch = hypernet_batch(base.tokenizer, tok, texts_0, 16, 4, token_subsample=96, rng=np.random.default_rng(3),
                           short=short)
    lengths = batch.mask_VxS.sum(1)
    assert (lengths[:48] <= 2).all() and (lengths[48:] > 2).any()
    module = build_module(_config("/tmp/unused"), base)

    def loss_and_grads(s):
        f = lambda m: lm_and_aux_loss(m, batch, 0.5, s)[0]  # noqa: E731
        return nnx.value_and_grad(f, argnums=nnx.DiffState(0, TRAINABLE))(module)

    (l0, g0), (l1, g1) = loss_and_grads((0, 0)), loss_and_grads(short)
    np.testing.assert_allclose(float(l1), float(l0), rtol=1e-5)
    worst = max(jax.tree.leaves(jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))), nnx.state(g0), nnx.state(g1))))
    assert worst < 1e-4, worst
    with pytest.raises(ZettError, match="short_rows"):
        hconfig.DataConfig(token_subsample=None, short_rows=8)


def test_time_split_reports_every_part(base, tmp_path):
    cfg = dataclasses.replace(_config(tmp_path), data=hconfig.DataConfig(
        corpora=("tiny",), batch_size=2, block_size=16, token_subsample=96, short_rows=48))
    split = time_split(cfg, base, CORPUS, repeats=1)
    assert set(split) >= {"host_s", "hypernet_forward_s", "hypernet_step_s", "base_part_s", "base_step_s",
                          "overhead", "overhead_same_vocab"}
    assert all(np.isfinite(v) for v in split.values())
    assert min(split[k] for k in ("host_s", "hypernet_step_s", "base_part_s", "base_step_s")) > 0


def test_too_small_corpus_fails_before_the_warmup_phase(base, tmp_path):
    cfg = dataclasses.replace(_config(tmp_path, warmup_phase_steps=50, steps=5),
                              sampler=dataclasses.replace(SAMPLER, vocab_size=5000))
    with pytest.raises(ZettError, match="too few"):
        train_from_config(cfg, base=base, documents=CORPUS, mesh=None, progress=False)
    assert not (tmp_path / "checkpoints").exists() or not any((tmp_path / "checkpoints").iterdir())
