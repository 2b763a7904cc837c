"""The joint model against itself (round trips) and against LeRobot's own normalization code."""

import json
import math

import numpy as np
import pytest
from lerobot.motors import Motor, MotorCalibration, MotorNormMode
from lerobot.motors.feetech import FeetechMotorsBus

from so101_driver.joint_model import (
    GRIPPER_CLOSED_RAD,
    JOINT_NAMES,
    LEROBOT_FEATURE_NAMES,
    NOMINAL_LIMITS_RAD,
    ArmUnits,
    JointModel,
    UnitError,
    calibration_path_for_id,
    load_calibration,
    save_calibration,
    sim_calibration,
)

# A real SO-101 follower calibration (shape of what lerobot-calibrate writes), one flipped gripper
# variant and one flipped arm joint to exercise drive_mode.
REAL_CALIBRATION = {
    "shoulder_pan": MotorCalibration(id=1, drive_mode=0, homing_offset=-1470, range_min=758, range_max=3292),
    "shoulder_lift": MotorCalibration(id=2, drive_mode=0, homing_offset=153, range_min=816, range_max=3202),
    "elbow_flex": MotorCalibration(id=3, drive_mode=0, homing_offset=-1227, range_min=899, range_max=3097),
    "wrist_flex": MotorCalibration(id=4, drive_mode=0, homing_offset=1788, range_min=907, range_max=3213),
    "wrist_roll": MotorCalibration(id=5, drive_mode=0, homing_offset=-1196, range_min=0, range_max=4095),
    "gripper": MotorCalibration(id=6, drive_mode=0, homing_offset=1311, range_min=2024, range_max=3457),
}
FLIPPED_CALIBRATION = {
    **REAL_CALIBRATION,
    "elbow_flex": MotorCalibration(id=3, drive_mode=1, homing_offset=-1227, range_min=899, range_max=3097),
    "gripper": MotorCalibration(id=6, drive_mode=1, homing_offset=1311, range_min=2024, range_max=3457),
}
CALIBRATIONS = {"real": REAL_CALIBRATION, "flipped": FLIPPED_CALIBRATION, "sim": sim_calibration()}


def lerobot_bus(calibration, arm_units):
    """The bus the SO-101 follower builds, with the same norm modes (no port is opened)."""
    arm_mode = MotorNormMode.DEGREES if arm_units is ArmUnits.DEGREES else MotorNormMode.RANGE_M100_100
    motors = {
        name: Motor(calibration[name].id, "sts3215", MotorNormMode.RANGE_0_100 if name == "gripper" else arm_mode)
        for name in JOINT_NAMES
    }
    return FeetechMotorsBus(port="/dev/null", motors=motors, calibration=dict(calibration))


def calibrated_ticks(calibration, samples):
    """Tick grids spanning each joint's calibrated range, shape (samples, 6)."""
    return np.stack(
        [np.linspace(calibration[n].range_min, calibration[n].range_max, samples) for n in JOINT_NAMES], axis=1
    )


@pytest.mark.parametrize("arm_units", list(ArmUnits))
@pytest.mark.parametrize("calibration_name", CALIBRATIONS)
def test_normalization_matches_lerobot(calibration_name, arm_units):
    calibration = CALIBRATIONS[calibration_name]
    model = JointModel(calibration, arm_units)
    bus = lerobot_bus(calibration, arm_units)
    for ticks in np.round(calibrated_ticks(calibration, 41)).astype(int):
        theirs = bus._normalize({calibration[n].id: int(t) for n, t in zip(JOINT_NAMES, ticks)})
        ours = model.to_lerobot(model.ticks_to_radians(ticks))
        np.testing.assert_allclose(ours, [theirs[calibration[n].id] for n in JOINT_NAMES], atol=1e-9)


@pytest.mark.parametrize("arm_units", list(ArmUnits))
@pytest.mark.parametrize("calibration_name", CALIBRATIONS)
def test_unnormalization_matches_lerobot(calibration_name, arm_units):
    calibration = CALIBRATIONS[calibration_name]
    model = JointModel(calibration, arm_units)
    bus = lerobot_bus(calibration, arm_units)
    low, high = model.limits
    for radians in np.linspace(low, high, 37):
        values = model.to_lerobot(radians)
        theirs = bus._unnormalize({calibration[n].id: float(v) for n, v in zip(JOINT_NAMES, values)})
        ours = model.radians_to_ticks(radians)
        # LeRobot truncates to whole ticks; we keep the exact angle.
        np.testing.assert_array_less(np.abs(ours - [theirs[calibration[n].id] for n in JOINT_NAMES]), 1.0 + 1e-6)
    # A chunk's rows at once (how the policy converts them), against lerobot's ticks row by row.
    rows = np.stack([model.to_lerobot(radians) for radians in np.linspace(low, high, 37)])
    theirs = np.array([[bus._unnormalize({calibration[n].id: float(v) for n, v in zip(JOINT_NAMES, row)})[
        calibration[n].id] for n in JOINT_NAMES] for row in rows])
    ours = np.stack([model.radians_to_ticks(radians) for radians in model.to_radians(rows)])
    np.testing.assert_array_less(np.abs(ours - theirs), 1.0 + 1e-6)


