"""Does async keep the arm fed on this CPU? Full-size ACT beside the sim driver on the wall clock (issue 24).

    .venv/bin/python benchmarks/bench_async.py [--minutes 5] [--backends torch,onnxruntime,openvino]

For each inference backend: the sim driver (two 224x224 cameras, 30 Hz on the wall clock) and
policy_node (full-size ACT, random weights, chunk 50, async) as separate processes. A probe takes
every chunk as the driver does and reads the sim's /clock at its arrival. A chunk is late when it
arrives after the one before it has run out (the arm had nothing to follow); observation to receipt
is its arrival time less its stamp. Also the driver's own count of starved ticks. Never asserted by
tests; the README quotes it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from rosgraph_msgs.msg import Clock
from trajectory_msgs.msg import JointTrajectory

REPO = Path(__file__).parents[1]
sys.path.insert(0, str(REPO / "test"))
sys.path.insert(0, str(REPO / "benchmarks"))

from full_size import full_act_checkpoint  # noqa: E402
from so101_driver.ros_messages import duration_to_sec, time_to_sec  # noqa: E402
from wall_clock_graph import WallClockGraph, counted_between  # noqa: E402

FPS = 30.0


def lateness(arrivals: list[tuple[float, float, float]]) -> dict:
    """(arrival, stamp, end) per chunk, sim seconds: late chunks and observation-to-receipt percentiles."""
    late = sum(arrival > previous_end for (arrival, _, _), (_, _, previous_end) in zip(arrivals[1:], arrivals))
    ages = np.array([arrival - stamp for arrival, stamp, _ in arrivals]) * 1e3
    return {"chunks": len(arrivals), "late_chunks": int(late),
            "late_per_100": round(100 * late / max(1, len(arrivals) - 1), 2),
            "obs_to_receipt_p50_ms": round(float(np.percentile(ages, 50)), 1) if len(ages) else None,
            "obs_to_receipt_p95_ms": round(float(np.percentile(ages, 95)), 1) if len(ages) else None}


def run_backend(checkpoint: Path, backend: str, seconds: float, workdir: Path, size: int) -> dict:
    with WallClockGraph(checkpoint, workdir, backend, {"device": "cpu", "backend": backend, "mode": "async"},
                        driver={"camera_width": size, "camera_height": size}) as graph:
        sim_now = {"t": None}
        arrivals: list[tuple[float, float, float]] = []

        def on_chunk(msg: JointTrajectory) -> None:
            if msg.points and sim_now["t"] is not None:
                stamp = time_to_sec(msg.header.stamp)
                end = stamp + duration_to_sec(msg.points[-1].time_from_start) + 1 / FPS
                arrivals.append((sim_now["t"], stamp, end))

        graph.probe.node.create_subscription(Clock, "/clock", lambda m: sim_now.update(t=time_to_sec(m.clock)), 10)
        graph.probe.node.create_subscription(JointTrajectory, "/so101/action_chunk", on_chunk, 50)
        graph.probe.spin_until(lambda: graph.running() and len(arrivals) >= 3, 600,
                               lambda: f"the first chunks ({graph.logs()})")
        arrivals.clear()  # start-up (the first chunks, a compiled graph warming) is not the run
        start = graph.driver_counters()
        graph.probe.spin_for(seconds)
        end = graph.driver_counters()
        estimate = graph.policy_values()
    return {"backend": backend, **lateness(arrivals),
            **counted_between(start, end, ("starved_ticks", "ticks", "missed_ticks")),
            "estimate_p95_ms": float(estimate.get("latency_p95_ms", "nan"))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=5.0, help="measured run per backend")
    parser.add_argument("--backends", default="torch,onnxruntime,openvino")
    parser.add_argument("--size", type=int, default=224, help="camera width and height (the model's input)")
    parser.add_argument("--output", type=Path, default=REPO / "outputs" / "benchmarks" / "async.json")
    args = parser.parse_args()
    os.environ.setdefault("MUJOCO_GL", "egl")
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        checkpoint = full_act_checkpoint(Path(scratch) / "act_full", size=args.size)
        for backend in args.backends.split(","):
            rows.append(run_backend(checkpoint, backend.strip(), args.minutes * 60, Path(scratch), args.size))
            print(json.dumps(rows[-1]))
    print(f"\n| backend ({args.minutes:g} min, full ACT, sim at 30 Hz wall clock) | chunks | late per 100 | "
          "obs to receipt p50 / p95 ms | the scheduler's estimate p95 ms | starved ticks |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['backend']} | {r['chunks']} | {r['late_per_100']} | {r['obs_to_receipt_p50_ms']} / "
              f"{r['obs_to_receipt_p95_ms']} | {r['estimate_p95_ms']} | {r['starved_ticks']} of {r['ticks']} |")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
