"""`so101 report RUN...`: training curves (PNG) and a comparison table (Markdown) of training runs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .presets import PRESETS
from .train import METRICS, RUN_INFO, RunInfo


class ReportError(RuntimeError):
    """A run directory without what the report needs."""


@dataclass(frozen=True)
class RunSummary:
    name: str
    model: str
    cameras: str
    steps: list[int]
    losses: list[float]
    final_loss: float
    final_grad_norm: float
    train_time_s: float
    s_per_step: float
    params: int | None
    preset: str


def load_metrics(run_dir: Path) -> list[dict]:
    path = run_dir / METRICS
    if not path.is_file():
        raise ReportError(f"{run_dir} has no {METRICS}: is it a run directory written by `so101 train`?")
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not records:
        raise ReportError(f"{path} is empty: the run logged no step yet (log_freq is larger than its steps?)")
    # A resumed run may log a step twice (crash after logging, before its checkpoint): keep the last.
    by_step = {record["step"]: record for record in records}
    return [by_step[step] for step in sorted(by_step)]


def summarize(run_dir: Path) -> RunSummary:
    run_dir = Path(run_dir)
    if not (run_dir / RUN_INFO).is_file():
        raise ReportError(f"{run_dir} has no {RUN_INFO}: is it a run directory written by `so101 train`?")
    info = RunInfo.load(run_dir)
    records = load_metrics(run_dir)
    # Each record averages the window since the previous one; time the whole window.
    train_time = 0.0
    previous_step = 0
    for record in records:
        train_time += (record.get("update_s", 0.0) + record.get("dataloading_s", 0.0)) * (record["step"] - previous_step)
        previous_step = record["step"]
    last = records[-1]
    return RunSummary(
        name=run_dir.name, model=info.policy_type,
        cameras="+".join(info.cameras) or ("object state" if info.environment_state else "none"),
        steps=[record["step"] for record in records], losses=[record["loss"] for record in records],
        final_loss=last["loss"], final_grad_norm=last.get("grad_norm", float("nan")), train_time_s=train_time,
        s_per_step=train_time / max(last["step"], 1), params=info.total_params, preset=info.preset,
    )


def _params(count: int | None) -> str:
    if count is None:
        return "?"
    return f"{count / 1e6:.1f}M" if count >= 1e6 else f"{count / 1e3:.0f}k"


def _duration(seconds: float) -> str:
    hours, rest = divmod(int(round(seconds)), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def comparison_table(summaries: list[RunSummary], with_reference: bool = True) -> str:
    lines = [
        "| run | model | cameras | steps | final loss | grad norm | train time | s/step | params |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for summary in summaries:
        lines.append(
            f"| {summary.name} | {summary.model} | {summary.cameras} | {summary.steps[-1]} | {summary.final_loss:.4f} "
            f"| {summary.final_grad_norm:.3f} | {_duration(summary.train_time_s)} | {summary.s_per_step:.3f} "
            f"| {_params(summary.params)} |"
        )
    if with_reference:
        for name in sorted({summary.preset for summary in summaries if summary.preset in PRESETS}):
            preset = PRESETS[name]
            reference = preset.reference
            if not reference:
                continue
            cameras = "wrist" if "overhead" in preset.excluded_cameras else "wrist+overhead"
            lines.append(f"| reference ({name}) | {preset.policy_type} | {cameras} | 20000 | {reference['final_loss']} "
                         f"| | | {reference['s_per_step']} | {reference['params']} |")
    return "\n".join(lines) + "\n"


def plot_curves(summaries: list[RunSummary], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5), dpi=110)
    for summary in summaries:
        axes.plot(summary.steps, summary.losses, label=f"{summary.name} ({summary.model}, {summary.cameras})",
                  marker="o" if len(summary.steps) < 30 else None, markersize=3)
    axes.set_yscale("log")
    axes.set_xlabel("step")
    axes.set_ylabel("training loss (log scale)")
    axes.set_title("Training loss")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)


def write_report(run_dirs: list[Path], output: Path) -> tuple[Path, Path]:
    summaries = [summarize(Path(run_dir)) for run_dir in run_dirs]
    output.mkdir(parents=True, exist_ok=True)
    curves = output / "training_curves.png"
    table = output / "training_report.md"
    plot_curves(summaries, curves)
    table.write_text("# Training runs\n\n" + comparison_table(summaries) + f"\n![training curves]({curves.name})\n")
    return curves, table
