"""Scripted-expert demonstrations from the MuJoCo SO-101, written as a LeRobotDataset v3.

Same feature names, units, fps and task as the hub dataset (gtgando/so101_pick_place_10cm_v3):
observation.state and action in LeRobot units through the joint model (degrees, gripper 0..100),
observation.images.wrist and observation.images.overhead, 30 fps; and, when asked, the sim's
privileged object state as observation.environment_state (so101_driver.environment_state), which
so101 train's presets give a policy only when they ask for it. The task variant is in
meta/so101_sim.json with the other settings.

Rendering bounds recording, so `workers` sims (one per core) play the episodes in parallel
processes while this one writes them in seed order: the dataset is the same whatever the count.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np
from lerobot.datasets import LeRobotDataset
from tqdm import tqdm

from so101_driver.environment_state import ENVIRONMENT_STATE_KEY, ENVIRONMENT_STATE_NAMES
from so101_driver.joint_model import LEROBOT_FEATURE_NAMES, ROBOT_TYPE, JointModel
from so101_driver.sim.expert import ScriptedExpert
from so101_driver.sim.scene import CAMERA_NAMES, SceneConfig
from so101_driver.sim.sim_arm import SimArm
from so101_driver.sim.task_variants import DEFAULT_OVERHEAD_VIEW, SIM_DATASET_SETTINGS, task_variant

from .configs import FPS, TASK, SimDatasetConfig


def _worker_count(requested: int) -> int:
    return requested or len(os.sched_getaffinity(0))


def dataset_features(image_sizes: dict[str, tuple[int, int]], use_videos: bool,
                     environment_state: bool = False) -> dict:
    """The hub dataset's features, and the sim's object state if asked; image_sizes: camera -> (height, width)."""
    joints = {"dtype": "float32", "shape": (len(LEROBOT_FEATURE_NAMES),), "names": list(LEROBOT_FEATURE_NAMES)}
    features = {"observation.state": dict(joints), "action": dict(joints)}
    if environment_state:
        features[ENVIRONMENT_STATE_KEY] = {"dtype": "float32", "shape": (len(ENVIRONMENT_STATE_NAMES),),
                                           "names": list(ENVIRONMENT_STATE_NAMES)}
    for camera, (height, width) in image_sizes.items():
        features[f"observation.images.{camera}"] = {"dtype": "video" if use_videos else "image",
                                                    "shape": (height, width, 3),
                                                    "names": ["height", "width", "channels"]}
    return features


class SimDatasetError(RuntimeError):
    """A dataset directory that cannot be resumed with the requested settings."""


PROGRESS_FILE = SIM_DATASET_SETTINGS


def _progress_settings(config: SimDatasetConfig) -> dict:
    """The settings a resumed dataset must share with the one on disk."""
    settings = asdict(config)
    settings.pop("episodes")
    settings.pop("workers")  # the dataset is the same whatever the count
    return settings


def _open_dataset(root: Path, config: SimDatasetConfig) -> tuple[LeRobotDataset, int]:
    """A new dataset at seed config.seed, or the one at root reopened at the seed after its last episode."""
    progress_path = root / PROGRESS_FILE
    if not root.exists():
        dataset = LeRobotDataset.create(
            config.repo_id, FPS,
            dataset_features({camera: (config.image_height, config.image_width) for camera in CAMERA_NAMES},
                             config.use_videos, config.environment_state),
            root=root, robot_type=ROBOT_TYPE, use_videos=config.use_videos,
        )
        return dataset, config.seed
    if not progress_path.is_file():
        raise SimDatasetError(f"{root} exists but was not written by `so101 dataset sim` ({PROGRESS_FILE} is "
                              "missing); choose another --root")
    progress = json.loads(progress_path.read_text())
    # Datasets recorded before the overhead camera's views were named saw the cell.
    progress["settings"].setdefault("overhead_view", DEFAULT_OVERHEAD_VIEW)
    if progress["settings"] != _progress_settings(config):
        raise SimDatasetError(f"{root} was recorded with {progress['settings']}, not {_progress_settings(config)}; "
                              "resume it with the same settings or choose another --root")
    dataset = LeRobotDataset.resume(config.repo_id, root=root)
    if dataset.meta.total_episodes != progress["episodes"]:
        raise SimDatasetError(f"{root} holds {dataset.meta.total_episodes} episodes but {progress_path.name} says "
                              f"{progress['episodes']}: the last run stopped mid-write; remove {root} and record again")
    return dataset, progress["next_seed"]


@dataclass
class Demonstration:
    seed: int
    success: bool
    frames: list[dict]  # LeRobot frames: state and action in LeRobot units, the cameras' images


_arm: SimArm | None = None  # each worker process's own sim


def _make_arm(config: SimDatasetConfig, worker: bool = True) -> None:
    global _arm
    if worker:  # Ctrl-C is the main process's to handle: it stops the pool
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    _arm = SimArm(SceneConfig(image_width=config.image_width, image_height=config.image_height,
                              control_period=1.0 / FPS), task_variant(config.task_variant), config.overhead_view)


def _demonstrate(seed: int, environment_state: bool) -> Demonstration:
    """One scripted-expert episode on this process's sim."""
    arm, joint_model = _arm, JointModel.for_sim()
    arm.reset(seed=seed)
    expert = ScriptedExpert(arm)
    frames = []
    for tick in range(len(expert)):
        action = expert.action(tick)
        frame = {
            "observation.state": joint_model.to_lerobot(arm.joint_positions).astype(np.float32),
            "action": joint_model.to_lerobot(action).astype(np.float32),
            "task": TASK,
        }
        if environment_state:
            frame[ENVIRONMENT_STATE_KEY] = arm.environment_state
        for camera in CAMERA_NAMES:
            frame[f"observation.images.{camera}"] = arm.render(camera)
        frames.append(frame)
        arm.step(action)
    return Demonstration(seed, bool(arm.status.success), frames)


