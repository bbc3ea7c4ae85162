"""Host-side batches for hypernetwork training: texts -> sampled tokenizer -> decomposition -> token ids.

Everything about batch ``i`` is a function of ``i`` and the seed (the texts, the span cut from each text,
the tokenizer noise), except the sampler's rolling substring cache, which a resumed run rebuilds by
re-observing the previous ``cache_batches - 1`` batches. So a killed run resumes on exactly the batches
it would have seen. Batches are made on a background thread (:class:`Prefetcher`) so that sampling and
tokenizing overlap the device step.

Shape letters: B batch, T positions, V sampled vocabulary, S pieces per token, R special tokens.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Callable, Iterator, Sequence

import numpy as np

from zett_jax.errors import ZettError
from zett_jax.hypernet.losses import HypernetBatch, WarmupBatch
from zett_jax.hypernet.sampler import SamplerConfig, TokenizerSampler
from zett_jax.tokenizers.bytes_form import special_roles
from zett_jax.tokenizers.core import LoadedTokenizer
from zett_jax.tokenizers.overlap import decompose

MAX_CHARS_PER_TOKEN = 16  # reference zett/utils.py: a text span of 16 x block_size characters is enough


def pad_pieces(pieces_VxS: np.ndarray, mask_VxS: np.ndarray, S: int) -> tuple[np.ndarray, np.ndarray]:
    """Truncate or pad decompositions to exactly ``S`` pieces (the reference truncates too)."""
    V, S0 = pieces_VxS.shape
    if S0 >= S:
        return pieces_VxS[:, :S], mask_VxS[:, :S]
    pad = ((0, 0), (0, S - S0))
    return np.pad(pieces_VxS, pad), np.pad(mask_VxS, pad)


def role_pairs(target: LoadedTokenizer, base: LoadedTokenizer) -> tuple[np.ndarray, np.ndarray]:
    """(target ids, base ids) of the special roles both tokenizers have."""
    t_roles, b_roles = special_roles(target), special_roles(base)
    roles = [r for r in ("bos", "eos", "pad", "unk") if r in t_roles and r in b_roles]
    return (np.array([t_roles[r] for r in roles], np.int32), np.array([b_roles[r] for r in roles], np.int32))


def tokenize_lm(tok: LoadedTokenizer, texts: Sequence[str], T: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``[prefix] + tokens`` cut to T + 1 and right-padded: (inputs_BxT, targets_BxT, valid_BxT)."""
    prefix = tok.prefix_id()
    seq_BxT1 = np.zeros((len(texts), T + 1), np.int32)
    valid_BxT = np.zeros((len(texts), T), bool)
    for b, ids in enumerate(tok.encode_batch(list(texts))):
        row = [prefix, *ids[:T]]
        seq_BxT1[b, : len(row)] = row
        valid_BxT[b, : len(row) - 1] = True
    return seq_BxT1[:, :-1], seq_BxT1[:, 1:], valid_BxT


