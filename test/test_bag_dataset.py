"""`so101 dataset from-bags`: MCAP bags of the ROS graph become LeRobotDataset episodes."""

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from lerobot.datasets import LeRobotDataset
from rosbags.rosbag2 import StoragePlugin, Writer

from so101_bringup import bag_format
from so101_driver.arm_description import describe
from so101_driver.joint_model import JOINT_NAMES, JointModel, MotorCalibration
from training.bag_dataset import BagDatasetError, bag_joint_model, convert_bags
from training.configs import BagDatasetConfig

SO101 = str(Path(sys.executable).parent / "so101")
HEIGHT, WIDTH = 32, 40


def _header(types, t_ns: int, frame_id: str = ""):
    stamp = types["builtin_interfaces/msg/Time"](sec=t_ns // 1_000_000_000, nanosec=t_ns % 1_000_000_000)
    return types["std_msgs/msg/Header"](stamp=stamp, frame_id=frame_id)


class BagBuilder:
    """Writes the topics the recorder writes, with rosbags' own message types."""

    def __init__(self, path: Path, compressed_overhead: bool = False):
        self.store = bag_format.typestore()
        self.types = self.store.types
        self.writer = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
        self.writer.open()
        self.compressed_overhead = compressed_overhead
        overhead_type = bag_format.COMPRESSED_IMAGE if compressed_overhead else bag_format.IMAGE
        self.connections = {
            "wrist": self.writer.add_connection(bag_format.CAMERA_TOPICS["wrist"], bag_format.IMAGE, typestore=self.store),
            "overhead": self.writer.add_connection(bag_format.CAMERA_TOPICS["overhead"], overhead_type,
                                                   typestore=self.store),
            "states": self.writer.add_connection(bag_format.JOINT_STATES, bag_format.JOINT_STATE, typestore=self.store),
            "targets": self.writer.add_connection(bag_format.JOINT_TARGETS, bag_format.JOINT_STATE, typestore=self.store),
            "marker": self.writer.add_connection(bag_format.EPISODE_MARKER, bag_format.STRING, typestore=self.store),
            "arm": self.writer.add_connection(bag_format.ARM, bag_format.STRING, typestore=self.store),
        }

    def _write(self, key: str, msg, msgtype: str, t_ns: int) -> None:
        self.writer.write(self.connections[key], t_ns, self.store.serialize_cdr(msg, msgtype))

    def joints(self, key: str, t_ns: int, positions) -> None:
        types = self.types
        msg = types[bag_format.JOINT_STATE](header=_header(types, t_ns), name=list(JOINT_NAMES),
                                                 position=np.asarray(positions, np.float64),
                                                 velocity=np.zeros(0), effort=np.zeros(0))
        self._write(key, msg, bag_format.JOINT_STATE, t_ns)

    def image(self, camera: str, t_ns: int, rgb: np.ndarray) -> None:
        types = self.types
        if camera == "overhead" and self.compressed_overhead:
            encoded = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1]
            msg = types[bag_format.COMPRESSED_IMAGE](header=_header(types, t_ns), format="png",
                                                          data=encoded.reshape(-1))
            self._write(camera, msg, bag_format.COMPRESSED_IMAGE, t_ns)
            return
        msg = types[bag_format.IMAGE](header=_header(types, t_ns), height=HEIGHT, width=WIDTH, encoding="rgb8",
                                            is_bigendian=0, step=WIDTH * 3, data=rgb.reshape(-1))
        self._write(camera, msg, bag_format.IMAGE, t_ns)

    def arm(self, t_ns: int, joint_model: JointModel, source: str = "sim") -> None:
        """What the recorder writes first: the driver's description of the arm."""
        self._write("arm", self.types[bag_format.STRING](data=describe(joint_model, source)), bag_format.STRING, t_ns)

    def marker(self, t_ns: int, text: str) -> None:
        self._write("marker", self.types[bag_format.STRING](data=text), bag_format.STRING, t_ns)

    def tick(self, t_ns: int, positions, targets, value: int) -> None:
        """One control tick in the order the driver publishes it: joint states, targets, then images."""
        self.joints("states", t_ns, positions)
        self.joints("targets", t_ns, targets)
        for camera in ("wrist", "overhead"):
            frame = np.full((HEIGHT, WIDTH, 3), value, np.uint8)
            frame[..., 2] = 30 if camera == "wrist" else 220
            self.image(camera, t_ns, frame)

    def close(self) -> None:
        self.writer.close()


def positions_at(k: int) -> np.ndarray:
    return np.array([0.1, -0.5, 0.6, 0.4, 0.0, 0.2]) + 0.01 * k


