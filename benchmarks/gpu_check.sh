#!/usr/bin/env bash
# The GPU check (benchmarks/gpu_check.py) from the repo root, with this repo's src/ on the path
# and no install step: the GPU machine's own python3 has torch and the rest (benchmarks/NOTES.md).
# Its data, the built-in mnist-5k sample (src/dcgan/data/samples/), is tracked, so it travels
# with the checkout: nothing to prepare or carry.
#   benchmarks/gpu_check.sh [ARGS]      the check; ARGS go to gpu_check.py (--tiny, --only, ...)
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
exec "${PYTHON:-python3}" benchmarks/gpu_check.py "$@"
