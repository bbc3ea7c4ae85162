"""Where a hypernetwork training step spends its time, next to a plain base-model step (issue 4, "Speed").

Measured on the same batch shape: host work per batch (sampling a tokenizer, decomposing its vocabulary,
tokenizing the texts; it runs on the prefetch thread, so it is hidden as long as it is shorter than the
device step), the hypernetwork's forward pass alone, the whole hypernetwork train step (hypernetwork +
frozen base forward/backward), the base part of that step alone (same batch and vocabulary, fixed
tables), and a plain step of the base model with its own tokenizer that trains only its embedding tables
(the cheapest step that still back-propagates through the whole body).
Medians over ``repeats`` after one compile call each; times in seconds.
"""

from __future__ import annotations

import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from zett_jax import train as shared
from zett_jax.hypernet.config import ExperimentConfig
from zett_jax.hypernet.data import TextBatches, tokenize_lm
from zett_jax.hypernet.losses import TRAINABLE, predict_tables
from zett_jax.hypernet.train import build_module, lm_batches, make_step


def _median_time(fn, repeats: int) -> float:
    jax.block_until_ready(fn())  # compile
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def time_split(config: ExperimentConfig, base, documents: list[str], repeats: int = 3) -> dict:
    """Seconds per step and their split (see module doc):

    - ``host_s``: sampling + decomposing + tokenizing one batch (prefetch thread);
    - ``hypernet_forward_s``: the hypernetwork's forward pass alone;
    - ``hypernet_step_s``: the whole hypernetwork train step; ``base_part_s``: the frozen base model's
      forward/backward on the same batch and vocabulary with fixed tables; ``hypernet_part_s``: the rest;
    - ``base_step_s``: a plain step of the base model with its own tokenizer (full vocabulary);
    - ``overhead`` = ``hypernet_step_s / base_step_s - 1`` (the issue's aim: under 0.25), and
      ``overhead_same_vocab`` = ``hypernet_step_s / base_part_s - 1`` (the hypernetwork's cost alone).
    """
    tc, dc = config.train, config.data
    texts = TextBatches(documents, dc.batch_size, dc.block_size, tc.seed)
    it = lm_batches(config, base.tokenizer, texts, 0)
    host = []
    for _ in range(repeats + 1):
        _, _, batch, seconds = next(it)
        host.append(seconds)

    opt = config.optimizer_config()
    module = build_module(config, base)
    forward = nnx.jit(lambda m, b: predict_tables(m, b.pieces_VxS, b.mask_VxS, b.special_ids_R, b.special_base_ids_R,
                                                  dc.short))
    forward_s = _median_time(lambda: forward(module, batch), repeats)
    predicted = forward(module, batch)  # before the train step donates the module's parameters

    graphdef, state, frozen = shared.init_train_state(module, opt, TRAINABLE)
    step = make_step(graphdef, "lm", tc.aux_weight, opt, short=dc.short)
    holder = {"state": state}

    def hn_step():
        holder["state"], metrics = step(holder["state"], frozen, batch)
        return metrics.loss

    hypernet_step_s = _median_time(hn_step, repeats)

    def embeddings_step_s(tables, lm_batch) -> float:
        """A step of the frozen body that trains only ``tables`` (copied: the step donates them)."""
        lm = shared.LanguageModel(base.model, jax.tree.map(jnp.copy, tables))
        g, s, f = shared.init_train_state(lm, opt, shared.EMBEDDINGS)
        jitted = shared.jit_train_step(g, shared.lm_loss, opt)
        box = {"state": s}

        def run():
            box["state"], metrics = jitted(box["state"], f, lm_batch)
            return metrics.loss

        return _median_time(run, repeats)

    inputs, targets, valid = tokenize_lm(base.tokenizer, texts(0), dc.block_size)
    base_step_s = embeddings_step_s(base.embeddings, shared.Batch(inputs_BxT=inputs, targets_BxT=targets, valid_BxT=valid))
    # The base forward/backward part of the hypernetwork step: the same text and (subsampled) vocabulary,
    # with the predicted tables held as trainable leaves instead of computed by the hypernetwork.
    same_vocab_s = embeddings_step_s(predicted, shared.Batch(
        inputs_BxT=batch.inputs_BxT, targets_BxT=batch.targets_BxT, valid_BxT=batch.valid_BxT))
    return {
        "host_s": float(np.median(host[1:])),
        "hypernet_forward_s": forward_s,
        "hypernet_step_s": hypernet_step_s,
        "base_part_s": same_vocab_s,
        "hypernet_part_s": hypernet_step_s - same_vocab_s,
        "base_step_s": base_step_s,
        "overhead": hypernet_step_s / base_step_s - 1.0,
        "overhead_same_vocab": hypernet_step_s / same_vocab_s - 1.0,
    }
