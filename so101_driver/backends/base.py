"""What the driver needs from an arm: open it, torque on and off, read joints, command targets."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class BackendError(RuntimeError):
    """The arm could not be read or commanded; the driver answers with a hold, not a crash."""


class Backend(Protocol):
    """An SO-101, real or simulated. Positions are radians ordered as JOINT_NAMES."""

    def connect(self) -> None:
        """Open the arm and check it (calibration); torque stays off. Raise with a message the user can act on."""

    def enable(self) -> None:
        """Torque on, holding where each joint is."""

    def disable(self) -> None:
        """Torque off; the arm stays open. Must be safe to call twice and after errors."""

    def read_positions(self) -> np.ndarray:
        """Present joint positions; raise BackendError when the arm does not answer."""

    def write_targets(self, targets: np.ndarray) -> None:
        """Command joint targets for the next control period."""

    def disconnect(self) -> None:
        """Turn torque off and release the arm. Must be safe to call twice and after errors."""
