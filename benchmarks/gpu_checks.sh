#!/usr/bin/env bash
# Every check that needs a CUDA GPU, in one run (the GPU machine is lent for minutes at a time):
#   1. tests/test_gpu.py (torch backend on the GPU, fp16 autocast, auto on cuda, honest refusals) and the
#      backend, grounder and bench tests, on the GPU machine's own torch and onnxruntime;
#   2. the encoder latency table (benchmarks/gpu.sh), without and then with torch.compile;
#   3. `vrgv bench --device cuda` end to end on the demo video, float32 and float16 autocast;
#   4. backend agreement: ONNX Runtime fp32 on CPU vs torch on the GPU (fp32 and fp16 autocast) on a split.
# Usage: [STEPS="tests_gpu bench_fp32 ..."] bash benchmarks/gpu_checks.sh OUT_DIR [SPLIT_DIR REGIONS_DIR]
# Works from a source checkout without installing vrgv (package shim on PYTHONPATH); logs and reports land in
# OUT_DIR. Each step has its own time limit and a failing step does not stop the later ones.
set -uo pipefail
out="${1:?usage: gpu_checks.sh OUT_DIR [SPLIT_DIR REGIONS_DIR]}"
split="${2:-}"
regions="${3:-}"
py="${PYTHON:-python3}"
mkdir -p "$out" && out="$(cd "$out" && pwd)"
source "$(dirname "$0")/shim.sh"
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
cd "$vrgv_root"

step() {  # step NAME LIMIT_S COMMAND...: run with a time limit, log to OUT/NAME.log, report the status
    local name="$1" limit="$2"
    shift 2
    if [[ -n "${STEPS:-}" && " $STEPS " != *" $name "* ]]; then return 0; fi
    local t0=$SECONDS
    timeout "$limit" "$@" >"$out/$name.log" 2>&1
    local rc=$?
    echo "== $name: rc=$rc in $((SECONDS - t0)) s" | tee -a "$out/steps.txt"
    tail -n 25 "$out/$name.log"
}

{
    date -u
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
    "$py" -c "import sys, torch, onnxruntime as o, numpy, numba; print(sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0)); print('onnxruntime', o.__version__, o.get_available_providers()); print('numpy', numpy.__version__, 'numba', numba.__version__)"
    "$py" -c "import tensorrt" 2>&1 | tail -n 1
    nproc
} >"$out/machine.txt" 2>&1
cat "$out/machine.txt"

step tests_gpu 240 "$py" -m pytest -q -rA -s -p no:cacheprovider tests/test_gpu.py
step tests_cpu_paths 240 "$py" -m pytest -q -p no:cacheprovider tests/test_backends.py tests/test_bench.py tests/test_grounder.py tests/test_export.py
step encoder_eager 150 bash benchmarks/gpu.sh --repeats 100 --warmup 20 --no-compile --out "$out/gpu_encoder.md"
step bench_fp32 150 "$py" -m vrgv -q bench --device cuda --backends torch --repeats 40 --warmup 5 --markdown "$out/latency_gpu_fp32.md"
step bench_fp16 150 "$py" -m vrgv -q bench --device cuda --fp16 --backends torch --repeats 40 --warmup 5 --markdown "$out/latency_gpu_fp16.md"
if [[ -n "$split" && -n "$regions" ]]; then
    step agree_torch 200 "$py" benchmarks/backend_agreement.py --bundle sdk/data/default.vrgv --split "$split" \
        --regions "$regions" --device cuda --against torch --out "$out/agreement_gpu_fp32.md"
    step agree_torch_fp16 200 "$py" benchmarks/backend_agreement.py --bundle sdk/data/default.vrgv --split "$split" \
        --regions "$regions" --device cuda --against torch-fp16 --out "$out/agreement_gpu_fp16.md"
fi
# the command line on the GPU: the demo (auto on cuda), ground with --fp16, and a refused onnxruntime-on-cuda
step cli_cuda 150 bash -c "\"$py\" -m vrgv -q demo --out \"$out/demo\" --device cuda --no-render --no-plot && \
    \"$py\" -m vrgv -q ground \"$out\"/demo/videos/*.mp4 person-ride-bicycle dog-chase-person --device cuda \
        --backend torch --fp16 --out \"$out/ground_fp16.json\" && \
    { \"$py\" -m vrgv -q ground \"$out\"/demo/videos/*.mp4 person-ride-bicycle --device cuda --backend onnxruntime; \
      echo \"onnxruntime on cuda exit status: \$?\"; }"
step encoder_compile 200 bash benchmarks/gpu.sh --repeats 100 --warmup 20 --out "$out/gpu_encoder_compile.md"
cat "$out/steps.txt"
