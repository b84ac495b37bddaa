#!/usr/bin/env bash
# The book on a CUDA GPU, in one run of about ten minutes and one report:
# the unit tests (nothing may be skipped for want of CUDA), every chapter
# with device="cuda" against the CPU expectations, and the benchmarks at the
# Llama 3 output layer (with Liger Kernel and Cut Cross-Entropy). See
# scripts/gpu_check.py for the steps.
#
#   scripts/gpu_check.sh [REPORT]            on a CUDA machine
#   scripts/gpu_check.sh --dry-run [REPORT]  on a CPU, at tiny sizes
#
# The environment: $PYTHON if set; else .venv when it imports torch and
# xentlib's requirements; else a Python on the PATH that does (xentlib is
# then imported from this checkout); else `make setup` makes .venv.
set -uo pipefail
cd "$(dirname "$0")/.."

usable() {
    "$1" -c "import torch, papermill, pytest, hypothesis, matplotlib" \
        >/dev/null 2>&1
}

PY=${PYTHON:-}
if [[ -z "$PY" ]]; then
    for candidate in .venv/bin/python python3 python; do
        if command -v "$candidate" >/dev/null && usable "$candidate"; then
            PY=$candidate
            break
        fi
    done
fi
if [[ -z "$PY" ]]; then
    echo "no Python with the book's requirements: running make setup" >&2
    make setup || exit 1
    PY=.venv/bin/python
fi
echo "using $("$PY" -c 'import sys; print(sys.executable)')" >&2
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec "$PY" scripts/gpu_check.py "$@"