@pytest.mark.parametrize("arm_units", list(ArmUnits))
@pytest.mark.parametrize("calibration_name", CALIBRATIONS)
def test_round_trips_over_full_ranges(calibration_name, arm_units):
    model = JointModel(CALIBRATIONS[calibration_name], arm_units)
    low, high = model.limits
    radians = np.linspace(low, high, 201)
    for row in radians:
        np.testing.assert_allclose(model.to_radians(model.to_lerobot(row)), row, atol=1e-12)
        np.testing.assert_allclose(model.ticks_to_radians(model.radians_to_ticks(row)), row, atol=1e-12)
        back = model.from_lerobot_dict(model.to_lerobot_dict(row))
        np.testing.assert_allclose(back, row, atol=1e-12)


def test_degrees_are_plain_degrees_and_gripper_is_a_percentage_of_its_span():
    model = JointModel(REAL_CALIBRATION)
    radians = np.array([0.1, -0.2, 0.3, -0.4, 0.5, GRIPPER_CLOSED_RAD])
    values = model.to_lerobot(radians)
    np.testing.assert_allclose(values[:5], np.degrees(radians[:5]))
    assert values[5] == pytest.approx(0.0)
    span_rad = (3457 - 2024) * 2 * math.pi / 4095
    assert model.to_lerobot([0, 0, 0, 0, 0, GRIPPER_CLOSED_RAD + span_rad / 2])[5] == pytest.approx(50.0)
    # The gripper is not rad/pi*100, the mapping public SO-101 ROS projects often use.
    assert model.to_lerobot([0, 0, 0, 0, 0, 1.0])[5] != pytest.approx(100.0 / math.pi)


def test_gripper_opens_the_same_way_whatever_its_drive_mode():
    straight, flipped = JointModel(REAL_CALIBRATION), JointModel(FLIPPED_CALIBRATION)
    for percent in (0.0, 30.0, 100.0):
        values = [0, 0, 0, 0, 0, percent]
        assert straight.to_radians(values)[5] == pytest.approx(flipped.to_radians(values)[5])
    # ...while the encoder turns the other way.
    open_ticks = flipped.radians_to_ticks(flipped.to_radians([0, 0, 0, 0, 0, 100.0]))[5]
    assert open_ticks == pytest.approx(2024)


def test_limits_are_calibrated_range_within_nominal():
    model = JointModel(REAL_CALIBRATION)
    low, high = model.limits
    for i, name in enumerate(JOINT_NAMES[:5]):
        cal = REAL_CALIBRATION[name]
        half = (cal.range_max - cal.range_min) / 2 * 2 * math.pi / 4095
        assert low[i] == pytest.approx(max(-half, NOMINAL_LIMITS_RAD[name][0]))
        assert high[i] == pytest.approx(min(half, NOMINAL_LIMITS_RAD[name][1]))
    assert low[5] == pytest.approx(GRIPPER_CLOSED_RAD)
    assert model.to_lerobot(high)[5] == pytest.approx(100.0)


def test_sim_calibration_covers_the_model_ranges_exactly():
    model = JointModel.for_sim()
    low, high = model.limits
    nominal = np.array([NOMINAL_LIMITS_RAD[n] for n in JOINT_NAMES])
    np.testing.assert_allclose(low[:5], nominal[:5, 0])
    np.testing.assert_allclose(high[:5], nominal[:5, 1])
    np.testing.assert_allclose([low[5], high[5]], nominal[5], atol=2 * math.pi / 4095)
    np.testing.assert_allclose(model.to_lerobot(np.zeros(6))[:5], 0.0)


def test_calibration_file_round_trip_and_lerobot_layout(tmp_path):
    path = tmp_path / "my_arm.json"
    save_calibration(REAL_CALIBRATION, path)
    payload = json.loads(path.read_text())
    assert set(payload["gripper"]) == {"id", "drive_mode", "homing_offset", "range_min", "range_max"}
    assert load_calibration(path) == REAL_CALIBRATION
    assert JointModel.from_file(path).calibration == REAL_CALIBRATION
    assert calibration_path_for_id("my_arm").name == "my_arm.json"


def test_bad_inputs_are_explained(tmp_path):
    with pytest.raises(FileNotFoundError, match="lerobot-calibrate"):
        load_calibration(tmp_path / "missing.json")
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({"shoulder_pan": vars(REAL_CALIBRATION["shoulder_pan"])}))
    with pytest.raises(UnitError, match="lacks motors"):
        load_calibration(partial)
    model = JointModel(REAL_CALIBRATION)
    with pytest.raises(UnitError, match="Expected 6 radians"):
        model.to_lerobot([0.0] * 5)
    with pytest.raises(UnitError, match="lack"):
        model.from_lerobot_dict({LEROBOT_FEATURE_NAMES[0]: 0.0})
    broken = {**REAL_CALIBRATION, "elbow_flex": MotorCalibration(3, 0, 0, 2000, 2000)}
    with pytest.raises(UnitError, match="recalibrate"):
        JointModel(broken)
