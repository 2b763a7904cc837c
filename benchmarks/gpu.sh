#!/usr/bin/env bash
# The GPU benchmarks in one go, for a machine with CUDA torch, transformers and accelerate but no
# lerobot and no internet: lerobot and its pure-Python needs come as wheels in .whl/, the 640x480
# sim dataset (so101 dataset sim --width 640 --height 480) in .devdata/sim480.
#   OUT=outputs/benchmarks/gpu benchmarks/gpu.sh
set -uo pipefail
OUT=${OUT:-outputs/benchmarks/gpu}
mkdir -p "$OUT"
if ! python3 -c "import lerobot" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
WORK=$(mktemp -d)
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
[ "${SKIP_INFERENCE:-0}" = 1 ] || python3 benchmarks/bench_inference.py --device cuda --samples 30 --workdir "$WORK" \
  --output "$OUT/inference.json" 2>&1 | tee "$OUT/inference.log" | grep -v "^\s*$" | tail -n 20
python3 benchmarks/bench_train.py --dataset-root .devdata/sim480 --device cuda --batch-size 64 --steps 200 \
  --warmup 10 --workers 12 --workdir "$WORK" --output "$OUT/train.json" 2>&1 | tee "$OUT/train.log" | tail -n 20
# Issue 12's data levers: the loader alone at several worker counts, then training from the frame cache.
python3 benchmarks/bench_data.py --dataset-root .devdata/sim480 --workers 0 4 8 12 --batch-size 64 --batches 4 \
  --output "$OUT/data.json" 2>&1 | tee "$OUT/data.log" | tail -n 16
python3 benchmarks/bench_train.py --dataset-root .devdata/sim480 --device cuda --batch-size 64 --steps 200 \
  --warmup 10 --workers 12 --frame-cache --workdir "$WORK" --output "$OUT/train_frame_cache.json" 2>&1 \
  | tee "$OUT/train_frame_cache.log" | tail -n 20
