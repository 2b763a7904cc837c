"""`so101 dataset from-bags`: rosbag2 (MCAP) bags recorded from the ROS graph become a LeRobotDataset.

A frame is taken at each control tick (/so101/joint_targets, what the driver sent to the servos
after its safety path: the dataset's action), at most `fps` per second, with the latest frame of
each camera and the latest /joint_states at that moment. Joint values go from radians to LeRobot
units through the joint model; images through the same conversion the policy node uses.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from lerobot.datasets import LeRobotDataset
from tqdm import tqdm

from so101_bringup import bag_format
from so101_driver.joint_model import JointModel, in_joint_order
from so101_policy.images import compressed_to_rgb, image_to_rgb

from .sim_dataset import FPS, ROBOT_TYPE, TASK, dataset_features


class BagDatasetError(RuntimeError):
    """A bag that cannot become episodes; the message says what is missing."""


@dataclass(frozen=True)
class BagDatasetConfig:
    repo_id: str = "local/so101_from_bags"
    fps: int = FPS
    task: str = TASK
    use_videos: bool = True
    cameras: tuple[str, ...] = tuple(bag_format.CAMERA_TOPICS)


def _joints(msg, topic: str) -> np.ndarray:
    try:
        return in_joint_order(list(msg.name), msg.position)
    except ValueError as error:
        raise BagDatasetError(f"{topic}: {error}") from None


def _to_rgb(msg, msgtype: str) -> np.ndarray:
    return compressed_to_rgb(msg) if msgtype == bag_format.COMPRESSED_IMAGE else image_to_rgb(msg)


def bag_episodes(bag: Path, joint_model: JointModel, config: BagDatasetConfig) -> Iterator[list[dict]]:
    """Each episode of the bag as frames in LeRobot units (observation.state, action, images)."""
    from rosbags.highlevel import AnyReader

    camera_topics = {bag_format.CAMERA_TOPICS[camera]: camera for camera in config.cameras}
    wanted = {*camera_topics, bag_format.JOINT_STATES, bag_format.JOINT_TARGETS, bag_format.EPISODE_MARKER}
    with AnyReader([Path(bag)], default_typestore=bag_format.typestore()) as reader:
        present = {connection.topic for connection in reader.connections if connection.msgcount}
        missing = sorted((wanted - {bag_format.EPISODE_MARKER}) - present)
        if missing:
            raise BagDatasetError(f"{bag} has no messages on {missing}; a bag for a dataset needs both cameras, "
                                  f"{bag_format.JOINT_STATES} and {bag_format.JOINT_TARGETS} (record with so101 record)")
        marked = bag_format.EPISODE_MARKER in present
        in_episode = not marked
        frames: list[dict] = []
        latest_images: dict[str, tuple] = {}
        latest_state = None
        last_frame_ns = None
        period_ns = 1e9 / config.fps
        connections = [c for c in reader.connections if c.topic in wanted]
        for connection, timestamp, raw in reader.messages(connections=connections):
            msg = reader.deserialize(raw, connection.msgtype)
            topic = connection.topic
            if topic == bag_format.EPISODE_MARKER:
                word = msg.data.split()[0] if msg.data.split() else ""
                if frames:
                    yield frames
                frames, last_frame_ns = [], None
                in_episode = word == bag_format.EPISODE_START
            elif topic in camera_topics:
                latest_images[camera_topics[topic]] = (msg, connection.msgtype)  # decoded only when used
            elif topic == bag_format.JOINT_STATES:
                latest_state = msg
            elif in_episode and latest_state is not None and len(latest_images) == len(camera_topics):
                # A control tick: one frame, unless the bag's control rate is above the dataset's fps.
                # A quarter period of slack keeps a 30 Hz control loop's jitter from dropping frames.
                if last_frame_ns is not None and timestamp - last_frame_ns < 0.75 * period_ns:
                    continue
                last_frame_ns = timestamp
                frame = {
                    "observation.state": joint_model.to_lerobot(
                        _joints(latest_state, bag_format.JOINT_STATES)).astype(np.float32),
                    "action": joint_model.to_lerobot(_joints(msg, bag_format.JOINT_TARGETS)).astype(np.float32),
                    "task": config.task,
                }
                for camera, (image, msgtype) in latest_images.items():
                    frame[f"observation.images.{camera}"] = _to_rgb(image, msgtype)
                frames.append(frame)
        if frames and in_episode:
            yield frames


def convert_bags(bags: list[Path], root: Path, joint_model: JointModel,
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
