"""What the driver needs from an arm: open it, torque on and off, read joints, command targets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np

from ..joint_model import CALIBRATE_FOLLOWER, ArmUnits, JointModel


class BackendError(RuntimeError):
    """The arm could not be read or commanded; the driver answers with a hold, not a crash."""


class ArmDisconnected(BackendError):
    """The arm's port is gone (a USB cable pulled): nothing reaches the servos until it is back and the
    driver is activated again."""


def calibrated_joint_model(calibration_file: str | Path, arm_units: ArmUnits | str,
                           calibrate: str = CALIBRATE_FOLLOWER) -> tuple[Path, JointModel]:
    """The file's path and the arm's joint model from it; a missing or broken file as one BackendError line
    (`calibrate`: the command that writes this arm's calibration)."""
    path = Path(calibration_file).expanduser()
    try:
        return path, JointModel.from_file(path, arm_units, calibrate)
    except (OSError, ValueError) as error:  # missing, unreadable, not JSON, motors missing
        raise BackendError(str(error)) from None


def give_lerobot_the_calibration(device, joint_model: JointModel) -> None:
    """lerobot reads <calibration_dir>/<id>.json by itself; a robot or teleoperator is given the
    calibration the joint model read instead, so any file name works and both hold the same numbers."""
    device.calibration = dict(joint_model.calibration)
    device.bus.calibration = device.calibration


def free_port(bus) -> None:
    """Mark a lerobot bus's port free again, as lerobot's own MotorsBus.disconnect does first.

    A transfer cut short (a timeout, a signal mid-read) leaves the port marked busy and bytes in its
    buffer; every write after it would fail with "Port is in use".
    """
    bus.port_handler.clearPort()
    bus.port_handler.is_using = False


def close_port(bus) -> None:
    """Close a lerobot bus's port without a word to the motors (torque is off, or they did not answer)."""
    free_port(bus)
    bus.port_handler.closePort()


READING_ATTEMPTS = 4


def agreed_reading(read: Callable[[], np.ndarray], tolerance: float, what: str) -> np.ndarray:
    """The later of two readings in a row that agree within `tolerance`, for a reading that becomes a goal.

    A reply spoilt on the line can pass the bus's 8-bit checksum (the soak, with corrupted replies, saw a
    position 130 ticks from the servo's); held as a goal, it would jump the arm. An arm under no torque, even
    pushed by hand, moves far less than `tolerance` between two reads.
    """
    readings = [read()]
    for _ in range(READING_ATTEMPTS - 1):
        readings.append(read())
        previous, current = readings[-2:]
        if np.all(np.abs(current - previous) <= tolerance):
            return current
    raise BackendError(
        f"{READING_ATTEMPTS} readings of {what} in a row disagreed by more than {tolerance:g} (the last two: "
        f"{np.round(previous, 3).tolist()} and {np.round(current, 3).tolist()}); torque is off. Check the "
        "arm's cable and power supply, then activate again.")


HANDSHAKE_ATTEMPTS = 3


def open_bus(bus) -> None:
    """lerobot's bus.connect() (open the port, ping every motor, check their firmware), up to
    HANDSHAKE_ATTEMPTS times.

    lerobot pings each motor once, with scservo's 34 ms timeout, and reads their firmware once, so one
    reply lost on the line (or late, on a busy machine) fails the whole check; a motor that is really
    missing fails every attempt, with lerobot's own message.
    """
    for attempt in range(1, HANDSHAKE_ATTEMPTS + 1):
        try:
            bus.connect()
            return
        except (RuntimeError, ConnectionError) as error:
            # A port that cannot open is not asked again; lerobot says so as a ConnectionError caused by
            # an OSError. A reply lost in the firmware check is a ConnectionError caused by a ConnectionError.
            port_failed = isinstance(error, ConnectionError) and not isinstance(error.__cause__, ConnectionError)
            if port_failed or attempt == HANDSHAKE_ATTEMPTS:
                raise
            close_port(bus)


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
