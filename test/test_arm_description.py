"""The arm's description, as the driver publishes it: what a policy, a recorder and a replay take from it."""

import json

import pytest

from so101_driver.arm_description import check_same_arm, describe, joint_model_from
from so101_driver.joint_model import ArmUnits, JointModel, MotorCalibration, UnitError, load_calibration
from test_joint_model import REAL_CALIBRATION


def test_a_description_round_trips_to_the_same_joint_model(tmp_path):
    real = JointModel(REAL_CALIBRATION, ArmUnits.RANGE_M100_100)
    model, source = joint_model_from(describe(real, "/calibration/lab_arm.json"))
    assert model == real and source == "/calibration/lab_arm.json"
    # The same field names lerobot-calibrate writes, per motor.
    written = tmp_path / "from_description.json"
    written.write_text(json.dumps(json.loads(describe(real, "x"))["calibration"]))
    assert load_calibration(written) == REAL_CALIBRATION


def test_differences_are_named_joint_by_joint():
    real = JointModel(REAL_CALIBRATION)
    check_same_arm(JointModel(REAL_CALIBRATION), "mine.json", real, "driver")  # the same arm: nothing to say
    moved = dict(REAL_CALIBRATION, gripper=MotorCalibration(**{**vars(REAL_CALIBRATION["gripper"]), "range_max": 3000}))
    with pytest.raises(UnitError) as error:
        check_same_arm(JointModel(moved, ArmUnits.RANGE_M100_100), "mine.json", real, "/arm.json")
    message = str(error.value)
    assert "mine.json" in message and "/arm.json" in message
    assert "arm units range_m100_100 here, degrees on the arm" in message
    assert f"gripper: range_max 3000 vs {REAL_CALIBRATION['gripper'].range_max}" in message
    assert "shoulder_pan" not in message


def test_something_else_on_the_topic_is_refused():
    with pytest.raises(UnitError, match="does not hold an SO-101 description"):
        joint_model_from('{"arm_units": "degrees"}')
