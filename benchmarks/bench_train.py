"""Training throughput of full-size ACT and SmolVLA through `so101 train` (lerobot's own train loop).

    python benchmarks/bench_train.py --dataset-root DIR [--batch-size 8] [--steps 6] [--policies act smolvla]

Runs the act_dual and smolvla_dual presets for a few steps on a local LeRobotDataset (make one with
`so101 dataset sim --width 640 --height 480`: the hub dataset's 640x480 AV1 layout) with random
weights (no hub here: ACT without ImageNet weights, SmolVLA on smolvla_base's architecture built
offline), reads each run's metrics.jsonl and prints s/step (data + update, as lerobot counts it),
samples/s and the data/update split, beside the reference runs (ACT 1.2 s/step, SmolVLA 1.7 s/step,
batch 64). The first `--warmup` steps (allocator, cudnn autotuning, worker start) are left out.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

REFERENCE_S_PER_STEP = {"act": 1.2, "smolvla": 1.7}
PRESET = {"act": "act_dual", "smolvla": "smolvla_dual"}


def train_run(policy: str, dataset_root: Path, repo_id: str, output: Path, batch_size: int, steps: int,
              workers: int, device: str, smolvla_base: Path | None, frame_cache: bool) -> list[dict]:
    command = [sys.executable, "-m", "so101_bringup.cli", "train", PRESET[policy], "--dataset", repo_id,
               "--dataset-root", str(dataset_root), "--output-dir", str(output), f"--steps={steps}",
               f"--batch_size={batch_size}", f"--num_workers={workers}", "--log_freq=1", "--save_checkpoint=false",
               f"--policy.device={device}"]
    if frame_cache:
        command.append("--frame-cache")
    if policy == "act":
        command.append("--policy.pretrained_backbone_weights=null")
    else:
        command.append(f"--policy.path={smolvla_base}")
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    result = subprocess.run(command, capture_output=True, text=True, env=environment)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    return [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]


def summarize(policy: str, records: list[dict], warmup: int, batch_size: int) -> dict:
    measured = [r for r in records if r["step"] > warmup] or records
    update = statistics.median(r["update_s"] for r in measured)
    data = statistics.median(r["dataloading_s"] for r in measured)
    # Wall clock over the measured steps: what a run really gets once the loader's prefetched
    # batches (workers x prefetch_factor) are used up, stalls included.
    start = next((r for r in records if r["step"] == measured[0]["step"] - 1), None)
    wall = (measured[-1]["wall_s"] - start["wall_s"]) / len(measured) if start else update + data
    return {"policy": policy, "batch_size": batch_size, "steps_measured": len(measured),
            "s_per_step": round(wall, 4), "update_s_p50": round(update, 4), "data_s_p50": round(data, 4),
            "data_s_max": round(max(r["dataloading_s"] for r in measured), 4),
            "samples_per_s": round(batch_size / wall, 1),
            # The measure: the share of the step spent waiting for the batch (target under 10%).
            "data_wait_share": round(sum(r["dataloading_s"] for r in measured) / (wall * len(measured)), 3),
            "final_loss": round(records[-1]["loss"], 4),
            "reference_s_per_step": REFERENCE_S_PER_STEP[policy],
            "speedup_vs_reference": round(REFERENCE_S_PER_STEP[policy] / wall, 2), "records": records}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset-root", type=Path, required=True)
    parser.add_argument("--repo-id", default="local/so101_sim_480")
    parser.add_argument("--policies", nargs="+", default=["act", "smolvla"], choices=["act", "smolvla"])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--frame-cache", action="store_true", help="train from so101 train's decoded-frame cache")
    parser.add_argument("--output", default="outputs/benchmarks/train.json")
    parser.add_argument("--workdir", default=None, help="keep the built checkpoints here (shared with bench_inference)")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(args.workdir or scratch)
        smolvla_base = None
        if "smolvla" in args.policies:
            from full_size import full_smolvla_checkpoint, smolvlm2_500m_architecture

            vlm = smolvlm2_500m_architecture(workdir / "smolvlm2_500m")
            smolvla_base = full_smolvla_checkpoint(workdir / "smolvla", vlm)
        for policy in args.policies:
            run_dir = workdir / f"run_{policy}"
            shutil.rmtree(run_dir, ignore_errors=True)
            records = train_run(policy, args.dataset_root, args.repo_id, run_dir, args.batch_size,
                                args.steps, args.workers, args.device, smolvla_base, args.frame_cache)
            result = summarize(policy, records, args.warmup, args.batch_size)
            result["frame_cache"] = args.frame_cache
            results.append(result)
            print(f"{policy} batch {args.batch_size} on {args.device}{' (frame cache)' if args.frame_cache else ''}: "
                  f"{result['s_per_step']} s/step over "
                  f"{result['steps_measured']} steps (update p50 {result['update_s_p50']}, data wait p50 "
                  f"{result['data_s_p50']}, max {result['data_s_max']}, "
                  f"{100 * result['data_wait_share']:.0f}% of the step), "
                  f"{result['samples_per_s']} samples/s; "
                  f"reference {result['reference_s_per_step']} s/step at batch 64 -> "
                  f"{result['speedup_vs_reference']}x", flush=True)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"-> {output}")


if __name__ == "__main__":
    main()
