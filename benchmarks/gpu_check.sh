#!/usr/bin/env bash
# The GPU check (benchmarks/gpu_check.py) from the repo root, with this repo's src/ on the path
# and no install step: the GPU machine's own python3 has torch and the rest (benchmarks/NOTES.md).
#   benchmarks/gpu_check.sh --prepare   here, before the GPU call: copy ../shared/data/mnist-5k
#                                       into .gpu_data/ (ignored, so it must be carried)
#   benchmarks/gpu_check.sh [ARGS]      the check; ARGS go to gpu_check.py (--tiny, --only, ...)
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" == "--prepare" ]]; then
    src=../shared/data/mnist-5k
    [[ -d $src ]] || { echo "error: $src not found (the sample data sits beside the repo)" >&2; exit 2; }
    rm -rf .gpu_data/mnist-5k && mkdir -p .gpu_data && cp -r "$src" .gpu_data/mnist-5k
    git check-ignore -q .gpu_data || { echo "error: .gpu_data is not ignored by git" >&2; exit 2; }
    echo "copied $src -> .gpu_data/mnist-5k ($(du -sh .gpu_data | cut -f1))"
    echo 'carry: [".gpu_data"]   (no wheels: the GPU image has tqdm, pytest, scipy, pyyaml, pillow)'
    echo 'run:   command="bash benchmarks/gpu_check.sh", carry=[".gpu_data"], timeout_s=540'
    exit 0
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
exec "${PYTHON:-python3}" benchmarks/gpu_check.py "$@"
