"""The `sim` backend: the MuJoCo SO-101 standing in for the arm and both cameras."""

from __future__ import annotations

import mujoco
import numpy as np

from ..episode_seeds import EpisodeSeeds
from ..sim.sim_arm import SimArm, TaskStatus


class SimBackend:
    """Each write holds the targets for one control period of simulated time.

    Episodes are laid out by `seeds`: the scene at start-up is the first episode's, and the first
    reset lays it out again (the arm back home), so the seeds a user asks for are the seeds the
    episodes get.
    """

    def __init__(self, arm: SimArm, seeds: EpisodeSeeds = EpisodeSeeds((0,))):
        self.arm = arm
        self.seeds = seeds
        self.episode = 0  # the episode the next reset starts
        self.torque_enabled = False

    def connect(self) -> None:
        self.arm.reset(seed=self.seeds[self.episode])

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

    def reset(self) -> TaskStatus:
        """The next episode, laid out by its seed."""
        status = self.arm.reset(seed=self.seeds[self.episode])
        self.episode += 1
        return status

    @property
    def status(self) -> TaskStatus:
        return self.arm.status

    def render(self, camera: str) -> np.ndarray:
        return self.arm.render(camera)

    def environment_state(self) -> np.ndarray:
        return self.arm.environment_state
