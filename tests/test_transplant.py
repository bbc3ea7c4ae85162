"""Transplant methods on tiny tokenizers and random tables: invariants and bad input."""

import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest

from tok_tiny import SOURCE_TEXT, TARGET_TEXT, byte_level_bpe, sentencepiece_bpe, word_level
from zett_jax.errors import ZettError
from zett_jax.models.decoder import Embeddings
from zett_jax.transplant import api
from zett_jax.transplant.api import METHODS, transplant_embeddings
from zett_jax.transplant.heuristics import sparsemax_sorted
from zett_jax.transplant.plan import TransplantOptions, plan_tokens

D = 16


@pytest.fixture(scope="module")
def toks():
    source, target = byte_level_bpe(SOURCE_TEXT, 300), byte_level_bpe(TARGET_TEXT, 340)
    return source, target, plan_tokens(source, target)


def _tables(n, d=D, seed=0, tied=True):
    rng = np.random.default_rng(seed)
    inp = jnp.asarray(rng.normal(size=(n, d)), jnp.float32)
    out = None if tied else jnp.asarray(rng.normal(size=(n, d)), jnp.float32)
    return Embeddings(inp, out)


def _run(method, source_tables, toks, donor=None, **opts):
    source, target, plan = toks
    return transplant_embeddings(
        source_tables, source, target, method, donor=donor, options=TransplantOptions(**opts), plan=plan
    )


def _donor(toks, d=24, seed=5):
    return (_tables(toks[1].vocab_size, d=d, seed=seed), toks[1])


@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("tied", [True, False])
def test_shared_rows_copied_exactly_and_tying(method, tied, toks):
    source, target, plan = toks
    src = _tables(source.vocab_size, tied=tied)
    donor = _donor(toks) if method == "omp" else None
    out = _run(method, src, toks, donor=donor, k=4)
    assert out.input_VxD.shape == (target.vocab_size, D)
    assert (out.output_VxD is None) == tied
    t, s = plan.overlap.shared_target_ids, plan.overlap.shared_source_ids
    np.testing.assert_array_equal(np.asarray(out.input_VxD)[t], np.asarray(src.input_VxD)[s])
    if not tied:
        np.testing.assert_array_equal(np.asarray(out.output_VxD)[t], np.asarray(src.output_VxD)[s])
    assert np.isfinite(np.asarray(out.input_VxD)).all()


def test_zero_mean_fvt_rows(toks):
    source, target, plan = toks
    src = _tables(source.vocab_size + 4)  # 4 padding rows that `mean` must leave out
    new = plan.overlap.new_target_ids
    new = new[~plan.decomposition.special_V[new]]
    assert new.size > 10
    np.testing.assert_array_equal(np.asarray(_run("zero", src, toks).input_VxD)[new], 0)
    mean_D = np.asarray(src.input_VxD)[: source.vocab_size].mean(0)
    np.testing.assert_allclose(np.asarray(_run("mean", src, toks).input_VxD)[new], np.broadcast_to(mean_D, (new.size, D)), rtol=1e-5, atol=1e-6)
    fvt = np.asarray(_run("fvt", src, toks).input_VxD)
    d = plan.decomposition
    for t in new:
        expected = np.asarray(src.input_VxD)[d.pieces_VxS[t][d.mask_VxS[t]]].mean(0)
        np.testing.assert_allclose(fvt[t], expected, rtol=1e-5, atol=1e-6)


def test_untied_tables_are_done_separately(toks):
    source, target, plan = toks
    src = _tables(source.vocab_size, tied=False)
    out = _run("fvt", src, toks)
    swapped = _run("fvt", Embeddings(src.output_VxD, src.input_VxD), toks)
    np.testing.assert_array_equal(np.asarray(out.output_VxD), np.asarray(swapped.input_VxD))
    tied = _run("fvt", Embeddings(src.input_VxD), toks, untie=True)
    assert tied.output_VxD is not None
    np.testing.assert_array_equal(np.asarray(tied.output_VxD), np.asarray(tied.input_VxD))


def test_focus_and_tokenadapt_are_convex_combinations(toks):
    source, target, plan = toks
    src = _tables(source.vocab_size)
    new = plan.overlap.new_target_ids
    new = new[~plan.decomposition.special_V[new]]
    for method in ("focus", "tokenadapt"):
        out = np.asarray(_run(method, src, toks).input_VxD)[new]
        table = np.asarray(src.input_VxD)
        # every new row lies in the box spanned by the source rows (weights are >= 0 and sum to 1)
        assert np.all(out <= table.max(0) + 1e-5) and np.all(out >= table.min(0) - 1e-5)


def test_sparsemax():
    z = np.sort(np.random.default_rng(0).normal(size=(50, 12)), axis=1)[:, ::-1]
    p = sparsemax_sorted(z)
    np.testing.assert_allclose(p.sum(1), 1, rtol=1e-12)
    assert (p >= 0).all()
    np.testing.assert_allclose(sparsemax_sorted(np.array([[3.0, 1.0, 0.0]])), [[1, 0, 0]])
    np.testing.assert_allclose(sparsemax_sorted(np.array([[0.5, 0.5, -3.0]])), [[0.5, 0.5, 0]])


