"""Inference latency of full-size ACT and SmolVLA (random weights), bare lerobot against the node's core.

    python benchmarks/bench_inference.py [--device cuda] [--policies act smolvla] [--samples 30]

For each policy: observation-to-chunk latency through bare lerobot (prepare_observation_for_inference,
preprocessor, predict_action_chunk, postprocessor) and through the policy node's ROS-free core
(ChunkPredictor: the same plus units to and from radians), on the same observation, alternating
so drift hits both alike. Prints p50/p95 and the ratio. Needs no ROS, so it runs on a GPU machine
without ROS; bench_policy.py measures the node with its ROS transport on this machine's CPU.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from full_size import CAMERAS, full_act_checkpoint, full_smolvla_checkpoint, smolvlm2_500m_architecture  # noqa: E402
from lerobot.policies.utils import prepare_observation_for_inference  # noqa: E402

from so101_driver.joint_model import JointModel  # noqa: E402
from so101_policy.checkpoint import load_policy  # noqa: E402
from so101_policy.observation import IMAGE_PREFIX, STATE_KEY, Observation  # noqa: E402
from so101_policy.predictor import ChunkPredictor  # noqa: E402
from training.configs import TASK  # noqa: E402



def observation_values(joint_model: JointModel, height: int, width: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    values = {STATE_KEY: joint_model.to_lerobot(rng.uniform(-0.5, 0.5, 6)).astype(np.float32)}
    values.update({IMAGE_PREFIX + c: rng.integers(0, 256, (height, width, 3), np.uint8) for c in CAMERAS})
    return values


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(checkpoint: Path, device: str, samples: int, warmup: int, height: int, width: int) -> dict:
    loaded = load_policy(checkpoint, device)
    joint_model = JointModel.for_sim()
    predictor = ChunkPredictor(loaded, joint_model, task=TASK)
    values = observation_values(joint_model, height, width)

    def bare() -> None:
        with torch.inference_mode():
            batch = prepare_observation_for_inference(dict(values), loaded.device, TASK, "so101_follower")
            batch = loaded.preprocessor(batch)
            loaded.postprocessor(loaded.policy.predict_action_chunk(batch))

    def core() -> None:
        predictor.predict(Observation(stamp=0.0, values=dict(values)))

    timings = {"bare": [], "core": []}
    for index in range(warmup + samples):
        for name, run in (("bare", bare), ("core", core)) if index % 2 == 0 else (("core", core), ("bare", bare)):
            _synchronize(loaded.device)
            start = time.perf_counter()
            run()
            _synchronize(loaded.device)
            if index >= warmup:
                timings[name].append(time.perf_counter() - start)
    result = {"policy": loaded.type, "device": str(loaded.device), "params_m": round(
        sum(p.numel() for p in loaded.policy.parameters()) / 1e6, 1), "image": f"{width}x{height}"}
    for name, values_s in timings.items():
        ordered = sorted(values_s)
        result[f"{name}_p50_ms"] = round(1000 * statistics.median(ordered), 2)
        result[f"{name}_p95_ms"] = round(1000 * ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2)
    result["core_over_bare_p50"] = round(result["core_p50_ms"] / result["bare_p50_ms"], 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--policies", nargs="+", default=["act", "smolvla"], choices=["act", "smolvla"])
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--height", type=int, default=224)
    parser.add_argument("--width", type=int, default=224)
    parser.add_argument("--output", default="outputs/benchmarks/inference.json")
    parser.add_argument("--workdir", default=None, help="keep the built checkpoints here (shared with bench_train)")
    args = parser.parse_args()
    if args.device == "cuda":
        print(f"GPU: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(args.workdir or scratch)
        for policy in args.policies:
            if policy == "act":
                checkpoint = full_act_checkpoint(workdir / "act", size=args.height)
            else:
                vlm = smolvlm2_500m_architecture(workdir / "smolvlm2_500m")
                checkpoint = full_smolvla_checkpoint(workdir / "smolvla", vlm, size=args.height)
            result = measure(checkpoint, args.device, args.samples, args.warmup, args.height, args.width)
            results.append(result)
            print(f"{result['policy']} ({result['params_m']}M) on {result['device']}, {result['image']} x2 cameras: "
                  f"bare lerobot p50 {result['bare_p50_ms']} ms (p95 {result['bare_p95_ms']}), node core p50 "
                  f"{result['core_p50_ms']} ms (p95 {result['core_p95_ms']}); ratio {result['core_over_bare_p50']}x",
                  flush=True)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"-> {output}")


if __name__ == "__main__":
    main()
