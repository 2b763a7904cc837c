"""The eval manager's ROS-free core: when an episode starts, when and how it ends, what it records."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .evaluation import EpisodeResult, Outcome


class Phase(str, Enum):
    BETWEEN = "between"  # the next episode has not started (sim: resetting; real arm: the operator)
    RUNNING = "running"
    DONE = "done"


@dataclass(frozen=True)
class EpisodeLimits:
    max_episode_s: float = 30.0  # maximum length: the episode ends as a timeout
    stall_timeout_s: float = 5.0  # no action chunk for this long: the policy stopped acting


class EpisodeRunner:
    def __init__(self, episodes: int, limits: EpisodeLimits = EpisodeLimits()):
        if episodes < 1:
            raise ValueError(f"episodes must be at least 1, got {episodes}")
        self.episodes = episodes
        self.limits = limits
        self.results: list[EpisodeResult] = []
        self.phase = Phase.BETWEEN
        self._started = 0.0
        self._last_chunk = 0.0
        self._seed: int | None = None
        self._chunks = 0
        self._latency: tuple[float, float] | None = None

    @property
    def index(self) -> int:
        return len(self.results)

    def start(self, now: float, seed: int | None = None) -> None:
        if self.phase is not Phase.BETWEEN:
            raise RuntimeError(f"cannot start an episode while {self.phase.value}")
        self.phase = Phase.RUNNING
        self._started = self._last_chunk = now
        self._seed = seed
        self._chunks = 0
        self._latency = None

    def on_chunk(self, now: float) -> None:
        if self.phase is Phase.RUNNING:
            self._chunks += 1
            self._last_chunk = now

    def on_latency(self, p50_ms: float, p95_ms: float) -> None:
        if self.phase is Phase.RUNNING and p50_ms > 0:
            self._latency = (p50_ms, p95_ms)

    def check(self, now: float) -> Outcome | None:
        """The limit this episode has reached, if any."""
        if self.phase is not Phase.RUNNING:
            return None
        if now - self._started >= self.limits.max_episode_s:
            return Outcome.TIMEOUT
        if now - self._last_chunk >= self.limits.stall_timeout_s:
            return Outcome.STALLED
        return None

    def finish(self, now: float, outcome: Outcome) -> EpisodeResult:
        if self.phase is not Phase.RUNNING:
            raise RuntimeError(f"no episode is running ({self.phase.value})")
        p50, p95 = self._latency or (None, None)
        result = EpisodeResult(index=self.index, outcome=outcome, duration_s=round(now - self._started, 3),
                               seed=self._seed, chunks=self._chunks, latency_p50_ms=p50, latency_p95_ms=p95)
        self.results.append(result)
        self.phase = Phase.DONE if len(self.results) >= self.episodes else Phase.BETWEEN
        return result
