"""batch_omp against a plain float64 OMP, and its invariants (jit, chunking, sharding, inputs)."""

import os
import subprocess
import sys
import functools
import textwrap

import jax
import numpy as np
import pytest

from zett_jax.errors import ZettError
from zett_jax.transplant import omp
from zett_jax.transplant.omp import batch_omp


def reference_omp(x_BxD, dict_NxD, k, normalize=False):
    """Textbook OMP in float64: argmax |<r, d_j>| (optionally / ||d_j||), lstsq on the support."""
    x_BxD, dict_NxD = np.asarray(x_BxD, np.float64), np.asarray(dict_NxD, np.float64)
    scale_N = 1.0 / np.linalg.norm(dict_NxD, axis=1) if normalize else np.ones(len(dict_NxD))
    idx_BxK = np.zeros((len(x_BxD), k), np.int64)
    coef_BxK = np.zeros((len(x_BxD), k))
    for b, x in enumerate(x_BxD):
        r, support = x.copy(), []
        for _ in range(k):
            score = np.abs(dict_NxD @ r) * scale_N
            score[support] = -1.0
            support.append(int(np.argmax(score)))
            coef, *_ = np.linalg.lstsq(dict_NxD[support].T, x, rcond=None)
            r = x - dict_NxD[support].T @ coef
        idx_BxK[b], coef_BxK[b] = support, coef
    return idx_BxK, coef_BxK


def residual_norms(x_BxD, dict_NxD, idx_BxK, coef_BxK):
    x_BxD, dict_NxD = np.asarray(x_BxD, np.float64), np.asarray(dict_NxD, np.float64)
    recon_BxD = np.einsum("bk,bkd->bd", np.asarray(coef_BxK, np.float64), dict_NxD[np.asarray(idx_BxK)])
    return np.linalg.norm(x_BxD - recon_BxD, axis=1)


def problem(seed, B=64, N=300, D=48):
    """Gaussian atoms of uneven norms (0.5 to 2) with a shared component, so norms matter."""
    rng = np.random.default_rng(seed)
    dict_NxD = rng.standard_normal((N, D)) + 0.3 * rng.standard_normal(D)
    dict_NxD *= rng.uniform(0.5, 2.0, (N, 1))
    x_BxD = rng.standard_normal((B, D))
    return x_BxD.astype(np.float32), dict_NxD.astype(np.float32)


def assert_matches_reference(x, d, k, **kw):
    idx, coef = batch_omp(x, d, k, **kw)
    ref_idx, ref_coef = reference_omp(x, d, k, normalize=kw.get("normalize", False))
    np.testing.assert_array_equal(np.asarray(idx), ref_idx)
    ours = residual_norms(x, d, idx, coef)
    theirs = residual_norms(x, d, ref_idx, ref_coef)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5 * np.linalg.norm(x, axis=1).max())


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("gram_steps", [0, 5, None])
def test_matches_reference(seed, gram_steps):
    x, d = problem(seed)
    assert_matches_reference(x, d, 8, gram_steps=gram_steps)


def test_matches_reference_normalized():
    x, d = problem(3)
    assert_matches_reference(x, d, 8, normalize=True, gram_steps=4)


@pytest.mark.parametrize("k", [1, 40])
def test_edge_k(k):
    x, d = problem(4, B=32, N=40, D=48)  # k = N: every atom gets picked
    assert_matches_reference(x, d, k)


def test_target_is_an_atom():
    # normalize=True: with raw scores a longer, correlated atom may outscore the target's own atom.
    _, d = problem(5)
    idx, coef = batch_omp(d[[7, 123]], d, 6, normalize=True)
    np.testing.assert_array_equal(np.asarray(idx)[:, 0], [7, 123])
    np.testing.assert_allclose(np.asarray(coef)[:, 0], 1.0, rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(coef)[:, 1:], 0.0)  # residual ~0: the rest are zeroed
    for row in np.asarray(idx):
        assert len(set(row)) == 6


@pytest.mark.parametrize("k", [4, 7])
def test_exact_sparse_combination(k):
    rng = np.random.default_rng(6)
    d = rng.standard_normal((200, 128))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    support_Bx4 = np.stack([rng.choice(200, 4, replace=False) for _ in range(16)])
    true_Bx4 = rng.uniform(1.0, 2.0, (16, 4)) * rng.choice([-1, 1], (16, 4))
    x = np.einsum("bk,bkd->bd", true_Bx4, d[support_Bx4]).astype(np.float32)
    idx, coef = batch_omp(x, d.astype(np.float32), k)
    idx, coef = np.asarray(idx), np.asarray(coef)
    for b in range(16):
        assert set(idx[b, :4]) == set(support_Bx4[b])
        assert len(set(idx[b])) == k
        order = np.argsort(idx[b, :4])
        np.testing.assert_allclose(coef[b, :4][order], true_Bx4[b][np.argsort(support_Bx4[b])], rtol=1e-4)
    np.testing.assert_array_equal(coef[:, 4:], 0.0)
    assert residual_norms(x, d, idx, coef).max() < 1e-4 * np.linalg.norm(x, axis=1).min()


