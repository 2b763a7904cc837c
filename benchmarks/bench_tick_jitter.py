"""Control-tick jitter of the sim driver on the wall clock, with the policy and the recorder running.

    .venv/bin/python benchmarks/bench_tick_jitter.py [--seconds 40] [--size 224] [--json out.json]

Runs what `so101 eval --realtime --record` runs (the sim driver, policy_node with full-size ACT,
random weights, two cameras at 224x224, the eval manager and the recorder, composed in one
process) and times every control tick on the wall clock: the period between consecutive ticks
(p50, p95, max) against the nominal 1/30 s, and the ticks that came more than half a period late.
Never asserted by tests; the README quotes it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import fields
from pathlib import Path

import numpy as np

REPO = Path(__file__).parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from full_size import full_act_checkpoint  # noqa: E402
from so101_bringup.graph import GraphArgs, eval_nodes  # noqa: E402
from so101_bringup.in_process import run_graph  # noqa: E402
from so101_driver.driver_core import DriverCore  # noqa: E402


def measure(seconds: float, size: int, workdir: Path) -> dict:
    checkpoint = full_act_checkpoint(workdir / "act_full", size=size)
    settings = dict(checkpoint=str(checkpoint), record=True, episodes=1, max_episode_s=seconds, device="cpu",
                    output_dir=str(workdir / "eval"), sim_width=size, sim_height=size)
    if "realtime" in {f.name for f in fields(GraphArgs)}:
        settings["realtime"] = True
    tick_times: list[float] = []
    original_tick = DriverCore.tick

    def timed_tick(self, now):
        tick_times.append(time.monotonic())
        return original_tick(self, now)

    DriverCore.tick = timed_tick
    try:
        run_graph(eval_nodes(GraphArgs(**settings)), until=lambda nodes: nodes["so101_eval_manager"].finished)
    finally:
        DriverCore.tick = original_tick
    periods = np.diff(tick_times[30:]) * 1e3  # the first second holds the start-up
    nominal = 1e3 / 30.0
    return {"ticks": len(periods) + 1, "nominal_ms": round(nominal, 2),
            "p50_ms": round(float(np.percentile(periods, 50)), 2),
            "p95_ms": round(float(np.percentile(periods, 95)), 2),
            "max_ms": round(float(periods.max()), 2),
            "late_ticks": int((periods > 1.5 * nominal).sum()),
            "achieved_hz": round(1e3 / float(periods.mean()), 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=40.0, help="length of the measured episode")
    parser.add_argument("--size", type=int, default=224, help="camera width and height")
    parser.add_argument("--workdir", type=Path, default=None, help="keeps the full-size checkpoint between runs")
    parser.add_argument("--json", type=Path, default=None, help="write the numbers here too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        result = measure(args.seconds, args.size, args.workdir or Path(scratch))
    print("| ticks | nominal ms | period p50 ms | p95 ms | max ms | ticks >1.5 periods late | achieved Hz |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {result['ticks']} | {result['nominal_ms']} | {result['p50_ms']} | {result['p95_ms']} | "
          f"{result['max_ms']} | {result['late_ticks']} | {result['achieved_hz']} |")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
