"""Scripted-expert demonstrations from the MuJoCo SO-101, written as a LeRobotDataset v3.

Same feature names, units, fps and task as the hub dataset (gtgando/so101_pick_place_10cm_v3):
observation.state and action in LeRobot units through the joint model (degrees, gripper 0..100),
observation.images.wrist and observation.images.overhead, 30 fps.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from lerobot.datasets import LeRobotDataset
from tqdm import tqdm

from so101_driver.joint_model import LEROBOT_FEATURE_NAMES, JointModel
from so101_driver.sim.expert import ScriptedExpert
from so101_driver.sim.scene import CAMERA_NAMES, SceneConfig
from so101_driver.sim.sim_arm import SimArm

TASK = "Pick up the cube and place it in the bowl"
FPS = 30
ROBOT_TYPE = "so101_follower"


@dataclass(frozen=True)
class SimDatasetConfig:
    repo_id: str = "local/so101_sim_pick_place"
    episodes: int = 10
    seed: int = 0
    image_width: int = 224
    image_height: int = 224
    use_videos: bool = True
    only_successes: bool = True  # a failed demonstration is skipped, not recorded


def dataset_features(image_sizes: dict[str, tuple[int, int]], use_videos: bool) -> dict:
    """The hub dataset's features; image_sizes: camera -> (height, width)."""
    joints = {"dtype": "float32", "shape": (len(LEROBOT_FEATURE_NAMES),), "names": list(LEROBOT_FEATURE_NAMES)}
    features = {"observation.state": dict(joints), "action": dict(joints)}
    for camera, (height, width) in image_sizes.items():
        features[f"observation.images.{camera}"] = {"dtype": "video" if use_videos else "image",
                                                    "shape": (height, width, 3),
                                                    "names": ["height", "width", "channels"]}
    return features


class SimDatasetError(RuntimeError):
    """A dataset directory that cannot be resumed with the requested settings."""


PROGRESS_FILE = Path("meta") / "so101_sim.json"


def _progress_settings(config: SimDatasetConfig) -> dict:
    """The settings a resumed dataset must share with the one on disk."""
    settings = asdict(config)
    settings.pop("episodes")
    return settings


def _open_dataset(root: Path, config: SimDatasetConfig) -> tuple[LeRobotDataset, int]:
    """A new dataset at seed config.seed, or the one at root reopened at the seed after its last episode."""
    progress_path = root / PROGRESS_FILE
    if not root.exists():
        dataset = LeRobotDataset.create(
            config.repo_id, FPS,
            dataset_features({camera: (config.image_height, config.image_width) for camera in CAMERA_NAMES},
                             config.use_videos),
            root=root, robot_type=ROBOT_TYPE, use_videos=config.use_videos,
        )
        return dataset, config.seed
    if not progress_path.is_file():
        raise SimDatasetError(f"{root} exists but was not written by `so101 dataset sim` ({PROGRESS_FILE} is "
                              "missing); choose another --root")
    progress = json.loads(progress_path.read_text())
    if progress["settings"] != _progress_settings(config):
        raise SimDatasetError(f"{root} was recorded with {progress['settings']}, not {_progress_settings(config)}; "
                              "resume it with the same settings or choose another --root")
    dataset = LeRobotDataset.resume(config.repo_id, root=root)
    if dataset.meta.total_episodes != progress["episodes"]:
        raise SimDatasetError(f"{root} holds {dataset.meta.total_episodes} episodes but {progress_path.name} says "
                              f"{progress['episodes']}: the last run stopped mid-write; remove {root} and record again")
    return dataset, progress["next_seed"]


def record_sim_dataset(root: str | Path, config: SimDatasetConfig = SimDatasetConfig()) -> LeRobotDataset:
    """Record until `root` holds config.episodes demonstrations; an existing root is resumed, seeds continue."""
    root = Path(root)
    dataset, seed = _open_dataset(root, config)
    arm = SimArm(SceneConfig(image_width=config.image_width, image_height=config.image_height,
                             control_period=1.0 / FPS))
    joint_model = JointModel.for_sim()
    progress_path = root / PROGRESS_FILE
    try:
        with tqdm(total=config.episodes, initial=dataset.meta.total_episodes, desc="sim demonstrations",
                  unit="episode") as progress:
            while progress.n < config.episodes:
                arm.reset(seed=seed)
                seed += 1
                expert = ScriptedExpert(arm)
                for tick in range(len(expert)):
                    action = expert.action(tick)
                    frame = {
                        "observation.state": joint_model.to_lerobot(arm.joint_positions).astype(np.float32),
                        "action": joint_model.to_lerobot(action).astype(np.float32),
                        "task": TASK,
                    }
                    for camera in CAMERA_NAMES:
                        frame[f"observation.images.{camera}"] = arm.render(camera)
                    dataset.add_frame(frame)
                    arm.step(action)
                if config.only_successes and not arm.status.success:
                    dataset.clear_episode_buffer()
                    continue
                dataset.save_episode()
                progress_path.write_text(json.dumps({"episodes": dataset.meta.total_episodes, "next_seed": seed,
                                                     "settings": _progress_settings(config)}, indent=2) + "\n")
                progress.update(1)
    finally:
        # An interrupted run is finalized too, so the episodes saved so far stay readable and resumable.
        dataset.finalize()
        arm.close()
    return dataset
