"""Vocabulary overlap and decomposition on tiny tokenizers with known overlap."""

import numpy as np
import tokenizers
from tokenizers import decoders, models, pre_tokenizers

from tok_tiny import SOURCE_TEXT, TARGET_TEXT, byte_level_bpe, sentencepiece_bpe, word_level
from zett_jax.tokenizers.bytes_form import bytes_to_unicode, token_bytes
from zett_jax.tokenizers.core import LoadedTokenizer
from zett_jax.tokenizers.overlap import decompose, vocab_overlap

SP_PIECES = ["▁", "t", "h", "e", "▁t", "▁th", "▁the", "c", "a", "▁c", "▁ca", "▁cat", "▁zebra"]
SP_MERGES = [("▁", "t"), ("▁t", "h"), ("▁th", "e"), ("▁", "c"), ("▁c", "a"), ("▁ca", "t")]


def _pieces_bytes(src, d, t):
    forms = token_bytes(src)
    return b"".join(forms[i] for i in d.pieces_VxS[t][d.mask_VxS[t]])


def test_overlap_same_convention_is_vocab_intersection():
    source, target = byte_level_bpe(SOURCE_TEXT, 300), byte_level_bpe(TARGET_TEXT, 340)
    ov = vocab_overlap(source, target)
    sv, tv = source.tokenizer.get_vocab(), target.tokenizer.get_vocab()
    expected = {tv[w]: sv[w] for w in set(sv) & set(tv)}
    assert ov.num_shared == len(expected)
    assert {int(t): int(s) for t, s in zip(ov.shared_target_ids, ov.shared_source_ids)} == expected
    assert ov.role_pairs == (("bos", 0, 0), ("eos", 1, 1))
    anchor_t, _ = ov.anchors()
    assert set(anchor_t.tolist()) == set(expected) - {0, 1}  # role-matched specials are not anchors
    assert np.all(ov.source_of_target_V[ov.new_target_ids] == -1)


def test_overlap_across_conventions_and_roles():
    source = byte_level_bpe(SOURCE_TEXT, 300)
    target = sentencepiece_bpe(SP_PIECES, SP_MERGES)
    ov = vocab_overlap(source, target)
    sv, tv = source.tokenizer.get_vocab(), target.tokenizer.get_vocab()
    space = bytes_to_unicode()[32]
    assert ov.source_of_target_V[tv["▁the"]] == sv[space + "the"]
    # `▁` and the byte piece <0x20> are both the space byte: both map to the source's space token
    assert ov.source_of_target_V[tv["▁"]] == ov.source_of_target_V[tv["<0x20>"]] == sv[space]
    assert ov.source_of_target_V[tv["▁zebra"]] == -1
    assert dict((r, (t, s)) for r, t, s in ov.role_pairs) == {"bos": (1, 0), "eos": (2, 1)}
    assert ov.source_of_target_V[0] == -1  # the target's unk: the source has no unk role


def test_decomposition_exact_and_padded():
    source, target = byte_level_bpe(SOURCE_TEXT, 300), sentencepiece_bpe(SP_PIECES, SP_MERGES)
    d = decompose(source, target)
    forms = token_bytes(target)
    assert d.pieces_VxS.shape[0] == target.vocab_size and d.mask_VxS.shape == d.pieces_VxS.shape
    assert np.all(d.pieces_VxS[~d.mask_VxS] == 0)
    assert np.array_equal(d.special_V, np.array([f is None for f in forms]))
    assert not d.mask_VxS[d.special_V].any()
    for t in np.flatnonzero(~d.special_V):
        assert _pieces_bytes(source, d, t) == forms[t]  # a full byte alphabet expresses everything
    assert d.exact_V[~d.special_V].all()
    zebra = target.tokenizer.token_to_id("▁zebra")
    assert d.lengths_V[zebra] >= 2
    # mask is a prefix of each row
    assert np.all(np.diff(d.mask_VxS.astype(int), axis=1) <= 0)


def _half_char_target() -> LoadedTokenizer:
    """A byte-level target whose vocabulary has b"\\xe4\\xb8", half of the UTF-8 of "中"."""
    alphabet = bytes_to_unicode()
    vocab = {alphabet[b]: b for b in range(256)}
    half = alphabet[0xE4] + alphabet[0xB8]
    vocab[half] = 256
    tok = tokenizers.Tokenizer(models.BPE(vocab, [(alphabet[0xE4], alphabet[0xB8])]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    return LoadedTokenizer(tok, name="half-char")


def test_decomposition_of_bytes_that_are_not_utf8():
    target = _half_char_target()
    assert token_bytes(target)[256] == b"\xe4\xb8"
    for source in (byte_level_bpe(TARGET_TEXT, 340), sentencepiece_bpe(SP_PIECES, SP_MERGES)):
        d = decompose(source, target)
        assert d.exact_V.all()
        assert _pieces_bytes(source, d, 256) == b"\xe4\xb8"
        assert _pieces_bytes(source, d, 0x80) == b"\x80"


def test_decomposition_flags_what_the_source_cannot_spell():
    source = word_level(["[UNK]", "cat"])  # no byte fallback: anything but "cat" is unk
    target = sentencepiece_bpe(SP_PIECES, SP_MERGES)
    d = decompose(source, target)
    assert not d.exact_V[target.tokenizer.token_to_id("▁zebra")]


def test_no_overlap():
    source = byte_level_bpe(SOURCE_TEXT, 300)
    target = word_level(["zzz", "qqqq", "xyxyx"])
    assert vocab_overlap(source, target).num_shared == 0
    d = decompose(source, target)
    assert d.exact_V.all() and d.lengths_V.tolist() == [3, 4, 5]
