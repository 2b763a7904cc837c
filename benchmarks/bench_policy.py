"""Policy benchmarks, printed as ratios measured in the same run (never asserted by tests).

    .venv/bin/python benchmarks/bench_policy.py [--samples 20] [--seconds 30] [--device cpu]

1. Node overhead: observation-to-chunk latency through policy_node (images and joint state published
   over ROS, chunk received over ROS) against bare lerobot (preprocessor, predict_action_chunk,
   postprocessor) on the same observation, for full-size ACT (ResNet18 x 2 cameras at 224, chunk 50,
   random weights). Goal: at most 1.10x.
2. Control continuity: the sim driver and policy_node as separate processes for `--seconds` each,
   sync against async: ticks where the arm had no chunk to follow (starved) and the longest such run.
   Goal: async has zero starved ticks where sync stalls once per chunk.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rclpy
import torch
from lerobot.policies.utils import prepare_observation_for_inference
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from trajectory_msgs.msg import JointTrajectory

REPO = Path(__file__).parents[1]
sys.path.insert(0, str(REPO / "test"))
sys.path.insert(0, str(REPO / "benchmarks"))

from full_size import CAMERAS, full_act_checkpoint  # noqa: E402
from ros_harness import next_domain_id  # noqa: E402
from so101_driver.joint_model import JOINT_NAMES  # noqa: E402
from so101_driver.ros_messages import color_image_msg, joint_state_msg, sec_to_time, time_to_sec  # noqa: E402
from so101_policy.policy_node import PolicyNode  # noqa: E402
from wall_clock_graph import DRIVER, WallClockGraph, counted_between  # noqa: E402


def observation(size: int = 224) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    values = {"observation.state": rng.normal(0, 20, 6).astype(np.float32)}
    values.update({f"observation.images.{c}": rng.integers(0, 256, (size, size, 3), np.uint8) for c in CAMERAS})
    return values


class BareLerobot:
    """Preprocessor, predict_action_chunk, postprocessor on one observation: the baseline."""

    def __init__(self, loaded):
        self.loaded = loaded
        self.values = observation()
        self.measure(2)  # warm-up

    def measure(self, samples: int) -> list[float]:
        latencies = []
        for _ in range(samples):
            started = time.perf_counter()
            with torch.inference_mode():
                batch = self.loaded.preprocessor(prepare_observation_for_inference(
                    dict(self.values), self.loaded.device, "", "so101"))
                self.loaded.postprocessor(self.loaded.policy.predict_action_chunk(batch)).cpu()
            latencies.append(time.perf_counter() - started)
        return latencies


class ThroughNode:
    """Publish an observation over ROS, wait for its chunk over ROS; policy_node in this process."""

    def __init__(self, checkpoint: Path, device: str):
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=next_domain_id())
        self.node = PolicyNode(context=self.context, parameter_overrides=[
            Parameter("checkpoint", value=str(checkpoint)), Parameter("device", value=device),
            Parameter("mode", value="temporal_ensemble"), Parameter("max_obs_age", value=5.0),
            Parameter("calibration", value="sim"), Parameter("arm_timeout", value=0.0)])  # no driver here
        self.probe = rclpy.create_node("bench_probe", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.executor.add_node(self.probe)
        self.chunks: list[JointTrajectory] = []
        self.probe.create_subscription(JointTrajectory, "/so101/action_chunk", self.chunks.append, 10)
        self.joints = self.probe.create_publisher(JointState, "/joint_states", 10)
        self.images = {c: self.probe.create_publisher(Image, f"/so101/{c}/image_raw", qos_profile_sensor_data)
                       for c in CAMERAS}
        self.values = observation()
        while not all(p.get_subscription_count() for p in self.images.values()):
            self.executor.spin_once(timeout_sec=0.05)
        self.measure(2)  # warm-up

    def measure(self, samples: int) -> list[float]:
        latencies = []
        for _ in range(samples):
            self.chunks.clear()
            stamp = sec_to_time(time_to_sec(self.probe.get_clock().now().to_msg()))
            started = time.perf_counter()
            self.joints.publish(joint_state_msg(stamp, JOINT_NAMES, np.zeros(6)))
            for camera, publisher in self.images.items():
                publisher.publish(color_image_msg(stamp, self.values[f"observation.images.{camera}"], camera))
            deadline = time.monotonic() + 30
            while not self.chunks and time.monotonic() < deadline:
                # Blocks in rcl_wait with the GIL released, as rclpy.spin does in a deployed node.
                self.executor.spin_once(timeout_sec=0.05)
            latencies.append(time.perf_counter() - started)
            time.sleep(0.05)  # let the worker thread finish its bookkeeping before the next observation
        return latencies

    def close(self) -> None:
        self.node.close()
        self.executor.shutdown()
        rclpy.shutdown(context=self.context)


def continuity(checkpoint: Path, device: str, mode: str, seconds: float, workdir: Path) -> dict:
    with WallClockGraph(checkpoint, workdir, mode, {"device": device, "mode": mode}) as graph:
        graph.probe.spin_until(lambda: graph.running() and int(graph.diagnostics.get(DRIVER, {}).get(
                                   "chunks_accepted", 0)) > 0, 180,
                               lambda: f"the first chunk ({graph.logs()})")
        start = graph.driver_counters()
        graph.probe.spin_for(seconds)
        end = graph.driver_counters()
        latency = graph.policy_values()
    result = counted_between(start, end, ("ticks", "starved_ticks", "chunks_accepted", "points_skipped",
                                          "missed_ticks"))
    result["longest_starvation_ticks"] = int(end["longest_starvation"])
    result["latency_p50_ms"] = float(latency.get("latency_p50_ms", "nan"))
    result["latency_p95_ms"] = float(latency.get("latency_p95_ms", "nan"))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=4, help="alternations of baseline and node measurements")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--skip-continuity", action="store_true")
    parser.add_argument("--output", default="outputs/benchmarks/policy.json")
    args = parser.parse_args()
    os.environ.setdefault("MUJOCO_GL", "egl")

    report: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = full_act_checkpoint(Path(tmp) / "act_full")
        # Rounds alternate between the two, so drift on a shared machine hits both alike.
        # The baseline runs the node's own model instance: the difference is the node's path alone.
        node = ThroughNode(checkpoint, args.device)
        baseline = BareLerobot(node.node.predictor.loaded)
        bare, through_node = [], []
        per_round = max(1, args.samples // args.rounds)
        for _ in range(args.rounds):
            bare += baseline.measure(per_round)
            through_node += node.measure(per_round)
        node.close()
        ratio = statistics.median(through_node) / statistics.median(bare)
        report["overhead"] = {"bare_ms_p50": statistics.median(bare) * 1e3,
                              "node_ms_p50": statistics.median(through_node) * 1e3, "ratio": ratio}
        print(f"\n| observation to chunk, full ACT, {args.device} | p50 ms | p95 ms |")
        print("|---|---|---|")
        for name, values in (("bare lerobot (baseline)", bare), ("through policy_node over ROS", through_node)):
            print(f"| {name} | {np.percentile(values, 50) * 1e3:.1f} | {np.percentile(values, 95) * 1e3:.1f} |")
        print(f"Node overhead: {ratio:.3f}x the bare lerobot latency (goal: at most 1.10x)")

        if not args.skip_continuity:
            for mode in ("sync", "async"):
                report[mode] = continuity(checkpoint, args.device, mode, args.seconds, Path(tmp))
            print(f"\n| {args.seconds:.0f} s of sim, full ACT | ticks | starved ticks | longest starvation (ticks) "
                  "| chunks | points skipped | inference p50 / p95 ms |")
            print("|---|---|---|---|---|---|---|")
            for mode in ("sync", "async"):
                r = report[mode]
                print(f"| {mode} | {r['ticks']} | {r['starved_ticks']} | {r['longest_starvation_ticks']} | "
                      f"{r['chunks_accepted']} | {r['points_skipped']} | "
                      f"{r['latency_p50_ms']:.0f} / {r['latency_p95_ms']:.0f} |")
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2))
    print(f"Written to {output}")


if __name__ == "__main__":
    main()
