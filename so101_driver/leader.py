"""The SO-101 leader arm through lerobot's SO101Leader: its calibration, no prompts, torque off.

What it reads is what lerobot's own teleoperation sends the follower: each joint in the robot's
units (degrees, or -100..100; the gripper 0..100), normalised with the leader's calibration. The
follower's joint model turns those into the follower's radians, as the follower's bus would turn
them into its ticks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from lerobot.teleoperators.so_leader import SO101Leader, SO101LeaderConfig

from .backends.base import BackendError, calibrated_joint_model, close_port, give_lerobot_the_calibration, open_bus
from .joint_model import CALIBRATE_LEADER, LEROBOT_FEATURE_NAMES, ArmUnits


def leader_calibration_path(calibration_id: str) -> Path:
    """Where `lerobot-calibrate --teleop.type=so101_leader --teleop.id=ID` writes the leader's calibration."""
    from lerobot.utils.constants import HF_LEROBOT_CALIBRATION, TELEOPERATORS

    return HF_LEROBOT_CALIBRATION / TELEOPERATORS / SO101Leader.name / f"{calibration_id}.json"


class LeaderArm:
    def __init__(self, port: str, calibration_file: str | Path, arm_units: ArmUnits | str = ArmUnits.DEGREES):
        self.calibration_file, self.joint_model = calibrated_joint_model(calibration_file, arm_units, CALIBRATE_LEADER)
        self.leader = SO101Leader(SO101LeaderConfig(
            port=port, id=self.calibration_file.stem, calibration_dir=self.calibration_file.parent,
            use_degrees=self.joint_model.arm_units is ArmUnits.DEGREES,
        ))
        give_lerobot_the_calibration(self.leader, self.joint_model)

    @property
    def port(self) -> str:
        return self.leader.config.port

    def connect(self) -> None:
        """Open the bus and check the calibration; torque stays off (the leader is moved by hand).

        lerobot's connect() is not used: it prompts on a calibration mismatch.
        """
        bus = self.leader.bus
        try:
            open_bus(bus)
            if not bus.is_calibrated:
                raise BackendError(
                    f"The leader arm's motors on {self.port} hold a calibration that differs from "
                    f"{self.calibration_file}. Run `lerobot-calibrate --teleop.type=so101_leader "
                    f"--teleop.port={self.port} --teleop.id={self.leader.id}`."
                )
            self.leader.configure()  # torque off, position mode
        except BackendError:
            self.disconnect()
            raise
        except (ConnectionError, OSError, RuntimeError) as error:
            self.disconnect()
            raise BackendError(f"Could not connect to the leader arm on {self.port}: {error}") from error

    def read(self) -> np.ndarray:
        """The six joints in LeRobot units, in LEROBOT_FEATURE_NAMES order."""
        try:
            action = self.leader.get_action()
        except (ConnectionError, RuntimeError, OSError) as error:
            raise BackendError(f"reading the leader arm failed: {error}") from error
        return np.array([action[name] for name in LEROBOT_FEATURE_NAMES], dtype=np.float64)

    def disconnect(self) -> None:
        """Close the port (torque is already off). Safe to call twice and after errors."""
        bus = self.leader.bus
        if not bus.is_connected:
            return
        close_port(bus)