def test_duplicate_and_zero_atoms():
    _, d = problem(7, N=50)
    d = np.concatenate([d, d[:10], np.zeros((3, d.shape[1]), np.float32)])  # rows 50-59 repeat 0-9
    x = d[[3]] + 0.5 * d[[20]]
    idx, coef = batch_omp(x, d, 8)
    idx, coef = np.asarray(idx)[0], np.asarray(coef)[0]
    assert len(set(idx)) == 8 and np.all(np.isfinite(coef))
    assert residual_norms(x, d, idx[None], coef[None])[0] < 1e-5 * np.linalg.norm(x)
    picked = {int(i) % 50 for i, c in zip(idx, coef) if c != 0}
    assert picked == {3, 20}


def test_jit_equals_no_jit():
    # The solver core without its shard_map wrapper: eager shard_map compiles every op afresh.
    x, d = problem(8, B=16, N=64, D=16)
    sqnorm = np.sum(d.astype(np.float32) ** 2, axis=1)
    args = (x, d, sqnorm, np.ones(64, np.float32), d @ d.T)
    solve = functools.partial(omp._solve_chunk, k=5, gram_steps=2, tol=1e-5, block=64)
    idx, coef = jax.jit(solve)(*args)
    with jax.disable_jit():
        idx_eager, coef_eager = solve(*args)
    np.testing.assert_array_equal(np.asarray(idx), np.asarray(idx_eager))
    np.testing.assert_allclose(np.asarray(coef), np.asarray(coef_eager), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(idx), reference_omp(x, d, 5)[0])


def test_chunked_equals_unchunked():
    x, d = problem(9, B=100)
    idx_a, coef_a = batch_omp(x, d, 8, chunk_size=32)  # 4 chunks, the last padded with 28 zeros
    idx_b, coef_b = batch_omp(x, d, 8, chunk_size=128)
    np.testing.assert_array_equal(np.asarray(idx_a), np.asarray(idx_b))
    np.testing.assert_allclose(np.asarray(coef_a), np.asarray(coef_b), rtol=1e-5, atol=1e-6)


_SHARDED_SCRIPT = textwrap.dedent(
    """
    import jax, numpy as np
    from zett_jax.transplant.omp import batch_omp
    assert jax.device_count() == 8, jax.devices()
    rng = np.random.default_rng(0)
    d = rng.standard_normal((300, 48)).astype(np.float32)
    x = rng.standard_normal((100, 48)).astype(np.float32)
    one = jax.make_mesh((1,), ("batch",), devices=jax.devices()[:1],
                        axis_types=(jax.sharding.AxisType.Auto,))
    idx1, coef1 = batch_omp(x, d, 8, chunk_size=8, mesh=one)
    idx8, coef8 = batch_omp(x, d, 8, chunk_size=8)
    assert len(idx8.sharding.device_set) == 8, idx8.sharding
    np.testing.assert_array_equal(np.asarray(idx1), np.asarray(idx8))
    np.testing.assert_allclose(np.asarray(coef1), np.asarray(coef8), rtol=1e-5, atol=1e-6)
    print("OK")
    """
)


def test_sharded_equals_single_device():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu")
    out = subprocess.run(
        [sys.executable, "-c", _SHARDED_SCRIPT], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0 and "OK" in out.stdout, out.stderr[-3000:]


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda x, d: (x, d, 0), r"k must be"),
        (lambda x, d: (x, d, 301), r"k must be .*\[1, 300\]"),
        (lambda x, d: (x, d, 2.0), r"k must be"),
        (lambda x, d: (x, d[:, :40], 4), r"dimension 48 .* 40"),
        (lambda x, d: (x[0], d, 4), r"2-D"),
        (lambda x, d: (np.where(np.arange(64)[:, None] % 20 == 0, np.nan, x), d, 4), r"targets has 4 of 64 rows"),
        (lambda x, d: (x, np.where(np.arange(300)[:, None] == 5, np.inf, d), 4), r"dictionary has 1 of 300 rows"),
    ],
)
def test_bad_inputs_raise(make, match):
    x, d = problem(10)
    with pytest.raises(ZettError, match=match):
        batch_omp(*make(x, d))
