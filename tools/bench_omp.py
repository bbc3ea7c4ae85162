"""Benchmark zett_jax's batch_omp side by side with mergekit's tokensurgeon batch_omp.

    .venv/bin/python tools/bench_omp.py --quick
    .venv/bin/python tools/bench_omp.py --targets 32768 --atoms 16384 --dim 576 640 --k 64 \\
        --json experiments/results/omp_benchmark.json

mergekit (LGPL, brings torch) is never imported here: it runs in its own venv
(``--mergekit-python``, e.g. /tmp/mk-venv/bin/python after ``pip install torch==2.13.0 mergekit``),
as this same file in ``--worker`` mode, on the same .npy data. Both solvers are called on the same
slices of ``--call-size`` targets, alternating slice by slice so that both see the same load on a
shared machine (the first call of ours includes the jit compile, reported separately). Quality is measured in float64: the relative residual of each method's own
coefficients and its excess over the least-squares optimum on that method's chosen support.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

# One BLAS thread for the host-side float64 checks: on two shared cores OpenBLAS's threads turned
# the batched 64 x 576 products into a ~80x slowdown. (JAX's matmuls do not use OpenBLAS.)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np


def make_data(n_rows: int, dim: int, seed: int) -> np.ndarray:
    """Embedding-like rows: a shared mean direction, a decaying spectrum, log-normal norms."""
    rng = np.random.default_rng(seed)
    spectrum_D = 1.0 / np.sqrt(1.0 + np.arange(dim) / 16.0)  # power-law-ish, like real embeddings
    basis_DxD, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    mean_D = rng.standard_normal(dim)
    mean_D *= 0.3 * np.linalg.norm(spectrum_D) / np.linalg.norm(mean_D)  # a shared direction, cos ~0.3
    rows = (rng.standard_normal((n_rows, dim)) * spectrum_D) @ basis_DxD.T + mean_D
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    rows *= rng.lognormal(0.0, 0.25, (n_rows, 1))
    return rows.astype(np.float32)


def best_seconds(fn, repeats=7):
    """Fastest of several timed calls after a warm-up: the machine's throughput, not its load."""
    fn()
    secs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        secs.append(time.perf_counter() - t0)
    return min(secs)


# ----------------------------------------------------------------------------- mergekit worker
def worker(data_dir: str, k: int) -> None:
    """Serve "lo hi" slices from stdin with mergekit's batch_omp; answer each with its seconds."""
    import torch
    from mergekit.tokensurgeon.omp import batch_omp  # the peer under test: called, never copied

    x = torch.from_numpy(np.load(os.path.join(data_dir, "targets.npy")))
    d = torch.from_numpy(np.load(os.path.join(data_dir, "dictionary.npy")))
    a, b = torch.randn(4096, x.shape[1]), torch.randn(16384, x.shape[1])
    mm_gflops = 2 * 4096 * 16384 * x.shape[1] / best_seconds(lambda: torch.mm(a, b.T)) / 1e9
    print("ready", flush=True)
    idx, coef, secs = [], [], []
    for line in sys.stdin:
        if line.strip() == "end":
            break
        lo, hi = map(int, line.split())
        t0 = time.perf_counter()
        with torch.no_grad():
            i, c = batch_omp(x[lo:hi], d, k)
        secs.append(time.perf_counter() - t0)
        idx.append(i.numpy())
        coef.append(c.numpy())
        print(secs[-1], flush=True)
    np.save(os.path.join(data_dir, "mk_idx.npy"), np.concatenate(idx))
    np.save(os.path.join(data_dir, "mk_coef.npy"), np.concatenate(coef))
    info = {"secs": secs, "torch_matmul_gflops": mm_gflops, "torch": torch.__version__,
            "mergekit": _dist_version("mergekit"), "torch_threads": torch.get_num_threads()}
    with open(os.path.join(data_dir, "mk_info.json"), "w") as f:
        json.dump(info, f)


def _dist_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


