"""Meshes and partition rules: the one module that knows how parameters and batches are laid out.

Model code never sees a mesh. A parameter's placement is decided here from its path (for example
``layers/3/self_attn/q_proj/weight``) by an ordered list of ``(regex, PartitionSpec)`` rules, the
big_vision way. The same rules place anything whose leaf paths end in parameter paths: an
``nnx.State``, an :class:`~zett_jax.models.decoder.Embeddings` pytree, a train state whose optimizer
moments mirror the parameters.

The mesh has two axes. ``"data"`` splits the batch and, FSDP-style (Zhao et al. 2023, "PyTorch FSDP"),
one dimension of every large matrix, so parameters and optimizer moments are spread over all data
replicas and gathered on use. ``"model"`` is Megatron tensor parallelism (Shoeybi et al. 2019): q/k/v,
gate and up projections split their output features, o and down projections their input features, so
the hidden activation between a pair stays split and only the pair's output needs a reduction.
Weights are in Hugging Face layout ``[out, in]``.

The mesh uses ``AxisType.Auto``: XLA's partitioner inserts the collectives, so any rule set is correct
and the rules only decide speed and memory.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Sequence

import jax
from flax import nnx
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

DATA = "data"
MODEL = "model"

# First match wins. Dimensions are in storage order: linear weights [out, in], embedding tables [V, D].
RULES: tuple[tuple[str, P], ...] = (
    # Column-parallel: output features over "model", input features FSDP over "data".
    (r"(^|/)(q_proj|k_proj|v_proj|gate_proj|up_proj)/weight$", P(MODEL, DATA)),
    # Row-parallel: input features over "model" (they arrive split that way), output features FSDP.
    (r"(^|/)(o_proj|down_proj)/weight$", P(DATA, MODEL)),
    # Tables [V, D]: vocabulary over "model", so the head's logits come out vocabulary-parallel and the
    # [B, T, V] tensor of a 262k vocabulary is never whole on one device; D is FSDP.
    (r"(^|/)(input_VxD|output_VxD)$", P(MODEL, DATA)),
    # Norms, biases, step counters: small, replicated.
    (r".*", P()),
)


def make_mesh(data: int = -1, model: int = 1, devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A ``("data", "model")`` mesh over ``devices`` (default all); ``-1`` takes the remaining devices."""
    devices = list(jax.devices() if devices is None else devices)
    n = len(devices)
    if data == -1 and model == -1:
        raise ValueError("make_mesh: at most one of data and model may be -1")
    if data == -1:
        data = n // model if model > 0 and n % model == 0 else 0
    if model == -1:
        model = n // data if data > 0 and n % data == 0 else 0
    if data < 1 or model < 1 or data * model != n:
        raise ValueError(f"make_mesh: data x model must equal the {n} devices, got data={data} model={model}")
    return jax.make_mesh((data, model), (DATA, MODEL), axis_types=(AxisType.Auto,) * 2, devices=devices)


def path_str(path: Sequence[Any]) -> str:
    """``"layers/3/self_attn/q_proj/weight"`` from a JAX key path; an NNX Variable's ``value`` is dropped."""
    parts = []
    for key in path:
        for attr in ("key", "name", "idx"):  # DictKey / FlattenedIndexKey, GetAttrKey, SequenceKey
            if hasattr(key, attr):
                parts.append(str(getattr(key, attr)))
                break
        else:
            parts.append(str(key))
    if parts and parts[-1] == "value" and isinstance(path[-1], jax.tree_util.GetAttrKey):
        parts.pop()
    return "/".join(parts)


def spec_for(path: str, shape: Sequence[int], mesh: Mesh, rules=RULES) -> P:
    """The rule's spec for one leaf; a dimension not divisible by its mesh axes stays replicated."""
    spec = next((s for pattern, s in rules if re.search(pattern, path)), P())
    if len(spec) > len(shape):  # e.g. a factored optimizer moment under a matrix's path
        return P()
    dims = []
    for size, axes in zip(shape, spec):
        names = () if axes is None else (axes,) if isinstance(axes, str) else tuple(axes)
        ways = 1
        for name in names:
            ways *= mesh.shape[name]
        dims.append(axes if names and size % ways == 0 else None)
    return P(*dims)


def param_specs(tree: Any, mesh: Mesh, rules=RULES) -> Any:
    """PartitionSpecs with the structure of ``tree`` (arrays or ``ShapeDtypeStruct`` leaves)."""
    return jax.tree_util.tree_map_with_path(
        lambda p, x: spec_for(path_str(p), getattr(x, "shape", ()), mesh, rules), tree
    )


def param_shardings(tree: Any, mesh: Mesh, rules=RULES) -> Any:
    """NamedShardings with the structure of ``tree``."""
    return jax.tree.map(lambda s: NamedSharding(mesh, s), param_specs(tree, mesh, rules))


def embeddings_shardings(embeddings: Any, mesh: Mesh) -> Any:
    """NamedShardings of an :class:`~zett_jax.models.decoder.Embeddings` pytree (tables ``[V, D]``)."""
    return param_shardings(embeddings, mesh)


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """For ``[B, T]`` batches (and any ``[B, ...]``): the batch over ``"data"``, replicated over ``"model"``."""
    return NamedSharding(mesh, P(DATA))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def abstract_sharded(tree: Any, mesh: Mesh, rules=RULES) -> Any:
    """``ShapeDtypeStruct`` leaves carrying their rule's sharding: a restore target that reshards on load."""
    return jax.tree.map(
        lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), tree, param_shardings(tree, mesh, rules)
    )


def shard(tree: Any, mesh: Mesh, rules=RULES) -> Any:
    """Place existing arrays (loaded weights, a state) by the rules. Arrays already placed so are kept."""
    return jax.device_put(tree, param_shardings(tree, mesh, rules))


def shard_model(model: nnx.Module, mesh: Mesh, rules=RULES) -> nnx.Module:
    """A copy of ``model`` whose state is placed by the rules (``model`` itself is left as it is)."""
    graphdef, state = nnx.split(model)
    return nnx.merge(graphdef, shard(state, mesh, rules))


def init_module(make: Callable[[], nnx.Module], mesh: Mesh, rules=RULES) -> nnx.Module:
    """``make()`` materialised sharded: shapes come from ``nnx.eval_shape`` and each device creates only
    its own shards inside one ``jit``, so the full model never exists on one device."""
    graphdef, abstract_state = nnx.split(nnx.eval_shape(make))
    state = jax.jit(lambda: nnx.split(make())[1], out_shardings=param_shardings(abstract_state, mesh, rules))()
    return nnx.merge(graphdef, state)


def init_tree(fn: Callable[..., Any], *args: Any, mesh: Mesh, rules=RULES) -> Any:
    """``fn(*args)`` for a pytree-valued ``fn`` (embedding tables, optimizer state), created sharded.

    ``args`` are arrays; bind static arguments first (``functools.partial(init_embeddings, config)``).
    """
    shardings = param_shardings(jax.eval_shape(fn, *args), mesh, rules)
    return jax.jit(fn, out_shardings=shardings)(*args)
