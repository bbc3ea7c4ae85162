#!/usr/bin/env bash
# The main job on the built-in default: fetch a real model and real text, run it, print the figures.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
exec .venv/bin/zett demo "$@"
