"""The `feetech` backend: the real SO-101 through lerobot's SO-101 follower and Feetech bus.

No servo protocol is written here: lerobot connects, configures, reads Present_Position and writes
Goal_Position in its own units; the joint model converts those to and from radians. lerobot's own max_relative_target
is left off because the driver's safety path already clamps every target.
"""

from __future__ import annotations

import logging
import os
import termios
from pathlib import Path

import numpy as np
from lerobot.robots.so_follower import SO101Follower, SO101FollowerConfig
from serial import SerialException

from ..joint_model import ArmUnits
from .base import (ArmDisconnected, BackendError, agreed_reading, calibrated_joint_model, free_port,
                   give_lerobot_the_calibration, open_bus)

log = logging.getLogger(__name__)

# What a transfer raises: lerobot's ConnectionError (no reply; an OSError) and RuntimeError; pyserial's
# SerialException (an OSError) and termios.error (not one), from a port whose device went away.
BUS_ERRORS = (OSError, RuntimeError, termios.error)
# Two Present_Position readings that become a goal must agree this well: 32 of 4096 ticks a turn, 2.8 degrees.
PRESENT_POSITION_AGREEMENT_TICKS = 32


class FeetechBackend:
    def __init__(self, port: str, calibration_file: str | Path, arm_units: ArmUnits | str = ArmUnits.DEGREES,
                 write_calibration: bool = False, read_retries: int = 2):
        self.calibration_file, self.joint_model = calibrated_joint_model(calibration_file, arm_units)
        self.write_calibration = write_calibration
        self.robot = SO101Follower(SO101FollowerConfig(
            port=port,
            id=self.calibration_file.stem,
            calibration_dir=self.calibration_file.parent,
            use_degrees=self.joint_model.arm_units is ArmUnits.DEGREES,
            max_relative_target=None,
            disable_torque_on_disconnect=True,
            num_read_retries=read_retries,
        ))
        give_lerobot_the_calibration(self.robot, self.joint_model)
        self._port_lost: str | None = None  # why the port was given up, until it is opened again

    @property
    def port(self) -> str:
        return self.robot.config.port

    def connect(self) -> None:
        """Open the bus, check (or write) the calibration and configure the motors; torque ends off.

        lerobot's own connect() is not used: it would prompt on a calibration mismatch, and it ends
        with torque on, which the driver's lifecycle leaves to activation.
        """
        self._open(reconnect=False)

    def _open(self, reconnect: bool) -> None:
        bus = self.robot.bus
        try:
            open_bus(bus)  # opens the port and pings every motor
            if not bus.is_calibrated:
                if not self.write_calibration:
                    raise BackendError(
                        f"The motors on {self.robot.config.port} hold a calibration that differs from "
                        f"{self.calibration_file}. Run `lerobot-calibrate --robot.type=so101_follower "
                        f"--robot.port={self.robot.config.port} --robot.id={self.robot.id}`, or start the driver "
                        "with write_calibration:=true to write the file's calibration to the motors."
                    )
                self._write_calibration()
            # Servos that kept their power through an unplug kept their settings, and their torque:
            # configure() turns torque off to write the settings again, which would drop the arm.
            if not (reconnect and self._servos_holding()):
                # lerobot's motor settings (position mode, PID, the gripper's torque and current limits);
                # it turns torque on when done, so the goal first goes to where each joint is.
                self._goal_to_present()
                self.robot.configure()
                self.disable()
            self._port_lost = None
        except BackendError:
            self.disconnect()
            raise
        except BUS_ERRORS as error:
            self.disconnect()
            raise BackendError(f"Could not connect to the SO-101 on {self.robot.config.port}: {error}") from error
        except BaseException:
            # A Ctrl-C inside lerobot's configure(), whose torque_disabled() turns torque back on.
            self.disconnect()
            raise

    def _servos_holding(self) -> bool:
        return any(self.robot.bus.sync_read("Torque_Enable", normalize=False).values())

    def enable(self) -> None:
        """Torque on, each joint holding where it is; a port given up since is opened and checked again first."""
        if self._port_lost:
            self._open(reconnect=True)
        try:
            self._goal_to_present()
            self.robot.bus.enable_torque()
        except BackendError:  # readings that disagree (one is a RuntimeError too)
            self.disable()  # servos that kept torque through an unplug hold it still
            raise
        except BUS_ERRORS as error:
            raise self._bus_error("turning torque on", error) from error

    def _bus_error(self, what: str, error: BaseException) -> BackendError:
        """A failed transfer as the driver meets it: the port gone (ArmDisconnected: the port is given up), or
        servos not answering."""
        if self._port_gone(error):
            self._give_up_port(f"{what} failed: {error}")
            return ArmDisconnected(f"the arm's port {self.port} is gone ({self._port_lost})")
        return BackendError(f"{what} failed: {error}")

    def _port_gone(self, error: BaseException) -> bool:
        return isinstance(error, (SerialException, termios.error)) or not os.path.exists(self.port)

    def _give_up_port(self, why: str) -> None:
        """Close a port whose device went away; no byte is written (there is nobody to write to)."""
        self._port_lost = why
        handler = self.robot.bus.port_handler
        try:
            handler.closePort()
        except (OSError, termios.error):
            pass
        handler.is_open = handler.is_using = False

    def _goal_to_present(self) -> None:
        bus = self.robot.bus
        motors = list(bus.motors)

        def read_ticks() -> np.ndarray:
            present = bus.sync_read("Present_Position", normalize=False)
            return np.array([present[motor] for motor in motors])

        present = agreed_reading(read_ticks, PRESENT_POSITION_AGREEMENT_TICKS, "Present_Position")
        bus.sync_write("Goal_Position", dict(zip(motors, present.tolist())), normalize=False)

    def _write_calibration(self) -> None:
        """Write the file's offsets and limits as lerobot-calibrate does: torque off, EEPROM unlocked."""
        log.info(f"Writing {self.calibration_file} to the motors")
        bus = self.robot.bus
        bus.disable_torque()  # and Lock 0: the limits live in EEPROM
        bus.write_calibration(self.robot.calibration)

    def read_positions(self) -> np.ndarray:
        self._check_port()
        try:
            observation = self.robot.get_observation()
        except BUS_ERRORS as error:
            raise self._bus_error("reading the servos", error) from error
        return self.joint_model.from_lerobot_dict(observation)

    def write_targets(self, targets: np.ndarray) -> None:
        self._check_port()
        try:
            self.robot.send_action(self.joint_model.to_lerobot_dict(targets))
        except BUS_ERRORS as error:
            raise self._bus_error("writing Goal_Position", error) from error

    def _check_port(self) -> None:
        if self._port_lost:
            raise ArmDisconnected(f"the arm's port {self.port} is gone ({self._port_lost})")

    def disable(self) -> None:
        """Torque off, motor by motor: one servo that does not answer must not leave the others under torque."""
        bus = self.robot.bus
        if not bus.is_connected:
            return
        try:
            free_port(bus)
        except BUS_ERRORS as error:
            if self._port_gone(error):
                self._give_up_port(f"clearing the port failed: {error}")
                return  # no servo can be reached
        for motor in bus.motors:
            try:
                bus.disable_torque(motor, num_retry=5)
            except BUS_ERRORS as error:
                if self._port_gone(error):
                    self._give_up_port(f"turning torque off on '{motor}' failed: {error}")
                    return  # no servo can be reached
                log.error(f"Could not disable torque on '{motor}': {error}")

    def disconnect(self) -> None:
        """Torque off, then the port is closed. Safe to call twice and after errors."""
        if not self.robot.bus.is_connected:
            return
        self.disable()
        self.robot.bus.port_handler.closePort()
