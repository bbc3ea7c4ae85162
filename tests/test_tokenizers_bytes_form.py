"""The byte-level normal form: every token's bytes agree with what the tokenizer's own decoder makes
of it, for all 19 llama.cpp vocabularies and both Whisper rank files.

The check decodes [anchor, token] and strips the anchor's text, so decoders that drop a leading space
at the start of a text (SentencePiece's dummy prefix, WordPiece) do not interfere. Exceptions, by design:
- tokens whose bytes are not valid UTF-8 (single bytes of a multi-byte character, `<0xNN>` pieces): the
  decoder prints U+FFFD, so the comparison is against ``bytes.decode("utf-8", "replace")``;
- non-special added tokens of byte-level vocabularies (DeepSeek's literal "ü" and the like) stand for
  their literal text (what they match), while the byte-level decoder garbles them, as the original does:
  compared with their content instead;
- special tokens have no bytes (None).
"""

from __future__ import annotations

import pytest
from tokenizer_assets import LLAMA_CPP_VOCABS, llama_cpp_dir, whisper_dir

from zett_jax.tokenizers.bytes_form import bytes_to_unicode, special_ids, special_roles, token_bytes, unicode_to_bytes
from zett_jax.tokenizers.gguf_vocab import tokenizer_from_gguf
from zett_jax.tokenizers.tiktoken_files import tokenizer_from_tiktoken


def test_gpt2_byte_map():
    m = bytes_to_unicode()
    assert len(set(m.values())) == 256
    assert m[ord(" ")] == "Ġ" and m[ord("\n")] == "Ċ" and m[ord("a")] == "a"
    assert unicode_to_bytes()["Ġ"] == 32


def _check_round_trip(lt):
    tb = token_bytes(lt)
    tok = lt.tokenizer
    assert len(tb) == lt.vocab_size
    added = tok.get_added_tokens_decoder()
    anchor = tok.encode("a", add_special_tokens=False).ids
    assert len(anchor) == 1 and tb[anchor[0]].strip() == b"a"
    anchor_text = tok.decode(anchor)
    ids = [i for i, b in enumerate(tb) if b is not None]
    decoded = tok.decode_batch([anchor + [i] for i in ids], skip_special_tokens=False)
    byte_level = "ByteLevel" in (tok.decoder.__getstate__().decode() if tok.decoder else "")
    wrong = []
    for i, text in zip(ids, decoded):
        b = tb[i]
        if i in added and byte_level:
            ok = b == added[i].content.encode("utf-8")
        else:
            want = anchor_text + b.decode("utf-8", "replace")
            # WordPiece's decoder joins pieces with spaces and cleans up spaces before punctuation
            ok = text == want or (text.replace(" ", "") == want.replace(" ", "") and type(tok.model).__name__ == "WordPiece")
        if not ok:
            wrong.append((i, tok.id_to_token(i), b, text))
    assert not wrong, f"{lt.name}: {len(wrong)} tokens disagree, e.g. {wrong[:5]}"
    specials = set(special_ids(lt))
    assert all(tb[i] is None for i in specials)
    assert all(v in specials or tb[v] is None for v in special_roles(lt).values() if v != lt.unk_id)


@pytest.mark.parametrize("name", list(LLAMA_CPP_VOCABS))
def test_llama_cpp_vocab_bytes_round_trip(name):
    _check_round_trip(tokenizer_from_gguf(llama_cpp_dir() / f"ggml-vocab-{name}.gguf"))


@pytest.mark.parametrize("fname", ["gpt2.tiktoken", "multilingual.tiktoken"])
def test_whisper_bytes_round_trip(fname):
    lt = tokenizer_from_tiktoken(whisper_dir() / fname)
    _check_round_trip(lt)
    tb = token_bytes(lt)
    assert len({b for b in tb if b is not None}) == sum(b is not None for b in tb), "tiktoken tokens are distinct bytes"


def test_conventions():
    d = llama_cpp_dir()
    spm = tokenizer_from_gguf(d / "ggml-vocab-llama-spm.gguf")
    tb = token_bytes(spm)
    assert tb[spm.tokenizer.token_to_id("▁the")] == b" the"
    assert tb[spm.tokenizer.token_to_id("<0x0A>")] == b"\n"
    assert tb[spm.bos_id] is None
    bert = tokenizer_from_gguf(d / "ggml-vocab-bert-bge.gguf")
    tb = token_bytes(bert)
    assert tb[bert.tokenizer.token_to_id("the")] == b" the"
    assert tb[bert.tokenizer.token_to_id("##ing")] == b"ing"
    assert special_roles(bert) == {"bos": 101, "eos": 102, "pad": 0, "unk": 100}
