"""The paper's recipe: ZeTT hypernetwork for Mistral-7B on English + code (a TPU v4-32 or a GPU node).

Sources (Minixhofer, Ponti & Vulić 2024, "Zero-Shot Tokenizer Transfer", §4 "Experimental setup" and
Appendix; the reference config ``configs/zeroshot/v7:mistral7b_en+code:lw=0.5_long.json`` of
bminixhofer/zett, whose values are copied here):
- 200k steps, batch 128, sequence length 128 ("steps": 200000, "train_batch_size": 128, block_size 128);
- warm-up phase reproducing the base embeddings: 10k steps over 16384 base tokens each
  ("identity_steps": 10000, "identity_n_subsample": 16384);
- AdamW, beta2 0.95, weight decay 0.01, gradient clipping at 0.1 ("adam_beta2", "weight_decay",
  "max_grad_norm"); learning rate 6e-5 after a 3e-4 warm-up phase with 10k/20k warm-up steps
  ("learning_rate": [3e-4, 6e-5], "warmup_steps": [10000, 20000]) -- one schedule here: peak 6e-5;
- sampled vocabularies of 32768 tokens (tokenizer_sample_mean/max 32768, std 0), pieces up to 16
  characters, noise scale ~ LogNormal(log 1e-5, 4) ("tokenizer_noise_mean": 1e-5, "tokenizer_noise_std": 4);
- auxiliary loss weight 0.5 ("lexical_loss_weight": 0.5); decompositions of at most 7 base pieces
  ("hn_surface_maxlen": 7);
- hypernetwork: 3 layers (the reference default hn_n_layers), width 4096 = Mistral's, MLP 8192, 32 heads
  ("hn_hidden_size", "hn_intermediate_size", "hn_num_attention_heads"); bf16 ("dtype": "bfloat16").

Differences: the reference trains Mistral's Hugging Face checkpoint with Flax Linen on TPUs; the base model
name below must resolve through ``zett_jax.convert.load.load_model`` (a local HF directory or hub id).
The paper's data (MADLAD-400 English + StarCoder Python) is not an asset here; the corpora below stand in.
"""

from zett_jax.hypernet.config import DataConfig, ExperimentConfig, TrainConfig
from zett_jax.hypernet.model import HypernetConfig
from zett_jax.hypernet.sampler import SamplerConfig
from zett_jax.train import OptimizerConfig


def get_config() -> ExperimentConfig:
    return ExperimentConfig(
        train=TrainConfig(
            base_model="mistralai/Mistral-7B-v0.1",
            out_dir="runs/hypernet-mistral7b-en-code",
            warmup_phase_steps=10_000,
            warmup_tokens=16_384,
            steps=200_000,
            aux_weight=0.5,
            save_every=10_000,
            keep=2,
            compute_dtype="bfloat16",
        ),
        data=DataConfig(corpora=("wiki-en", "python-code"), max_documents_per_corpus=None, batch_size=128, block_size=128),
        sampler=SamplerConfig(vocab_size=32_768, max_piece_length=16, noise_mean=1e-5, noise_sigma=4.0, cache_batches=16),
        hypernet=HypernetConfig(num_layers=3, hidden_size=4096, intermediate_size=8192, num_heads=32, max_pieces=7),
        optimizer=OptimizerConfig(
            learning_rate=6e-5, warmup_steps=20_000, final_lr_fraction=0.1, b1=0.9, b2=0.95, eps=1e-8,
            weight_decay=0.01, clip_norm=0.1,
        ),
    )
