"""load_tokenizer / convert_to_hf_dir over every input kind, and tiktoken files against GPT-2's
reference ids."""

from __future__ import annotations

import pytest
from tokenizer_assets import llama_cpp_dir, read_reference, whisper_dir

from zett_jax.errors import ZettError
from zett_jax.tokenizers.load import convert_to_hf_dir, load_tokenizer
from zett_jax.tokenizers.tiktoken_files import tokenizer_from_tiktoken

TEXT = "Hello  wörld\n    x = 1 # 你好 🤖"


def test_gpt2_tiktoken_matches_llama_cpp_reference():
    """gpt2.tiktoken and ggml-vocab-gpt-2.gguf are the same tokenizer; ids must equal the reference."""
    lt = tokenizer_from_tiktoken(whisper_dir() / "gpt2.tiktoken")
    assert lt.vocab_size == 50257 and lt.eos_id == 50256
    gguf_lt = load_tokenizer(llama_cpp_dir() / "ggml-vocab-gpt-2.gguf")
    assert lt.tokenizer.get_vocab() == gguf_lt.tokenizer.get_vocab()
    for text, want in read_reference(llama_cpp_dir() / "ggml-vocab-gpt-2.gguf"):
        assert lt.tokenizer.encode(text, add_special_tokens=False).ids == want, repr(text)


def test_whisper_multilingual_skips_the_empty_entry():
    lt = tokenizer_from_tiktoken(whisper_dir() / "multilingual.tiktoken")
    # rank 50256 is the bogus empty entry: a placeholder keeps ids dense, <|endoftext|> follows it
    assert lt.eos_id == 50257 and lt.vocab_size == 50258
    ids = lt.tokenizer.encode(TEXT, add_special_tokens=False).ids
    assert 50256 not in ids and lt.tokenizer.decode(ids) == TEXT


@pytest.mark.parametrize("source", ["gguf-bpe", "gguf-spm", "gguf-wordpiece", "tiktoken"])
def test_convert_to_hf_dir_round_trip(tmp_path, source):
    spec = {
        "gguf-bpe": llama_cpp_dir() / "ggml-vocab-qwen2.gguf",
        "gguf-spm": llama_cpp_dir() / "ggml-vocab-llama-spm.gguf",
        "gguf-wordpiece": llama_cpp_dir() / "ggml-vocab-bert-bge.gguf",
        "tiktoken": whisper_dir() / "gpt2.tiktoken",
    }[source]
    original = load_tokenizer(spec)
    out = convert_to_hf_dir(spec, tmp_path / "hf")
    convert_to_hf_dir(spec, tmp_path / "hf")  # replacing an existing dir works
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hf"], "no temp dirs left behind"
    assert {p.name for p in out.iterdir()} == {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"}
    for reloaded in (load_tokenizer(out), load_tokenizer(out / "tokenizer.json")):
        roles = lambda t: (t.bos_id, t.eos_id, t.pad_id, t.unk_id, t.add_bos)  # noqa: E731
        assert roles(reloaded) == roles(original)
        for special in (False, True):
            assert (reloaded.tokenizer.encode(TEXT, add_special_tokens=special).ids
                    == original.tokenizer.encode(TEXT, add_special_tokens=special).ids)
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(out)
    assert hf(TEXT)["input_ids"] == original.tokenizer.encode(TEXT, add_special_tokens=True).ids


def test_tokenizer_json_without_configs_guesses_roles(tmp_path):
    lt = load_tokenizer(llama_cpp_dir() / "ggml-vocab-llama-spm.gguf")
    lt.tokenizer.save(str(tmp_path / "only.json"))
    bare = load_tokenizer(tmp_path / "only.json")
    assert (bare.bos_id, bare.eos_id, bare.unk_id, bare.add_bos) == (1, 2, 0, True)


def test_bad_inputs(tmp_path):
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "bad.tiktoken").write_text("this is not base64 and rank\n")
    (tmp_path / "empty_dir").mkdir()
    cases = {
        tmp_path / "broken.json": "broken.json.*tokenizer.json",
        tmp_path / "notes.txt": "notes.txt.*unknown tokenizer file type",
        tmp_path / "bad.tiktoken": "bad.tiktoken.*tiktoken rank file",
        tmp_path / "missing.gguf": "missing.gguf.*no such file",
        tmp_path / "empty_dir": "empty_dir",
    }
    for spec, pattern in cases.items():
        with pytest.raises(ZettError, match=pattern) as info:
            load_tokenizer(spec)
        assert "\n" not in str(info.value)
    with pytest.raises(ZettError):
        convert_to_hf_dir(tmp_path / "notes.txt", tmp_path / "out")
    assert not (tmp_path / "out").exists()
