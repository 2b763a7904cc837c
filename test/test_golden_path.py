"""The golden path, dataset to servo, each end computed by lerobot itself.

A frame of a LeRobotDataset is put on the arm and the cameras the way they publish it: the joints
as Present_Position ticks of emulated STS3215 servos read by the real driver (lerobot's bus, the
lab arm's calibration), the images as camera frames. The policy node must hand the model the very
tensors that lerobot's own dataloader and the checkpoint's own preprocessor make of that frame, and
the last action of the chunk the model predicts must reach Goal_Position as the ticks lerobot's own
bus unnormalises it to for that calibration.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from lerobot.datasets import LeRobotDataset
from sensor_msgs.msg import Image
from trajectory_msgs.msg import JointTrajectory

from ros_harness import NodeProcess, RosProbe, isolated_ros_env, next_domain_id
from so101_driver.joint_model import JOINT_NAMES, LEROBOT_FEATURE_NAMES, ArmUnits, JointModel, save_calibration
from so101_driver.ros_messages import color_image_msg
from so101_policy.checkpoint import load_policy
from test_feetech_backend import calibrated_emulator
from test_joint_model import REAL_CALIBRATION, lerobot_bus
from tiny_policies import tiny_act_checkpoint
from so101_driver.joint_model import ROBOT_TYPE
from training.configs import TASK
from training.sim_dataset import dataset_features

REPO = Path(__file__).parents[1]
REPO_ID = "local/golden"
SIZE = 48
CAMERAS = ("overhead", "wrist")


def golden_dataset(root, ticks: np.ndarray, images: dict[str, np.ndarray]) -> LeRobotDataset:
    """Two frames whose state is lerobot's own reading of these ticks (so the servos can hold it exactly)."""
    bus = lerobot_bus(REAL_CALIBRATION, ArmUnits.DEGREES)
    degrees = bus._normalize({REAL_CALIBRATION[n].id: int(t) for n, t in zip(JOINT_NAMES, ticks)})
    state = np.array([degrees[REAL_CALIBRATION[n].id] for n in JOINT_NAMES], np.float32)
    dataset = LeRobotDataset.create(REPO_ID, 30, dataset_features({c: (SIZE, SIZE) for c in CAMERAS}, False),
                                    root=root, robot_type=ROBOT_TYPE, use_videos=False)
    for _ in range(2):
        dataset.add_frame({"observation.state": state, "action": state, "task": TASK,
                           **{f"observation.images.{c}": images[c] for c in CAMERAS}})
    dataset.save_episode()
    dataset.finalize()
    return LeRobotDataset(REPO_ID, root=root)


