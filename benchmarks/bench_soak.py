"""Hours without a leak (issue 24): the soaks of test/soak.py at full length, with a picture.

    .venv/bin/python benchmarks/bench_soak.py [--minutes 60] [--only driver|eval] [--out outputs/soak]

1. driver_node on the emulated Feetech bus at 30 Hz, 1% of the servos' replies spoilt, following chunks
   that sweep past the limits and jump: every Goal_Position checked against the limits and the step clamp.
2. Lockstep evaluation with recording, every node its own process, full-size ACT (random weights,
   two 224x224 cameras) as the policy.

Per node: memory (RSS) growth after a warm-up and its slope, open files and threads, start to end;
the driver's missed ticks, tick period and bus errors. Writes soak.json and soak.png (each node's
RSS, files and threads against minutes) under --out. Never asserted by tests; the README quotes it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).parents[1]
sys.path.insert(0, str(REPO / "test"))
sys.path.insert(0, str(REPO / "benchmarks"))

from full_size import full_act_checkpoint  # noqa: E402
from soak import SoakReport, driver_on_a_noisy_bus, lockstep_evaluation_with_recording  # noqa: E402

WARM_UP_S = 60.0


def plot(reports: dict[str, SoakReport], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for soak, report in reports.items():
        for node, trace in report.traces.items():
            minutes = [s.t / 60 for s in trace.samples]
            label = f"{soak}: {node}"
            axes[0].plot(minutes, [s.rss_mb - trace.samples[0].rss_mb for s in trace.samples], label=label)
            axes[1].plot(minutes, [s.fds for s in trace.samples], label=label)
            axes[2].plot(minutes, [s.threads for s in trace.samples], label=label)
    for axis, title in zip(axes, ("memory (RSS) since the first sample, MB", "open files", "threads")):
        axis.set_title(title)
        axis.set_xlabel("minutes")
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=60.0, help="length of each soak")
    parser.add_argument("--only", choices=("driver", "eval"), default=None, help="run one soak")
    parser.add_argument("--size", type=int, default=224, help="eval: camera width and height")
    parser.add_argument("--out", type=Path, default=REPO / "outputs" / "soak")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    seconds = args.minutes * 60
    reports: dict[str, SoakReport] = {}
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        if args.only in (None, "driver"):
            (scratch / "driver").mkdir()
            reports["driver"] = driver_on_a_noisy_bus(seconds, scratch / "driver", warm_up_s=WARM_UP_S)
        if args.only in (None, "eval"):
            (scratch / "eval").mkdir()
            checkpoint = full_act_checkpoint(scratch / "act_full", size=args.size)
            reports["eval"] = lockstep_evaluation_with_recording(seconds, scratch / "eval", checkpoint,
                                                                 image_size=args.size, max_episode_s=25.0,
                                                                 warm_up_s=WARM_UP_S)
    (args.out / "soak.json").write_text(json.dumps({name: r.as_dict() for name, r in reports.items()}, indent=2))
    plot(reports, args.out / "soak.png")
    print("| soak | node | RSS MB after warm-up -> end | MB/min | open files | threads |")
    print("|---|---|---|---|---|---|")
    for soak, report in reports.items():
        for node, r in report.resources.items():
            print(f"| {soak} | {node} | {r['rss_mb_start']} -> {r['rss_mb_end']} | {r['rss_mb_per_min']} | "
                  f"{r['fds_start']} -> {r['fds_end']} (max {r['fds_max']}) | "
                  f"{r['threads_start']} -> {r['threads_end']} (max {r['threads_max']}) |")
    for soak, report in reports.items():
        counters = {k: v for k, v in report.counters.items() if k in (
            "goals_checked", "replies_corrupted", "ticks", "missed_ticks", "bus_errors", "faults", "limit_clamps",
            "step_clamps", "tick_period_p95_ms", "tick_period_max_ms", "episodes_recorded")}
        print(f"{soak}: {counters}; goals outside limits or past the step clamp: {len(report.violations)}; "
              f"exit codes {report.exit_codes}")
    print(f"wrote {args.out / 'soak.json'} and {args.out / 'soak.png'}")
    failed = any(report.violations or set(report.exit_codes.values()) != {0} for report in reports.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
