"""The one safety path every command takes, whatever its source (ROS-free).

Commands are first validated as a whole (names, shapes, finite values, monotonic times) and
rejected with a `CommandRejected` that says why; accepted ones are reordered to JOINT_NAMES.
Every target sent to the arm is then clamped to the joint limits and to at most a step
(max_relative_target, per joint) from the measured position, as lerobot's own max_relative_target
does, so a blocked joint's goal cannot run away from it, and from the previous target, so that a
reading that jumps cannot move the goal more than a step. A `Watchdog` tells the driver when
commands have stopped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .joint_model import joint_order
from .trajectory import Trajectory


class CommandRejected(ValueError):
    """A command that must not move the arm; the message says what was wrong."""


@dataclass(frozen=True)
class ClampReport:
    limit_clamped: np.ndarray  # bool per joint
    step_clamped: np.ndarray  # bool per joint

    @property
    def any(self) -> bool:
        return bool(self.limit_clamped.any() or self.step_clamped.any())


class SafetyFilter:
    """Joint limits (radians) and the largest step a target may take in one control tick."""

    def __init__(self, lower: Sequence[float], upper: Sequence[float], max_step: float | Sequence[float]):
        self.lower = np.asarray(lower, dtype=np.float64)
        self.upper = np.asarray(upper, dtype=np.float64)
        self.max_step = np.broadcast_to(np.asarray(max_step, dtype=np.float64), self.lower.shape).copy()
        if not (np.all(np.isfinite(self.max_step)) and np.all(self.max_step > 0)):
            raise ValueError(f"max_relative_target must be positive and finite per joint, got {self.max_step}.")
        if np.any(self.lower >= self.upper):
            raise ValueError(f"Joint limits are empty: lower {self.lower}, upper {self.upper}.")

    # -- validation -------------------------------------------------------------------------------
    @staticmethod
    def order_names(names: Sequence[str]) -> np.ndarray:
        """Index array that puts values given in `names` order into JOINT_NAMES order."""
        try:
            return joint_order(names)
        except ValueError as error:
            raise CommandRejected(str(error)) from None

    def check_positions(self, names: Sequence[str], positions: Sequence[float]) -> np.ndarray:
        """A single position command, validated and ordered as JOINT_NAMES."""
        order = self.order_names(names)
        values = np.asarray(positions, dtype=np.float64)
        if values.shape != (len(names),):
            raise CommandRejected(f"{len(names)} joint names but {values.size} positions")
        if not np.all(np.isfinite(values)):
            raise CommandRejected(f"non-finite positions {values.tolist()}")
        return values[order]

    def check_trajectory(self, names: Sequence[str], stamp: float, times_from_start: Sequence[float],
                         points: Sequence[Sequence[float]]) -> Trajectory:
        """A whole chunk, validated, as an absolute-time trajectory ordered as JOINT_NAMES."""
        order = self.order_names(names)
        if len(points) == 0:
            raise CommandRejected("a trajectory with no points")
        if len(times_from_start) != len(points):
            raise CommandRejected(f"{len(points)} points but {len(times_from_start)} times")
        for index, point in enumerate(points):
            if len(point) != len(names):
                raise CommandRejected(f"point {index} has {len(point)} positions for {len(names)} joint names")
        positions = np.asarray(points, dtype=np.float64)
        times = np.asarray(times_from_start, dtype=np.float64)
        if not (np.all(np.isfinite(positions)) and np.all(np.isfinite(times)) and np.isfinite(stamp)):
            bad = sorted({int(i) for i in np.argwhere(~np.isfinite(positions))[:, 0]})
            raise CommandRejected(f"non-finite values (points {bad}, or in times or the stamp)")
        if np.any(times < 0):
            raise CommandRejected("negative time_from_start")
        if np.any(np.diff(times) <= 0):
            raise CommandRejected(f"time_from_start is not strictly increasing: {times.tolist()}")
        return Trajectory(times=stamp + times, positions=positions[:, order])

    # -- clamping ---------------------------------------------------------------------------------
    def clamp(self, target: np.ndarray, previous: np.ndarray, measured: np.ndarray) -> tuple[np.ndarray, ClampReport]:
        """Clamp to the joint limits, to at most max_step from the measured position, then from the previous target.

        The measured bound keeps a blocked joint's goal from running away from it; the previous
        target's bound, which wins where the two disagree, keeps a reading that jumps (or an arm
        pushed far in one tick) from moving the goal more than a step. A joint found outside its
        limits (a calibrated range wider than the model's) is neither pulled in unasked nor pushed
        further out: its limits stretch to where it is.
        """
        lower, upper = np.minimum(self.lower, measured), np.maximum(self.upper, measured)
        within_limits = np.clip(target, lower, upper)
        near_arm = np.clip(within_limits, measured - self.max_step, measured + self.max_step)
        safe = np.clip(near_arm, previous - self.max_step, previous + self.max_step)
        return safe, ClampReport(
            limit_clamped=within_limits != target,
            step_clamped=np.abs(safe - within_limits) > 1e-12,
        )


class Watchdog:
    """Trips when nothing has been commanded for `timeout` seconds past the last command's end."""

    def __init__(self, timeout: float):
        if timeout <= 0:
            raise ValueError(f"watchdog_timeout must be positive seconds, got {timeout}.")
        self.timeout = timeout
        self._commanded_until: float | None = None

    def feed(self, until: float) -> None:
        """A valid command covers the arm up to time `until`."""
        self._commanded_until = until if self._commanded_until is None else max(self._commanded_until, until)

    def expired(self, now: float) -> bool:
        return self._commanded_until is not None and now - self._commanded_until > self.timeout

    def disarm(self) -> None:
        self._commanded_until = None
