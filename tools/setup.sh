#!/usr/bin/env bash
# Create .venv (if missing) and install zett_jax with its test extra. Idempotent and quick when nothing
# changed: the install is skipped while pyproject.toml's hash matches the stamp left by the last install.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.zett-install-stamp
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  # torch is pinned in the test extra; on a machine without a local wheel, CPU-only users may add
  # --extra-index-url https://download.pytorch.org/whl/cpu to avoid the CUDA build.
  .venv/bin/python -m pip install --quiet -e '.[test]'
  echo "$want" > "$stamp"
fi
