"""bag_player: a bag's cameras and joint states back into the graph at their recorded timing, for policy_node.

The player owns time, as `ros2 bag play --clock` does: it publishes /clock from the bag's
timestamps and the messages keep their recorded stamps, so the policy (use_sim_time) sees the
recording's own time and its age and sync checks hold. Each action chunk the policy publishes meanwhile is
compared, point by point, with the actions the driver recorded at those times (open loop: nothing
moves the arm). At the bag's end the per-joint errors go to replay.json and the node is done.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import numpy as np
from rclpy.node import Node
from rosgraph_msgs.msg import Clock as ClockMsg
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import String
from trajectory_msgs.msg import JointTrajectory

from so101_driver.arm_description import ARM_TOPIC, describe
from so101_driver.joint_model import in_joint_order, joint_model_for
from so101_driver.node_runner import declare_parameters, run_node
from so101_driver.ros_messages import LATCHED_QOS, duration_to_sec, sec_to_time, time_to_sec
from training.bag_dataset import FROM_BAG, BagDatasetError, bag_joint_model

from . import bag_format
from .replay import error_summary

PARAMETERS = {
    "bag": ("", "bag directory to play (recorded by so101 eval --record or so101 record)"),
    "rate": (1.0, "playback speed: 1.0 is the recorded timing"),
    "output_dir": ("outputs/replay", "where replay.json goes"),
    "calibration": ("bag", "the arm's calibration: bag (the description the bag recorded), or sim, an id, a JSON "
                           "path (a bag recorded without one)"),
    "arm_units": ("degrees", "with a calibration given here: LeRobot units of the arm joints"),
    "settle_s": (1.0, "s to wait after the last message for the last chunk"),
    "subscriber_timeout": (120.0, "s to wait before playing for a subscriber on every topic played (the policy "
                                  "node's start-up: loading, exporting for its backend)", (0.0, 3600.0)),
}
MESSAGE_CLASSES = {bag_format.IMAGE: Image, bag_format.COMPRESSED_IMAGE: CompressedImage,
                   bag_format.JOINT_STATE: JointState}


class BagPlayer(Node):
    def __init__(self, **node_options):
        super().__init__("so101_bag_player", **node_options)
        p = declare_parameters(self, PARAMETERS)
        if not p["bag"]:
            raise ValueError("Set bag:=<bag directory>.")
        self.bag = Path(p["bag"])
        if not (self.bag / "metadata.yaml").is_file():
            raise FileNotFoundError(f"{self.bag} is not a rosbag2 directory (no metadata.yaml)")
        self.rate = float(p["rate"])
        self.output_dir = Path(p["output_dir"])
        self.settle_s = float(p["settle_s"])
        self.subscriber_timeout = float(p["subscriber_timeout"])
        given = None if p["calibration"] == FROM_BAG else joint_model_for(p["calibration"], p["arm_units"])
        self.joint_model = bag_joint_model(self.bag, given)
        self.finished = False
        self.recorded_times: list[float] = []  # bag time, s
        self.recorded_targets: list[np.ndarray] = []  # radians
        self.chunks: list[tuple[float, np.ndarray]] = []  # (bag time of point 0, radians (n, 6))
        self._started = False
        self._lock = threading.Lock()
        self.clock_pub = self.create_publisher(ClockMsg, "/clock", 10)
        # The player stands in for the driver: it says what the arm was, and the policy takes it.
        self.arm_pub = self.create_publisher(String, ARM_TOPIC, LATCHED_QOS)
        self.arm_pub.publish(String(data=describe(self.joint_model, f"the arm that recorded {self.bag.name}")))
        self.publishers_by_topic = {}
        for topic in bag_format.CAMERA_TOPICS.values():
            self.publishers_by_topic[topic] = self.create_publisher(Image, topic, 10)
        self.publishers_by_topic[bag_format.JOINT_STATES] = self.create_publisher(JointState, "/joint_states", 10)
        self.create_subscription(JointTrajectory, bag_format.ACTION_CHUNK, self._on_chunk, 10)
        self._thread = threading.Thread(target=self._play, name="so101_bag_player", daemon=True)
        self._thread.start()
        self.get_logger().info(f"playing {self.bag} at {self.rate:g}x into the graph")

    def _wait_for_subscribers(self) -> bool:
        """Every topic played has a subscriber (the policy node is up), or the timeout passed: a bag played
        into a graph still starting would be gone before anything saw it."""
        deadline = time.monotonic() + self.subscriber_timeout
        while any(publisher.get_subscription_count() == 0 for publisher in self.publishers_by_topic.values()):
            if time.monotonic() > deadline:
                missing = [topic for topic, publisher in self.publishers_by_topic.items()
                           if publisher.get_subscription_count() == 0]
                self.get_logger().error(f"nothing subscribed to {', '.join(missing)} within "
                                        f"{self.subscriber_timeout:g} s: the bag is not played")
                return False
            time.sleep(0.05)
        return True

    def _play(self) -> None:
        from rosbags.highlevel import AnyReader

        if not self._wait_for_subscribers():
            self._report()
            return
        with AnyReader([self.bag], default_typestore=bag_format.typestore()) as reader:
            wanted = [c for c in reader.connections
                      if c.topic in self.publishers_by_topic or c.topic == bag_format.JOINT_TARGETS]
            wall_start = start_ns = None
            for connection, timestamp, raw in reader.messages(connections=wanted):
                if start_ns is None:
                    start_ns, wall_start = timestamp, time.monotonic()
                    self._started = True
                delay = wall_start + (timestamp - start_ns) * 1e-9 / self.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                msg = deserialize_message(bytes(raw), MESSAGE_CLASSES[connection.msgtype])
                if connection.topic == bag_format.JOINT_TARGETS:
                    with self._lock:
                        self.recorded_times.append(time_to_sec(msg.header.stamp))
                        self.recorded_targets.append(in_joint_order(list(msg.name), msg.position))
                    continue
                self.clock_pub.publish(ClockMsg(clock=sec_to_time(timestamp * 1e-9)))
                self.publishers_by_topic[connection.topic].publish(msg)
        time.sleep(self.settle_s)
        self._report()

    def _on_chunk(self, msg: JointTrajectory) -> None:
        if not self._started or not msg.points:
            return
        points = np.stack([in_joint_order(list(msg.joint_names), point.positions) for point in msg.points])
        period = duration_to_sec(msg.points[1].time_from_start) if len(msg.points) > 1 else 1 / 30
        with self._lock:
            self.chunks.append((time_to_sec(msg.header.stamp), points, period))

    def errors(self) -> np.ndarray:
        """|chunk point - recorded action at that time| for every point inside the recording, LeRobot units."""
        with self._lock:
            times = np.array(self.recorded_times)
            targets = np.array(self.recorded_targets)
            chunks = list(self.chunks)
        rows = []
        if len(times) == 0:
            return np.zeros((0, 6))
        for start, points, period in chunks:
            for k, point in enumerate(points):
                t = start + k * period
                if t < times[0] or t > times[-1]:
                    continue
                nearest = targets[int(np.argmin(np.abs(times - t)))]
                rows.append(np.abs(self.joint_model.to_lerobot(point) - self.joint_model.to_lerobot(nearest)))
        return np.array(rows) if rows else np.zeros((0, 6))

    def _report(self) -> None:
        errors = self.errors()
        report = {"bag": str(self.bag), "mode": f"recorded timing x{self.rate:g}", "chunks": len(self.chunks),
                  "points_compared": len(errors), **error_summary(errors)}
        self.output_dir.mkdir(parents=True, exist_ok=True)
        (self.output_dir / "replay.json").write_text(json.dumps([report], indent=2) + "\n")
        self.report = report
        mean = np.mean(errors) if len(errors) else float("nan")
        self.get_logger().info(f"replay of {self.bag.name}: {len(self.chunks)} chunks, mean |error| "
                               f"{mean:.3f}; {self.output_dir / 'replay.json'}")
        self.finished = True


USER_ERRORS = (ValueError, FileNotFoundError, BagDatasetError)


def main(args=None) -> int:
    return run_node(BagPlayer, "so101_bag_player", USER_ERRORS, args,
                    until=lambda node: node.finished)


if __name__ == "__main__":
    sys.exit(main())