def test_a_dataset_frame_reaches_the_model_and_its_action_reaches_goal_position(tmp_path):
    rng = np.random.default_rng(7)
    model = JointModel(REAL_CALIBRATION)
    lower, upper = model.radians_to_ticks(model.limits[0]), model.radians_to_ticks(model.limits[1])
    ticks = np.round(lower + (upper - lower) * rng.uniform(0.35, 0.65, 6)).astype(int)
    images = {c: rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8) for c in CAMERAS}
    dataset = golden_dataset(tmp_path / "dataset", ticks, images)
    state = dataset[0]["observation.state"].numpy()
    # Actions a few degrees from the state: reachable within the driver's limits and step clamp.
    # 60 points (2 s): in sync mode the next inference waits for their end, when the frames the test
    # stopped sending are older than max_obs_age, so the arm plays this one chunk and holds its end.
    checkpoint = tiny_act_checkpoint(tmp_path / "act", image_shape=(3, SIZE, SIZE), chunk_size=60,
                                     action_mean=state.tolist(), action_std=[1.0] * 6)

    # What lerobot makes of the frame: its dataloader, then the checkpoint's own pipeline and model.
    loaded = load_policy(checkpoint, "cpu")
    batch = next(iter(torch.utils.data.DataLoader(dataset, batch_size=1)))
    batch = {key: value for key, value in batch.items() if key.startswith("observation.") or key == "task"}
    expected_inputs = loaded.preprocessor(batch)
    with torch.inference_mode():
        actions = loaded.postprocessor(loaded.policy.predict_action_chunk(expected_inputs))[0].numpy()
    bus = lerobot_bus(REAL_CALIBRATION, ArmUnits.DEGREES)
    expected_ticks = bus._unnormalize({REAL_CALIBRATION[n].id: float(v) for n, v in zip(JOINT_NAMES, actions[-1])})

    calibration = tmp_path / "lab_arm.json"
    save_calibration(REAL_CALIBRATION, calibration)
    domain = next_domain_id()
    env = dict(isolated_ros_env(domain), PYTHONPATH=str(REPO))
    inputs_file = tmp_path / "model_inputs.pt"
    with calibrated_emulator() as emulator:
        for name, tick in zip(JOINT_NAMES, ticks):  # the arm stands where the frame was recorded
            servo = emulator.servos[REAL_CALIBRATION[name].id]
            servo.set("Present_Position", int(tick))
            servo.set("Goal_Position", int(tick))
        driver = NodeProcess("driver_node", ["--ros-args", "-p", "backend:=feetech", "-p", f"port:={emulator.port}",
                                             "-p", f"calibration_file:={calibration}"], env, tmp_path / "driver.log")
        # policy_node as deployed, in a process of its own (the servos answer from this one), its model
        # instrumented to keep what it is handed. It takes the arm's units from the driver.
        policy = subprocess.Popen(
            [sys.executable, "-c", RECORDING_POLICY_NODE, str(inputs_file), "--ros-args",
             "-p", f"checkpoint:={checkpoint}", "-p", "device:=cpu", "-p", "mode:=sync", "-p", "max_obs_age:=1.0"],
            env=env, stdout=open(tmp_path / "policy.log", "w"), stderr=subprocess.STDOUT, start_new_session=True)
        probe = RosProbe(domain)
        try:
            chunks: list[JointTrajectory] = []
            probe.node.create_subscription(JointTrajectory, "/so101/action_chunk", chunks.append, 10)
            cameras = {c: probe.node.create_publisher(Image, f"/so101/{c}/image_raw", 10) for c in CAMERAS}

            def publish_frames():  # as camera_node publishes them
                assert policy.poll() is None, (tmp_path / "policy.log").read_text()
                stamp = probe.node.get_clock().now().to_msg()
                for camera, publisher in cameras.items():
                    publisher.publish(color_image_msg(stamp, images[camera], camera))
                probe.spin_for(1 / 30)
                return chunks

            probe.spin_until(publish_frames, 90, f"a chunk (policy log:\n{(tmp_path / 'policy.log').read_text()})")

            seen = torch.load(inputs_file)
            for key in ("observation.state", *(f"observation.images.{c}" for c in CAMERAS)):
                torch.testing.assert_close(seen[key], expected_inputs[key], rtol=0, atol=1e-5, msg=key)

            def goals():
                return [emulator.servos[REAL_CALIBRATION[n].id].goal_position for n in JOINT_NAMES]

            want = [expected_ticks[REAL_CALIBRATION[n].id] for n in JOINT_NAMES]
            probe.spin_until(lambda: goals() == want, 10,
                             lambda: f"Goal_Position to reach lerobot's {want} (driver log:\n{driver.output})")
        finally:
            probe.close()
            policy.send_signal(signal.SIGINT)
            assert policy.wait(timeout=30) == 0, (tmp_path / "policy.log").read_text()
            assert driver.stop() == 0, driver.output
    assert list(LEROBOT_FEATURE_NAMES) == dataset.features["action"]["names"]


RECORDING_POLICY_NODE = """
import os, sys
import torch
from so101_driver.node_runner import run_node
from so101_policy.checkpoint import CheckpointError
from so101_policy.policy_node import PolicyNode

inputs_file = sys.argv[1]

class RecordingPolicyNode(PolicyNode):
    def __init__(self, **options):
        super().__init__(**options)
        model = self.predictor.loaded.policy
        predict = model.predict_action_chunk

        def recording_predict(inputs, **kwargs):
            if not os.path.exists(inputs_file):
                torch.save({k: v for k, v in inputs.items() if torch.is_tensor(v)}, inputs_file + ".part")
                os.replace(inputs_file + ".part", inputs_file)
            return predict(inputs, **kwargs)

        model.predict_action_chunk = recording_predict

sys.exit(run_node(RecordingPolicyNode, "so101_policy", (CheckpointError, ValueError), sys.argv[2:]))
"""
