"""Conversions between ROS messages and the plain arrays the ROS-free cores use."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from builtin_interfaces.msg import Duration, Time
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from geometry_msgs.msg import Pose, PoseArray
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, JointState
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from .environment_state import environment_state, split_environment_state

WORLD_FRAME = "world"


# A state published once and kept for whoever subscribes later (ROS 1's "latched"): the arm's description.
LATCHED_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


def time_to_sec(stamp: Time) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def sec_to_time(seconds: float) -> Time:
    nanoseconds = int(round(seconds * 1e9))
    return Time(sec=nanoseconds // 1_000_000_000, nanosec=nanoseconds % 1_000_000_000)


def duration_to_sec(duration: Duration) -> float:
    return duration.sec + duration.nanosec * 1e-9


def sec_to_duration(seconds: float) -> Duration:
    nanoseconds = int(round(seconds * 1e9))
    return Duration(sec=nanoseconds // 1_000_000_000, nanosec=nanoseconds % 1_000_000_000)


def joint_state_msg(stamp: Time, names: Sequence[str], positions: np.ndarray,
                    velocities: np.ndarray | None = None) -> JointState:
    msg = JointState()
    msg.header.stamp = stamp
    msg.name = list(names)
    msg.position = [float(v) for v in positions]
    if velocities is not None:
        msg.velocity = [float(v) for v in velocities]
    return msg


def color_image_msg(stamp: Time, frame: np.ndarray, frame_id: str, encoding: str = "rgb8") -> Image:
    """An (H, W, 3) uint8 array as a sensor_msgs/Image; `encoding` says its channel order."""
    if encoding not in ("rgb8", "bgr8"):
        raise ValueError(f"encoding must be rgb8 or bgr8, got {encoding!r}.")
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"Expected an (H, W, 3) uint8 frame, got {frame.dtype} {frame.shape}.")
    msg = Image()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(frame.shape[0]), int(frame.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = msg.width * 3
    msg.data = np.ascontiguousarray(frame).tobytes()
    return msg


def diagnostic_status(name: str, hardware_id: str, level: bytes, message: str,
                      values: Mapping[str, object]) -> DiagnosticStatus:
    return DiagnosticStatus(
        name=name, hardware_id=hardware_id, level=level, message=message,
        values=[KeyValue(key=key, value=str(value)) for key, value in values.items()],
    )


def joint_trajectory_msg(stamp: float, names: Sequence[str], positions: np.ndarray, period: float) -> JointTrajectory:
    """An action chunk: point k, positions[k], due at stamp + k * period."""
    msg = JointTrajectory()
    msg.header.stamp = sec_to_time(stamp)
    msg.joint_names = list(names)
    msg.points = [JointTrajectoryPoint(positions=[float(v) for v in row], time_from_start=sec_to_duration(k * period))
                  for k, row in enumerate(positions)]
    return msg


def object_poses_msg(stamp: Time, state: np.ndarray) -> PoseArray:
    """The sim's environment state as a PoseArray in the world frame: the cube's pose, then the target's."""
    cube, quaternion, target = split_environment_state(state)
    msg = PoseArray()
    msg.header.stamp = stamp
    msg.header.frame_id = WORLD_FRAME
    cube_pose, target_pose = Pose(), Pose()
    cube_pose.position.x, cube_pose.position.y, cube_pose.position.z = (float(v) for v in cube)
    o = cube_pose.orientation
    o.w, o.x, o.y, o.z = (float(v) for v in quaternion)
    target_pose.position.x, target_pose.position.y, target_pose.position.z = (float(v) for v in target)
    msg.poses = [cube_pose, target_pose]
    return msg


def environment_state_from_msg(msg: PoseArray) -> np.ndarray:
    """The environment state vector of a PoseArray made by object_poses_msg."""
    if len(msg.poses) != 2:
        raise ValueError(f"the object poses hold the cube's and the target's, 2 poses; got {len(msg.poses)}")
    cube, target = msg.poses
    o = cube.orientation
    return environment_state([cube.position.x, cube.position.y, cube.position.z], [o.w, o.x, o.y, o.z],
                             [target.position.x, target.position.y, target.position.z])
