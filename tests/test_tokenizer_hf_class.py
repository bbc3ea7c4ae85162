"""The ``tokenizer_class`` written into exported tokenizer directories.

A specific class (``GemmaTokenizer``, ``BertTokenizer``) tells other tools what family a tokenizer is
(mergekit-tokensurgeon strips ``▁`` only for SentencePiece-family classes), but transformers 5 rebuilds
parts of the pipeline for some classes. Every tokenizer asset is therefore written, loaded back with
``transformers.AutoTokenizer`` and must give the ids of its tokenizer.json.
"""

from __future__ import annotations

import json

import pytest
from tokenizer_assets import LLAMA_CPP_VOCABS, gemma3_gguf, llama_cpp_dir, smollm2_gguf, whisper_dir

from zett_jax.tokenizers.core import infer_hf_class
from zett_jax.tokenizers.load import load_tokenizer

TEXTS = [
    "Hello world, the quick brown fox.",
    "  def f(x):\n\treturn x**2  # über\n",
    "Привет, мир! 日本語 🙂 ",
    "Grüße aus Köln\n\n\nend  ",
    " leading space and 12345 digits",
]
SOURCES = {
    **{name: lambda n=name: llama_cpp_dir() / f"ggml-vocab-{n}.gguf" for name in LLAMA_CPP_VOCABS},
    "whisper-gpt2": lambda: whisper_dir() / "gpt2.tiktoken",
    "whisper-multilingual": lambda: whisper_dir() / "multilingual.tiktoken",
    "smollm2-135m": smollm2_gguf,
    "gemma3-270m": gemma3_gguf,
}
EXPECTED = {"gemma3-270m": "GemmaTokenizer", "gemma-4": "GemmaTokenizer", "bert-bge": "BertTokenizer",
            "smollm2-135m": "PreTrainedTokenizerFast", "llama-bpe": "PreTrainedTokenizerFast",
            "llama-spm": "PreTrainedTokenizerFast", "whisper-gpt2": "PreTrainedTokenizerFast"}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SOURCES))
def test_exported_class_reproduces_the_tokenizer_under_transformers(tmp_path, name):
    from transformers import AutoTokenizer

    lt = load_tokenizer(SOURCES[name]())
    lt.save_hf(tmp_path)
    written = json.loads((tmp_path / "tokenizer_config.json").read_text())["tokenizer_class"]
    assert written == infer_hf_class(lt.tokenizer)
    if name in EXPECTED:
        assert written == EXPECTED[name]
    hf = AutoTokenizer.from_pretrained(tmp_path)
    assert type(hf).__name__ == written or written == "PreTrainedTokenizerFast"
    assert len(hf) == lt.vocab_size
    for text in TEXTS:
        assert hf(text, add_special_tokens=False)["input_ids"] == lt.tokenizer.encode(text, add_special_tokens=False).ids, (written, text)
        assert hf(text)["input_ids"] == lt.tokenizer.encode(text, add_special_tokens=True).ids, (written, text)


def test_a_directorys_own_class_is_kept(tmp_path):
    """A tokenizer read from an HF directory keeps the class its tokenizer_config.json names."""
    lt = load_tokenizer(llama_cpp_dir() / "ggml-vocab-gpt-2.gguf")
    lt.save_hf(tmp_path / "a")
    cfg_path = tmp_path / "a" / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    assert cfg["tokenizer_class"] == "PreTrainedTokenizerFast"
    cfg["tokenizer_class"] = "GPT2Tokenizer"
    cfg_path.write_text(json.dumps(cfg))
    reloaded = load_tokenizer(tmp_path / "a")
    assert reloaded.hf_class == "GPT2Tokenizer"
    reloaded.save_hf(tmp_path / "b")
    assert json.loads((tmp_path / "b" / "tokenizer_config.json").read_text())["tokenizer_class"] == "GPT2Tokenizer"
