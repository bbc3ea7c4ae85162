"""Orbax round trips: reshard on load, train state plus data position, half-written steps ignored."""

from __future__ import annotations

import jax
import numpy as np
from flax import nnx
from jax.sharding import PartitionSpec as P

from zett_jax import checkpoint, sharding, train
from zett_jax.models.config import DecoderConfig
from zett_jax.models.decoder import init_embeddings, init_model

CONFIG = DecoderConfig.from_hf(
    dict(model_type="llama", vocab_size=128, hidden_size=64, intermediate_size=128,
         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)
)


def _equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        assert x.dtype == y.dtype and np.array_equal(np.asarray(x), np.asarray(y))


def test_params_restore_onto_another_mesh(tmp_path):
    mesh_a, mesh_b = sharding.make_mesh(4, 2), sharding.make_mesh(2, 4)
    state = sharding.shard(nnx.state(init_model(CONFIG)), mesh_a)
    emb = sharding.shard(init_embeddings(CONFIG, jax.random.key(0)), mesh_a)
    checkpoint.save_params(tmp_path / "body", state)
    checkpoint.save_params(tmp_path / "emb", emb)

    body = checkpoint.restore_params(tmp_path / "body", sharding.abstract_sharded(state, mesh_b))
    tables = checkpoint.restore_params(tmp_path / "emb", sharding.abstract_sharded(emb, mesh_b))
    _equal(body, state)
    _equal(tables, emb)
    down = body["layers"][1]["mlp"]["down_proj"]["weight"][...]
    assert down.sharding.mesh.shape == mesh_b.shape and down.sharding.spec == P("data", "model")
    assert down.addressable_shards[0].data.shape == (64 // 2, 128 // 4)
    assert tables.input_VxD.sharding.mesh.shape == mesh_b.shape


def _train_state():
    lm = train.LanguageModel(init_model(CONFIG), init_embeddings(CONFIG, jax.random.key(1)))
    _, state, _ = train.init_train_state(lm, train.OptimizerConfig(), trainable=train.EMBEDDINGS)
    return state


def test_manager_saves_state_with_data_position_and_keeps_latest(tmp_path):
    mesh = sharding.make_mesh(8, 1)
    state = sharding.shard(_train_state(), mesh)
    with checkpoint.CheckpointManager(tmp_path, keep=2) as manager:
        for step in (10, 20, 30):
            bumped = state.replace(step=state.step + step)
            assert manager.save(step, bumped, {"shard": 3, "offset": step * 8, "seed": 0})
        manager.wait()
        assert manager.all_steps() == [20, 30]

    with checkpoint.CheckpointManager(tmp_path, keep=2) as manager:
        assert manager.latest_step() == 30
        restored, position = manager.restore(sharding.abstract_sharded(state, sharding.make_mesh(4, 2)))
        assert position == {"shard": 3, "offset": 240, "seed": 0}
        assert int(restored.step) == 30
        _equal(restored.params, state.params)
        _equal(restored.opt_state, state.opt_state)
        _, older = manager.restore(sharding.abstract_sharded(state, mesh), step=20)
        assert older["offset"] == 160


def test_half_written_step_is_not_latest(tmp_path):
    state = _train_state()
    with checkpoint.CheckpointManager(tmp_path) as manager:
        manager.save(1, state, {"offset": 1})
    # What a save killed before Orbax's final rename leaves behind (this version's name, and an older one).
    for name in ("2.orbax-checkpoint-tmp", "3.orbax-checkpoint-tmp-1733312345678"):
        (tmp_path / name / "state").mkdir(parents=True)
        (tmp_path / name / "state" / "junk").write_bytes(b"\0" * 16)
    with checkpoint.CheckpointManager(tmp_path) as manager:
        assert manager.latest_step() == 1 and manager.all_steps() == [1]
        restored, position = manager.restore(jax.eval_shape(lambda: state))
        assert position == {"offset": 1}
        _equal(restored.params, state.params)
