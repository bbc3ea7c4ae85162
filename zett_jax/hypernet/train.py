"""Training the hypernetwork: warm-up phase, then the LM + auxiliary loss over sampled tokenizers.

ZeTT §3.3 / reference ``train.py``: ``warmup_phase_steps`` steps of the warm-up objective (reproduce the
base table), then ``steps`` steps of ``L_LM + aux_weight * L_aux`` on text tokenized with a freshly sampled
tokenizer per batch. One AdamW schedule (warm-up + cosine decay, clipping; `zett_jax.train`) runs over
both phases. The step is the shared pure :func:`zett_jax.train.train_step`, jitted once per phase with
the state donated; only the hypernetwork (filter :data:`~zett_jax.hypernet.losses.TRAINABLE`) is in
the train state, differentiated and checkpointed. The frozen base model is a separate argument.

Checkpoints (`zett_jax.checkpoint.CheckpointManager`) hold the train state and the next step; batches
are a function of the step (`zett_jax.hypernet.data`), so a resumed run continues on the same data.
A non-finite loss stops the run with a :class:`ZettError`; the checkpoints written before it are kept
(a checkpoint is only written after its step's loss was read and found finite).

Beside the checkpoints: ``hypernet.json`` (what the run is for), ``metrics.jsonl`` (one row per step) and
``loss_curves.png`` (`zett_jax.hypernet.plot`, redrawn at every checkpoint and at the end).
"""

from __future__ import annotations

import functools
import json
import logging
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from tqdm.auto import tqdm
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from zett_jax import sharding
from zett_jax import train as shared
from zett_jax.checkpoint import CheckpointManager
from zett_jax.errors import ZettError
from zett_jax.hypernet.config import ExperimentConfig
from zett_jax.hypernet.data import Prefetcher, TextBatches, sampled_batches, warmup_batch
from zett_jax.hypernet.losses import TRAINABLE, HypernetWithBase, lm_and_aux_loss, warmup_loss
from zett_jax.hypernet.model import Hypernet, init_rescalers
from zett_jax.hypernet.plot import plot_run

log = logging.getLogger(__name__)

METADATA = "hypernet.json"


def build_module(config: ExperimentConfig, base) -> HypernetWithBase:
    """A fresh hypernetwork (rescalers fitted to the base table) beside the frozen base ``LoadedModel``."""
    emb = base.embeddings
    rows, dim = emb.input_VxD.shape
    init = _hypernet_init(config.hypernet, int(dim), int(rows), emb.output_VxD is None,
                          max(base.tokenizer.vocab_size - int(rows), 1), config.train.seed)
    graphdef, params = init(emb.input_VxD, emb.output_VxD)
    return HypernetWithBase(nnx.merge(graphdef, params), shared.LanguageModel(base.model, emb))


@functools.lru_cache(maxsize=8)
def _hypernet_init(cfg, dim: int, rows: int, tied: bool, num_fallback: int, seed: int):
    """``(input, output) -> (graphdef, params)`` jitted once per architecture: eager NNX construction
    would dispatch (and compile) every small op apart."""

    def make(input_WxD, output_WxD):
        hn = Hypernet(cfg, model_dim=dim, base_rows=rows, tied=tied, num_fallback=num_fallback, rngs=nnx.Rngs(seed))
        init_rescalers(hn, input_WxD, output_WxD)
        return hn

    jitted = jax.jit(lambda i, o: nnx.state(make(i, o)))

    def init(input_WxD, output_WxD):
        graphdef = nnx.graphdef(nnx.eval_shape(make, input_WxD, output_WxD))
        return graphdef, jitted(input_WxD, output_WxD)

    return init


def metadata(config: ExperimentConfig, base) -> dict:
    """What `apply` checks a checkpoint against: the base it was made for, and the architecture."""
    emb = base.embeddings
    return {
        "base_model": config.train.base_model,
        "base_rows": int(emb.input_VxD.shape[0]),
        "model_dim": int(emb.input_VxD.shape[1]),
        "tied": emb.output_VxD is None,
        "base_vocab_size": int(base.tokenizer.vocab_size),
        "config": config.to_dict(),
    }


def batch_shardings(batch: Any, mesh) -> Any:
    """Leading dimension over ``"data"`` where it divides (text rows, vocabulary rows), else replicated."""
    n = mesh.shape[sharding.DATA]
    return jax.tree.map(
        lambda x: NamedSharding(mesh, P(sharding.DATA) if x.ndim and x.shape[0] % n == 0 else P()), batch
    )


