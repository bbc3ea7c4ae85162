"""The shared training loop pieces: optimizer, train state, one pure step jitted once.

What is trained is chosen by an NNX filter over one module: ``nnx.split(model, trainable, ...)`` gives
the trainable state, which lives in the :class:`TrainState` (differentiated, updated, donated,
checkpointed), and the frozen rest, which is a separate argument of :func:`train_step` and never
differentiated. A language model is a :class:`LanguageModel` (decoder body plus embedding tables), so
"only the embeddings" and "only the body" are the filters :data:`EMBEDDINGS` and :data:`BODY`; a
hypernetwork module containing a frozen decoder reuses the same step with its own loss.

Shape letters: B batch, T positions.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import flax.struct
import jax
import jax.numpy as jnp
import optax
from flax import nnx

from zett_jax import sharding
from zett_jax.models.decoder import Decoder, Embeddings, token_logprobs


@flax.struct.dataclass
class Batch:
    """Next-token prediction data. ``valid_BxT`` marks targets that count in the loss (padding does not);
    sequences are right-padded, so causal attention keeps padding out of the real positions."""

    inputs_BxT: jax.Array
    targets_BxT: jax.Array
    valid_BxT: jax.Array


@flax.struct.dataclass
class StepMetrics:
    loss: jax.Array
    grad_norm: jax.Array
    learning_rate: jax.Array
    aux: Any = None  # whatever the loss function reports besides the loss


@flax.struct.dataclass
class TrainState:
    step: jax.Array
    params: nnx.State  # the trainable part only
    opt_state: optax.OptState


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """AdamW (Loshchilov & Hutter 2019) with linear warm-up, cosine decay and global-norm clipping."""

    learning_rate: float = 3e-4
    warmup_steps: int = 100
    total_steps: int = 10_000
    final_lr_fraction: float = 0.1
    b1: float = 0.9
    b2: float = 0.95
    eps: float = 1e-8
    weight_decay: float = 0.1
    clip_norm: float | None = 1.0

    def schedule(self) -> optax.Schedule:
        # Step 0 already learns: the warm-up is peak * (step + 1) / (warmup + 1), not a wasted zero step.
        return optax.warmup_cosine_decay_schedule(
            init_value=self.learning_rate / (self.warmup_steps + 1),
            peak_value=self.learning_rate,
            warmup_steps=self.warmup_steps,
            decay_steps=max(self.total_steps, self.warmup_steps + 1),  # optax needs decay > warm-up
            end_value=self.learning_rate * self.final_lr_fraction,
        )


def make_optimizer(cfg: OptimizerConfig) -> optax.GradientTransformation:
    # Decay matrices only: decaying norm gains and biases towards zero only hurts.
    decay_mask = lambda params: jax.tree.map(lambda x: x.ndim >= 2, params)  # noqa: E731
    adamw = optax.adamw(cfg.schedule(), cfg.b1, cfg.b2, cfg.eps, weight_decay=cfg.weight_decay, mask=decay_mask)
    if cfg.clip_norm is None:
        return adamw
    return optax.chain(optax.clip_by_global_norm(cfg.clip_norm), adamw)


class LanguageModel(nnx.Module):
    """A :class:`Decoder` and its embedding tables in one module, so that filters can pick either."""

    def __init__(self, decoder: Decoder, embeddings: Embeddings):
        self.decoder = decoder
        self.input_VxD = nnx.Param(embeddings.input_VxD)
        self.output_VxD = None if embeddings.output_VxD is None else nnx.Param(embeddings.output_VxD)

    @property
    def embeddings(self) -> Embeddings:
        out = None if self.output_VxD is None else self.output_VxD[...]
        return Embeddings(self.input_VxD[...], out)


BODY = nnx.All(nnx.Param, nnx.PathContains("decoder"))
EMBEDDINGS = nnx.Any(nnx.PathContains("input_VxD"), nnx.PathContains("output_VxD"))


def lm_loss(model: LanguageModel, batch: Batch) -> tuple[jax.Array, jax.Array]:
    """Mean next-token cross-entropy over valid targets; aux is the number of valid targets."""
    logp_BxT = token_logprobs(model.decoder, model.embeddings, batch.inputs_BxT, batch.targets_BxT)
    valid_BxT = batch.valid_BxT.astype(jnp.float32)
    tokens = valid_BxT.sum()
    return -(logp_BxT * valid_BxT).sum() / jnp.maximum(tokens, 1.0), tokens


def init_train_state(
    model: nnx.Module, opt: OptimizerConfig, trainable: nnx.filterlib.Filter = nnx.Param
) -> tuple[nnx.GraphDef, TrainState, nnx.State]:
    """Split ``model`` into (graphdef, train state of the ``trainable`` part, frozen state).

    The train state holds ``model``'s own arrays and a jitted step donates them: after the first step use
    ``nnx.merge(graphdef, state.params, frozen)``, not ``model``.
    """
    graphdef, params, frozen = nnx.split(model, trainable, ...)
    state = TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=make_optimizer(opt).init(params))
    return graphdef, state, frozen


def shard_train_state(state: TrainState, mesh: jax.sharding.Mesh) -> TrainState:
    """The state placed by the partition rules; optimizer moments follow their parameters' paths."""
    return sharding.shard(state, mesh)


def train_step(
    state: TrainState,
    frozen: nnx.State,
    batch: Any,
    *,
    graphdef: nnx.GraphDef,
    loss_fn: Callable[[nnx.Module, Any], tuple[jax.Array, Any]],
    opt: OptimizerConfig,
) -> tuple[TrainState, StepMetrics]:
    """One optimizer step on ``loss_fn(model, batch) -> (loss, aux)``; only ``state.params`` is differentiated."""

    def loss_of(params):
        return loss_fn(nnx.merge(graphdef, params, frozen), batch)

    (loss, aux), grads = jax.value_and_grad(loss_of, has_aux=True)(state.params)
    updates, opt_state = make_optimizer(opt).update(grads, state.opt_state, state.params)
    new_state = TrainState(
        step=state.step + 1, params=optax.apply_updates(state.params, updates), opt_state=opt_state
    )
    metrics = StepMetrics(
        loss=loss, grad_norm=optax.tree.norm(grads), learning_rate=opt.schedule()(state.step), aux=aux
    )
    return new_state, metrics


def jit_train_step(
    graphdef: nnx.GraphDef,
    loss_fn: Callable[[nnx.Module, Any], tuple[jax.Array, Any]],
    opt: OptimizerConfig,
    *,
    mesh: jax.sharding.Mesh | None = None,
    state: TrainState | None = None,
    frozen: nnx.State | None = None,
) -> Callable[[TrainState, nnx.State, Any], tuple[TrainState, StepMetrics]]:
    """:func:`train_step` jitted once, the state donated. With a ``mesh``, ``state`` and ``frozen`` (arrays
    or abstract) give the shardings: parameters by the partition rules, the batch over ``"data"``."""
    step = functools.partial(train_step, graphdef=graphdef, loss_fn=loss_fn, opt=opt)
    if mesh is None:
        return jax.jit(step, donate_argnums=0)
    state_sh = sharding.param_shardings(state, mesh)
    return jax.jit(
        step,
        in_shardings=(state_sh, sharding.param_shardings(frozen, mesh), sharding.batch_sharding(mesh)),
        out_shardings=(state_sh, sharding.replicated(mesh)),
        donate_argnums=0,
    )