def _demonstrations(config: SimDatasetConfig, first_seed: int) -> Iterator[Demonstration]:
    """Episodes of seeds first_seed, first_seed + 1, ... in seed order, played by config.workers sims."""
    workers = _worker_count(config.workers)
    seeds = iter(range(first_seed, 2**31))
    demonstrate = partial(_demonstrate, environment_state=config.environment_state)
    if workers == 1:
        _make_arm(config, worker=False)
        try:
            yield from map(demonstrate, seeds)
        finally:
            _arm.close()
        return
    # spawn: each worker opens its own EGL context, which must not be inherited through fork.
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, initializer=_make_arm, initargs=(config,)) as pool:
        yield from pool.imap(demonstrate, seeds, chunksize=1)


def record_sim_dataset(root: str | Path, config: SimDatasetConfig = SimDatasetConfig()) -> LeRobotDataset:
    """Record until `root` holds config.episodes demonstrations; an existing root is resumed, seeds continue."""
    root = Path(root)
    dataset, seed = _open_dataset(root, config)
    progress_path = root / PROGRESS_FILE
    demonstrations = _demonstrations(config, seed)
    try:
        with tqdm(total=config.episodes, initial=dataset.meta.total_episodes, desc="sim demonstrations",
                  unit="episode") as progress:
            while progress.n < config.episodes:
                demonstration = next(demonstrations)
                seed = demonstration.seed + 1
                if config.only_successes and not demonstration.success:
                    continue
                for frame in demonstration.frames:
                    dataset.add_frame(frame)
                dataset.save_episode()
                progress_path.write_text(json.dumps({"episodes": dataset.meta.total_episodes, "next_seed": seed,
                                                     "settings": _progress_settings(config)}, indent=2) + "\n")
                progress.update(1)
    finally:
        # An interrupted run is finalized too, so the episodes saved so far stay readable and resumable.
        demonstrations.close()
        dataset.finalize()
    return dataset
