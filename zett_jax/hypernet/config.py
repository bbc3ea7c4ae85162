"""Typed configuration of a hypernetwork training run, checked before anything is loaded.

An experiment is an :class:`ExperimentConfig` composed of one frozen dataclass per component. Files in
``experiments/hypernet/`` define ``get_config()``; :func:`from_dict` builds one from nested dicts (JSON,
YAML) and :func:`apply_overrides` takes dotted ``section.key=value`` strings. An unknown key or an invalid
value raises :class:`~zett_jax.errors.ZettError` naming it, before any model or corpus is touched.
"""

from __future__ import annotations

import ast
import dataclasses
import types
import typing
from typing import Any

from zett_jax.errors import ZettError
from zett_jax.hypernet.model import HypernetConfig
from zett_jax.hypernet.sampler import SamplerConfig
from zett_jax.train import OptimizerConfig

DTYPES = ("float32", "bfloat16")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    corpora: tuple[str, ...] = ("wiki-en", "python-code", "fortunes-de", "fortunes-ru")
    max_documents_per_corpus: int | None = 20_000
    batch_size: int = 8
    block_size: int = 128  # the paper's sequence length (§4, "Training")
    # Vocabulary rows embedded per step: the batch's tokens plus uniform negatives (reference
    # ``n_token_subsample``, 8192 of 32768); None embeds the whole sampled vocabulary.
    token_subsample: int | None = None
    # Of those rows, the first ``short_rows`` hold tokens of at most ``short_pieces`` base pieces and are
    # encoded at that width (most sampled tokens have one or two pieces); 0 encodes every row at full width.
    short_rows: int = 0
    short_pieces: int = 2

    @property
    def short(self) -> tuple[int, int]:
        return (self.short_rows, self.short_pieces) if self.short_rows else (0, 0)

    def __post_init__(self):
        if not self.corpora:
            raise ZettError("data.corpora must name at least one corpus")
        if self.batch_size < 1 or self.block_size < 2:
            raise ZettError("data.batch_size must be >= 1 and data.block_size >= 2")
        if self.token_subsample is not None and self.token_subsample < 16:
            raise ZettError(f"data.token_subsample must be None or >= 16, got {self.token_subsample}")
        if self.short_rows and (self.token_subsample is None or not 0 < self.short_rows < self.token_subsample):
            raise ZettError(f"data.short_rows={self.short_rows} needs data.token_subsample set and larger than it")
        if self.short_rows < 0 or self.short_pieces < 1:
            raise ZettError("data.short_rows must be >= 0 and data.short_pieces >= 1")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    base_model: str = "smollm2-135m"
    out_dir: str = "runs/hypernet"
    warmup_phase_steps: int = 100  # ZeTT §3.3 warm-up: reproduce the base table (reference identity_steps)
    warmup_tokens: int = 4096  # base tokens per warm-up step (reference identity_n_subsample)
    steps: int = 1000  # language-modelling steps after the warm-up phase
    aux_weight: float = 0.5  # ZeTT §3.3 auxiliary loss weight (reference lexical_loss_weight=0.5)
    save_every: int = 100
    keep: int = 2
    seed: int = 0
    prefetch: int = 2
    compute_dtype: str = "float32"
    mesh_data: int = -1
    mesh_model: int = 1

    def __post_init__(self):
        if self.warmup_phase_steps < 0 or self.steps < 0 or self.warmup_phase_steps + self.steps < 1:
            raise ZettError("train.warmup_phase_steps and train.steps must be >= 0, and not both 0")
        if self.save_every < 1 or self.keep < 1 or self.prefetch < 1 or self.warmup_tokens < 1:
            raise ZettError("train.save_every, train.keep, train.prefetch and train.warmup_tokens must be >= 1")
        if self.aux_weight < 0:
            raise ZettError(f"train.aux_weight must be >= 0, got {self.aux_weight}")
        if self.compute_dtype not in DTYPES:
            raise ZettError(f"train.compute_dtype must be one of {DTYPES}, got {self.compute_dtype!r}")

    @property
    def total_steps(self) -> int:
        return self.warmup_phase_steps + self.steps


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    train: TrainConfig = TrainConfig()
    data: DataConfig = DataConfig()
    sampler: SamplerConfig = SamplerConfig()
    hypernet: HypernetConfig = HypernetConfig()
    # ``total_steps`` is derived from the train section (see :meth:`optimizer_config`).
    optimizer: OptimizerConfig = OptimizerConfig(learning_rate=3e-4, warmup_steps=100, weight_decay=0.01)

    def optimizer_config(self) -> OptimizerConfig:
        return dataclasses.replace(self.optimizer, total_steps=self.train.total_steps)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _check_value(where: str, hint: Any, value: Any) -> Any:
    """``value`` converted to the field's type, or a ZettError naming the key."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _check_value(where, inner[0], value)
    if origin is tuple:
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise ZettError(f"config {where}: expected a list, got {value!r}")
        return tuple(_check_value(f"{where}[]", args[0], v) for v in value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str, bool) and (type(value) is not hint):
        raise ZettError(f"config {where}: expected {hint.__name__}, got {value!r}")
    return value


def _build(cls: type, data: dict, where: str) -> Any:
    if not isinstance(data, dict):
        raise ZettError(f"config {where or 'root'}: expected a mapping, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        path = f"{where}.{key}" if where else key
        if key not in fields:
            raise ZettError(f"config: unknown key {path!r} (known: {', '.join(sorted(fields))})")
        if cls is OptimizerConfig and key == "total_steps":
            raise ZettError("config: optimizer.total_steps is derived (train.warmup_phase_steps + train.steps)")
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            kwargs[key] = _build(hint, value, path)
        else:
            kwargs[key] = _check_value(path, hint, value)
    try:
        return cls(**kwargs)
    except ZettError as e:
        raise ZettError(f"config {where or 'root'}: {e}") from None
    except (TypeError, ValueError) as e:
        raise ZettError(f"config {where or 'root'}: {e}") from None


def from_dict(data: dict) -> ExperimentConfig:
    """A config from nested dicts; sections and keys left out keep their defaults."""
    return _build(ExperimentConfig, data, "")


def apply_overrides(config: ExperimentConfig, overrides: list[str]) -> ExperimentConfig:
    """``["train.steps=10", "data.corpora=['wiki-en']"]`` applied on top of ``config`` (values are Python
    literals; anything that does not parse as one is a string)."""
    data = config.to_dict()
    data["optimizer"].pop("total_steps")
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or "." not in key:
            raise ZettError(f"override {item!r}: expected section.key=value")
        section, name = key.split(".", 1)
        if section not in data or not isinstance(data[section], dict):
            raise ZettError(f"override {item!r}: unknown section {section!r}")
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = raw
        data[section][name] = value
    return from_dict(data)
