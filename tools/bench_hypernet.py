"""Time split of one hypernetwork train step next to a plain base-model step (issue 4, "Speed").

    .venv/bin/python tools/bench_hypernet.py --config experiments/hypernet/smollm2_cpu.py [section.key=value ...]

Prints one JSON row per config and appends it to ``--out`` (JSONL). See `zett_jax.hypernet.bench`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import jax


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True)
    p.add_argument("overrides", nargs="*")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default="experiments/results/hypernet_speed.jsonl")
    args = p.parse_args(argv)

    from zett_jax.cli import load_experiment_config
    from zett_jax.convert.load import load_model
    from zett_jax.hypernet.bench import time_split
    from zett_jax.hypernet.train import load_documents

    config = load_experiment_config(args.config, args.overrides)
    base = load_model(config.train.base_model)
    row = time_split(config, base, load_documents(config), repeats=args.repeats)
    row.update(
        config=args.config, overrides=args.overrides, batch=[config.data.batch_size, config.data.block_size],
        vocab=config.sampler.vocab_size, token_subsample=config.data.token_subsample,
        max_pieces=config.hypernet.max_pieces, machine=f"{platform.machine()}, {os.cpu_count()} CPUs, "
        f"{jax.default_backend()}", load=os.getloadavg()[0], when=time.strftime("%Y-%m-%d %H:%M"),
    )
    print(json.dumps(row))
    with open(args.out, "a") as f:
        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
