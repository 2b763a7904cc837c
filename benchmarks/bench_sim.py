"""Sim benchmark: control-tick cost with both cameras, and the scripted expert's success rate.

    .venv/bin/python benchmarks/bench_sim.py [--ticks 150] [--episodes 100]

A tick is what the sim driver does 30 times a second: one control period of physics and a frame
from each camera. The baseline, run in the same process, is the same tick with the full-resolution
CAD meshes; ratios are against it and against the 30 Hz budget. Nothing here is asserted by tests.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from so101_driver.sim.expert import ScriptedExpert, run_expert_episode  # noqa: E402
from so101_driver.sim.scene import CAMERA_NAMES, SceneConfig  # noqa: E402
from so101_driver.sim.sim_arm import SimArm  # noqa: E402

BUDGET_MS = 1000.0 / 30.0


def time_ticks(config: SceneConfig, ticks: int, cameras: bool = True) -> float:
    """Median milliseconds per control tick while the expert moves the arm."""
    arm = SimArm(config)
    arm.reset(seed=0)
    plan = ScriptedExpert(arm).plan
    for camera in CAMERA_NAMES:  # warm up the renderer
        arm.render(camera)
    samples = []
    for tick in range(ticks):
        start = time.perf_counter()
        arm.step(plan[tick % len(plan)])
        if cameras:
            for camera in CAMERA_NAMES:
                arm.render(camera)
        samples.append(time.perf_counter() - start)
    arm.close()
    return float(np.median(samples) * 1e3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ticks", type=int, default=150)
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--output", default="outputs/benchmarks/sim.json")
    args = parser.parse_args()

    cases = {
        "physics only": (SceneConfig(), False),
        "224x224, full CAD meshes (baseline)": (SceneConfig(decimate_visual_meshes=False), True),
        "224x224": (SceneConfig(), True),
        "480x640": (SceneConfig(image_width=640, image_height=480), True),
    }
    timings = {name: time_ticks(config, args.ticks, cameras) for name, (config, cameras) in
               tqdm(cases.items(), desc="tick timings")}
    baseline = timings["224x224, full CAD meshes (baseline)"]

    arm = SimArm()
    started = time.perf_counter()
    outcomes = [run_expert_episode(arm, seed) for seed in tqdm(range(args.episodes), desc="expert episodes")]
    expert_seconds = time.perf_counter() - started
    failures = [seed for seed, ok in enumerate(outcomes) if not ok]

    print("\n| tick (physics + both cameras) | ms/tick | ticks/s | vs baseline | share of 30 Hz budget |")
    print("|---|---|---|---|---|")
    for name, ms in timings.items():
        print(f"| {name} | {ms:.1f} | {1000 / ms:.0f} | {baseline / ms:.1f}x faster | {ms / BUDGET_MS:.0%} |")
    print(f"\nScripted expert: {sum(outcomes)}/{len(outcomes)} seeded episodes succeeded "
          f"(failed seeds: {failures or 'none'}), {expert_seconds / len(outcomes):.2f} s per episode "
          "without rendering.")

    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps({"ms_per_tick": timings, "expert_successes": sum(outcomes),
                                  "expert_episodes": len(outcomes), "expert_failed_seeds": failures}, indent=2))
    print(f"Written to {output}")


if __name__ == "__main__":
    main()
