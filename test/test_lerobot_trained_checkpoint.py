"""A checkpoint written by lerobot's own training command loads and runs in the policy node."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from lerobot.datasets import LeRobotDataset
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from trajectory_msgs.msg import JointTrajectory

from ros_harness import NodeProcess, RosProbe, isolated_ros_env, next_domain_id
from so101_driver.joint_model import JOINT_NAMES, LEROBOT_FEATURE_NAMES
from so101_driver.ros_messages import color_image_msg, joint_state_msg, sec_to_time, time_to_sec
from so101_policy.checkpoint import CheckpointError
from so101_policy.dataset_contract import check_training_data, training_data
from training.configs import TASK, SimDatasetConfig
from training.sim_dataset import record_sim_dataset

REPO_ID = "local/so101_sim_test"
TINY_ACT = ["--policy.dim_model=32", "--policy.n_heads=2", "--policy.dim_feedforward=64",
            "--policy.n_encoder_layers=1", "--policy.n_decoder_layers=1", "--policy.chunk_size=10",
            "--policy.n_action_steps=10", "--policy.use_vae=false", "--policy.pretrained_backbone_weights=null"]


@pytest.fixture(scope="module")
def sim_dataset_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data") / "so101_sim"
    record_sim_dataset(root, SimDatasetConfig(repo_id=REPO_ID, episodes=2, image_width=64, image_height=64,
                                              use_videos=False))
    return root


@pytest.fixture(scope="module")
def trained_checkpoint(sim_dataset_root, tmp_path_factory):
    output = tmp_path_factory.mktemp("train") / "act_run"
    command = [str(Path(sys.executable).parent / "lerobot-train"), f"--dataset.repo_id={REPO_ID}",
               f"--dataset.root={sim_dataset_root}", "--policy.type=act", "--policy.device=cpu",
               "--policy.push_to_hub=false", *TINY_ACT, "--steps=2", "--batch_size=2", "--num_workers=0",
               "--save_freq=2", "--log_freq=1", "--wandb.enable=false", f"--output_dir={output}"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return output / "checkpoints" / "last" / "pretrained_model"


def test_sim_dataset_is_read_by_lerobot_with_the_hub_layout(sim_dataset_root):
    dataset = LeRobotDataset(REPO_ID, root=sim_dataset_root)
    assert dataset.num_episodes == 2 and dataset.fps == 30
    assert dataset.features["action"]["names"] == list(LEROBOT_FEATURE_NAMES)
    assert list(dataset.meta.tasks.index) == [TASK]
    sample = dataset[0]
    assert sample["observation.images.wrist"].shape == (3, 64, 64)
    gripper = np.array([dataset[i]["action"][5] for i in range(0, len(dataset), 10)])
    assert gripper.min() >= 0 and gripper.max() <= 100  # LeRobot units, not radians


class PolicyOnAStandInArm:
    """policy_node on a checkpoint, fed joint states and camera frames as the driver and cameras publish them."""

    def __init__(self, checkpoint: Path, tmp_path: Path):
        domain = next_domain_id()
        self.policy = NodeProcess("policy_node", ["--ros-args", "-p", f"checkpoint:={checkpoint}", "-p", "device:=cpu",
                                                  "-p", "calibration:=sim", "-p", "arm_timeout:=0.5"],
                                  isolated_ros_env(domain), tmp_path / "policy.log")
        self.probe = RosProbe(domain)
        self.chunks = []
        self.probe.node.create_subscription(JointTrajectory, "/so101/action_chunk", self.chunks.append, 10)
        self.joints = self.probe.node.create_publisher(JointState, "/joint_states", 10)
        self.cameras = {c: self.probe.node.create_publisher(Image, f"/so101/{c}/image_raw", qos_profile_sensor_data)
                        for c in ("wrist", "overhead")}
        self.probe.spin_until(lambda: all(p.get_subscription_count() for p in self.cameras.values()), 90,
                              f"the policy node (log:\n{self.policy.output})")

    def publish_until(self, done, frames: dict[str, np.ndarray], what: str) -> None:
        """A tick's joint state and frames every 1/30 s until `done()`."""
        def tick():
            stamp = sec_to_time(time_to_sec(self.probe.node.get_clock().now().to_msg()))
            self.joints.publish(joint_state_msg(stamp, JOINT_NAMES, np.zeros(6)))
            for camera, publisher in self.cameras.items():
                publisher.publish(color_image_msg(stamp, frames[camera], camera))
            self.probe.spin_for(1 / 30)
            return done()

        self.probe.spin_until(tick, 30, lambda: f"{what} (log:\n{self.policy.output})")

    def close(self) -> int:
        self.probe.close()
        return self.policy.stop()


