"""What an so101 bag holds: topics, message types and episode markers (rosbag2, MCAP, via rosbags).

The recorder writes these topics and `so101 dataset from-bags` reads them. Episode markers are
std_msgs/String on /so101/episode_marker: "start ..." opens an episode, "end ..." closes it (the
rest of the text is free, e.g. "end success"). A bag without markers is one episode. Each bag
opens with the driver's description of the arm (/so101/arm), so that a dataset or a replay made of
it converts with the calibration the arm had.
"""

from __future__ import annotations

import struct
from functools import cache
from pathlib import Path

CAMERA_TOPICS = {"wrist": "/so101/wrist/image_raw", "overhead": "/so101/overhead/image_raw"}
JOINT_STATES = "/joint_states"
JOINT_TARGETS = "/so101/joint_targets"
ACTION_CHUNK = "/so101/action_chunk"
EPISODE_MARKER = "/so101/episode_marker"
ARM = "/so101/arm"  # the driver's description of the arm (calibration, units): so101_driver.arm_description
# What robot_state_publisher would publish, written by the recorder (bag_tf) so bags show the arm.
ROBOT_DESCRIPTION, TF, TF_STATIC = "/robot_description", "/tf", "/tf_static"

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
JOINT_STATE = "sensor_msgs/msg/JointState"
JOINT_TRAJECTORY = "trajectory_msgs/msg/JointTrajectory"
STRING = "std_msgs/msg/String"
TF_MESSAGE = "tf2_msgs/msg/TFMessage"

EPISODE_START = "start"
EPISODE_END = "end"


def check_bag_directories(bags) -> None:
    """A ValueError naming the first of `bags` that is no rosbag2 directory (they hold a metadata.yaml)."""
    for bag in bags:
        if not (Path(bag) / "metadata.yaml").is_file():
            raise ValueError(f"{bag} is not a rosbag2 directory (no metadata.yaml)")


@cache
def typestore():
    """ROS 2 Jazzy's message definitions, for bags and for writing messages without a ROS install."""
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_JAZZY)


def stamp_ns(header) -> int:
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def raw_header_stamp_ns(data: bytes) -> int:
    """The header stamp of a serialized message whose first field is a std_msgs/Header (Image, JointState)."""
    order = "<" if data[1] == 1 else ">"  # CDR encapsulation: 0x0001 little endian, 0x0000 big endian
    sec, nanosec = struct.unpack_from(order + "iI", data, 4)
    return sec * 1_000_000_000 + nanosec
