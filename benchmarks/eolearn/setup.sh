#!/usr/bin/env bash
# Build build/eolearn-venv: eo-learn (a peer framework) for benchmarks/compare_eager.py, from PyPI.
#
#     bash benchmarks/eolearn/setup.sh          (PYTHON=python3.11 to choose the interpreter)
#
# eo-learn pins geopandas<1 and needs setuptools<82, so it gets a venv of its own, never the project's.
# scikit-learn and skops are pinned to the project's versions (requirements.lock) so that the eo-learn
# contender loads the very model file the other contenders load. Takes about a minute (wheels only).
set -euo pipefail
cd "$(dirname "$0")/../.."

PYTHON=${PYTHON:-python3}
VENV=build/eolearn-venv
REQUIREMENTS=benchmarks/eolearn/requirements.txt

test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -r "$REQUIREMENTS"

ours=$(grep -i '^scikit-learn==' requirements.lock 2>/dev/null | cut -d= -f3 || true)
theirs=$("$VENV/bin/python" -c "import sklearn; print(sklearn.__version__)")
if [ -n "$ours" ] && [ "${ours%.*}" != "${theirs%.*}" ]; then
    echo "warning: scikit-learn $theirs in $VENV but $ours in requirements.lock: update $REQUIREMENTS" >&2
fi
"$VENV/bin/python" -c "
import eolearn, eolearn.core, eolearn.features, eolearn.io, skops, sklearn
print(f'{\"$VENV\"}: eo-learn {eolearn.__version__}, scikit-learn {sklearn.__version__}, skops {skops.__version__}')"
touch "$VENV/.installed-stamp"
