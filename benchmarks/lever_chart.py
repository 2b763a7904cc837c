"""Each lever's success rate beside the baseline's, with 95% Wilson intervals, from `so101 eval` runs (a PNG).

    .venv/bin/python benchmarks/lever_chart.py --output levers.png "baseline=EVAL_DIR" "600 demos=EVAL_DIR" ...

The first pair is the baseline: its interval is shaded across the chart, so a lever whose bar leaves the band
is one the evaluations tell apart from it. Prints the table the README quotes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def labelled_evaluation(pair: str) -> dict:
    label, separator, folder = pair.partition("=")
    if not separator:
        raise SystemExit(f"expected LABEL=EVAL_DIR, found '{pair}'")
    summary = json.loads((Path(folder) / "results.json").read_text())["summary"]
    return {"label": label, "episodes": summary["episodes"], "successes": summary["successes"],
            "rate": 100 * summary["successes"] / summary["episodes"],
            "low": 100 * summary["wilson95_low"], "high": 100 * summary["wilson95_high"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("evaluations", nargs="+", metavar="LABEL=EVAL_DIR")
    parser.add_argument("--title", default="each lever alone against the baseline")
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    rows = [labelled_evaluation(pair) for pair in args.evaluations]

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from success_curve import save_figure

    figure, axis = plt.subplots(figsize=(7.5, 0.5 * len(rows) + 1.4))
    baseline = rows[0]
    axis.axvspan(baseline["low"], baseline["high"], color="0.85", zorder=0, label="baseline's 95% interval")
    positions = list(range(len(rows)))[::-1]
    print("| run | successes | rate | 95% Wilson |")
    print("|---|---|---|---|")
    for row, y in zip(rows, positions):
        axis.errorbar(row["rate"], y, xerr=[[row["rate"] - row["low"]], [row["high"] - row["rate"]]], fmt="o",
                      capsize=4, color="C0" if row is baseline else "C1")
        axis.annotate(f"{row['successes']}/{row['episodes']}", (row["rate"], y), textcoords="offset points",
                      xytext=(0, 7), ha="center", fontsize=8)
        print(f"| {row['label']} | {row['successes']}/{row['episodes']} | {row['rate']:.0f}% | "
              f"[{row['low']:.0f}, {row['high']:.0f}]% |")
    axis.set_yticks(positions, [row["label"] for row in rows])
    axis.set_ylim(-0.7, len(rows) - 0.3)
    axis.set_xlim(-3, 103)
    axis.set_xlabel("success, % of unseen seeds (95% Wilson interval)")
    axis.grid(axis="x", alpha=0.3)
    axis.set_title(args.title, fontsize=10)
    axis.legend(loc="lower right", fontsize=8, frameon=False)
    save_figure(figure, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
