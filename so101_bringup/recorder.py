"""recorder: one rosbag2 (MCAP) bag per episode of the ROS graph, written with the rosbags library.

Messages are recorded as they arrive on the wire (serialized CDR, no conversion), between the
eval manager's start and end markers on /so101/episode_marker, which the bag keeps too. The bag's
metadata (custom_data) holds the policy, checkpoint, seed and outcome.
"""

from __future__ import annotations

import sys
from pathlib import Path

from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from rclpy.serialization import serialize_message
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String
from trajectory_msgs.msg import JointTrajectory

from so101_driver.lockstep import TickInputs
from so101_driver.lockstep_ros import TICK_INPUT_QOS, LockstepParticipant
from so101_driver.node_runner import closing_logger, declare_parameters, run_node
from so101_driver.stop_signals import uninterrupted
from so101_driver.ros_messages import LATCHED_QOS

from . import bag_format
from .bag_tf import BagTransforms

PARAMETERS = {
    "output_dir": ("outputs/eval/bags", "where the episode bags go"),
    "policy": ("", "recorded in each bag's metadata"),
    "checkpoint": ("", "recorded in each bag's metadata"),
    "cameras": ("wrist,overhead", "cameras to record, by name"),
    "lockstep": (False, "sim: a lockstep participant, so that no tick goes unrecorded however slow the disk"),
}


def _fields(text: str) -> dict[str, str]:
    """'end success episode=3 seed=7' -> {'event': 'end', 'outcome': 'success', 'episode': '3', 'seed': '7'}."""
    words = text.split()
    fields = {"event": words[0] if words else ""}
    for word in words[1:]:
        key, separator, value = word.partition("=")
        if separator:
            fields[key] = value
        else:
            fields["outcome"] = word
    return fields


class EpisodeBag:
    """One open bag: a connection per topic, raw CDR in, custom metadata at close."""

    def __init__(self, path: Path, topics: dict[str, str]):
        from rosbags.rosbag2 import StoragePlugin, Writer

        self.path = path
        self.writer = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
        self.writer.open()
        store = bag_format.typestore()
        self.connections = {topic: self.writer.add_connection(topic, msgtype, typestore=store)
                            for topic, msgtype in topics.items()}

    def write(self, topic: str, timestamp_ns: int, data: bytes) -> None:
        self.writer.write(self.connections[topic], timestamp_ns, data)

    def close(self, metadata: dict[str, str]) -> None:
        for key, value in metadata.items():
            self.writer.set_custom_data(key, str(value))
        self.writer.close()


