"""Inference backends against lerobot's eager PyTorch, side by side in one run (never asserted by tests).

    .venv/bin/python benchmarks/bench_backends.py [--policy act|smolvla] [--chunks 100] [--rounds 5] [--device cpu]

Full-size ACT (ResNet18 per camera, two 224x224 cameras, chunk 50, random weights), or full-size
SmolVLA (smolvla_base's architecture, built offline, random weights; 10 flow steps from the same
seeded noise on every backend). For each backend:
the model's forward pass alone (predict_action_chunk on the preprocessed batch, the part a backend
replaces) and the whole observation-to-radians path of policy_node's ChunkPredictor (lerobot's
preprocessor and postprocessor around it), p50 and p95 over `--chunks` chunks, alternating in rounds
so drift on a shared machine hits every backend alike; ratios against eager torch; the largest
difference of the backend's chunk from eager torch's in radians, against the backend's tolerance
(--check: exit 1 beyond it). Exported backends run with torch on one thread, as policy_node runs
them (inference_backends.processor_threads). Writes JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from lerobot.policies.utils import prepare_observation_for_inference

REPO = Path(__file__).parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from full_size import CAMERAS, full_act_checkpoint, full_smolvla_checkpoint, smolvlm2_500m_architecture  # noqa: E402
from so101_driver.joint_model import ROBOT_TYPE, JointModel  # noqa: E402
from so101_policy.backend_names import CUDA_BACKENDS, EXACTNESS_TOLERANCE_RAD  # noqa: E402
from so101_policy.checkpoint import error_summary, load_policy  # noqa: E402
from so101_policy.inference_backends import InferenceBackend, processor_threads, with_backend  # noqa: E402
from so101_policy.observation import Observation  # noqa: E402
from so101_policy.predictor import ChunkPredictor  # noqa: E402
from training.configs import TASK  # noqa: E402

def default_backends(policy: str, device: str) -> list[str]:
    """The backends worth measuring for the policy on the device."""
    if device == "cpu":
        if policy == "smolvla":
            return ["torch", "torch_bf16", "openvino_bf16"]
        return [backend.value for backend in InferenceBackend if backend.value not in CUDA_BACKENDS]
    on_gpu = ["torch", "torch_bf16", "torch_compile_bf16"]
    return on_gpu + list(CUDA_BACKENDS) if policy == "act" else on_gpu


def observation(seed: int = 0) -> Observation:
    rng = np.random.default_rng(seed)
    values = {"observation.state": rng.normal(0, 20, 6).astype(np.float32)}
    values.update({f"observation.images.{c}": rng.integers(0, 256, (224, 224, 3), np.uint8) for c in CAMERAS})
    return Observation(stamp=0.0, values=values)


def forward_timer(predictor: ChunkPredictor, obs: Observation):
    """Seconds of predict_action_chunk alone, on the batch lerobot's preprocessor makes of `obs`."""
    loaded = predictor.loaded
    with torch.inference_mode():
        batch = loaded.preprocessor(prepare_observation_for_inference(dict(obs.values), loaded.device,
                                                                      predictor.task, ROBOT_TYPE))

    def measure() -> float:
        torch.manual_seed(0)  # SmolVLA: the same flow noise on every backend
        started = time.perf_counter()
        with torch.inference_mode():
            loaded.policy.predict_action_chunk(batch).cpu()
        return time.perf_counter() - started

    return measure


def seeded_chunk(predictor: ChunkPredictor, obs: Observation, seconds: bool = False):
    """The chunk in radians (or the seconds it took) from the same flow noise on every backend."""
    torch.manual_seed(0)
    radians, took = predictor.predict(obs)
    return took if seconds else radians


def chunk_flops(predictor: ChunkPredictor, obs: Observation) -> float:
    """Floating-point operations of one forward pass (torch's flop counter: matmuls and convolutions)."""
    from torch.utils.flop_counter import FlopCounterMode

    loaded = predictor.loaded
    with torch.inference_mode():
        batch = loaded.preprocessor(prepare_observation_for_inference(dict(obs.values), loaded.device,
                                                                      predictor.task, ROBOT_TYPE))
        with FlopCounterMode(display=False) as counter:
            loaded.policy.predict_action_chunk(batch)
    return float(counter.get_total_flops())


