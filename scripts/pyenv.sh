#!/usr/bin/env bash
# A venv with the `librewire` wheel for the QEMU demo and system tests:
#   scripts/pyenv.sh [VENV]   (default target/pyenv)
# Idempotent: creates the venv and installs maturin + pytest if missing, and
# rebuilds the wheel only when rewire-core, rewire-py or Cargo.lock changed
# since the last install (rewire-py/ci.sh always rebuilds and runs the suite).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${1:-$ROOT/target/pyenv}
STAMP=$VENV/.rewire-wheel-stamp
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -c "import maturin, pytest" 2>/dev/null ||
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check maturin pytest
if [ -f "$STAMP" ] && "$VENV/bin/python" -c "import librewire" 2>/dev/null &&
   [ -z "$(find rewire-core rewire-py Cargo.lock -newer "$STAMP" -not -path '*/__pycache__/*' -print -quit)" ]; then
  exit 0
fi
rm -rf target/pywheel-demo
"$VENV/bin/python" -m pip wheel -q --disable-pip-version-check --no-deps -w target/pywheel-demo ./rewire-py
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps target/pywheel-demo/librewire-*.whl
touch "$STAMP"
