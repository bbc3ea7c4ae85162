"""Sharded equals unsharded on 8 simulated CPU devices; partition rules on real-size configs (eval_shape)."""

from __future__ import annotations

from functools import partial

import jax
import numpy as np
import pytest
from flax import nnx
from hf_tiny import CONFIGS
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from zett_jax import sharding, train
from zett_jax.models.config import DecoderConfig
from zett_jax.models.decoder import abstract_model, init_embeddings, init_model

LLAMA = DecoderConfig.from_hf(
    dict(model_type="llama", vocab_size=128, hidden_size=64, intermediate_size=128,
         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)
)
# Sliding and full attention layers; vocabulary 101 divides by no mesh axis, so the rules fall back.
GEMMA = DecoderConfig.from_hf(CONFIGS["gemma3"])
SMOLLM2 = DecoderConfig.from_hf(
    dict(model_type="llama", vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
         num_attention_heads=9, num_key_value_heads=3, tie_word_embeddings=True)
)
LLAMA3_8B = DecoderConfig.from_hf(
    dict(model_type="llama", vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
         num_attention_heads=32, num_key_value_heads=8, tie_word_embeddings=False, rope_theta=500000.0,
         rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                           original_max_position_embeddings=8192))
)
# Adam's first step is lr * g / (|g| + eps): with a tiny eps, rounding-level differences in near-zero
# gradients flip whole lr-sized updates. A large eps keeps the update Lipschitz in the gradient, so the
# comparisons below test what sharding changes (the gradient), not Adam's amplification of noise.
OPT = train.OptimizerConfig(learning_rate=1e-2, warmup_steps=2, total_steps=10, eps=1e-3)


def _tokens(config, B=8, T=17, seed=0):
    return np.random.default_rng(seed).integers(0, config.vocab_size, (B, T)).astype(np.int32)


def _close(a, b, atol):
    diffs = jax.tree.map(lambda x, y: float(np.max(np.abs(np.asarray(x) - np.asarray(y)))), a, b)
    worst = max(jax.tree.leaves(diffs))
    assert worst <= atol, (worst, diffs)


def test_eight_devices():
    assert jax.device_count() == 8, "tests/conftest.py must set jax_num_cpu_devices before JAX starts"


def test_make_mesh():
    assert dict(sharding.make_mesh().shape) == {"data": 8, "model": 1}
    assert dict(sharding.make_mesh(model=2).shape) == {"data": 4, "model": 2}
    assert dict(sharding.make_mesh(2, -1).shape) == {"data": 2, "model": 4}
    assert dict(sharding.make_mesh(devices=jax.devices()[:1]).shape) == {"data": 1, "model": 1}
    with pytest.raises(ValueError):
        sharding.make_mesh(model=3)


def test_rules_fall_back_to_replicated_on_indivisible_dims():
    mesh = sharding.make_mesh(4, 2)
    assert sharding.spec_for("layers/0/self_attn/q_proj/weight", (64, 64), mesh) == P("model", "data")
    assert sharding.spec_for("layers/0/self_attn/q_proj/weight", (64, 6), mesh) == P("model", None)
    assert sharding.spec_for("input_VxD", (101, 64), mesh) == P(None, "data")
    assert sharding.spec_for("layers/1/mlp/down_proj/weight", (64, 128), mesh) == P("data", "model")
    assert sharding.spec_for("norm/weight", (64,), mesh) == P()
    assert sharding.spec_for("layers/0/self_attn/q_proj/bias", (64,), mesh) == P()
    assert sharding.spec_for("opt_state/0/count", (), mesh) == P()


@pytest.mark.parametrize(
    "config, mesh_shape", [(LLAMA, (4, 2)), (LLAMA, (2, 4)), (GEMMA, (2, 4))], ids=["llama-4x2", "llama-2x4", "gemma3-2x4"]
)
def test_sharded_logits_equal_single_device(config, mesh_shape):
    model = init_model(config, seed=0)
    emb = init_embeddings(config, jax.random.key(1), std=0.5)
    tokens = _tokens(config)
    valid = np.ones(tokens.shape, bool)
    valid[1, 12:] = False  # right padding in one row
    graphdef, state = nnx.split(model)
    forward = jax.jit(lambda s, e, t, v: nnx.merge(graphdef, s)(e, t, v))
    ref = forward(state, emb, tokens, valid)

    mesh = sharding.make_mesh(*mesh_shape)
    state_s = sharding.shard(state, mesh)
    emb_s = jax.device_put(emb, sharding.embeddings_shardings(emb, mesh))
    batch_s = jax.device_put((tokens, valid), sharding.batch_sharding(mesh))
    q_proj = state_s["layers"][0]["self_attn"]["q_proj"]["weight"][...]
    assert q_proj.sharding.spec == P("model", "data") and len(q_proj.sharding.device_set) == 8
    out = forward(state_s, emb_s, *batch_s)
    assert len(out.sharding.device_set) == 8
    np.testing.assert_allclose(np.asarray(out), np.asarray(ref), atol=1e-5, rtol=0)