LOSSES = {"warmup": lambda aux_weight, short: warmup_loss,
          "lm": lambda aux_weight, short: functools.partial(lm_and_aux_loss, aux_weight=aux_weight, short=short)}


def make_step(graphdef, phase: str, aux_weight: float, opt, *, mesh=None, state=None, frozen=None, batch=None,
              short: tuple[int, int] = (0, 0)):
    """:func:`zett_jax.train.train_step` for one phase's loss (:data:`LOSSES`), jitted once, state donated;
    sharded given a mesh (``state``, ``frozen`` and ``batch`` then give the shardings). ``short``: the
    batches' short-token bucket (rows, pieces), see `zett_jax.hypernet.losses.predict_tables`."""
    if mesh is None:
        return _unsharded_step(graphdef, phase, aux_weight, opt, tuple(short))
    step = functools.partial(shared.train_step, graphdef=graphdef, loss_fn=LOSSES[phase](aux_weight, tuple(short)),
                             opt=opt)
    state_sh = sharding.param_shardings(state, mesh)
    return jax.jit(
        step,
        in_shardings=(state_sh, sharding.param_shardings(frozen, mesh), batch_shardings(batch, mesh)),
        out_shardings=(state_sh, sharding.replicated(mesh)),
        donate_argnums=0,
    )


@functools.lru_cache(maxsize=16)
def _unsharded_step(graphdef, phase: str, aux_weight: float, opt, short: tuple[int, int]):
    # Cached so that runs in one process (a resumed run, the tests) share the compiled step.
    step = functools.partial(shared.train_step, graphdef=graphdef, loss_fn=LOSSES[phase](aux_weight, short), opt=opt)
    return jax.jit(step, donate_argnums=0)


def lm_batches(config: ExperimentConfig, base_tokenizer, texts_of, start: int):
    """The LM phase's batches from batch ``start`` on (`zett_jax.hypernet.data.sampled_batches` with the
    config's sampler, shapes, token subsample and short bucket)."""
    return sampled_batches(base_tokenizer, texts_of, config.sampler, config.data.block_size,
                           config.hypernet.max_pieces, config.train.seed, start, config.data.token_subsample,
                           config.data.short)


def load_documents(config: ExperimentConfig) -> list[str]:
    from zett_jax import assets

    docs: list[str] = []
    for name in config.data.corpora:
        n = 0
        for doc in assets.documents(name):
            docs.append(doc)
            n += 1
            if config.data.max_documents_per_corpus and n >= config.data.max_documents_per_corpus:
                break
    return docs


def _record(metrics, step: int, phase: str, host_s: float, out) -> dict:
    row = {
        "step": step, "phase": phase, "loss": float(metrics.loss), "lm": float(metrics.aux.lm),
        "aux": float(metrics.aux.aux), "shared": float(metrics.aux.shared_fraction),
        "grad_norm": float(metrics.grad_norm), "lr": float(metrics.learning_rate), "host_s": host_s,
    }
    out.write(json.dumps(row) + "\n")
    out.flush()
    return row


