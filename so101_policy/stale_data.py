"""What the policy does when its data stops (a camera stalls or goes, the joint states stop): ROS-free.

The node asks only two things: whether a stall is worth a new warning, and whether the chunks already sent
must be cancelled.
"""

from __future__ import annotations

import logging

from .scheduler import InferenceMode


class StaleDataGuard:
    """One line per stall, and the chunks cancelled where the mode replans from fresh data.

    A stall's reason names ages that grow at every check, so a new line is decided by its cause (which
    inputs are stale), and said again only after fresh data. An input that has sent nothing yet (start-up,
    a new episode) is waited for at INFO: a WARN in every normal start teaches users to ignore WARNs.
    Async, RTC and temporal ensemble on the wall clock sent chunks planned to be replaced by ones from data
    that is not coming: those are cancelled and the arm holds. Sync plays each chunk whole (lerobot's loop,
    its contract); in lockstep the sim publishes every input of a tick, so nothing stalls but the sim itself.
    """

    def __init__(self, mode: InferenceMode, lockstep: bool):
        self.cancels_chunks = not lockstep and mode is not InferenceMode.SYNC
        self._cause: str | None = None  # what the last line said was wrong

    def notice(self, reason: str, cause: str | None = None, waiting: bool = False) -> tuple[int, str] | None:
        """(logging level, line) for this stale observation, or None while the same stall goes on."""
        cause = cause or reason
        if cause == self._cause:
            return None
        self._cause = cause
        return (logging.INFO, f"waiting to act: {reason}") if waiting else (logging.WARNING, f"no inference: {reason}")

    def fresh(self) -> None:
        """A chunk went out from fresh data: the next stall is said again."""
        self._cause = None

    def cancels(self, driving: bool) -> bool:
        """Whether the chunks sent must go now (`driving`: one sent may still be moving the arm)."""
        return driving and self.cancels_chunks
