"""Evaluation results: episodes, success rate with its 95% Wilson interval, tables, comparisons."""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path

RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"


class Outcome(str, Enum):
    SUCCESS = "success"
    FAILURE = "failure"  # the operator said so (real arm)
    TIMEOUT = "timeout"  # the episode reached its maximum length
    STALLED = "stalled"  # no action chunk for stall_timeout: the policy stopped acting


@dataclass
class EpisodeResult:
    index: int
    outcome: Outcome
    duration_s: float
    seed: int | None = None
    chunks: int = 0
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    bag: str | None = None

    @property
    def success(self) -> bool:
        return self.outcome is Outcome.SUCCESS


def wilson_interval(successes: int, trials: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval of a success rate: honest at 0/n and n/n, unlike the normal one."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class EvalRun:
    name: str
    settings: dict = field(default_factory=dict)  # policy, checkpoint, mode, sim, seed, ...
    episodes: list[EpisodeResult] = field(default_factory=list)

    @property
    def successes(self) -> int:
        return sum(episode.success for episode in self.episodes)

    def summary(self) -> dict:
        n = len(self.episodes)
        low, high = wilson_interval(self.successes, n)
        success_times = [e.duration_s for e in self.episodes if e.success]
        latencies = [e.latency_p50_ms for e in self.episodes if e.latency_p50_ms is not None]
        return {
            "episodes": n, "successes": self.successes, "success_rate": self.successes / n if n else 0.0,
            "wilson95_low": low, "wilson95_high": high,
            "mean_time_to_success_s": sum(success_times) / len(success_times) if success_times else None,
            "latency_p50_ms": statistics.median(latencies) if latencies else None,
            "outcomes": {outcome.value: sum(e.outcome is outcome for e in self.episodes) for outcome in Outcome},
        }

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        episodes = [dict(asdict(e), outcome=e.outcome.value) for e in self.episodes]
        (directory / RESULTS_JSON).write_text(json.dumps(
            {"name": self.name, "settings": self.settings, "summary": self.summary(), "episodes": episodes},
            indent=2) + "\n")
        (directory / RESULTS_MD).write_text(results_table(self))

    @classmethod
    def load(cls, directory: Path) -> EvalRun:
        path = Path(directory) / RESULTS_JSON
        if not path.is_file():
            raise FileNotFoundError(f"{directory} has no {RESULTS_JSON}: is it a directory written by so101 eval?")
        data = json.loads(path.read_text())
        episodes = [EpisodeResult(**dict(e, outcome=Outcome(e["outcome"]))) for e in data["episodes"]]
        return cls(data["name"], data["settings"], episodes)


def _rate(summary: dict) -> str:
    return (f"{summary['successes']}/{summary['episodes']} = {100 * summary['success_rate']:.0f}% "
            f"[{100 * summary['wilson95_low']:.0f}, {100 * summary['wilson95_high']:.0f}]")


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def results_table(run: EvalRun) -> str:
    summary = run.summary()
    lines = [f"# Evaluation: {run.name}", "",
             f"Success rate {_rate(summary)} (95% Wilson interval), mean time to success "
             f"{_seconds(summary['mean_time_to_success_s'])} s."
             + (f" Sim task variant {run.settings['task_variant']}, overhead view {run.settings.get('overhead_view')}."
                if run.settings.get("task_variant") else ""), "",
             "| episode | seed | outcome | duration s | chunks | inference p50 / p95 ms | bag |",
             "|---:|---:|---|---:|---:|---|---|"]
    for e in run.episodes:
        latency = "-" if e.latency_p50_ms is None else f"{e.latency_p50_ms:.0f} / {e.latency_p95_ms:.0f}"
        lines.append(f"| {e.index} | {'-' if e.seed is None else e.seed} | {e.outcome.value} | {e.duration_s:.1f} "
                     f"| {e.chunks} | {latency} | {e.bag or '-'} |")
    return "\n".join(lines) + "\n"


def comparison_table(runs: list[EvalRun]) -> str:
    lines = ["| run | policy | cameras | backend | episodes | success rate [95% Wilson] | mean time to success s "
             "| inference p50 ms |", "|---|---|---|---|---:|---|---:|---:|"]
    for run in runs:
        summary = run.summary()
        latency = summary["latency_p50_ms"]
        lines.append(f"| {run.name} | {run.settings.get('policy', '?')} | {run.settings.get('cameras', '?')} "
                     f"| {run.settings.get('backend', 'torch')} | {summary['episodes']} | {_rate(summary)} "
                     f"| {_seconds(summary['mean_time_to_success_s'])} "
                     f"| {'-' if latency is None else f'{latency:.0f}'} |")
    return "\n".join(lines) + "\n"