def train_from_config(
    config: ExperimentConfig,
    *,
    base=None,
    documents: list[str] | None = None,
    mesh: Any = "config",
    stop_after: int | None = None,
    progress: bool = True,
) -> list[dict]:
    """Train (or resume) a hypernetwork into ``config.train.out_dir``; returns the metrics of this call.

    ``base`` (a `LoadedModel`) and ``documents`` default to ``config.train.base_model`` and the corpora;
    ``mesh`` defaults to one built from ``train.mesh_data`` x ``train.mesh_model`` when there is more than one
    device (``None``: no sharding). ``stop_after`` ends the call after that many steps without a final
    save (what a kill looks like to the next run; for tests). ``progress`` shows a tqdm bar on stderr.
    """
    tc = config.train
    if isinstance(mesh, str):
        mesh = sharding.make_mesh(tc.mesh_data, tc.mesh_model) if jax.device_count() > 1 else None
    if base is None:
        from zett_jax.convert.load import load_model

        base = load_model(tc.base_model, dtype=jnp.bfloat16 if tc.compute_dtype == "bfloat16" else jnp.float32)
    texts_of = TextBatches(documents if documents is not None else load_documents(config),
                           config.data.batch_size, config.data.block_size, tc.seed)
    out_dir = Path(tc.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = metadata(config, base)
    meta_path = out_dir / METADATA
    if meta_path.exists():
        old = json.loads(meta_path.read_text())
        if {k: old.get(k) for k in ("base_rows", "model_dim", "tied")} != {k: meta[k] for k in ("base_rows", "model_dim", "tied")}:
            raise ZettError(f"{out_dir}: holds a hypernetwork for another base model ({old.get('base_model')})")
    meta_path.write_text(json.dumps(meta, indent=2))
    if tc.steps:  # the LM phase's data problems (a corpus too small for the vocabulary, a too small
        # token_subsample) surface now, not after the warm-up phase: build its first batch once
        next(lm_batches(config, base.tokenizer, texts_of, 0))

    opt = config.optimizer_config()
    graphdef, state, frozen = shared.init_train_state(build_module(config, base), opt, TRAINABLE)
    rows = int(base.embeddings.input_VxD.shape[0])
    if mesh is not None:
        state, frozen = sharding.shard(state, mesh), sharding.shard(frozen, mesh)

    manager = CheckpointManager(out_dir / "checkpoints", keep=tc.keep, save_interval_steps=1)
    start = 0
    if manager.latest_step() is not None:
        abstract = sharding.abstract_sharded(state, mesh) if mesh is not None else jax.tree.map(
            lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), state)
        state, position = manager.restore(abstract)
        start = int(position["next_step"])
        log.info("resumed from %s at step %d", out_dir, start)

    # Warm-up tokens are single pieces: one position computes exactly what a padded row would (padding is
    # masked out of attention and the readout is the first position), at 1/max_pieces of the cost.
    warm = lambda s: warmup_batch(rows, tc.warmup_tokens, 1, np.random.default_rng([tc.seed, 3, s]))  # noqa: E731
    steps: dict[str, Any] = {}
    prefetch = None
    rows_out: list[dict] = []
    end = tc.total_steps if stop_after is None else min(tc.total_steps, start + stop_after)
    pending = None  # (metrics, step, phase, host seconds): read after the next step is dispatched
    bar = tqdm(total=tc.total_steps, initial=start, desc="hypernet", unit="step", disable=not progress,
               dynamic_ncols=True)
    try:
        with open(out_dir / "metrics.jsonl", "a") as log_file:
            for s in range(start, end):
                if s < tc.warmup_phase_steps:
                    phase, t0 = "warmup", time.perf_counter()
                    batch = warm(s)
                    host_s = time.perf_counter() - t0
                else:
                    phase = "lm"
                    if prefetch is None:
                        prefetch = Prefetcher(lm_batches(config, base.tokenizer, texts_of, s - tc.warmup_phase_steps),
                                              depth=tc.prefetch)
                    _, _, batch, host_s = next(prefetch)
                if phase not in steps:
                    steps[phase] = make_step(graphdef, phase, tc.aux_weight, opt, mesh=mesh, state=state, frozen=frozen,
                                             batch=batch, short=config.data.short)
                state, metrics = steps[phase](state, frozen, batch)
                if pending is not None:
                    rows_out.append(_checked(_record(*pending, log_file), manager, out_dir))
                    bar.set_postfix(_postfix(rows_out[-1]), refresh=False)
                pending = (metrics, s, phase, host_s)
                done = s + 1
                bar.update(1)
                if done % tc.save_every == 0 or done == tc.total_steps:
                    rows_out.append(_checked(_record(*pending, log_file), manager, out_dir))
                    pending = None
                    manager.save(done, state, {"next_step": done})
                    _plot(out_dir)
            if pending is not None:
                rows_out.append(_checked(_record(*pending, log_file), manager, out_dir))
    finally:
        bar.close()
        if prefetch is not None:
            prefetch.close()
        manager.wait()
        manager.close()
    _plot(out_dir)
    return rows_out


def _postfix(row: dict) -> dict:
    if row["phase"] == "warmup":
        return {"phase": "warm-up", "dist": f"{row['aux']:.3f}"}
    return {"phase": "lm", "lm": f"{row['lm']:.3f}", "aux": f"{row['aux']:.3f}"}


def _plot(out_dir: Path) -> None:
    """Redraw the loss curves beside the checkpoints; a plotting failure is logged, never fatal."""
    try:
        plot_run(out_dir)
    except Exception as e:  # noqa: BLE001 - a figure must not stop a training run
        log.warning("could not draw the loss curves in %s: %s", out_dir, e)


def _checked(row: dict, manager: CheckpointManager, out_dir: Path) -> dict:
    if not np.isfinite(row["loss"]):
        manager.wait()
        last = manager.latest_step()
        kept = f"the last good checkpoint (step {last}) is kept" if last is not None else "no checkpoint was written"
        raise ZettError(
            f"hypernet training: the loss became {row['loss']} at step {row['step']} ({row['phase']} phase); "
            f"stopped, {kept} in {out_dir / 'checkpoints'}. Lower optimizer.learning_rate or check the data."
        )
    return row