# ----------------------------------------------------------------------------- quality
def quality(x_BxD, dict_NxD, idx_BxK, coef_BxK, rows_per_step=1024):
    """Relative residual of the given coefs and of the float64 least-squares optimum on the support."""
    xnorm = np.linalg.norm(x_BxD.astype(np.float64), axis=1)
    rel, rel_opt = np.empty(len(x_BxD)), np.empty(len(x_BxD))
    for lo in range(0, len(x_BxD), rows_per_step):
        sl = slice(lo, lo + rows_per_step)
        x = x_BxD[sl].astype(np.float64)
        atoms_BxKxD = dict_NxD[idx_BxK[sl]].astype(np.float64)
        recon = np.einsum("bk,bkd->bd", coef_BxK[sl].astype(np.float64), atoms_BxKxD)
        rel[sl] = np.linalg.norm(x - recon, axis=1) / xnorm[sl]
        # Optimum on the support: float64 normal equations (supports here are well conditioned,
        # kappa^2 * 1e-16 is far below the differences reported).
        gram_BxKxK = np.einsum("bkd,bjd->bkj", atoms_BxKxD, atoms_BxKxD, optimize=True)
        rhs_BxK = np.einsum("bkd,bd->bk", atoms_BxKxD, x)
        best_BxK = np.linalg.solve(gram_BxKxK, rhs_BxK[..., None])[..., 0]
        proj = np.einsum("bk,bkd->bd", best_BxK, atoms_BxKxD)
        rel_opt[sl] = np.linalg.norm(x - proj, axis=1) / xnorm[sl]
    return rel, rel_opt


def support_agreement(idx_a, idx_b):
    jac, same = [], 0
    for a, b in zip(idx_a, idx_b):
        sa, sb = set(a.tolist()), set(b.tolist())
        jac.append(len(sa & sb) / len(sa | sb))
        same += sa == sb
    return float(np.mean(jac)), same / len(idx_a)


def steady_total(secs):
    """Total seconds without the compile: later calls as measured, the first replaced by their median."""
    if len(secs) == 1:
        return secs[0], 0.0
    med = float(np.median(secs[1:]))
    return float(sum(secs[1:]) + med), float(secs[0] - med)


