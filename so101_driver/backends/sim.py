"""The `sim` backend: the MuJoCo SO-101 standing in for the arm and both cameras."""

from __future__ import annotations

import mujoco
import numpy as np

from ..sim.sim_arm import SimArm, TaskStatus


class SimBackend:
    """Each write holds the targets for one control period of simulated time."""

    def __init__(self, arm: SimArm, seed: int = 0):
        self.arm = arm
        self.next_seed = seed
        self.torque_enabled = False

    def connect(self) -> None:
        self.reset()

    def enable(self) -> None:
        self._set_torque(True)

    def disable(self) -> None:
        self._set_torque(False)

    def read_positions(self) -> np.ndarray:
        return self.arm.joint_positions

    def read_velocities(self) -> np.ndarray:
        return self.arm.joint_velocities

    def write_targets(self, targets: np.ndarray) -> None:
        self.arm.step(targets)

    def disconnect(self) -> None:
        self._set_torque(False)
        self.arm.close()

    def _set_torque(self, enabled: bool) -> None:
        # Torque off is actuation off: the arm goes limp under gravity as the real one does.
        flag = mujoco.mjtDisableBit.mjDSBL_ACTUATION
        if enabled:
            self.arm.model.opt.disableflags &= ~int(flag)
        else:
            self.arm.model.opt.disableflags |= int(flag)
        self.torque_enabled = enabled

    def reset(self, seed: int | None = None) -> TaskStatus:
        """A new seeded episode; without a seed, the next one in sequence."""
        if seed is None:
            seed = self.next_seed
        self.next_seed = seed + 1
        return self.arm.reset(seed=seed)

    @property
    def status(self) -> TaskStatus:
        return self.arm.status

    def render(self, camera: str) -> np.ndarray:
        return self.arm.render(camera)
