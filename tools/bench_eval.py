"""Benchmark: `zett eval` throughput against transformers + PyTorch (eager), side by side in one run.

Both score exactly the same padded batches (zett_jax.eval.bpb.batches) of the same checkpoint on the same
text, in fp32 on the CPU; each side runs once to warm up (JAX compiles, PyTorch allocates), then
``--repeats`` timed passes, alternating, and the median is reported. Both must agree on the total
log-likelihood, which is printed too.

    python tools/bench_eval.py --hf-dir /tmp/smollm2-hf --data wiki-en --max-bytes 16000 \
        --max-length 1024 --batch-size 4 --out experiments/results/eval_benchmark.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hf-dir", required=True, help="HF model directory (e.g. from `zett export`)")
    p.add_argument("--data", default="wiki-en")
    p.add_argument("--max-bytes", type=int, default=20000)
    p.add_argument("--max-length", type=int, default=1024)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--out", default=None)
    args = p.parse_args()

    import jax
    import numpy as np
    import torch
    import transformers

    from zett_jax.convert.load import load_model
    from zett_jax.data.text import read_documents, resolve_data_path, take_prefix
    from zett_jax.eval.bpb import batches, make_scorer, make_windows

    docs = take_prefix(read_documents(resolve_data_path(args.data)), max_bytes=args.max_bytes, cut=True)
    loaded = load_model(args.hf_dir)
    token_lists = loaded.tokenizer.encode_batch(docs)
    windows = make_windows(token_lists, loaded.tokenizer.prefix_id(), args.max_length)
    data = list(batches(windows, args.max_length, args.batch_size))
    n_tokens = int(sum(v.sum() for _, _, v in data))
    n_padded = int(sum(v.size for _, _, v in data))

    score = make_scorer(loaded)

    def run_jax() -> float:
        total = 0.0
        pending = [score(*b) for b in data]
        for x in pending:
            total += float(x)
        return total

    tmodel = transformers.AutoModelForCausalLM.from_pretrained(args.hf_dir, dtype=torch.float32).eval()

    def run_torch() -> float:
        total = 0.0
        with torch.inference_mode():
            for inputs, targets, valid in data:
                logits = tmodel(torch.from_numpy(inputs).long()).logits
                logp = torch.log_softmax(logits.float(), dim=-1)
                picked = logp.gather(-1, torch.from_numpy(targets).long()[..., None])[..., 0]
                total += float(picked[torch.from_numpy(valid)].sum())
        return total

    t0 = time.perf_counter()
    ll_jax = run_jax()
    warm_jax = time.perf_counter() - t0
    t0 = time.perf_counter()
    ll_torch = run_torch()
    warm_torch = time.perf_counter() - t0
    times = {"jax": [], "torch": []}
    for _ in range(args.repeats):
        for name, fn in (("jax", run_jax), ("torch", run_torch)):
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "checkpoint": args.hf_dir,
        "data": args.data,
        "max_bytes": args.max_bytes,
        "max_length": args.max_length,
        "batch_size": args.batch_size,
        "scored_tokens": n_tokens,
        "padded_positions": n_padded,
        "batches": len(data),
        "log_likelihood": {"jax": ll_jax, "torch": ll_torch, "rel_diff": abs(ll_jax - ll_torch) / abs(ll_torch)},
        "first_pass_seconds": {"jax (incl. compile)": warm_jax, "torch": warm_torch},
        "seconds": times,
        "median_tokens_per_second": {k: n_tokens / v for k, v in med.items()},
        "speedup_jax_over_torch": med["torch"] / med["jax"],
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "jax": jax.__version__,
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "numpy": np.__version__,
        },
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
