#!/usr/bin/env bash
# One command that checks hwbench's CUDA column on a GPU machine end to end, next to an install
# made by scripts/build-cuda.sh:
#
#     scripts/gpu-check.sh DIR                 # writes docs/results/<gpu>.md and its JSON
#     scripts/gpu-check.sh --rehearse DIR      # the same steps on a machine without a GPU
#     scripts/gpu-check.sh --no-gpu-ok DIR     # CI: without a GPU, say so and exit 0
#
# The machine needs python3 (with torch for the PyTorch columns; --python names another), and
# nvidia-smi. The steps and what they record are in scripts/gpu_check.py.
set -euo pipefail
exec "${PYTHON:-python3}" "$(dirname "$0")/gpu_check.py" "$@"
