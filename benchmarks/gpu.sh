#!/usr/bin/env bash
# The GPU benchmarks in one go, for a machine with CUDA torch, transformers and accelerate but no
# lerobot, no ROS and no internet. Made here first, by `.venv/bin/python benchmarks/gpu_prepare.py
# --smoke`: lerobot and the rest it needs as wheels in .whl/, the 640x480 sim dataset in
# .devdata/sim480, and a tiny CPU run of these benchmarks with only that machine's packages.
#   OUT=outputs/benchmarks/gpu benchmarks/gpu.sh
# STEPS chooses and orders the steps (default: all, issue 12's targets first). All of them outlast the
# 10 minutes one device command may run, so run it as two commands, carrying [".whl", ".devdata"]:
# STEPS="backends_act backends_smolvla", then STEPS="train_frame_cache data train".
# Every log and JSON goes into one archive, $OUT/gpu_results.tar.gz, written again after each step so
# a run cut short by its time limit still returns the steps it finished; each step's last lines are printed.
# The exit status is the number of steps that failed (the backends' exactness checks among them).
set -uo pipefail
OUT=${OUT:-outputs/benchmarks/gpu}
mkdir -p "$OUT"
ALL_STEPS="backends_act backends_smolvla train_frame_cache data train inference"
STEPS=${STEPS:-$ALL_STEPS}
for name in $STEPS; do  # a misspelt step stops here, before the install and any step
  [[ " $ALL_STEPS " == *" $name "* ]] || { echo "unknown step '$name' in STEPS; the steps: $ALL_STEPS"; exit 2; }
done
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
for name in $STEPS; do
  case $name in
    backends_act|backends_smolvla)
      # Issue 12's exactness check on the GPU and each backend's time against eager fp32 in the same run.
      # The CUDA graphs (cuda_graph.py, and torch_compile_bf16's on a GPU) are checked here only.
      policy=${name#backends_}
      backends=torch,torch_bf16,torch_compile_bf16
      [ "$policy" = act ] && backends=$backends,cuda_graph,cuda_graph_bf16
      step "$name" 8 python3 benchmarks/bench_backends.py --device cuda --policy "$policy" \
        --backends "$backends" --chunks 100 --rounds 5 --check --workdir "$WORK" --output "$RESULTS/$name.json" ;;
    train|train_frame_cache)
      # Issue 12's data levers through lerobot's train loop: decoding every step, then the frame cache.
      cache=""
      [ "$name" = train_frame_cache ] && cache=--frame-cache
      step "$name" 20 python3 benchmarks/bench_train.py --dataset-root .devdata/sim480 --device cuda \
        --batch-size 64 --steps 200 --warmup 10 --workers 12 $cache --workdir "$WORK" --output "$RESULTS/$name.json" ;;
    data)  # the loader alone at several worker counts
      step data 16 python3 benchmarks/bench_data.py --dataset-root .devdata/sim480 --workers 0 4 8 12 \
        --batch-size 64 --batches 4 --output "$RESULTS/data.json" ;;
    inference)  # the node's core against bare lerobot, eager
      step inference 20 python3 benchmarks/bench_inference.py --device cuda --samples 30 --workdir "$WORK" \
        --output "$RESULTS/inference.json" ;;
  esac
done
echo "results: $OUT/gpu_results.tar.gz ($failed failed)"
exit "$failed"
