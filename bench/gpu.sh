#!/usr/bin/env bash
# Every CUDA measurement in one go: training peaks (Wan 1.3B and 14B dims, NF4/int8/bf16), the
# caching stage (UMT5-XXL, Wan VAE) and serving, each in its own process; about 6 minutes on
# an H100. Results: OUT/gpu-results.md and OUT/gpu-results.json (OUT defaults to
# bench-results/gpu). Arguments go to bench/gpu.py (--out, --budget, --only, --logs).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
[ -x "$python" ] || python=python3
export PYTHONUNBUFFERED=1
exec "$python" -m bench.gpu "$@"
