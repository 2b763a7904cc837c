"""`teleop_node`: the SO-101 leader arm streamed as /so101/joint_command at the control rate.

As lerobot's teleoperation does, the leader's joints are read in the robot's units with the
leader's calibration and given to the follower as they are; here the follower's joint model (from
the driver's /so101/arm description) turns them into the radians the driver takes, and the
driver's one safety path (step clamp, limits, following error) does the rest. A read that fails
sends nothing: the driver's watchdog holds the arm where it was sent.
"""

from __future__ import annotations

import sys

from rclpy.node import Node
from rclpy.wait_for_message import wait_for_message
from sensor_msgs.msg import JointState
from std_msgs.msg import String

from .arm_description import ARM_TOPIC, joint_model_from
from .backends import BackendError
from .backends.base import calibrated_joint_model
from .joint_model import CALIBRATE_LEADER, JOINT_NAMES, ArmUnits
from .leader import LeaderArm, leader_calibration_path
from .node_runner import declare_parameters, run_node
from .ros_messages import LATCHED_QOS, joint_state_msg

COMMAND_TOPIC = "so101/joint_command"

PARAMETERS = {
    "port": ("/dev/ttyACM1", "serial port of the leader arm's bus adapter"),
    "calibration_id": ("", "id given to lerobot-calibrate --teleop.type=so101_leader; the file is found in "
                           "lerobot's cache"),
    "calibration_file": ("", "path to the leader's LeRobot calibration JSON (overrides calibration_id)"),
    "rate": (30.0, "commands per second", (1.0, 200.0)),
    "arm_timeout": (30.0, "s to wait at start-up for the driver's description of the follower", (0.0, 3600.0)),
}


class TeleopNode(Node):
    def __init__(self, **node_options):
        super().__init__("so101_teleop", **node_options)
        p = declare_parameters(self, PARAMETERS)
        if p["calibration_file"]:
            calibration_file = p["calibration_file"]
        elif p["calibration_id"]:
            calibration_file = leader_calibration_path(p["calibration_id"])
        else:
            raise BackendError("Set calibration_id:=<the leader's id given to lerobot-calibrate> "
                               "(or calibration_file:=<path to its JSON>).")
        # The leader's own calibration file is checked at once, not only once a driver has spoken.
        calibrated_joint_model(calibration_file, ArmUnits.DEGREES, CALIBRATE_LEADER)
        self.follower = self._follower_joint_model(p["arm_timeout"])
        # lerobot teleoperates with leader and follower in the same units.
        self.leader = LeaderArm(p["port"], calibration_file, self.follower.arm_units)
        self.leader.connect()
        self.command_pub = self.create_publisher(JointState, COMMAND_TOPIC, 10)
        self.read_errors = 0
        self._last_error = ""
        self.create_timer(1.0 / p["rate"], self._on_tick)
        self.get_logger().info(f"leader arm on {self.leader.port} ({self.leader.calibration_file}) -> "
                               f"{self.command_pub.topic_name} at {p['rate']:g} Hz, "
                               f"in {self.follower.arm_units.value}")

    def _follower_joint_model(self, timeout: float):
        received, msg = wait_for_message(String, self, ARM_TOPIC, qos_profile=LATCHED_QOS, time_to_wait=timeout)
        if not received:
            raise BackendError(f"No driver described the follower arm on {ARM_TOPIC} within {timeout:g} s: start "
                               "the driver first (its calibration turns the leader's positions into radians).")
        joint_model, source = joint_model_from(msg.data)
        self.get_logger().info(f"follower: {source}")
        return joint_model

    def _on_tick(self) -> None:
        try:
            positions = self.leader.read()
        except BackendError as error:
            self.read_errors += 1
            if str(error) != self._last_error:
                self.get_logger().warning(f"{error}; nothing sent (the driver holds)")
            self._last_error = str(error)
            return
        radians = self.follower.to_radians(positions)
        self.command_pub.publish(joint_state_msg(self.get_clock().now().to_msg(), JOINT_NAMES, radians))

    def close(self) -> None:
        self.leader.disconnect()


USER_ERRORS = (BackendError, ValueError)


def main(args=None) -> int:
    return run_node(TeleopNode, "so101_teleop", USER_ERRORS, args)


if __name__ == "__main__":
    sys.exit(main())
