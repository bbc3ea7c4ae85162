#!/usr/bin/env bash
# Set up and run the whole test suite (slow real-model tests included; they fetch the real assets).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
exec .venv/bin/python -m pytest -q "$@"