def gemm_throughput(dtype=torch.float32, size: int = 2048, repeats: int = 20) -> float:
    """FLOP/s this machine sustains in matrix products of `dtype` (torch's BLAS, all threads): what a
    model made of matmuls and convolutions can hope for."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    torch.mm(a, b)
    started = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    return 2 * size**3 * repeats / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=100, help="chunks per backend, observation to radians")
    parser.add_argument("--forward-chunks", type=int, help="chunks per backend, forward pass alone (default: --chunks; "
                                                           "fewer keeps a SmolVLA run short)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--policy", choices=["act", "smolvla"], default="act")
    parser.add_argument("--backends", help="comma separated (default: all that run the policy)")
    parser.add_argument("--workdir", help="keep the full-size checkpoint here (shared with bench_inference)")
    parser.add_argument("--output", default="outputs/benchmarks/backends.json")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when a backend's chunk is farther from eager torch's than its tolerance "
                             "(the GPU script's exactness test)")
    args = parser.parse_args()
    names = ([name.strip() for name in args.backends.split(",")] if args.backends
             else default_backends(args.policy, args.device))
    if "torch" not in names:
        parser.error("--backends must include torch, the baseline")

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.workdir or tmp)
        if args.policy == "act":
            checkpoint = full_act_checkpoint(work / "act")
        else:
            checkpoint = full_smolvla_checkpoint(work / "smolvla", smolvlm2_500m_architecture(work / "smolvlm2_500m"))
        predictors, build_s, first_chunk_s, failed = {}, {}, {}, {}
        for name in names:
            started = time.perf_counter()
            try:
                predictors[name] = ChunkPredictor(with_backend(load_policy(checkpoint, args.device), name),
                                                  JointModel.for_sim(), task=TASK)
                build_s[name] = time.perf_counter() - started
                # What the node does at start-up: a compilation or a CUDA graph's recording happens here.
                first_chunk_s[name] = predictors[name].warm_up()
            except Exception as error:  # noqa: BLE001 - one backend failing must not cost the others' numbers
                if name == "torch":
                    raise
                failed[name] = error_summary(error)
                predictors.pop(name, None)
                print(f"!! {name} failed: {failed[name]}", flush=True)
        names = [name for name in names if name not in failed]
        obs = observation()
        flops = chunk_flops(predictors["torch"], obs)
        reference = seeded_chunk(predictors["torch"], obs)
        difference = {name: float(np.abs(seeded_chunk(p, obs) - reference).max()) for name, p in predictors.items()}
        forward = {name: forward_timer(p, obs) for name, p in predictors.items()}
        for name in names:  # warm-up
            for _ in range(3):
                forward[name]()
        times = {name: {"forward": [], "predict": []} for name in names}
        per_round = max(1, args.chunks // args.rounds)
        forward_per_round = max(1, (args.forward_chunks or args.chunks) // args.rounds)
        all_threads = torch.get_num_threads()
        for _ in range(args.rounds):
            for name in names:
                # As policy_node runs it: an exported model's process keeps torch to its processors' thread.
                torch.set_num_threads(processor_threads(predictors[name].loaded) or all_threads)
                times[name]["forward"] += [forward[name]() for _ in range(forward_per_round)]
                times[name]["predict"] += [seeded_chunk(predictors[name], obs, seconds=True) for _ in range(per_round)]

    torch.set_num_threads(all_threads)
    gemm = {str(dtype).removeprefix("torch."): gemm_throughput(dtype) / 1e9 if args.device == "cpu" else float("nan")
            for dtype in (torch.float32, torch.bfloat16)}
    report = {"policy": args.policy, "device": args.device, "threads": torch.get_num_threads(), "failed": failed,
              "chunks": args.rounds * per_round, "forward_chunks": args.rounds * forward_per_round,
              "gflop_per_chunk": flops / 1e9, "gemm_gflop_per_s": gemm, "backends": {}}
    base = {part: np.percentile(times["torch"][part], 50) for part in ("forward", "predict")}
    print(f"\n| full {args.policy}, {args.device} | forward p50 / p95 ms ({report['forward_chunks']} chunks) | ratio | "
          f"GFLOP/s | observation to radians p50 / p95 ms ({report['chunks']} chunks) | ratio | "
          "max difference from torch, rad | build s | first chunk s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in names:
        row = {"build_s": build_s[name], "first_chunk_s": first_chunk_s[name], "max_abs_difference_rad":
               difference[name], "tolerance_rad": EXACTNESS_TOLERANCE_RAD[InferenceBackend(name)]}
        for part in ("forward", "predict"):
            p50, p95 = (float(np.percentile(times[name][part], q)) for q in (50, 95))
            row[part] = {"p50_ms": p50 * 1e3, "p95_ms": p95 * 1e3, "speedup_vs_torch": base[part] / p50}
        row["forward"]["gflop_per_s"] = flops / row["forward"]["p50_ms"] / 1e6
        report["backends"][name] = row
        print(f"| {name}{' (baseline)' if name == 'torch' else ''} | {row['forward']['p50_ms']:.1f} / "
              f"{row['forward']['p95_ms']:.1f} | {row['forward']['speedup_vs_torch']:.2f}x | "
              f"{row['forward']['gflop_per_s']:.0f} | "
              f"{row['predict']['p50_ms']:.1f} / {row['predict']['p95_ms']:.1f} | "
              f"{row['predict']['speedup_vs_torch']:.2f}x | {difference[name]:.1e} | {build_s[name]:.1f} | "
              f"{first_chunk_s[name]:.1f} |")
    print(f"\nOne chunk is {flops / 1e9:.1f} GFLOP (torch's count of matmuls and convolutions). torch's own matrix "
          f"products run here at {gemm['float32']:.0f} GFLOP/s in fp32 and {gemm['bfloat16']:.0f} in bf16 "
          f"({torch.get_num_threads()} threads): {flops / gemm['float32'] / 1e6:.0f} and "
          f"{flops / gemm['bfloat16'] / 1e6:.0f} ms a chunk at those rates.")
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nWritten: {output}")
    beyond = [f"{name} {row['max_abs_difference_rad']:.1e} rad (allowed {row['tolerance_rad']:g})"
              for name, row in report["backends"].items() if row["max_abs_difference_rad"] > row["tolerance_rad"]]
    if beyond:
        print(f"Chunks farther from eager torch's than allowed: {', '.join(beyond)}")
    if failed:
        print(f"Failed before their first chunk: {', '.join(f'{name} ({why})' for name, why in failed.items())}")
    if (beyond or failed) and args.check:
        sys.exit(1)


if __name__ == "__main__":
    main()