def subsample_vocabulary(
    inputs_BxT: np.ndarray, targets_BxT: np.ndarray, valid_BxT: np.ndarray, keep_R: np.ndarray, V: int, N: int,
    rng: np.random.Generator, lengths_V: np.ndarray | None = None, short: tuple[int, int] = (0, 0),
) -> np.ndarray:
    """``ids_N``: the ``N`` vocabulary ids a step embeds: every id the batch uses (inputs, valid targets) and
    ``keep_R``, then ids drawn uniformly from the rest.

    ZeTT reference ``n_token_subsample`` with ``subsample_mode="random"``: the hypernetwork predicts, and the
    softmax runs over, only these rows, so a step's cost no longer grows with the sampled vocabulary size.
    Uniform negatives because the sampled vocabulary already follows the unigram distribution.

    ``short = (rows, width)`` with ``lengths_V`` (pieces per token): the first ``rows`` ids are tokens of at
    most ``width`` pieces (the batch's own first, then negatives of that length), the rest any tokens; each
    part in ascending order. Otherwise all ids ascend.
    """
    used_U = np.union1d(np.union1d(inputs_BxT.ravel(), targets_BxT[valid_BxT]), keep_R).astype(np.int64)
    if used_U.size > N:
        raise ZettError(
            f"data.token_subsample={N} is smaller than the {used_U.size} distinct tokens of one batch; "
            f"raise it or lower data.batch_size x data.block_size"
        )
    rest = np.setdiff1d(np.arange(V), used_U, assume_unique=True)
    rows, width = short
    if not rows:
        return np.sort(np.concatenate([used_U, rng.choice(rest, N - used_U.size, replace=False)])).astype(np.int32)
    used_short = used_U[lengths_V[used_U] <= width]
    in_short = used_short[:rows]
    in_long = np.setdiff1d(used_U, in_short, assume_unique=True)
    if in_long.size > N - rows:
        raise ZettError(f"one batch uses {in_long.size} tokens for the {N - rows} long rows "
                        f"(data.token_subsample - data.short_rows); lower data.short_rows")
    rest_short = rest[lengths_V[rest] <= width]
    if rest_short.size < rows - in_short.size:
        raise ZettError(f"the sampled vocabulary has too few tokens of <= {width} pieces for "
                        f"data.short_rows={rows}; lower it")
    fill_short = rng.choice(rest_short, rows - in_short.size, replace=False)
    rest_long = np.setdiff1d(rest, fill_short, assume_unique=True)
    fill_long = rng.choice(rest_long, N - rows - in_long.size, replace=False)
    return np.concatenate([np.sort(np.concatenate([in_short, fill_short])),
                           np.sort(np.concatenate([in_long, fill_long]))]).astype(np.int32)


def hypernet_batch(
    base: LoadedTokenizer, tok: LoadedTokenizer, texts: Sequence[str], T: int, S: int,
    token_subsample: int | None = None, rng: np.random.Generator | None = None, short: tuple[int, int] = (0, 0),
) -> HypernetBatch:
    """The training batch of one sampled tokenizer (numpy arrays); with ``token_subsample`` the vocabulary
    is cut to that many ids (:func:`subsample_vocabulary`, ``rng`` draws them) and the text re-indexed."""
    dec = decompose(base, tok)
    pieces_VxS, mask_VxS = pad_pieces(dec.pieces_VxS, dec.mask_VxS, S)
    shared_V = dec.shared_V
    special_ids_R, special_base_ids_R = role_pairs(tok, base)
    inputs_BxT, targets_BxT, valid_BxT = tokenize_lm(tok, texts, T)
    if token_subsample is not None and token_subsample < pieces_VxS.shape[0]:
        ids_N = subsample_vocabulary(inputs_BxT, targets_BxT, valid_BxT, special_ids_R, pieces_VxS.shape[0],
                                     token_subsample, rng if rng is not None else np.random.default_rng(0),
                                     mask_VxS.sum(1), short)
        position_V = np.zeros(pieces_VxS.shape[0], np.int32)
        position_V[ids_N] = np.arange(ids_N.size, dtype=np.int32)
        pieces_VxS, mask_VxS, shared_V = pieces_VxS[ids_N], mask_VxS[ids_N], shared_V[ids_N]
        inputs_BxT, special_ids_R = position_V[inputs_BxT], position_V[special_ids_R]
        targets_BxT = np.where(valid_BxT, position_V[targets_BxT], 0)
    return HypernetBatch(
        pieces_VxS=pieces_VxS.astype(np.int32), mask_VxS=mask_VxS, shared_V=shared_V,
        base_id_V=np.where(shared_V, pieces_VxS[:, 0], 0).astype(np.int32),
        special_ids_R=special_ids_R, special_base_ids_R=special_base_ids_R,
        inputs_BxT=inputs_BxT, targets_BxT=targets_BxT, valid_BxT=valid_BxT,
    )


