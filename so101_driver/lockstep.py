"""Lockstep: the sim advances a control tick only when the graph has consumed the last one (ROS-free).

In lockstep the sim driver publishes a tick (the /clock, joint states, targets and both camera
frames, all stamped with the tick's sim time) and waits. Each *participant* (the policy node, the
eval manager, the recorder) tells it on READY_TOPIC which tick it has consumed and the stamp of the
last chunk it published because of it; the driver takes the next tick once every participant has
consumed this one and every chunk they announced has arrived. Inference latency is then whatever the
policy charges in ticks, not what the machine happens to take, so a slow or busy machine evaluates
exactly what a fast one does.

A participant that stays silent for `timeout` wall seconds is reported and no longer waited for
until it speaks again, so a crashed node stalls the episode (the eval manager then ends it) rather
than the whole graph. Silence counts only from the first tick, which waits for every participant to
announce itself however long it takes to start (a full-size policy compiling on a CPU: minutes); a
node that fails at start-up ends the graph instead (launch's on_exit, `so101`'s GraphFailed).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

READY_TOPIC = "so101/lockstep/ready"


def parse_participants(text: str) -> tuple[str, ...]:
    """'so101_policy, so101_eval_manager' -> ('so101_policy', 'so101_eval_manager')."""
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if len(set(names)) != len(names):
        raise ValueError(f"lockstep_participants names a node twice: {text!r}")
    return names


@dataclass
class _Participant:
    consumed_ns: int = -1  # the last tick it consumed; -1: it has not announced itself
    chunk_ns: int = 0  # the stamp of the last chunk it published; 0: none
    absent: bool = False  # timed out: not waited for until it speaks again


@dataclass
class LockstepBarrier:
    """The driver's side: may the sim take its next tick?"""

    participants: tuple[str, ...]
    timeout: float = 30.0  # wall seconds of silence before a participant is left behind
    _state: dict[str, _Participant] = field(default_factory=dict)
    _tick_ns: int | None = None  # the tick published last; None before the first
    _waiting_since: float = 0.0
    _latest_chunk_ns: int = 0

    def __post_init__(self):
        if not self.participants:
            raise ValueError("lockstep needs at least one participant (lockstep_participants)")
        if self.timeout <= 0:
            raise ValueError(f"lockstep_timeout must be positive seconds, got {self.timeout}")
        self._state = {name: _Participant() for name in self.participants}

    def on_ready(self, participant: str, consumed_ns: int, chunk_ns: int) -> None:
        state = self._state.get(participant)
        if state is None:
            return  # not one we wait for
        state.consumed_ns = max(state.consumed_ns, consumed_ns)
        state.chunk_ns = max(state.chunk_ns, chunk_ns)
        state.absent = False

    def on_chunk(self, stamp_ns: int) -> None:
        self._latest_chunk_ns = max(self._latest_chunk_ns, stamp_ns)

    def begin(self, wall_now: float) -> None:
        """Start waiting for the participants to announce themselves (before the first tick)."""
        self._waiting_since = wall_now

    def tick_published(self, stamp_ns: int, wall_now: float) -> None:
        self._tick_ns = stamp_ns
        self._waiting_since = wall_now

    def _done(self, state: _Participant) -> bool:
        if state.absent:
            return True
        if self._tick_ns is None:  # before the first tick: it has announced itself
            return state.consumed_ns >= 0
        return state.consumed_ns >= self._tick_ns and self._latest_chunk_ns >= state.chunk_ns

    def pending(self) -> list[str]:
        """The participants the next tick waits for."""
        return [name for name, state in self._state.items() if not self._done(state)]

    def waited(self, wall_now: float) -> float:
        return wall_now - self._waiting_since

    @property
    def started(self) -> bool:
        """Whether the first tick is out: every participant has announced itself."""
        return self._tick_ns is not None

    def leave_behind_silent(self, wall_now: float) -> list[str]:
        """Participants silent for longer than the timeout since a tick stop being waited for; returns them."""
        if not self.started or self.waited(wall_now) < self.timeout:
            return []
        silent = self.pending()
        for name in silent:
            self._state[name].absent = True
        return silent

    def may_advance(self) -> bool:
        return not self.pending()


@dataclass
class TickInputs:
    """A participant's side: which tick have all of its inputs (stamped by the driver) arrived for?

    The driver stamps every message of a tick with the tick's time, so a tick is complete when each
    input's latest stamp is that time. A stamp at or before the last completed tick is a repeat.
    """

    inputs: tuple[str, ...]
    _latest: dict[str, int] = field(default_factory=dict)
    completed_ns: int = -1  # the last tick whose inputs were all in

    def update(self, name: str, stamp_ns: int) -> int | None:
        """Note one input; returns the tick's stamp when this completed a new tick."""
        if name not in self.inputs:
            raise KeyError(f"{name} is not one of the inputs {self.inputs}")
        self._latest[name] = stamp_ns
        if stamp_ns <= self.completed_ns:
            return None
        if all(self._latest.get(other) == stamp_ns for other in self.inputs):
            self.completed_ns = stamp_ns
            return stamp_ns
        return None

    def is_repeat(self, stamp_ns: int) -> bool:
        return stamp_ns <= self.completed_ns

    @classmethod
    def of(cls, names: Iterable[str]) -> TickInputs:
        return cls(tuple(names))
