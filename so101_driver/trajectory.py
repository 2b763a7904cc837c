"""Time-indexed execution of action chunks on the driver's own clock (ROS-free).

Like ros2_control's joint trajectory controller, each point is due at header.stamp +
time_from_start and positions between points are interpolated linearly. What differs is how a new
chunk meets the rest of the old one, chosen by `MergeMode`:

* ``replace``: the new chunk takes over at once (JTC's "replace on new goal").
* ``crossfade``: output blends from the old chunk to the new one linearly over N ticks.
* ``temporal_ensemble``: every chunk that covers the current time contributes, weighted
  ``exp(-coeff * i)`` with i = 0 for the oldest (ACT's temporal ensembling).

Points already due when a chunk arrives are skipped: inference latency never replays the past.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np


class MergeMode(str, Enum):
    REPLACE = "replace"
    CROSSFADE = "crossfade"
    TEMPORAL_ENSEMBLE = "temporal_ensemble"


@dataclass(frozen=True)
class Trajectory:
    """Positions (N, joints) due at absolute times (N,), seconds on the driver's clock."""

    times: np.ndarray
    positions: np.ndarray

    @property
    def start(self) -> float:
        return float(self.times[0])

    @property
    def end(self) -> float:
        return float(self.times[-1])

    def sample(self, t: float) -> np.ndarray:
        """Linear interpolation, held at the ends."""
        index = int(np.searchsorted(self.times, t, side="right"))
        if index == 0:
            return self.positions[0].copy()
        if index >= len(self.times):
            return self.positions[-1].copy()
        t0, t1 = self.times[index - 1], self.times[index]
        alpha = (t - t0) / (t1 - t0)
        return (1.0 - alpha) * self.positions[index - 1] + alpha * self.positions[index]

    def drop_due_before(self, t: float) -> tuple[Trajectory | None, int]:
        """The trajectory from the last point due at or before t, and how many points were skipped.

        The last past point is kept (not counted as skipped) so that interpolation towards the next
        point starts where the chunk is at time t. None when every point is already past.
        """
        due = int(np.searchsorted(self.times, t, side="right"))
        if due >= len(self.times):
            return None, len(self.times)
        keep_from = max(due - 1, 0)
        return Trajectory(self.times[keep_from:], self.positions[keep_from:]), due


@dataclass
class ExecutorOutput:
    target: np.ndarray | None  # None: nothing was ever commanded
    active: bool  # a chunk covers this time, or a position command is held


class TrajectoryExecutor:
    """Holds the chunks in flight and answers "where should the joints be now?"."""

    def __init__(self, mode: MergeMode | str = MergeMode.REPLACE, crossfade_ticks: int = 5,
                 ensemble_coeff: float = 0.01):
        self.mode = MergeMode(mode)
        if crossfade_ticks < 1:
            raise ValueError(f"crossfade_ticks must be >= 1, got {crossfade_ticks}.")
        self.crossfade_ticks = crossfade_ticks
        self.ensemble_coeff = ensemble_coeff
        self._chunks: list[Trajectory] = []  # oldest first
        self._fade_from: Trajectory | None = None
        self._fade_ticks_done = 0
        self._held: np.ndarray | None = None
        self._held_is_command = False

    @property
    def active_until(self) -> float | None:
        """When the last chunk in flight ends; None when none is."""
        return max((c.end for c in self._chunks), default=None)

    def clear(self) -> None:
        self._chunks.clear()
        self._fade_from = None

    def hold(self, target: np.ndarray, commanded: bool = False) -> None:
        """Drop every chunk and hold this target: a position command, or a safety hold."""
        self.clear()
        self._held = np.array(target, dtype=np.float64)
        self._held_is_command = commanded

    def submit(self, trajectory: Trajectory, now: float) -> int:
        """Merge a new chunk; returns how many of its points were already due and skipped."""
        fresh, skipped = trajectory.drop_due_before(now)
        if fresh is None:
            return skipped
        self._chunks = [c for c in self._chunks if c.end >= now]
        if self.mode is MergeMode.TEMPORAL_ENSEMBLE:
            self._chunks.append(fresh)
        else:
            if self.mode is MergeMode.CROSSFADE and (self._chunks or self._held is not None):
                self._fade_from = self._chunks[-1] if self._chunks else _constant(self._held, now)
                self._fade_ticks_done = 0
            self._chunks = [fresh]
        return skipped

    def sample(self, now: float) -> ExecutorOutput:
        ended = [c for c in self._chunks if c.end < now]
        self._chunks = [c for c in self._chunks if c.end >= now]
        covering = [c for c in self._chunks if c.start <= now]
        if not covering:
            if ended:
                # The last points fell between the previous tick and this one: hold them, not the
                # previous tick's interpolation short of them.
                self._held, self._held_is_command = self._merge(ended, max(c.end for c in ended)), False
            held = None if self._held is None else self._held.copy()
            return ExecutorOutput(held, active=self._held_is_command)
        if self.mode is MergeMode.TEMPORAL_ENSEMBLE:
            target = self._merge(covering, now)
        else:
            target = covering[-1].sample(now)
            if self._fade_from is not None:
                self._fade_ticks_done += 1
                alpha = min(1.0, self._fade_ticks_done / self.crossfade_ticks)
                target = (1.0 - alpha) * self._fade_from.sample(now) + alpha * target
                if alpha >= 1.0:
                    self._fade_from = None
        self._held, self._held_is_command = target, False
        return ExecutorOutput(target.copy(), active=True)

    def _merge(self, chunks: list[Trajectory], t: float) -> np.ndarray:
        """Where these chunks (oldest first) put the joints at t, held at their ends."""
        if self.mode is not MergeMode.TEMPORAL_ENSEMBLE:
            return chunks[-1].sample(t)
        weights = np.exp(-self.ensemble_coeff * np.arange(len(chunks)))
        return weights @ np.stack([c.sample(t) for c in chunks]) / weights.sum()


def _constant(position: np.ndarray, t: float) -> Trajectory:
    """A one-point trajectory: it samples to this position at any time."""
    return Trajectory(np.array([t]), np.asarray(position)[None, :])