COMPACT = "hypernet.safetensors"


def export_compact(run_dir: str | Path, base, out: str | Path, dtype: str = "bfloat16") -> Path:
    """A run's latest hypernetwork as ``hypernet.json`` + ``hypernet.safetensors`` (parameters only, no
    optimizer state; bf16 by default): small enough to ship. Written atomically; returns ``out``."""
    import ml_dtypes
    import safetensors.numpy

    from zett_jax.fileio import atomic_directory

    hypernet, meta = restore_hypernet(run_dir, base)
    cast = {"bfloat16": ml_dtypes.bfloat16, "float32": np.float32}
    if dtype not in cast:
        raise ZettError(f"--dtype {dtype!r}: expected one of {', '.join(cast)}")
    flat = jax.tree_util.tree_flatten_with_path(nnx.to_pure_dict(nnx.state(hypernet, nnx.Param)))[0]
    tensors = {_key(path): np.asarray(leaf).astype(cast[dtype]) for path, leaf in flat}
    with atomic_directory(out, overwrite=True) as tmp:
        (tmp / METADATA).write_text(json.dumps({**meta, "dtype": dtype}, indent=2))
        safetensors.numpy.save_file(tensors, str(tmp / COMPACT))
    return Path(out)


def _key(path) -> str:
    return "/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)


def read_metadata(out_dir: str | Path) -> dict:
    """``hypernet.json`` of a training run or an export (the config, the base model it was made for)."""
    meta_path = Path(out_dir) / METADATA
    if not meta_path.is_file():
        raise ZettError(f"{out_dir}: not a hypernetwork directory (no {METADATA})")
    try:
        return json.loads(meta_path.read_text())
    except json.JSONDecodeError as e:
        raise ZettError(f"{meta_path}: not valid JSON ({e})") from None


def restore_hypernet(out_dir: str | Path, base) -> tuple[Hypernet, dict]:
    """The trained hypernetwork of ``out_dir`` for the ``LoadedModel`` ``base`` (checked to match).

    ``out_dir`` is a training run (Orbax checkpoints; the latest is taken) or an :func:`export_compact`
    directory (``hypernet.safetensors``, cast back to float32).
    """
    from zett_jax.hypernet.config import from_dict

    out_dir = Path(out_dir)
    meta = read_metadata(out_dir)
    emb = base.embeddings
    want = {"base_rows": int(emb.input_VxD.shape[0]), "model_dim": int(emb.input_VxD.shape[1]),
            "tied": emb.output_VxD is None}
    got = {k: meta.get(k) for k in want}
    if got != want:
        raise ZettError(
            f"{out_dir}: this hypernetwork was trained for base model {meta.get('base_model')!r} ({got}), "
            f"which does not match the given model ({want})"
        )
    cfg = meta["config"]
    cfg["optimizer"].pop("total_steps", None)
    config = from_dict(cfg)
    if (out_dir / COMPACT).exists():
        return _restore_compact(out_dir / COMPACT, build_module(config, base).hypernet), meta
    opt = config.optimizer_config()
    graphdef, state, frozen = shared.init_train_state(build_module(config, base), opt, TRAINABLE)
    with CheckpointManager(out_dir / "checkpoints") as manager:
        if manager.latest_step() is None:
            raise ZettError(f"{out_dir}: no complete checkpoint")
        abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), state)
        state, _ = manager.restore(abstract)
    module = nnx.merge(graphdef, state.params, frozen)
    return module.hypernet, meta


def _restore_compact(path: Path, hypernet: Hypernet) -> Hypernet:
    import safetensors.numpy

    tensors = safetensors.numpy.load_file(str(path))
    state = nnx.state(hypernet, nnx.Param)
    flat, treedef = jax.tree_util.tree_flatten_with_path(nnx.to_pure_dict(state))
    leaves = []
    for key_path, leaf in flat:
        key = _key(key_path)
        if key not in tensors or tensors[key].shape != leaf.shape:
            got = tensors[key].shape if key in tensors else "missing"
            raise ZettError(f"{path}: tensor {key!r} is {got}, expected {tuple(leaf.shape)} for this config")
        leaves.append(jnp.asarray(tensors[key].astype(np.float32)))
    nnx.replace_by_pure_dict(state, jax.tree_util.tree_unflatten(treedef, leaves))
    nnx.update(hypernet, state)
    return hypernet