def test_init_module_is_sharded_and_equals_plain_init():
    mesh = sharding.make_mesh(4, 2)
    model = sharding.init_module(lambda: init_model(LLAMA, seed=3), mesh)
    q_proj = model.layers[1].self_attn.q_proj.weight[...]
    assert q_proj.sharding.spec == P("model", "data")
    assert q_proj.addressable_shards[0].data.shape == (64 // 2, 64 // 4)
    _close(nnx.state(model), nnx.state(init_model(LLAMA, seed=3)), atol=0)
    emb = sharding.init_tree(partial(init_embeddings, LLAMA), jax.random.key(0), mesh=mesh)
    assert emb.input_VxD.sharding.spec == P("model", "data")
    _close(emb, init_embeddings(LLAMA, jax.random.key(0)), atol=1e-8)  # jit fuses the scale differently


def _lm(config=LLAMA):
    return train.LanguageModel(init_model(config, seed=0), init_embeddings(config, jax.random.key(1)))


def _batch(config=LLAMA):
    tokens = _tokens(config)
    valid = np.ones((8, 16), bool)
    valid[0, 10:] = False
    return train.Batch(tokens[:, :-1], tokens[:, 1:], valid)


@pytest.fixture(scope="module")
def single_device_step():
    """One jitted single-device step of the whole model: the reference of the sharded and eager steps."""
    graphdef, state, frozen = train.init_train_state(_lm(), OPT)
    return train.jit_train_step(graphdef, train.lm_loss, OPT)(state, frozen, _batch())


def test_sharded_train_step_equals_single_device(single_device_step):
    ref_state, ref = single_device_step
    batch = _batch()
    mesh = sharding.make_mesh(4, 2)
    graphdef, state, frozen = train.init_train_state(_lm(), OPT)
    state = train.shard_train_state(state, mesh)
    frozen = sharding.shard(frozen, mesh)
    step = train.jit_train_step(graphdef, train.lm_loss, OPT, mesh=mesh, state=state, frozen=frozen)
    new_state, metrics = step(state, frozen, jax.device_put(batch, sharding.batch_sharding(mesh)))

    q_proj = new_state.params["decoder"]["layers"][0]["self_attn"]["q_proj"]["weight"][...]
    assert q_proj.sharding.spec == P("model", "data")
    mu = new_state.opt_state[1][0].mu["decoder"]["layers"][0]["mlp"]["down_proj"]["weight"][...]
    assert mu.sharding.spec == P("data", "model")  # optimizer moments follow their parameters
    assert int(metrics.aux) == int(batch.valid_BxT.sum())
    np.testing.assert_allclose(float(metrics.loss), float(ref.loss), atol=1e-5, rtol=0)
    np.testing.assert_allclose(float(metrics.grad_norm), float(ref.grad_norm), atol=1e-5, rtol=0)
    _close(new_state.params, ref_state.params, atol=1e-6)
    initial = _lm().decoder.layers[0].self_attn.q_proj.weight[...]
    assert np.max(np.abs(np.asarray(q_proj) - np.asarray(initial))) > 1e-3  # the step did move it


def test_jit_equals_no_jit(single_device_step):
    # The loss the jitted step reported, recomputed eagerly (op by op) from the same initial model.
    _, ref = single_device_step
    loss, tokens = train.lm_loss(_lm(), _batch())
    np.testing.assert_allclose(float(loss), float(ref.loss), atol=1e-6, rtol=0)
    assert float(tokens) == float(ref.aux)
    assert float(ref.learning_rate) == pytest.approx(OPT.learning_rate / 3)  # warm-up step 0 of 2


def test_only_the_filtered_part_trains():
    graphdef, state, frozen = train.init_train_state(_lm(), OPT, trainable=train.EMBEDDINGS)
    assert {str(k) for k in state.params.keys()} == {"input_VxD", "output_VxD"}
    assert "decoder" in frozen and "input_VxD" not in frozen
    before = jax.tree.map(np.asarray, state.params)
    new_state, metrics = train.jit_train_step(graphdef, train.lm_loss, OPT)(state, frozen, _batch())
    assert float(metrics.grad_norm) > 0
    assert np.max(np.abs(np.asarray(new_state.params["input_VxD"][...]) - before["input_VxD"][...])) > 1e-3
    model = nnx.merge(graphdef, new_state.params, frozen)
    _close(nnx.state(model.decoder), nnx.state(_lm().decoder), atol=0)  # the body did not move
    _, body_state, _ = train.init_train_state(_lm(), OPT, trainable=train.BODY)
    assert "decoder" in body_state.params and "input_VxD" not in body_state.params


@pytest.mark.parametrize("config", [SMOLLM2, LLAMA3_8B], ids=["smollm2-135m", "llama3-8b"])
def test_rules_on_real_size_configs(config):
    mesh = sharding.make_mesh(4, 2)
    abstract = nnx.state(abstract_model(config))
    abstract_emb = jax.eval_shape(partial(init_embeddings, config), jax.random.key(0))
    total = per_device = 0
    for tree in (abstract, abstract_emb):
        specs = sharding.param_specs(tree, mesh)
        for (path, x), spec in zip(jax.tree_util.tree_flatten_with_path(tree)[0], jax.tree.leaves(specs)):
            shard_shape = NamedSharding(mesh, spec).shard_shape(x.shape)  # raises on an invalid spec
            total += np.prod(x.shape)
            per_device += np.prod(shard_shape)
            name = sharding.path_str(path)
            if x.ndim == 2:
                assert len(spec) == 2 and spec[0] is not None and spec[1] is not None, (name, spec)
            else:
                assert spec == P(), (name, spec)
    assert per_device == pytest.approx(total / 8, rel=0.01)
    abstract_sharded = sharding.abstract_sharded(abstract, mesh)
    q = abstract_sharded["layers"][0]["self_attn"]["q_proj"]["weight"].get_value()
    assert q.sharding.spec == P("model", "data")
