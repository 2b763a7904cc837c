"""What the arm is, as the driver publishes it: its calibration and the LeRobot units of its joints.

One data contract from dataset to servo: the driver that owns the arm says what it is on a latched
topic; the policy node takes its units from there instead of a default of its own, the recorder
keeps the description in every bag (so datasets and replays of the bag use the same numbers), and
a node given a calibration of its own refuses to run when it differs from the driver's. ROS-free
(JSON in a std_msgs/String), so it is tested without ROS.
"""

from __future__ import annotations

import json

from lerobot.motors import MotorCalibration

from .joint_model import JOINT_NAMES, ArmUnits, JointModel, UnitError

ARM_TOPIC = "/so101/arm"
FROM_DRIVER = "driver"  # a node's calibration setting that means: the one the driver publishes


def describe(joint_model: JointModel, source: str) -> str:
    """The description as published: units, calibration per motor, and where it came from."""
    return json.dumps({
        "arm_units": joint_model.arm_units.value,
        "calibration": {name: vars(joint_model.calibration[name]) for name in JOINT_NAMES},
        "source": source,
    }, sort_keys=True)


def joint_model_from(description: str) -> tuple[JointModel, str]:
    """The joint model a description holds, and its source."""
    try:
        fields = json.loads(description)
        calibration = {name: MotorCalibration(**fields["calibration"][name]) for name in JOINT_NAMES}
        return JointModel(calibration, ArmUnits(fields["arm_units"])), fields.get("source", "")
    except (ValueError, KeyError, TypeError) as error:
        raise UnitError(f"{ARM_TOPIC} does not hold an SO-101 description ({error!r}): {description[:200]}") from None


def check_same_arm(mine: JointModel, my_source: str, driver: JointModel, driver_source: str) -> None:
    """Raise UnitError naming every difference between a node's own calibration and the driver's."""
    differences = []
    if mine.arm_units != driver.arm_units:
        differences.append(f"arm units {mine.arm_units.value} here, {driver.arm_units.value} on the arm")
    for name in JOINT_NAMES:
        here, there = vars(mine.calibration[name]), vars(driver.calibration[name])
        changed = [f"{key} {here[key]} vs {there[key]}" for key in here if here[key] != there.get(key)]
        if changed:
            differences.append(f"{name}: {', '.join(changed)}")
    if differences:
        raise UnitError(
            f"The calibration given here ({my_source}) is not the arm's ({driver_source}): "
            f"{'; '.join(differences)}. Leave calibration at '{FROM_DRIVER}' to take the driver's, "
            "or give the file the arm was calibrated with."
        )
