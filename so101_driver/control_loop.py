"""The wall-clock control loop: a thread of its own at a fixed rate, as ros2_control runs its controllers.

The driver's tick never waits behind a ROS callback (an image conversion, a bag write, a service):
callbacks run on the executor's thread, the tick on this one, and the two share the driver core
under a lock. Deadlines are absolute (start + k * period), so one late tick does not shift the
ones after it; a tick more than a period late skips the deadlines it missed and counts them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PeriodStats:
    """Wall-clock periods between consecutive ticks, ms."""

    p50_ms: float
    p95_ms: float
    max_ms: float


class TickTimer:
    """Keeps the wall-clock periods between ticks (the last `window`) for diagnostics and benchmarks."""

    def __init__(self, window: int = 300):
        self._periods = deque(maxlen=window)
        self._last: float | None = None

    def tick(self, now: float) -> None:
        if self._last is not None:
            self._periods.append(now - self._last)
        self._last = now

    def stats(self) -> PeriodStats | None:
        if not self._periods:
            return None
        periods = np.asarray(self._periods) * 1e3
        return PeriodStats(round(float(np.percentile(periods, 50)), 2), round(float(np.percentile(periods, 95)), 2),
                           round(float(periods.max()), 2))


class FixedRateLoop:
    """Calls `step()` every `period` seconds on its own thread until stopped.

    `on_missed(n)` hears of deadlines skipped because a step ran late; `on_error(exc)` of an
    exception out of `step`, after which the loop ends (the owner decides what stopping means).
    """

    def __init__(self, rate_hz: float, step: Callable[[], None], on_missed: Callable[[int], None] = lambda n: None,
                 on_error: Callable[[BaseException], None] | None = None, name: str = "so101_control",
                 clock: Callable[[], float] = time.monotonic):
        if rate_hz <= 0:
            raise ValueError(f"control rate must be positive, got {rate_hz}")
        self.period = 1.0 / rate_hz
        self._step = step
        self._on_missed = on_missed
        self._on_error = on_error or (lambda error: logging.getLogger(name).exception("control loop failed"))
        self._clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the loop to end and wait for the step under way to finish. Safe to call more than once."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        deadline = self._clock()
        while not self._stop.is_set():
            try:
                self._step()
            except BaseException as error:  # noqa: BLE001 - reported to the owner, who stops safely
                self._on_error(error)
                return
            deadline += self.period
            delay = deadline - self._clock()
            if delay < 0:
                missed = int(-delay // self.period)
                if missed:
                    self._on_missed(missed)
                    deadline += missed * self.period
                delay = deadline - self._clock()
            if delay > 0:
                self._stop.wait(delay)
