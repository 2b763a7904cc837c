"""When to start the next inference (ROS-free).

* ``sync``: only when the published chunk has run out, as lerobot's select_action does; the arm
  waits for each inference.
* ``async``: when the unexecuted rest of the chunk falls below the measured latency (p95, from the
  observation's time to its chunk going out) plus a margin, so the next chunk arrives before this
  one runs out.
* ``temporal_ensemble``: a chunk every tick (whenever the worker is free); the driver's executor
  merges them (run the driver with merge_mode:=temporal_ensemble).
* ``rtc``: scheduled as async; SmolVLA's real-time chunking makes the new chunk continue the part of
  the old one that runs while it is computed (lerobot's RTC guidance).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import Enum

import numpy as np


class InferenceMode(str, Enum):
    SYNC = "sync"
    ASYNC = "async"
    TEMPORAL_ENSEMBLE = "temporal_ensemble"
    RTC = "rtc"


def inference_mode(value: str | InferenceMode) -> InferenceMode:
    try:
        return InferenceMode(value)
    except ValueError:
        raise ValueError(f"mode must be one of {[m.value for m in InferenceMode]}, got {value!r}.") from None


@dataclass
class ChunkScheduler:
    mode: InferenceMode
    fps: float
    margin: float = 0.1  # s of slack on top of the p95 latency in async mode
    latencies: deque = field(default_factory=lambda: deque(maxlen=100))
    _chunk_end: float | None = None

    def __post_init__(self):
        self.mode = inference_mode(self.mode)

    def record_latency(self, seconds: float) -> None:
        self.latencies.append(seconds)

    def latency_percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) if self.latencies else 0.0

    def chunk_published(self, observation_stamp: float, points: int) -> None:
        """A chunk whose point k is due at observation_stamp + k / fps went out."""
        self._chunk_end = observation_stamp + points / self.fps

    def remaining(self, now: float) -> float:
        """Seconds of the published chunk still to run; 0 when there is none."""
        return 0.0 if self._chunk_end is None else max(0.0, self._chunk_end - now)

    def should_infer(self, now: float, busy: bool) -> bool:
        if busy:
            return False
        if self._chunk_end is None or self.mode is InferenceMode.TEMPORAL_ENSEMBLE:
            return True
        if self.mode is InferenceMode.SYNC:
            return now >= self._chunk_end
        return self.remaining(now) <= self.latency_percentile(95) + self.margin

    def reset(self) -> None:
        self._chunk_end = None
