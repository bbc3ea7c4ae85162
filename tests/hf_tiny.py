"""Tiny random Hugging Face models built offline from configs, one per supported family."""

from __future__ import annotations

TINY = dict(
    vocab_size=101,
    hidden_size=64,
    intermediate_size=96,
    num_hidden_layers=3,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=256,
)

CONFIGS = {
    "llama-tied": dict(model_type="llama", tie_word_embeddings=True, rope_theta=10000.0, **TINY),
    "llama3-untied": dict(
        model_type="llama",
        tie_word_embeddings=False,
        rope_scaling=dict(
            rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
            original_max_position_embeddings=32,
        ),
        rope_theta=500000.0,
        **TINY,
    ),
    "qwen2-bias": dict(model_type="qwen2", tie_word_embeddings=False, rope_theta=1000000.0, **TINY),
    "mistral-window": dict(model_type="mistral", tie_word_embeddings=False, sliding_window=5, **TINY),
    "gemma3": dict(
        model_type="gemma3_text",
        tie_word_embeddings=True,
        head_dim=32,
        query_pre_attn_scalar=24,
        sliding_window=4,
        layer_types=["sliding_attention", "full_attention", "sliding_attention"],
        rope_theta=1000000.0,
        rope_local_base_freq=10000.0,
        **{**TINY, "num_attention_heads": 2, "num_key_value_heads": 1},
    ),
}


def build_torch_model(name: str, seed: int = 0):
    """A random transformers model (PyTorch, fp32, eager attention) for config ``name``."""
    import torch
    import transformers

    cfg = dict(CONFIGS[name])
    model_type = cfg.pop("model_type")
    config = transformers.AutoConfig.for_model(model_type, **cfg)
    config._attn_implementation = "eager"
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    with torch.no_grad():
        for name_, p in model.named_parameters():
            # Random norms and biases too, so that a missed offset or bias shows up in the logits.
            if p.ndim == 1:
                p.copy_(torch.randn_like(p) * 0.1 + (0.0 if "gemma" in model_type else 1.0))
            else:
                p.normal_(0.0, 0.05)
    return model.eval()