# ----------------------------------------------------------------------------- driver
def run_one(args, dim: int) -> dict:
    import jax
    import jax.numpy as jnp

    from zett_jax.transplant.omp import batch_omp

    data = make_data(args.atoms + args.targets, dim, args.seed)
    dict_NxD, x_BxD = data[: args.atoms], data[args.atoms :]
    B, N, k = args.targets, args.atoms, args.k
    flops = 2.0 * B * N * dim * k  # dense-OMP equivalent: one B x N x D correlation matmul per pick

    a = jnp.asarray(np.random.default_rng(1).standard_normal((4096, dim), dtype=np.float32))
    b = jnp.asarray(np.random.default_rng(2).standard_normal((16384, dim), dtype=np.float32))
    mm = jax.jit(lambda a, b: a @ b.T)
    jax_mm_gflops = 2 * 4096 * 16384 * dim / best_seconds(lambda: mm(a, b).block_until_ready()) / 1e9

    d_dev = jnp.asarray(dict_NxD)

    def ours(xs):
        i, c = batch_omp(jnp.asarray(xs), d_dev, k)
        return np.asarray(i), np.asarray(c)

    with tempfile.TemporaryDirectory() as tmp:
        peer = None
        if args.mergekit_python:
            np.save(os.path.join(tmp, "targets.npy"), x_BxD)
            np.save(os.path.join(tmp, "dictionary.npy"), dict_NxD)
            peer = subprocess.Popen(
                [args.mergekit_python, os.path.abspath(__file__), "--worker", tmp, "--k", str(k)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            )
            assert peer.stdout.readline().strip() == "ready"
        # Interleave the two solvers slice by slice, so both see the same load on a shared machine.
        idx_z, coef_z, secs_z, secs_m = [], [], [], []
        for lo in range(0, B, args.call_size):
            hi = min(lo + args.call_size, B)
            t0 = time.perf_counter()
            i, c = ours(x_BxD[lo:hi])
            secs_z.append(time.perf_counter() - t0)
            idx_z.append(i)
            coef_z.append(c)
            line = f"[D={dim}] targets {lo}:{hi}  zett_jax {secs_z[-1]:.1f} s"
            if peer:
                peer.stdin.write(f"{lo} {hi}\n")
                peer.stdin.flush()
                secs_m.append(float(peer.stdout.readline()))
                line += f"  mergekit {secs_m[-1]:.1f} s"
            print(line, flush=True)
        idx_z, coef_z = np.concatenate(idx_z), np.concatenate(coef_z)
        if peer:
            peer.stdin.write("end\n")
            peer.stdin.flush()
            if peer.wait() != 0:
                raise RuntimeError("mergekit worker failed")
            idx_m, coef_m = np.load(os.path.join(tmp, "mk_idx.npy")), np.load(os.path.join(tmp, "mk_coef.npy"))
            with open(os.path.join(tmp, "mk_info.json")) as f:
                info = json.load(f)

    run_z, compile_z = steady_total(secs_z)
    result = {
        "dim": dim, "targets": B, "atoms": N, "k": k, "call_size": args.call_size,
        "jax_matmul_gflops": jax_mm_gflops, "dense_equiv_gflop": flops / 1e9,
        "zett_jax": {"run_s": run_z, "compile_s": compile_z, "call_s": secs_z,
                     "gflops": flops / run_z / 1e9},
    }
    rel_z, opt_z = quality(x_BxD, dict_NxD, idx_z, coef_z)
    result["zett_jax"].update(_quality_summary(rel_z, opt_z))
    if peer:
        run_m = float(sum(secs_m))
        rel_m, opt_m = quality(x_BxD, dict_NxD, idx_m, coef_m)
        jac, same = support_agreement(idx_z, idx_m)
        result["mergekit"] = {"run_s": run_m, "call_s": secs_m, "gflops": flops / run_m / 1e9,
                              **_quality_summary(rel_m, opt_m)}
        result["torch_matmul_gflops"] = info["torch_matmul_gflops"]
        result["versions_mergekit_venv"] = {k_: info[k_] for k_ in ("torch", "mergekit", "torch_threads")}
        result["speedup"] = run_m / run_z
        result["support_mean_jaccard"] = jac
        result["support_identical_frac"] = same
        result["rel_residual_ours_minus_mergekit_mean"] = float(np.mean(rel_z - rel_m))
        print(f"[D={dim}] zett_jax {run_z:.1f} s (+{compile_z:.1f} s compile), mergekit {run_m:.1f} s: "
              f"speedup {run_m / run_z:.2f}x", flush=True)
    return result


def _quality_summary(rel, opt):
    return {"rel_residual_mean": float(rel.mean()), "rel_residual_median": float(np.median(rel)),
            "excess_over_lstsq_mean": float((rel - opt).mean()),
            "excess_over_lstsq_max": float((rel - opt).max())}


def markdown(results: dict) -> str:
    """The results as the Markdown page kept in experiments/results."""
    m = results["meta"]
    out = [
        "# OMP solver benchmark: zett_jax `batch_omp` vs mergekit `tokensurgeon.omp.batch_omp`",
        "",
        f"Command: `{m['command']}`  ",
        f"Machine: {m['machine']}, shared with other jobs (timings noisy; the two solvers alternate "
        "slice by slice so both see the same load; compare ratios). "
        f"Versions: jax {m['jax']}, numpy {m['numpy']}"
        + (f", mergekit venv: {results['runs'][0].get('versions_mergekit_venv')}" if results["runs"] else "")
        + ".",
        "",
        "Data: synthetic embedding-like rows (`make_data`: a decaying power-law spectrum in a random "
        "basis, a shared mean direction with cos ~0.3, log-normal norms sigma 0.25), dictionary and "
        "targets drawn from the same distribution; fp32, CPU. GFLOP/s count the dense-OMP work "
        "2*B*N*D*k (one correlation matmul per pick); matmul GFLOP/s is the best of 7 4096x16384xD "
        "products measured in the same run (jax, and torch in the mergekit venv). Residuals in float64: relative ||x - D_S c|| / ||x|| with each "
        "method's coefficients, and its excess over the least-squares optimum on its own support "
        "(float64 normal equations).",
        "",
        "| D | targets | atoms | k | zett_jax s (compile s) | mergekit s | speedup | zett_jax GFLOP/s "
        "| jax matmul GFLOP/s | torch matmul GFLOP/s | mergekit GFLOP/s | support Jaccard | identical "
        "supports | rel. residual zett / mergekit | excess over lstsq zett / mergekit |",
        "|" + "---|" * 15,
    ]
    for r in results["runs"]:
        z, mk = r["zett_jax"], r.get("mergekit")
        if mk is None:
            out.append(f"| {r['dim']} | {r['targets']} | {r['atoms']} | {r['k']} | {z['run_s']:.1f} "
                       f"({z['compile_s']:.1f}) | | | {z['gflops']:.0f} | {r['jax_matmul_gflops']:.0f} |"
                       f" | | | | {z['rel_residual_mean']:.5f} | {z['excess_over_lstsq_mean']:.1e} |")
            continue
        out.append(
            f"| {r['dim']} | {r['targets']} | {r['atoms']} | {r['k']} | {z['run_s']:.1f} ({z['compile_s']:.1f})"
            f" | {mk['run_s']:.1f} | **{r['speedup']:.2f}x** | {z['gflops']:.0f} | {r['jax_matmul_gflops']:.0f}"
            f" | {r['torch_matmul_gflops']:.0f} | {mk['gflops']:.0f} | {r['support_mean_jaccard']:.4f}"
            f" | {r['support_identical_frac']:.4f} | {z['rel_residual_mean']:.6f} / {mk['rel_residual_mean']:.6f}"
            f" | {z['excess_over_lstsq_mean']:.1e} / {mk['excess_over_lstsq_mean']:.1e} |"
        )
    out.append("")
    for r in results["runs"]:
        if "mergekit" in r:
            z, mk = r["zett_jax"]["call_s"], r["mergekit"]["call_s"]
            ratios = [b / a for a, b in zip(z[1:], mk[1:])] or [mk[0] / z[0]]
            out.append(
                f"D={r['dim']}: per-slice speedups (slices of {r['call_size']}, the first one, with the "
                f"compile, left out): min {min(ratios):.2f}x, median {float(np.median(ratios)):.2f}x, "
                f"max {max(ratios):.2f}x."
            )
    return "\n".join(out) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--targets", type=int, default=32768)
    p.add_argument("--atoms", type=int, default=16384)
    p.add_argument("--dim", type=int, nargs="+", default=[576, 640])
    p.add_argument("--k", type=int, default=64)
    p.add_argument("--quick", action="store_true", help="2048 targets, D=576 only: a few minutes")
    p.add_argument("--call-size", type=int, default=4096)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mergekit-python", default="/tmp/mk-venv/bin/python",
                   help="python of a venv with mergekit; '' to skip the peer")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--md", help="write the results as Markdown here")
    p.add_argument("--render", help="only render this results JSON as Markdown (to --md or stdout)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args.worker, args.k)
    if args.render:
        with open(args.render) as f:
            text = markdown(json.load(f))
        if args.md:
            with open(args.md, "w") as f:
                f.write(text)
        return print(text)
    if args.quick:
        args.targets, args.dim, args.call_size = 2048, [576], 1024
    if args.mergekit_python and not os.path.exists(args.mergekit_python):
        sys.exit(f"bench_omp: no python at {args.mergekit_python}; pass --mergekit-python '' to skip")

    import jax

    meta = {
        "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.processor() or ''}".strip(", "),
        "jax": jax.__version__, "numpy": np.__version__, "devices": [str(d) for d in jax.devices()],
    }
    results = {"meta": meta, "runs": []}
    for dim in args.dim:
        results["runs"].append(run_one(args, dim))
        if args.json:  # after every dimension, so a long run leaves its finished part behind
            os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
            with open(args.json, "w") as f:
                json.dump(results, f, indent=1)
        if args.md:
            with open(args.md, "w") as f:
                f.write(markdown(results))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