def warmup_batch(base_rows: int, size: int, S: int, rng: np.random.Generator) -> WarmupBatch:
    """``size`` distinct base ids drawn uniformly (reference: ``identity_n_subsample``), as single pieces."""
    ids_V = np.sort(rng.choice(base_rows, size=min(size, base_rows), replace=False)).astype(np.int32)
    pieces_VxS = np.zeros((ids_V.size, S), np.int32)
    pieces_VxS[:, 0] = ids_V
    mask_VxS = np.zeros((ids_V.size, S), bool)
    mask_VxS[:, 0] = True
    return WarmupBatch(ids_V=ids_V, pieces_VxS=pieces_VxS, mask_VxS=mask_VxS)


class TextBatches:
    """Batch ``i`` of texts: consecutive spans of ``16 x block_size`` characters of the shuffled corpus.

    The documents (in a seeded permutation) are joined by blank lines into one stream that wraps around,
    so short documents are packed into full spans (the reference packs sequences too) and text ``k`` is
    simply the stream from ``k x span``. Negative indices are valid (the sampler's cache warm-up uses them).
    """

    def __init__(self, documents: Sequence[str], batch_size: int, block_size: int, seed: int):
        if not documents:
            raise ZettError("no documents to train on")
        order = np.random.default_rng([seed, 0]).permutation(len(documents))
        self.stream = "\n\n".join(documents[j] for j in order) + "\n\n"
        self.batch_size = batch_size
        self.span = MAX_CHARS_PER_TOKEN * block_size
        if len(self.stream) < self.span * batch_size:
            raise ZettError(
                f"the documents hold {len(self.stream)} characters, less than one batch of {batch_size} "
                f"texts of {self.span} characters"
            )

    def __call__(self, i: int) -> list[str]:
        n, out = len(self.stream), []
        for k in range(i * self.batch_size, (i + 1) * self.batch_size):
            start = (k * self.span) % n
            text = self.stream[start : start + self.span]
            if len(text) < self.span:
                text += self.stream[: self.span - len(text)]
            out.append(text)
        return out


def sampled_batches(
    base: LoadedTokenizer, texts_of: Callable[[int], list[str]], cfg: SamplerConfig, T: int, S: int, seed: int, start: int,
    token_subsample: int | None = None, short: tuple[int, int] = (0, 0),
) -> Iterator[tuple[int, LoadedTokenizer, HypernetBatch, float]]:
    """``(i, tokenizer, batch, host seconds)`` for i = start, start + 1, ...; the cache is rebuilt first.
    ``token_subsample``: see :func:`hypernet_batch` (the tokenizer yielded is the whole sampled one)."""
    sampler = TokenizerSampler(base, cfg)
    for j in range(start - cfg.cache_batches + 1, start):  # a full cache from the first batch on
        sampler.observe(texts_of(j))
    i = start
    while True:
        t0 = time.perf_counter()
        texts = texts_of(i)
        tok = sampler.sample(texts, np.random.default_rng([seed, 2, i]))
        batch = hypernet_batch(base, tok, texts, T, S, token_subsample, np.random.default_rng([seed, 4, i]), short)
        yield i, tok, batch, time.perf_counter() - t0
        i += 1


class Prefetcher:
    """Runs an iterator on a daemon thread, ``depth`` items ahead; errors re-raise in the consumer."""

    _DONE = object()

    def __init__(self, it: Iterator, depth: int = 2):
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(it,), daemon=True)
        self._thread.start()

    def _run(self, it: Iterator) -> None:
        try:
            for item in it:
                while not self._stop.is_set():
                    try:
                        self._queue.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if self._stop.is_set():
                    return
        except BaseException as e:  # handed to the consumer, which raises it
            self._queue.put(e)
        self._queue.put(self._DONE)

    def __iter__(self):
        return self

    def __next__(self):
        item = self._queue.get()
        if item is self._DONE:
            raise StopIteration
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