class Recorder(Node):
    def __init__(self, **node_options):
        super().__init__("so101_recorder", **node_options)
        p = declare_parameters(self, PARAMETERS)
        self.output_dir = Path(p["output_dir"])
        self.metadata = {"policy": p["policy"], "checkpoint": p["checkpoint"]}
        cameras = [name.strip() for name in p["cameras"].split(",") if name.strip()]
        self.topics = {bag_format.CAMERA_TOPICS[camera]: bag_format.IMAGE for camera in cameras}
        self.topics.update({bag_format.JOINT_STATES: bag_format.JOINT_STATE,
                            bag_format.JOINT_TARGETS: bag_format.JOINT_STATE,
                            bag_format.ACTION_CHUNK: bag_format.JOINT_TRAJECTORY,
                            bag_format.EPISODE_MARKER: bag_format.STRING,
                            bag_format.ARM: bag_format.STRING})
        self.transforms = BagTransforms()  # the arm in Foxglove: /robot_description, /tf_static, /tf
        written = {bag_format.ROBOT_DESCRIPTION: bag_format.STRING, bag_format.TF_STATIC: bag_format.TF_MESSAGE,
                   bag_format.TF: bag_format.TF_MESSAGE}
        self.bag_topics = {**self.topics, **written}
        self._arm_description: bytes | None = None  # the driver's latched description, serialized
        self.bag: EpisodeBag | None = None
        self.bags: list[Path] = []
        self._episode_fields: dict[str, str] = {}
        message_types = {bag_format.IMAGE: Image, bag_format.JOINT_STATE: JointState,
                         bag_format.JOINT_TRAJECTORY: JointTrajectory}
        self._participant: LockstepParticipant | None = None
        if p["lockstep"]:
            # A tick is recorded when its joint state and frames are: what the driver publishes each tick.
            self._tick_inputs = TickInputs.of([bag_format.JOINT_STATES, *(bag_format.CAMERA_TOPICS[c] for c in cameras)])
            self._participant = LockstepParticipant(self)
        for topic, msgtype in self.topics.items():
            if topic in (bag_format.EPISODE_MARKER, bag_format.ARM):
                continue
            qos = 10
            if msgtype == bag_format.IMAGE:
                qos = TICK_INPUT_QOS if self._participant else qos_profile_sensor_data
            self.create_subscription(message_types[msgtype], topic, lambda data, t=topic: self._record(t, data),
                                     qos, raw=True)
        self.create_subscription(String, bag_format.EPISODE_MARKER, self._on_marker, 10)
        self.create_subscription(String, bag_format.ARM, self._on_arm, LATCHED_QOS, raw=True)
        self.marker_pub = self.create_publisher(String, bag_format.EPISODE_MARKER, 10)
        self._marked = 0
        self.get_logger().info(f"recording {sorted(self.topics)} into {self.output_dir}, a bag per episode")

    def mark(self, event: str, outcome: str = "") -> str:
        """Publish an episode marker (keyboard recording); the recorder hears it like any other."""
        if event == bag_format.EPISODE_START:
            text = f"{event} episode={self._marked}"
            self._marked += 1
        else:
            text = f"{event} {outcome}".strip()
        self.marker_pub.publish(String(data=text))
        return text

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _record(self, topic: str, data: bytes) -> None:
        tick_input = self._participant is not None and topic in self._tick_inputs.inputs
        if tick_input and self._tick_inputs.is_repeat(stamp := bag_format.raw_header_stamp_ns(data)):
            self._participant.repeat()  # the driver published a recorded tick again: not twice in the bag
            return
        if self.bag is not None:
            now = self._now_ns()
            self.bag.write(topic, now, data)
            if topic == bag_format.JOINT_STATES:
                self.bag.write(bag_format.TF, now, self.transforms.from_joint_state(data))
        if tick_input and (tick := self._tick_inputs.update(topic, stamp)) is not None:
            self._participant.consumed(tick)

    def _on_arm(self, data: bytes) -> None:
        self._arm_description = data
        if self.bag is not None:
            self.bag.write(bag_format.ARM, self._now_ns(), data)

    def _on_marker(self, msg: String) -> None:
        fields = _fields(msg.data)
        if fields["event"] == bag_format.EPISODE_START:
            self._close({})
            self._episode_fields = fields
            with uninterrupted():  # a Ctrl-C here must not leave a bag half opened
                self.bag = EpisodeBag(self._new_bag_path(fields.get("episode")), self.bag_topics)
            now = self._now_ns()
            if self._arm_description is not None:
                self.bag.write(bag_format.ARM, now, self._arm_description)
            self.bag.write(bag_format.ROBOT_DESCRIPTION, now, self.transforms.description())
            self.bag.write(bag_format.TF_STATIC, now, self.transforms.static(now))
            self.bag.write(bag_format.EPISODE_MARKER, self._now_ns(), serialize_message(msg))
        elif fields["event"] == bag_format.EPISODE_END and self.bag is not None:
            self.bag.write(bag_format.EPISODE_MARKER, self._now_ns(), serialize_message(msg))
            self._close({"outcome": fields.get("outcome", "")})

    def _new_bag_path(self, episode: str | None) -> Path:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        stem = f"episode_{int(episode):03d}" if episode and episode.isdigit() else f"episode_{len(self.bags):03d}"
        path, suffix = self.output_dir / stem, 1
        while path.exists():  # rosbags never overwrites a bag
            path, suffix = self.output_dir / f"{stem}_{suffix}", suffix + 1
        return path

    def _close(self, extra: dict[str, str]) -> None:
        """Finalise the open bag, once: a Ctrl-C that lands meanwhile stops the node right after."""
        if self.bag is None:
            return
        metadata = {**self.metadata, "seed": self._episode_fields.get("seed", ""), **extra}
        with uninterrupted():
            bag, self.bag = self.bag, None
            bag.close(metadata)
            self.bags.append(bag.path)
        closing_logger(self).info(f"bag {bag.path} ({metadata.get('outcome') or 'unfinished'})")

    def close(self) -> None:
        self._close({"outcome": "interrupted"})


USER_ERRORS = (ValueError, KeyError)


def main(args=None) -> int:
    return run_node(Recorder, "so101_recorder", USER_ERRORS, args)


if __name__ == "__main__":
    sys.exit(main())