def test_lerobot_trained_checkpoint_runs_in_the_policy_node(trained_checkpoint, tmp_path):
    arm = PolicyOnAStandInArm(trained_checkpoint, tmp_path)
    try:
        frame = np.full((64, 64, 3), 120, np.uint8)
        arm.publish_until(lambda: arm.chunks, {"wrist": frame, "overhead": frame}, "a chunk")
        assert len(arm.chunks[0].points) == 10 and list(arm.chunks[0].joint_names) == list(JOINT_NAMES)
        output = arm.policy.output
        assert f"trained on {REPO_ID}" in output and "joint names and order match" in output
    finally:
        assert arm.close() == 0, arm.policy.output


def test_the_training_datas_joint_names_and_fps_are_checked(trained_checkpoint, sim_dataset_root, tmp_path):
    data, why_not = training_data(trained_checkpoint)
    assert why_not == "" and data.repo_id == REPO_ID and data.fps == 30 and data.path == sim_dataset_root
    assert data.names == {"observation.state": list(LEROBOT_FEATURE_NAMES), "action": list(LEROBOT_FEATURE_NAMES)}
    assert data.frame_sizes == {"wrist": (64, 64), "overhead": (64, 64)}
    check_training_data(data, fps=30.0)
    with pytest.raises(CheckpointError, match=r"the dataset ran at 30 fps.*set fps:=30"):
        check_training_data(data, fps=15.0)
    assert training_data(tmp_path)[0] is None and "no train_config.json" in training_data(tmp_path)[1]


def test_a_checkpoint_trained_on_another_joint_order_stops_the_policy_node(trained_checkpoint, sim_dataset_root,
                                                                           tmp_path):
    """A dataset whose action lists wrist_flex before elbow_flex: the same shapes, the wrong joints."""
    swapped = list(LEROBOT_FEATURE_NAMES)
    swapped[2], swapped[3] = swapped[3], swapped[2]
    dataset = tmp_path / "swapped_dataset"
    shutil.copytree(sim_dataset_root / "meta", dataset / "meta")
    info = json.loads((dataset / "meta" / "info.json").read_text())
    info["features"]["action"]["names"] = swapped
    (dataset / "meta" / "info.json").write_text(json.dumps(info))
    checkpoint = tmp_path / "pretrained_model"
    shutil.copytree(trained_checkpoint, checkpoint)
    train_config = json.loads((checkpoint / "train_config.json").read_text())
    train_config["dataset"]["root"] = str(dataset)
    (checkpoint / "train_config.json").write_text(json.dumps(train_config))

    policy = NodeProcess("policy_node", ["--ros-args", "-p", f"checkpoint:={checkpoint}", "-p", "device:=cpu",
                                         "-p", "calibration:=sim"],
                         isolated_ros_env(next_domain_id()), tmp_path / "policy.log")
    try:
        assert policy.wait(timeout=90) == 1, policy.output
    finally:
        policy.stop()
    assert "does not fit this graph" in policy.output and "'wrist_flex.pos', 'elbow_flex.pos'" in policy.output
    assert "Traceback" not in policy.output


def test_a_camera_at_another_resolution_than_the_training_data_stops_the_policy_node(trained_checkpoint, tmp_path):
    """Stopped at the first frame, before any inference: not an error logged at every chunk."""
    arm = PolicyOnAStandInArm(trained_checkpoint, tmp_path)
    try:
        frames = {"wrist": np.zeros((64, 64, 3), np.uint8), "overhead": np.zeros((48, 64, 3), np.uint8)}
        arm.publish_until(lambda: arm.policy.process.poll() is not None, frames, "the policy node to stop")
        output = arm.policy.output
        assert arm.policy.wait(timeout=10) == 1, output
        assert "camera 'overhead' sends 64x48 frames; the checkpoint was trained on 64x64 (its training data)" in output
        assert "Traceback" not in output and arm.chunks == []
    finally:
        arm.close()
