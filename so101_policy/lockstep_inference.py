"""When a chunk goes out in lockstep: inference latency charged in sim ticks, not in wall time (ROS-free).

The sim driver takes tick j + 1 only once the policy has consumed tick j. A chunk computed from
tick j's observation is charged `latency_ticks` ticks: it must reach the driver before the driver
takes tick j + latency_ticks, so it goes out while tick j + latency_ticks - 1 is consumed, whatever
the computation took on this machine. Its first latency_ticks points are then already due and the
driver skips them, as it would on a real arm with that latency. `latency_ticks = MEASURED` charges
the latency this machine measured instead (rounded up to whole ticks): closer to this machine,
no longer the same on another one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from .observation import Observation

MEASURED = -1


def check_latency_ticks(value: int) -> int:
    if value != MEASURED and value < 1:
        raise ValueError(f"latency_ticks must be at least 1 (a chunk acts from the next tick on), or {MEASURED} for "
                         f"the latency measured on this machine; got {value}.")
    return value


@dataclass
class InFlight:
    future: Future  # -> (chunk, latency s)
    observation: Observation
    episode: int
    charged_ticks: int  # the latency charged, in ticks
    due_tick: int  # the consumed tick whose acknowledgement the chunk must precede


class LockstepInference:
    """Counts consumed ticks and holds the one inference in flight until its chunk is due."""

    def __init__(self, latency_ticks: int, tick_period: float):
        self.latency_ticks = check_latency_ticks(latency_ticks)
        self.tick_period = tick_period  # s of sim time per tick, refined from the tick stamps
        self.ticks = 0  # ticks consumed
        self.in_flight: InFlight | None = None
        self._last_tick_ns: int | None = None

    def consume_tick(self, tick_ns: int) -> None:
        if self._last_tick_ns is not None and tick_ns > self._last_tick_ns:
            self.tick_period = (tick_ns - self._last_tick_ns) * 1e-9
        self._last_tick_ns = tick_ns
        self.ticks += 1

    def charged_seconds(self, inference: InFlight) -> float:
        """The sim time an inference was charged: what the scheduler plans the next one with."""
        return inference.charged_ticks * self.tick_period

    def start(self, submit: Callable[[Observation], Future], observation: Observation, episode: int) -> None:
        future = submit(observation)
        if self.latency_ticks != MEASURED:
            ticks = self.latency_ticks
        else:
            _, latency = future.result()
            ticks = max(1, math.ceil(latency / self.tick_period - 1e-9))
        self.in_flight = InFlight(future, observation, episode, ticks, self.ticks + ticks - 1)

    def take_due(self) -> InFlight | None:
        """The inference whose chunk must go out before this tick is acknowledged, if any (waits for it)."""
        if self.in_flight is None or self.ticks < self.in_flight.due_tick:
            return None
        due, self.in_flight = self.in_flight, None
        due.future.exception()  # wait for it to finish, whatever its outcome
        return due

    def drop(self) -> None:
        """Forget the inference in flight after it finishes (a reset, a pause): its chunk never goes out."""
        if self.in_flight is not None:
            self.in_flight.future.exception()
            self.in_flight = None
