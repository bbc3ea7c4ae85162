#!/usr/bin/env bash
# Bits per byte of the two real GGUF models on English Wikipedia, Python code and German fortunes.
# Each corpus is cut to the documents of its first 40 kB (the document that crosses the limit is kept),
# the same prefix for every model, at the ROADMAP.md default window L = 1024.
# Usage: bash experiments/foundation_bpb.sh > experiments/results/foundation_bpb.jsonl
set -euo pipefail
ZETT=${ZETT:-zett}
for model in smollm2-135m gemma3-270m; do
  for data in wiki-en python-code fortunes-de; do
    "$ZETT" eval --model "$model" --data "$data" --max-bytes 40000 --max-length 1024 --batch-size 4 --json --no-progress | tail -n 1
  done
done
