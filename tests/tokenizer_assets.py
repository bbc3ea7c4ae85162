"""Where the tokenizer tests find their real inputs.

Each location comes from an environment variable if set (a developer's local copy), else from
`zett_jax.assets` (downloads into the cache once). If neither works the test FAILS with a message that
says what to set: these checks are the evidence that the converters are right, so they must not be
skipped silently.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The 19 vocabularies of llama-cpp-python 0.3.36; True where .inp/.out reference cases ship with it.
LLAMA_CPP_VOCABS = {
    "gpt-2": True, "gpt-neox": False, "mpt": True, "llama-bpe": True, "qwen2": True, "qwen35": True,
    "falcon": True, "starcoder": True, "refact": True, "command-r": True, "deepseek-coder": True,
    "deepseek-llm": True, "aquila": False, "llama-spm": True, "phi-3": True, "baichuan": False,
    "gemma-4": True, "bert-bge": True, "nomic-bert-moe": False,
}
WITH_REFERENCE = [n for n, has in LLAMA_CPP_VOCABS.items() if has]


def _locate(env: str, asset_call, what: str) -> Path:
    if os.environ.get(env):
        p = Path(os.environ[env])
        if not p.exists():
            pytest.fail(f"${env}={p} does not exist (expected {what})")
        return p
    try:
        import zett_jax.assets as assets

        return Path(asset_call(assets))
    except Exception as e:  # noqa: BLE001 - any failure here means "no assets", reported below
        pytest.fail(f"cannot get {what}: set ${env}, or make zett_jax.assets work ({type(e).__name__}: {e})")


def llama_cpp_dir() -> Path:
    def call(assets):
        fn = getattr(assets, "llama_cpp_dir", None)
        if fn is None:
            raise RuntimeError("zett_jax.assets has no llama_cpp_dir()")
        return fn(progress=False)

    d = _locate("ZETT_LLAMA_CPP_DIR", call, "the llama.cpp models dir with ggml-vocab-*.gguf and .inp/.out")
    if not (d / "ggml-vocab-gpt-2.gguf").is_file():
        pytest.fail(f"{d} holds no ggml-vocab-gpt-2.gguf (expected llama.cpp's vendor/llama.cpp/models)")
    return d


def whisper_dir() -> Path:
    return _locate("ZETT_WHISPER_DIR", lambda a: a.fetch("whisper-gpt2", progress=False).parent,
                   "the dir with whisper's gpt2.tiktoken and multilingual.tiktoken")


def smollm2_gguf() -> Path:
    return _locate("ZETT_SMOLLM2_GGUF", lambda a: a.fetch("smollm2-135m", progress=False),
                   "SmolLM2-135M-Instruct.Q4_1.gguf")


def gemma3_gguf() -> Path:
    return _locate("ZETT_GEMMA3_GGUF", lambda a: a.fetch("gemma3-270m", progress=False),
                   "gemma-3-270m-q4_k_m.gguf")


def read_reference(gguf: Path) -> list[tuple[str, list[int]]]:
    """llama.cpp's test cases: .inp holds the texts, each followed by a `__ggml_vocab_test__` line;
    .out holds one line of space-separated token ids per text."""
    inp = Path(str(gguf) + ".inp").read_bytes().decode("utf-8")
    texts = inp.split("\n__ggml_vocab_test__\n")
    if texts[-1] == "":
        texts.pop()
    lines = Path(str(gguf) + ".out").read_text(encoding="utf-8").split("\n")
    assert len(lines) >= len(texts), f"{gguf}.out has {len(lines)} lines for {len(texts)} cases"
    return [(t, [int(x) for x in line.split()]) for t, line in zip(texts, lines)]
