#!/usr/bin/env bash
# The GPU benchmarks in one go, for a machine with CUDA torch, transformers and accelerate but no
# lerobot and no internet: lerobot and its pure-Python needs come as wheels in .whl/, the 640x480
# sim dataset (so101 dataset sim --width 640 --height 480) in .devdata/sim480.
#   OUT=outputs/benchmarks/gpu benchmarks/gpu.sh
# Every log and JSON goes into one archive, $OUT/gpu_results.tar.gz, written again after each step so
# a run cut short by its time limit still returns the steps it finished; each step's last lines are printed.
# The exit status is the number of steps that failed (the backends' exactness checks among them).
set -uo pipefail
OUT=${OUT:-outputs/benchmarks/gpu}
mkdir -p "$OUT"
if ! python3 -c "import lerobot" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
WORK=$(mktemp -d)
RESULTS=$(mktemp -d)
failed=0
step() {  # step NAME LINES COMMAND...: the command's output in RESULTS/NAME.log, its last LINES lines here
  local name=$1 lines=$2
  shift 2
  echo "== $name"
  "$@" > "$RESULTS/$name.log" 2>&1 || { failed=$((failed + 1)); echo "!! $name failed"; }
  grep -v "^\s*$" "$RESULTS/$name.log" | tail -n "$lines"
  tar -czf "$OUT/gpu_results.tar.gz" -C "$RESULTS" .
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$RESULTS/gpu.txt"
if [ "${SKIP_INFERENCE:-0}" != 1 ]; then
  step inference 20 python3 benchmarks/bench_inference.py --device cuda --samples 30 --workdir "$WORK" \
    --output "$RESULTS/inference.json"
  # Issue 12's exactness check on the GPU and each backend's time against eager fp32 in the same run.
  # The CUDA graphs (cuda_graph.py, and torch_compile_bf16's on a GPU) are checked here only.
  for policy in act smolvla; do
    backends=torch,torch_bf16,torch_compile_bf16
    [ "$policy" = act ] && backends=$backends,cuda_graph,cuda_graph_bf16
    step "backends_$policy" 8 python3 benchmarks/bench_backends.py --device cuda --policy "$policy" \
      --backends "$backends" --chunks 100 --rounds 5 --check --workdir "$WORK" \
      --output "$RESULTS/backends_$policy.json"
  done
fi
step train 20 python3 benchmarks/bench_train.py --dataset-root .devdata/sim480 --device cuda --batch-size 64 \
  --steps 200 --warmup 10 --workers 12 --workdir "$WORK" --output "$RESULTS/train.json"
# Issue 12's data levers: the loader alone at several worker counts, then training from the frame cache.
step data 16 python3 benchmarks/bench_data.py --dataset-root .devdata/sim480 --workers 0 4 8 12 --batch-size 64 \
  --batches 4 --output "$RESULTS/data.json"
step train_frame_cache 20 python3 benchmarks/bench_train.py --dataset-root .devdata/sim480 --device cuda \
  --batch-size 64 --steps 200 --warmup 10 --workers 12 --frame-cache --workdir "$WORK" \
  --output "$RESULTS/train_frame_cache.json"
echo "results: $OUT/gpu_results.tar.gz ($failed failed)"
exit "$failed"
