"""Success against training minutes, from `so101 eval` runs of one training run's checkpoints (a PNG).

    .venv/bin/python benchmarks/success_curve.py --s-per-step 0.65 --output curve.png EVAL_DIR... \
        [--label "pick_place_10cm"] [--more EVAL_DIR... --more-label "wide"]

Each evaluation's results.json names its checkpoint; the step is read from the checkpoint's
training_state (lerobot's training_step.json). Minutes are steps x --s-per-step, the rate measured
with the machine to itself: a run that shared its CPU with evaluations has a slower clock of its own.
Points carry their 95% Wilson interval. Prints the table the README quotes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def evaluation_point(eval_dir: Path) -> dict:
    results = json.loads((eval_dir / "results.json").read_text())
    checkpoint = Path(results["settings"]["checkpoint"])
    step = json.loads((checkpoint.parent / "training_state" / "training_step.json").read_text())["step"]
    summary = results["summary"]
    return {"eval": eval_dir.name, "step": step, "episodes": summary["episodes"], "successes": summary["successes"],
            "low": summary["wilson95_low"], "high": summary["wilson95_high"],
            "variant": results["settings"].get("task_variant", "?")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("evals", nargs="+", type=Path)
    parser.add_argument("--s-per-step", type=float, required=True)
    parser.add_argument("--label", default="")
    parser.add_argument("--more", nargs="*", type=Path, default=[], help="a second series (another task variant)")
    parser.add_argument("--more-label", default="")
    parser.add_argument("--title", default="success against training minutes")
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.2))
    print("| series | checkpoint step | minutes | successes | 95% Wilson |")
    print("|---|---|---|---|---|")
    for evals, label, marker in ((args.evals, args.label, "o"), (args.more, args.more_label, "s")):
        points = sorted((evaluation_point(e) for e in evals), key=lambda p: (p["step"], p["episodes"]))
        if not points:
            continue
        minutes = [p["step"] * args.s_per_step / 60 for p in points]
        rates = [100 * p["successes"] / p["episodes"] for p in points]
        errors = [[r - 100 * p["low"] for r, p in zip(rates, points)], [100 * p["high"] - r for r, p in zip(rates, points)]]
        axis.errorbar(minutes, rates, yerr=errors, marker=marker, capsize=3, label=label or points[0]["variant"])
        for p, m, r in zip(points, minutes, rates):
            axis.annotate(f"{p['successes']}/{p['episodes']}", (m, r), textcoords="offset points", xytext=(4, -12),
                          fontsize=8)
            print(f"| {label or p['variant']} | {p['step']:,} | {m:.1f} | {p['successes']}/{p['episodes']} | "
                  f"[{100 * p['low']:.0f}, {100 * p['high']:.0f}]% |")
    axis.set_xlabel(f"training minutes (steps x {args.s_per_step} s)")
    axis.set_ylabel("success, % of unseen seeds")
    axis.set_ylim(-5, 105)
    axis.grid(alpha=0.3)
    axis.set_title(args.title)
    # Below the axes: a run's points can be anywhere inside them.
    axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    save_figure(figure, args.output)
    return 0


def save_figure(figure, output: Path) -> None:
    figure.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=110)
    print(f"wrote {output}")


if __name__ == "__main__":
    raise SystemExit(main())