def test_omp_reconstruction_exact_for_anchor_combinations(toks):
    """If the donor row of a new token is a sparse combination of donor anchor rows, the new source row
    is the same combination of the source anchor rows (phase 1 recovers it, phase 2 transfers it)."""
    source, target, plan = toks
    rng = np.random.default_rng(1)
    anchor_t, anchor_s = plan.overlap.anchors()
    new = plan.overlap.new_target_ids
    Dd = 2 * len(anchor_t)  # anchors in general position: the sparse code is unique
    donor_VxD = rng.normal(size=(target.vocab_size, Dd))
    picks = np.stack([rng.choice(len(anchor_t), 3, replace=False) for _ in new])
    coefs = rng.uniform(0.5, 2.0, size=picks.shape) * rng.choice([-1, 1], size=picks.shape)
    donor_VxD[new] = np.einsum("bk,bkd->bd", coefs, donor_VxD[anchor_t][picks])
    src = _tables(source.vocab_size, seed=3)
    donor = (Embeddings(jnp.asarray(donor_VxD, jnp.float32)), target)
    out = np.asarray(_run("omp", src, toks, donor=donor, k=6).input_VxD)
    expected = np.einsum("bk,bkd->bd", coefs, np.asarray(src.input_VxD)[anchor_s][picks])
    np.testing.assert_allclose(out[new], expected, rtol=1e-4, atol=1e-4)


def test_omp_untied_donor_fills_output_from_donor_output(toks):
    source, target, plan = toks
    src = _tables(source.vocab_size)
    donor_tables = _tables(target.vocab_size, d=24, tied=False, seed=9)
    out = _run("omp", src, toks, donor=(donor_tables, target), k=4, untie=True)
    new = plan.overlap.new_target_ids
    assert not np.allclose(np.asarray(out.input_VxD)[new], np.asarray(out.output_VxD)[new])
    same = _run("omp", src, toks, donor=(Embeddings(donor_tables.output_VxD), target), k=4)
    np.testing.assert_allclose(np.asarray(out.output_VxD), np.asarray(same.input_VxD), rtol=1e-6)


# ----------------------------------------------------------------------------- bad input
def test_bad_donor_table_smaller_than_vocab(toks):
    small = Embeddings(_tables(toks[1].vocab_size - 3).input_VxD)
    with pytest.raises(ZettError, match="donor embedding table has .* rows but its tokenizer"):
        _run("omp", _tables(toks[0].vocab_size), toks, donor=(small, toks[1]), k=4)


def test_bad_k_larger_than_anchors(toks):
    n = len(toks[2].overlap.anchors()[0])
    with pytest.raises(ZettError, match=f"k={n + 1} must be between 1 and the number of shared anchor tokens \\({n}\\)"):
        _run("omp", _tables(toks[0].vocab_size), toks, donor=_donor(toks), k=n + 1)


def test_bad_donor_tokenizer_differs(toks):
    other = byte_level_bpe(SOURCE_TEXT + TARGET_TEXT, 340)
    donor = (_tables(other.vocab_size), other)
    with pytest.raises(ZettError, match="donor's tokenizer"):
        _run("omp", _tables(toks[0].vocab_size), toks, donor=donor, k=4)


@pytest.mark.parametrize("which", ["input", "output"])
def test_bad_nonfinite_source_rows(which, toks):
    src = _tables(toks[0].vocab_size, tied=False)
    bad = np.asarray(src.input_VxD if which == "input" else src.output_VxD).copy()
    bad[[3, 7], 0] = np.nan
    bad[11, 2] = np.inf
    src = dataclasses.replace(src, **{f"{which}_VxD": jnp.asarray(bad)})
    with pytest.raises(ZettError, match=f"source {which} embedding table has 3 of {bad.shape[0]} rows with NaN or inf"):
        _run("fvt", src, toks)


def test_no_overlap_omp_errors_fvt_works():
    source = byte_level_bpe(SOURCE_TEXT, 300)
    target = word_level(["zzz", "qqqq", "xyxyx"])
    src = _tables(source.vocab_size)
    with pytest.raises(ZettError, match="share no token"):
        transplant_embeddings(src, source, target, "omp", donor=(_tables(3), target))
    out = transplant_embeddings(src, source, target, "fvt")
    assert out.input_VxD.shape == (3, D) and np.isfinite(np.asarray(out.input_VxD)).all()
    for method in ("focus", "tokenadapt"):  # documented fallbacks, logged
        assert np.isfinite(np.asarray(transplant_embeddings(src, source, target, method).input_VxD)).all()


def test_bad_method_and_missing_donor(toks):
    with pytest.raises(ZettError, match="unknown transplant method"):
        _run("magic", _tables(toks[0].vocab_size), toks)
    with pytest.raises(ZettError, match="needs a donor"):
        _run("omp", _tables(toks[0].vocab_size), toks)


def test_cross_convention_transplant_keeps_roles():
    source = byte_level_bpe(SOURCE_TEXT, 300)
    target = sentencepiece_bpe(["▁", "t", "h", "e", "▁t", "▁th", "▁the"], [("▁", "t"), ("▁t", "h"), ("▁th", "e")])
    src = _tables(source.vocab_size)
    out = np.asarray(transplant_embeddings(src, source, target, "fvt").input_VxD)
    np.testing.assert_array_equal(out[1], np.asarray(src.input_VxD)[0])  # bos -> bos
    np.testing.assert_array_equal(out[2], np.asarray(src.input_VxD)[1])  # eos -> eos
    # the target's unk has no source role: the source mean row
    np.testing.assert_allclose(out[0], np.asarray(src.input_VxD).mean(0), rtol=1e-5, atol=1e-6)


def test_transplant_on_a_loaded_model(toks, monkeypatch):
    source, target, plan = toks
    import types

    src = _tables(source.vocab_size)
    model = types.SimpleNamespace(embeddings=src, tokenizer=source,
                                  with_embeddings=lambda e, t: types.SimpleNamespace(embeddings=e, tokenizer=t))
    out = api.transplant(model, target, "mean", plan=plan)
    assert out.tokenizer is target and out.embeddings.vocab_size == target.vocab_size
