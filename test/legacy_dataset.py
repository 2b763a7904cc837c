"""A tiny LeRobot v2.1 dataset written by hand, laid out as the hub's so101 dataset is.

v2.1: one parquet file and one mp4 per camera per episode, meta/*.jsonl, codebase_version "v2.1";
videos encoded with lerobot's own encoder (AV1), degrees and gripper 0..100 as on the real arm.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from so101_driver.joint_model import LEROBOT_FEATURE_NAMES

TASK = "Pick up the cube and place it in the bowl"
CAMERAS = ("wrist", "overhead")


def _stats(values: np.ndarray) -> dict:
    return {"min": values.min(0).tolist(), "max": values.max(0).tolist(), "mean": values.mean(0).tolist(),
            "std": values.std(0).tolist(), "count": [len(values)]}


def _image_stats(frames: np.ndarray) -> dict:
    pixels = frames.astype(np.float64) / 255.0  # (T, H, W, C) -> per-channel (C, 1, 1)
    per_channel = pixels.reshape(-1, pixels.shape[-1])

    def channel(values):
        return [[[float(v)]] for v in values]

    return {"min": channel(per_channel.min(0)), "max": channel(per_channel.max(0)),
            "mean": channel(per_channel.mean(0)), "std": channel(per_channel.std(0)), "count": [len(frames)]}


@contextmanager
def scheduling_kept():
    """Put this thread back on its scheduling policy after the block.

    lerobot's encode_video_frames, called here in the test process's main thread (lerobot's own
    datasets encode on a thread of their own), runs SVT-AV1, which makes the calling thread SCHED_FIFO
    when it may (as root) and leaves it so: every process the tests start afterwards inherits it, and
    a busy one (the load of the sim-time tests) then starves the suite for minutes.
    """
    policy, parameters = os.sched_getscheduler(0), os.sched_getparam(0)
    try:
        yield
    finally:
        if os.sched_getscheduler(0) != policy:
            os.sched_setscheduler(0, policy, parameters)


def write_v21_dataset(root: Path, episodes: int = 2, frames_per_episode: int = 12, height: int = 48,
                      width: int = 64, fps: int = 30) -> Path:
    from lerobot.datasets.video_utils import encode_video_frames

    rng = np.random.default_rng(0)
    joint_feature = {"dtype": "float32", "shape": [6], "names": list(LEROBOT_FEATURE_NAMES)}
    features = {"action": joint_feature, "observation.state": joint_feature}
    for camera in CAMERAS:
        features[f"observation.images.{camera}"] = {
            "dtype": "video", "shape": [height, width, 3], "names": ["height", "width", "channels"],
            "info": {"video.height": height, "video.width": width, "video.codec": "av1",
                     "video.pix_fmt": "yuv420p", "video.is_depth_map": False, "video.fps": fps,
                     "video.channels": 3, "has_audio": False},
        }
    for name, dtype in (("timestamp", "float32"), ("frame_index", "int64"), ("episode_index", "int64"),
                        ("index", "int64"), ("task_index", "int64")):
        features[name] = {"dtype": dtype, "shape": [1], "names": None}

    (root / "meta").mkdir(parents=True, exist_ok=True)
    episode_lines, stats_lines = [], []
    index = 0
    for episode in range(episodes):
        length = frames_per_episode
        state = rng.uniform([-30, -90, -60, -80, -90, 0], [30, 40, 90, 80, 90, 100], (length, 6)).astype(np.float32)
        action = (state + rng.normal(0, 1, state.shape)).astype(np.float32)
        frame_table = pd.DataFrame({
            "action": list(action), "observation.state": list(state),
            "timestamp": np.arange(length, dtype=np.float32) / fps,
            "frame_index": np.arange(length), "episode_index": np.full(length, episode),
            "index": np.arange(index, index + length), "task_index": np.zeros(length, dtype=np.int64),
        })
        data_path = root / f"data/chunk-000/episode_{episode:06d}.parquet"
        data_path.parent.mkdir(parents=True, exist_ok=True)
        frame_table.to_parquet(data_path, index=False)
        episode_stats = {"action": _stats(action), "observation.state": _stats(state)}
        for camera in CAMERAS:
            key = f"observation.images.{camera}"
            # A colour ramp over time, distinct per camera, so decoded frames are recognisable.
            frames = np.zeros((length, height, width, 3), np.uint8)
            for t in range(length):
                frames[t, ..., 0] = 20 * t % 255
                frames[t, ..., 1] = 100 if camera == "wrist" else 200
                frames[t, :, : width // 2, 2] = 255
            staging = root / "staging" / key / str(episode)
            staging.mkdir(parents=True, exist_ok=True)
            for t, frame in enumerate(frames):
                Image.fromarray(frame).save(staging / f"frame-{t:06d}.png")
            with scheduling_kept():
                encode_video_frames(staging, root / f"videos/chunk-000/{key}/episode_{episode:06d}.mp4", fps)
            episode_stats[key] = _image_stats(frames)
        for name in ("timestamp", "frame_index", "episode_index", "index", "task_index"):
            episode_stats[name] = _stats(frame_table[name].to_numpy(dtype=np.float64)[:, None])
        episode_lines.append({"episode_index": episode, "tasks": [TASK], "length": length})
        stats_lines.append({"episode_index": episode, "stats": episode_stats})
        index += length

    import shutil

    shutil.rmtree(root / "staging")
    info = {
        "codebase_version": "v2.1", "robot_type": "so101_follower", "total_episodes": episodes,
        "total_frames": index, "total_tasks": 1, "total_videos": episodes * len(CAMERAS), "total_chunks": 1,
        "chunks_size": 1000, "fps": fps, "splits": {"train": f"0:{episodes}"},
        "data_path": "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
        "video_path": "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4",
        "features": features,
    }
    (root / "meta" / "info.json").write_text(json.dumps(info, indent=2))
    (root / "meta" / "tasks.jsonl").write_text(json.dumps({"task_index": 0, "task": TASK}) + "\n")
    (root / "meta" / "episodes.jsonl").write_text("".join(json.dumps(line) + "\n" for line in episode_lines))
    (root / "meta" / "episodes_stats.jsonl").write_text("".join(json.dumps(line) + "\n" for line in stats_lines))
    return root