def test_marked_episodes_become_dataset_episodes_in_lerobot_units(tmp_path):
    bag_path = tmp_path / "episodes"
    builder = BagBuilder(bag_path)
    t0 = 1_700_000_000_000_000_000
    period = 1_000_000_000 // 30
    for k in range(5):  # before the first marker: not part of any episode
        builder.tick(t0 + k * period, positions_at(0), positions_at(0), 0)
    builder.marker(t0 + 5 * period, "start seed=3")
    for k in range(12):
        builder.tick(t0 + (6 + k) * period, positions_at(k), positions_at(k + 1), 10 * k)
    builder.marker(t0 + 20 * period, "end success")
    builder.marker(t0 + 21 * period, "start seed=4")
    for k in range(8):
        builder.tick(t0 + (22 + k) * period, positions_at(-k), positions_at(-k - 1), 200)
    builder.marker(t0 + 31 * period, "end failure")
    builder.close()

    model = JointModel.for_sim()
    dataset = convert_bags([bag_path], tmp_path / "dataset", model,
                           BagDatasetConfig(repo_id="local/bags", use_videos=False))
    loaded = LeRobotDataset("local/bags", root=tmp_path / "dataset")
    assert loaded.num_episodes == 2 and loaded.num_frames == 20
    assert dataset.fps == 30 and list(loaded.meta.tasks.index) == ["Pick up the cube and place it in the bowl"]
    for k in range(12):  # each frame holds its own tick's state, action and images (value 10 k)
        frame = loaded[k]
        np.testing.assert_allclose(frame["observation.state"].numpy(), model.to_lerobot(positions_at(k)), atol=1e-4)
        np.testing.assert_allclose(frame["action"].numpy(), model.to_lerobot(positions_at(k + 1)), atol=1e-4)
        for camera in ("wrist", "overhead"):
            assert abs(float(frame[f"observation.images.{camera}"][0, 5, 5]) - 10 * k / 255) < 1e-3, (k, camera)
    first = loaded[3]
    assert first["observation.images.wrist"].shape == (3, HEIGHT, WIDTH)
    assert abs(float(first["observation.images.wrist"][2, 5, 5]) - 30 / 255) < 1e-3
    assert abs(float(first["observation.images.overhead"][2, 5, 5]) - 220 / 255) < 1e-3
    assert int(loaded[12]["episode_index"]) == 1


def test_unmarked_bag_is_one_episode_at_the_dataset_fps(tmp_path):
    bag_path = tmp_path / "fast"
    builder = BagBuilder(bag_path, compressed_overhead=True)
    t0 = 1_700_000_000_000_000_000
    builder.arm(t0 - 1, JointModel.for_sim())  # so101 from-bags takes the arm from the bag by default
    for k in range(40):  # 60 Hz control: every other tick becomes a 30 fps frame
        builder.tick(t0 + k * 1_000_000_000 // 60, positions_at(k), positions_at(k), 5 * k)
    builder.close()
    dataset_root = tmp_path / "dataset"
    result = subprocess.run([SO101, "dataset", "from-bags", str(bag_path), "--root", str(dataset_root),
                             "--repo-id", "local/fast", "--images"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = LeRobotDataset("local/fast", root=dataset_root)
    assert loaded.num_episodes == 1 and loaded.num_frames == 20
    assert abs(float(loaded[1]["observation.images.overhead"][2, 0, 0]) - 220 / 255) < 1e-3  # png, lossless


def test_a_bag_without_targets_is_refused_with_the_missing_topics(tmp_path):
    bag_path = tmp_path / "partial"
    store = bag_format.typestore()
    with Writer(bag_path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        connection = writer.add_connection(bag_format.JOINT_STATES, bag_format.JOINT_STATE, typestore=store)
        msg = store.types[bag_format.JOINT_STATE](
            header=_header(store.types, 1), name=list(JOINT_NAMES), position=np.zeros(6), velocity=np.zeros(0),
            effort=np.zeros(0))
        writer.write(connection, 1, store.serialize_cdr(msg, bag_format.JOINT_STATE))
    with pytest.raises(BagDatasetError, match=r"no messages on \['/so101/joint_targets', '/so101/overhead/image_raw'"):
        convert_bags([bag_path], tmp_path / "dataset", JointModel.for_sim())


def test_the_arm_comes_from_the_bag_and_a_different_calibration_is_refused(tmp_path):
    from test_joint_model import REAL_CALIBRATION

    real = JointModel(REAL_CALIBRATION)
    described, bare = tmp_path / "described", tmp_path / "bare"
    for path, arm in ((described, real), (bare, None)):
        builder = BagBuilder(path)
        if arm is not None:
            builder.arm(0, arm, "/calibration/lab_arm.json")
        builder.tick(1, positions_at(0), positions_at(1), 0)
        builder.close()
    assert bag_joint_model(described, None) == real
    assert bag_joint_model(described, JointModel(REAL_CALIBRATION)) == real
    off = dict(REAL_CALIBRATION, wrist_roll=MotorCalibration(**{**vars(REAL_CALIBRATION["wrist_roll"]),
                                                                 "homing_offset": 12}))
    with pytest.raises(BagDatasetError, match="wrist_roll: homing_offset 12 vs"):
        bag_joint_model(described, JointModel(off))
    with pytest.raises(BagDatasetError, match="pass --calibration"):
        bag_joint_model(bare, None)
    assert bag_joint_model(bare, JointModel.for_sim()) == JointModel.for_sim()
