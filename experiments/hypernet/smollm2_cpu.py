"""ZeTT hypernetwork for SmolLM2-135M on a CPU budget (about an hour on 2 cores; minutes on a GPU).

Scaled down from the paper's recipe (see ``paper_mistral7b.py``): a 32k-token sampled vocabulary becomes
8k, batch 128 x 128 tokens becomes 8 x 128, 200k steps become 200 warm-up + 600 LM steps. As in the
reference (``n_token_subsample=8192`` of 32768), each step embeds a quarter of the sampled vocabulary:
the batch's tokens plus uniform negatives (``data.token_subsample=1024``). The hypernetwork keeps the
paper's shape relative to the base model (3 layers, width = the base width 576, MLP 2x, 7 pieces).
Corpora: English prose, Python code, German and Russian text (ASSETS.md), mixed in one shuffled stream.

Run: ``zett hypernet train --config experiments/hypernet/smollm2_cpu.py`` (or ``train_from_config(get_config())``
from ``zett_jax.hypernet.train``). The run behind ``experiments/results/hypernet.md`` used exactly this
file; ``data.short_rows=640`` (encode one- and two-piece tokens at width 2) gives the same losses at a
lower cost and came after it.
"""

from zett_jax.hypernet.config import DataConfig, ExperimentConfig, TrainConfig
from zett_jax.hypernet.model import HypernetConfig
from zett_jax.hypernet.sampler import SamplerConfig
from zett_jax.train import OptimizerConfig


def get_config() -> ExperimentConfig:
    return ExperimentConfig(
        train=TrainConfig(
            base_model="smollm2-135m",
            out_dir="runs/hypernet-smollm2",
            warmup_phase_steps=200,
            warmup_tokens=4096,
            steps=600,
            aux_weight=0.5,
            save_every=100,
            keep=2,
            seed=0,
            compute_dtype="float32",
        ),
        data=DataConfig(
            corpora=("wiki-en", "python-code", "fortunes-de", "fortunes-ru"),
            max_documents_per_corpus=20_000,
            batch_size=8,
            block_size=128,
            token_subsample=1024,
        ),
        sampler=SamplerConfig(vocab_size=8192, max_piece_length=16, noise_mean=1e-5, noise_sigma=4.0, cache_batches=8),
        hypernet=HypernetConfig(num_layers=3, hidden_size=576, intermediate_size=1152, num_heads=9, max_pieces=7),
        optimizer=OptimizerConfig(
            learning_rate=3e-4, warmup_steps=100, final_lr_fraction=0.1, b1=0.9, b2=0.95, weight_decay=0.01,
            clip_norm=1.0,
        ),
    )
