"""`so101 dataset from-bags`: rosbag2 (MCAP) bags recorded from the ROS graph become a LeRobotDataset.

A frame is taken at each control tick (/so101/joint_targets, what the driver sent to the servos
after its safety path: the dataset's action), at most `fps` per second, with the /joint_states and
the camera frames of that tick, paired by `header.stamp`: the newest of each whose stamp is not
after the tick's. Arrival order cannot pair them: the driver publishes a tick's joint states, then
its targets, then its images, all with one stamp. Joint values go from radians to LeRobot units
through the joint model; images through the same conversion the policy node uses.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from lerobot.datasets import LeRobotDataset
from tqdm import tqdm

from so101_bringup import bag_format
from so101_driver.arm_description import check_same_arm, joint_model_from
from so101_driver.joint_model import ROBOT_TYPE, JointModel, UnitError, in_joint_order
from so101_policy.images import compressed_to_rgb, image_to_rgb

from .configs import BagDatasetConfig
from .sim_dataset import dataset_features


class BagDatasetError(RuntimeError):
    """A bag that cannot become episodes; the message says what is missing."""


def _joints(msg, topic: str) -> np.ndarray:
    try:
        return in_joint_order(list(msg.name), msg.position)
    except ValueError as error:
        raise BagDatasetError(f"{topic}: {error}") from None


def _to_rgb(msg, msgtype: str) -> np.ndarray:
    return compressed_to_rgb(msg) if msgtype == bag_format.COMPRESSED_IMAGE else image_to_rgb(msg)


class _ByStamp:
    """Messages of one topic, oldest stamp first; `at(t)` is the newest stamped at or before t."""

    def __init__(self):
        self.stamps: list[int] = []
        self.items: list[tuple] = []

    def add(self, stamp_ns: int, item: tuple) -> None:
        index = bisect.bisect_right(self.stamps, stamp_ns)
        self.stamps.insert(index, stamp_ns)
        self.items.insert(index, item)

    def at(self, stamp_ns: int) -> tuple | None:
        index = bisect.bisect_right(self.stamps, stamp_ns)
        return self.items[index - 1] if index else None

    def covers(self, stamp_ns: int) -> bool:
        """Whether a message stamped at or after t has arrived: `at(t)` will not change any more."""
        return bool(self.stamps) and self.stamps[-1] >= stamp_ns

    def drop_before(self, stamp_ns: int) -> None:
        """Forget what no tick at or after t can use (all but the newest at or before t)."""
        keep_from = max(bisect.bisect_right(self.stamps, stamp_ns) - 1, 0)
        del self.stamps[:keep_from], self.items[:keep_from]


def _stamp_ns(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


class _TickPairing:
    """Pairs each control tick (a target) with the joint state and camera frames of its stamp.

    A tick waits until every topic has a message stamped at or after it (a tick's images arrive
    after its target), so only a few ticks' images are held however long the bag.
    """

    def __init__(self, cameras: list[str], joint_model: JointModel, config: BagDatasetConfig):
        self.states = _ByStamp()
        self.images = {camera: _ByStamp() for camera in cameras}
        self.pending: list = []
        self.frames: list[dict] = []
        self._joint_model, self._config = joint_model, config
        self._last_frame_ns: int | None = None

    def add_target(self, msg) -> None:
        self.pending.append(msg)
        self.pair()

    def pair(self, flush: bool = False) -> None:
        """Turn the pending ticks whose state and images are known into frames (all of them with `flush`)."""
        while self.pending:
            tick_ns = _stamp_ns(self.pending[0])
            if not flush and not all(s.covers(tick_ns) for s in (self.states, *self.images.values())):
                return
            self._add_frame(self.pending.pop(0), tick_ns)
            for by_stamp in (self.states, *self.images.values()):
                by_stamp.drop_before(tick_ns)

    def end_episode(self) -> list[dict]:
        self.pair(flush=True)
        frames, self.frames, self._last_frame_ns = self.frames, [], None
        return frames

    def _add_frame(self, target, tick_ns: int) -> None:
        state = self.states.at(tick_ns)
        seen = {camera: by_stamp.at(tick_ns) for camera, by_stamp in self.images.items()}
        if state is None or any(image is None for image in seen.values()):
            return  # before the first joint state or camera frame
        # A quarter period of slack keeps a 30 Hz control loop's jitter from dropping frames.
        if self._last_frame_ns is not None and tick_ns - self._last_frame_ns < 0.75 * 1e9 / self._config.fps:
            return
        self._last_frame_ns = tick_ns
        model = self._joint_model
        frame = {
            "observation.state": model.to_lerobot(_joints(state[0], bag_format.JOINT_STATES)).astype(np.float32),
            "action": model.to_lerobot(_joints(target, bag_format.JOINT_TARGETS)).astype(np.float32),
            "task": self._config.task,
        }
        for camera, (image, msgtype) in seen.items():
            frame[f"observation.images.{camera}"] = _to_rgb(image, msgtype)
        self.frames.append(frame)


FROM_BAG = "bag"  # a --calibration that means: the description of the arm the bag recorded


def bag_joint_model(bag: Path, given: JointModel | None) -> JointModel:
    """The joint model of the arm that recorded the bag: its /so101/arm description, checked against `given`.

    Bags recorded before the driver described the arm have none: then `given` is used, and needed.
    """
    from rosbags.highlevel import AnyReader

    with AnyReader([Path(bag)], default_typestore=bag_format.typestore()) as reader:
        arm = [c for c in reader.connections if c.topic == bag_format.ARM and c.msgcount]
        described = None
        if arm:  # (no connections would mean every message to rosbags)
            connection, _, raw = next(reader.messages(connections=arm))
            described = reader.deserialize(raw, connection.msgtype).data
    if described is None:
        if given is None:
            raise BagDatasetError(f"{bag} does not say which arm recorded it (no {bag_format.ARM}, a bag older than "
                                  "the driver's description): pass --calibration sim, an id or a JSON file")
        return given
    recorded, source = joint_model_from(described)
    if given is not None:
        try:
            check_same_arm(given, "--calibration", recorded, f"recorded in {Path(bag).name}: {source}")
        except UnitError as error:
            raise BagDatasetError(str(error)) from None
    return recorded


def bag_episodes(bag: Path, joint_model: JointModel | None, config: BagDatasetConfig) -> Iterator[list[dict]]:
    """Each episode of the bag as frames in LeRobot units (observation.state, action, images).

    `joint_model`: None takes the arm's description the bag recorded (bag_joint_model).
    """
    from rosbags.highlevel import AnyReader

    joint_model = bag_joint_model(bag, joint_model)

    camera_topics = {bag_format.CAMERA_TOPICS[camera]: camera for camera in config.cameras}
    wanted = {*camera_topics, bag_format.JOINT_STATES, bag_format.JOINT_TARGETS, bag_format.EPISODE_MARKER}
    with AnyReader([Path(bag)], default_typestore=bag_format.typestore()) as reader:
        present = {connection.topic for connection in reader.connections if connection.msgcount}
        missing = sorted((wanted - {bag_format.EPISODE_MARKER}) - present)
        if missing:
            raise BagDatasetError(f"{bag} has no messages on {missing}; a bag for a dataset needs both cameras, "
                                  f"{bag_format.JOINT_STATES} and {bag_format.JOINT_TARGETS} (record with so101 record)")
        in_episode = bag_format.EPISODE_MARKER not in present
        pairing = _TickPairing(list(camera_topics.values()), joint_model, config)
        connections = [c for c in reader.connections if c.topic in wanted]
        for connection, _, raw in reader.messages(connections=connections):
            msg = reader.deserialize(raw, connection.msgtype)
            topic = connection.topic
            if topic == bag_format.EPISODE_MARKER:
                if frames := pairing.end_episode():
                    yield frames
                word = msg.data.split()[0] if msg.data.split() else ""
                in_episode = word == bag_format.EPISODE_START
            elif topic in camera_topics:
                pairing.images[camera_topics[topic]].add(_stamp_ns(msg), (msg, connection.msgtype))  # decoded when used
                pairing.pair()
            elif topic == bag_format.JOINT_STATES:
                pairing.states.add(_stamp_ns(msg), (msg,))
                pairing.pair()
            elif in_episode:
                pairing.add_target(msg)
        if (frames := pairing.end_episode()) and in_episode:
            yield frames


def convert_bags(bags: list[Path], root: Path, joint_model: JointModel | None,
                 config: BagDatasetConfig = BagDatasetConfig()) -> LeRobotDataset:
    """One LeRobotDataset v3 from the bags, in order; the image size is the first frame's."""
    if not bags:
        raise BagDatasetError("no bags given")
    dataset = None
    try:
        for bag in tqdm(bags, desc="bags", unit="bag"):
            for frames in bag_episodes(Path(bag), joint_model, config):
                if dataset is None:
                    sizes = {camera: frames[0][f"observation.images.{camera}"].shape[:2] for camera in config.cameras}
                    features = dataset_features(sizes, config.use_videos)
                    dataset = LeRobotDataset.create(config.repo_id, config.fps, features, root=root,
                                                    robot_type=ROBOT_TYPE, use_videos=config.use_videos)
                for frame in frames:
                    dataset.add_frame(frame)
                dataset.save_episode()
    finally:
        if dataset is not None:
            dataset.finalize()
    if dataset is None:
        raise BagDatasetError(f"none of {len(bags)} bags held a complete frame inside an episode")
    return dataset
