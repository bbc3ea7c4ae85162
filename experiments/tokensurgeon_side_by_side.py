"""One real OMP transplant with zett and with mergekit-tokensurgeon, side by side (issue 3, "Speed").

Both tools get the same exported HF checkpoints (``zett export``): the source model and the donor whose
tokenizer it receives; both use OMP with the same k. Reported: the wall time of each whole command (load,
solve, save), the agreement of the two new embedding tables (identical rows for tokens the vocabularies
share, cosine similarity for the new rows), and bits per byte of both results under the same protocol
(``zett_jax.eval.bpb`` on the same corpus prefixes as ``transplant_smollm2.py``).

mergekit is a peer run from its own virtual environment (PyPI ``mergekit``, LGPL; called, never copied):

    python -m venv /tmp/mk-venv && /tmp/mk-venv/bin/pip install mergekit torch==2.13.0
    .venv/bin/python experiments/tokensurgeon_side_by_side.py --pair gemma3-smollm2 \\
        --mergekit /tmp/mk-venv/bin/mergekit-tokensurgeon
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

PAIRS = {  # name: (source model, donor model whose tokenizer the source receives)
    "gemma3-smollm2": ("gemma3-270m", "smollm2-135m"),
    "smollm2-gemma3": ("smollm2-135m", "gemma3-270m"),
}


def run(cmd: list[str], log: Path, env: dict | None = None) -> float:
    """Wall seconds of ``cmd``; its output goes to ``log``; a failure stops the experiment."""
    start = time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env)
    seconds = time.perf_counter() - start
    if proc.returncode:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}); see {log}")
    return seconds


def timed_once(key: str, cmd: list[str], out_dir: Path, log: Path, env: dict | None = None) -> float:
    """``run`` unless ``out_dir`` exists and ``times.json`` beside it holds this command's time.

    Long transplants (the SmolLM2 -> Gemma-3 one takes over an hour per tool on two cores) are timed once
    and kept, so an interrupted experiment resumes at the step it had not finished.
    """
    record = out_dir.parent / "times.json"
    times = json.loads(record.read_text()) if record.exists() else {}
    if key in times and times[key]["command"] == cmd and (out_dir / "config.json").exists():
        print(f"{key}: reusing {times[key]['seconds']:.1f} s from {record}", flush=True)
        return times[key]["seconds"]
    seconds = run(cmd, log, env)
    times[key] = {"command": cmd, "seconds": seconds, "when": time.strftime("%Y-%m-%d %H:%M")}
    record.write_text(json.dumps(times, indent=1))
    print(f"{key}: {seconds:.1f} s", flush=True)
    return seconds


def table(hf_dir: Path) -> np.ndarray:
    from zett_jax.convert.hf import read_safetensors

    tensors = read_safetensors(hf_dir)
    name = next(k for k in tensors if k.endswith("embed_tokens.weight"))
    return np.asarray(tensors[name], np.float32)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pair", default="gemma3-smollm2", choices=list(PAIRS))
    p.add_argument("--k", type=int, default=64)
    p.add_argument("--mergekit", default="/tmp/mk-venv/bin/mergekit-tokensurgeon")
    p.add_argument("--work", default="/tmp/tokensurgeon_side_by_side")
    p.add_argument("--corpora", nargs="+", default=["wiki-en", "python-code", "fortunes-de", "fortunes-ru"])
    p.add_argument("--max-bytes", type=int, default=16_000)
    p.add_argument("--out", default="experiments/results/tokensurgeon_side_by_side")
    args = p.parse_args(argv)
    src, donor = PAIRS[args.pair]
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    zett = str(Path(sys.executable).with_name("zett"))

    dirs = {}
    for name in (src, donor):
        dirs[name] = work / f"hf-{name}"
        if not (dirs[name] / "config.json").exists():
            run([zett, "export", "--model", name, "--out", str(dirs[name]), "--overwrite"], work / f"export-{name}.log")

    ours, theirs = work / f"zett-{args.pair}", work / f"mergekit-{args.pair}"
    t_zett = timed_once(f"zett-{args.pair}", [zett, "-v", "transplant", "--model", str(dirs[src]),
                        "--tokenizer", str(dirs[donor]), "--donor", str(dirs[donor]), "--method", "omp",
                        "--k", str(args.k), "--out", str(ours), "--overwrite"], ours, work / f"zett-{args.pair}.log")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    t_mk = timed_once(f"mergekit-{args.pair}", [args.mergekit, str(dirs[src]), str(dirs[donor]), str(theirs),
                      "-k", str(args.k), "-a", "omp", "--quiet"], theirs, work / f"mergekit-{args.pair}.log", env=env)

    from zett_jax.convert.load import load_model
    from zett_jax.data.text import read_documents, resolve_data_path, take_prefix
    from zett_jax.eval.bpb import bits_per_byte
    from zett_jax.tokenizers.load import load_tokenizer
    from zett_jax.transplant.plan import plan_tokens

    a, b = table(ours), table(theirs)
    source_tok, target_tok = load_tokenizer(dirs[src]), load_tokenizer(dirs[donor])
    plan = plan_tokens(source_tok, target_tok)
    new = plan.overlap.new_target_ids
    shared_t, _ = plan.overlap.anchors()
    rows = min(a.shape[0], b.shape[0])
    new = new[new < rows]
    shared_t = shared_t[shared_t < rows]
    cos = (a[new] * b[new]).sum(-1) / (np.linalg.norm(a[new], axis=-1) * np.linalg.norm(b[new], axis=-1) + 1e-12)
    agreement = {
        "rows": [int(a.shape[0]), int(b.shape[0])],
        "shared_rows_identical": float(np.mean(np.all(a[shared_t] == b[shared_t], axis=-1))),
        "shared_rows_max_abs_diff": float(np.abs(a[shared_t] - b[shared_t]).max()),
        "new_rows": int(new.size),
        "new_rows_cosine_median": float(np.median(cos)),
        "new_rows_cosine_p05": float(np.percentile(cos, 5)),
        "new_rows_norm_ratio_median": float(np.median(np.linalg.norm(a[new], axis=-1) / (np.linalg.norm(b[new], axis=-1) + 1e-12))),
    }
    bpb = {}
    for label, d in (("zett", ours), ("mergekit", theirs)):
        loaded = load_model(str(d))
        bpb[label] = {c: bits_per_byte(loaded, take_prefix(read_documents(resolve_data_path(c)), max_bytes=args.max_bytes, cut=True),
                                       max_length=512, progress=False).bits_per_byte for c in args.corpora}
    result = {
        "pair": args.pair, "source": src, "donor": donor, "k": args.k,
        "zett_seconds": t_zett, "mergekit_seconds": t_mk, "speedup": t_mk / t_zett,
        "agreement": agreement, "bpb": bpb, "max_bytes": args.max_bytes,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "when": time.strftime("%Y-%m-%d %H:%M"),
        "command": "python experiments/tokensurgeon_side_by_side.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
