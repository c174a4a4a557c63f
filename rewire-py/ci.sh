#!/usr/bin/env bash
# Build the rewire wheel and test it in a fresh-enough venv, idempotently:
#   rewire-py/ci.sh [VENV]        (default: target/pyenv)
# Creates the venv if missing, installs maturin, mypy and pytest from PyPI,
# builds the abi3 wheel once (pip wheel ./rewire-py), installs it, runs the
# pytest suite, mypy.stubtest, mypy on the package and the example, and
# prints the pytest count and the wheel size.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${1:-$ROOT/target/pyenv}
WHEELS=$ROOT/target/pywheel
PY=${PYTHON:-python3}

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip maturin mypy pytest

rm -rf "$WHEELS"
"$VENV/bin/python" -m pip wheel -q --disable-pip-version-check --no-deps -w "$WHEELS" ./rewire-py
WHEEL=$(ls "$WHEELS"/librewire-*.whl)
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps "$WHEEL"
touch "$VENV/.rewire-wheel-stamp"   # scripts/pyenv.sh: this wheel is current

cd "$ROOT/target"   # not the source tree: tests import the installed package
LOG=$(mktemp)
"$VENV/bin/python" -m pytest -q -p no:cacheprovider "$ROOT/rewire-py/tests" | tee "$LOG"
"$VENV/bin/python" -m mypy.stubtest librewire
"$VENV/bin/python" -m mypy --no-incremental "$ROOT/rewire-py/python/librewire" "$ROOT/examples/python/fleet.py"
"$VENV/bin/python" "$ROOT/examples/python/fleet.py" > /dev/null

PASSED=$(grep -Eo '[0-9]+ passed' "$LOG" | tail -1 | cut -d' ' -f1)
rm -f "$LOG"
echo "rewire-py: ${PASSED:-0} pytest tests passed; stubtest clean"
echo "rewire-py: wheel $(basename "$WHEEL"): $(stat -c %s "$WHEEL") bytes"
