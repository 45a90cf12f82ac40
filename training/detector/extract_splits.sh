#!/bin/bash
# Extract Regions (N=120, M=40) for the synthetic splits with the built-in ONNX detector:
#   /work/data/regions/<split>/<video_id>.npz, and a line per finished split in /work/data/regions/READY.
# Waits for each split to be listed in the synth READY file; resumable (existing .npz are skipped).
# Usage: nohup nice bash training/detector/extract_splits.sh [DETECTOR_DIR] [SPLITS...] > log 2>&1 &
set -u
cd "$(dirname "$0")/../.."
DET=${1:-/work/data/detector}
shift || true
SPLITS=${*:-test train val}
SYNTH=${SYNTH:-/work/data/synth}
OUT=${OUT:-/work/data/regions}
export OMP_NUM_THREADS=1
mkdir -p "$OUT"
for split in $SPLITS; do
  until grep -q "^$split " "$SYNTH/READY" 2>/dev/null; do sleep 30; done
  start=$(date +%s)
  if .venv/bin/vrgv extract "$SYNTH/$split"/videos/*.mp4 --out-dir "$OUT/$split" --detector "$DET" \
      --num-samples 120 --threads 1; then
    n=$(ls "$OUT/$split" | grep -c '\.npz$')
    echo "$split videos=$n N=120 M=40 detector=$DET/detector.onnx sha256=$(sha256sum "$DET/detector.onnx" | cut -c1-16) finished=$(date -u +%FT%TZ) seconds=$(( $(date +%s) - start ))" >> "$OUT/READY"
  else
    echo "FAILED $split" >> "$OUT/READY"
  fi
done
