#!/usr/bin/env bash
# GPU latency table for the vRGV encoder: PyTorch eager, PyTorch + CUDA graphs (or torch.compile) and
# ONNX Runtime (CUDA provider when installed), R in {1, 8, 64} relations on one video, timed with CUDA events.
# Usage: bash benchmarks/gpu.sh [BUNDLE] [--device cuda|cpu] [--out benchmarks/reports/gpu.md]
# Works from a source checkout without installing vrgv (it builds a package shim on PYTHONPATH), so it runs on a
# GPU machine that has PyTorch but no registry access. Finishes in well under 8 minutes.
set -euo pipefail
source "$(dirname "$0")/shim.sh"
"${PYTHON:-python3}" "$vrgv_root/benchmarks/bench_gpu.py" "$@"
