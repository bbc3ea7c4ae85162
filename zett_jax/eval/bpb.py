"""Bits per byte: the tokenizer-independent yardstick of ROADMAP.md.

Each document is tokenized without special tokens and cut into consecutive chunks of ``L - 1`` tokens;
each window ``[prefix] + chunk`` (prefix = BOS, else EOS) scores every chunk token given the tokens
before it in its window. ``bits_per_byte = sum(-ln p) / ln 2 / sum(utf8 bytes of the documents)``.

Windows are grouped into a few length buckets (powers of two up to ``L``) so that the jitted scorer
compiles once per bucket; the rows of a bucket are padded, and padding never counts.
"""

from __future__ import annotations

import dataclasses
import math
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from tqdm.auto import tqdm

from zett_jax.convert.load import LoadedModel
from zett_jax.errors import ZettError
from zett_jax.models.decoder import token_logprobs


@dataclasses.dataclass
class BpbResult:
    bits_per_byte: float
    nll_nats: float
    tokens: int
    bytes: int
    documents: int
    windows: int
    max_length: int
    seconds: float

    @property
    def tokens_per_byte(self) -> float:
        return self.tokens / self.bytes

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["tokens_per_byte"] = self.tokens_per_byte
        d["tokens_per_second"] = self.tokens / self.seconds if self.seconds > 0 else None
        return d


def make_windows(token_lists: list[list[int]], prefix: int, max_length: int) -> list[np.ndarray]:
    """Windows ``[prefix] + chunk`` with chunks of ``max_length - 1`` consecutive tokens of each document."""
    if max_length < 2:
        raise ZettError(f"--max-length must be at least 2 (a prefix and one scored token), got {max_length}")
    step = max_length - 1
    windows = []
    for ids in token_lists:
        ids = np.asarray(ids, dtype=np.int32)
        for start in range(0, len(ids), step):
            windows.append(np.concatenate([[prefix], ids[start : start + step]]).astype(np.int32))
    return windows


def bucket_lengths(max_length: int, smallest: int = 64) -> list[int]:
    """Input lengths the scorer compiles for: powers of two from ``smallest``, capped by ``max_length - 1``."""
    top = max_length - 1
    out, n = [], smallest
    while n < top:
        out.append(n)
        n *= 2
    return out + [top]


def batches(windows: list[np.ndarray], max_length: int, batch_size: int):
    """Yield ``(inputs_BxT, targets_BxT, valid_BxT)`` numpy batches of fixed bucket shapes.

    The token budget per batch is ``batch_size * (max_length - 1)``, so short buckets take more rows.
    """
    buckets = bucket_lengths(max_length)
    by_bucket: dict[int, list[np.ndarray]] = {b: [] for b in buckets}
    for w in windows:
        n = len(w) - 1
        by_bucket[next(b for b in buckets if b >= n)].append(w)
    budget = batch_size * (max_length - 1)
    for T, group in by_bucket.items():
        rows = max(1, min(budget // T, len(group))) if group else 0
        # Round the row count to a power of two so nearby corpora share compiled shapes.
        rows = 2 ** math.floor(math.log2(rows)) if rows else 0
        for start in range(0, len(group), max(rows, 1)):
            chunk = group[start : start + rows]
            inputs = np.zeros((rows, T), np.int32)
            targets = np.zeros((rows, T), np.int32)
            valid = np.zeros((rows, T), bool)
            for r, w in enumerate(chunk):
                n = len(w) - 1
                inputs[r, :n] = w[:-1]
                targets[r, :n] = w[1:]
                valid[r, :n] = True
            yield inputs, targets, valid


def make_scorer(loaded: LoadedModel):
    """A jitted ``(inputs, targets, valid) -> summed log-probability of the valid targets``."""
    graphdef, state = nnx.split(loaded.model)

    @jax.jit
    def score(state, embeddings, inputs_BxT, targets_BxT, valid_BxT):
        model = nnx.merge(graphdef, state)
        lp_BxT = token_logprobs(model, embeddings, inputs_BxT, targets_BxT, valid_BxT)
        return jnp.sum(jnp.where(valid_BxT, lp_BxT, 0.0), dtype=jnp.float32)

    return lambda *batch: score(state, loaded.embeddings, *batch)


def bits_per_byte(
    loaded: LoadedModel,
    documents: list[str],
    *,
    max_length: int = 1024,
    batch_size: int = 8,
    progress: bool = True,
) -> BpbResult:
    if not documents:
        raise ZettError("no documents to evaluate")
    start = time.perf_counter()
    token_lists = loaded.tokenizer.encode_batch(documents)
    windows = make_windows(token_lists, loaded.tokenizer.prefix_id(), max_length)
    n_tokens = sum(len(w) - 1 for w in windows)
    n_bytes = sum(len(d.encode("utf-8")) for d in documents)
    score = make_scorer(loaded)
    total = 0.0
    pending = []
    with tqdm(total=n_tokens, unit="tok", disable=not progress, desc="bits/byte") as bar:
        for inputs, targets, valid in batches(windows, max_length, batch_size):
            # Dispatch the next batch before reading the previous result, so host and device overlap.
            pending.append((score(inputs, targets, valid), int(valid.sum())))
            if len(pending) > 1:
                value, count = pending.pop(0)
                total += float(value)
                bar.update(count)
        for value, count in pending:
            total += float(value)
            bar.update(count)
    nll = -total
    return BpbResult(
        bits_per_byte=nll / math.log(2) / n_bytes,
        nll_nats=nll,
        tokens=n_tokens,
        bytes=n_bytes,
        documents=len(documents),
        windows=len(windows),
        max_length=max_length,
        seconds=time.perf_counter() - start,
    )
