"""`so101 replay`: a bag's cameras and joint states through the policy, open loop, against its recorded actions.

Frames come from the bag as `so101 dataset from-bags` reads them (a frame per control tick, with the
joint state and images of its stamp); every `stride` frames the policy node's core (ChunkPredictor, the same
loading, conversion and units) predicts a chunk, which is compared point by point with the actions
the driver recorded at the same ticks. As fast as the policy runs, seeded: two replays of one bag
give identical chunks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from so101_driver.joint_model import LEROBOT_FEATURE_NAMES, JointModel
from so101_policy.checkpoint import LoadedPolicy
from so101_policy.observation import IMAGE_PREFIX, STATE_KEY, Observation
from so101_policy.predictor import ChunkPredictor
from training.bag_dataset import bag_episodes, bag_joint_model
from training.configs import BagDatasetConfig


@dataclass
class ReplayReport:
    bag: str
    frames: int
    chunks: np.ndarray  # (n_chunks, chunk_len, 6), LeRobot units
    chunk_frames: list[int]  # the frame each chunk was predicted at
    errors: np.ndarray  # (n_points, 6): |predicted - recorded|, LeRobot units
    predicted: np.ndarray  # (frames, 6): the chunk point in force at each frame, NaN before the first
    recorded: np.ndarray  # (frames, 6)

    def summary(self) -> dict:
        return {"bag": self.bag, "frames": self.frames, "chunks": len(self.chunk_frames),
                **error_summary(self.errors)}


def error_summary(errors: np.ndarray) -> dict:
    """Per-joint mean |predicted - recorded| of (n_points, 6) errors in LeRobot units."""
    mae = errors.mean(axis=0) if len(errors) else np.full(len(LEROBOT_FEATURE_NAMES), np.nan)
    return {"mean_abs_error": {name: round(float(value), 4) for name, value in zip(LEROBOT_FEATURE_NAMES, mae)},
            "units": "degrees; gripper 0..100 (LeRobot units)"}


def replay_bag(bag: Path, loaded: LoadedPolicy, joint_model: JointModel | None, cameras: tuple[str, ...], task: str,
               fps: float = 30.0, stride: int | None = None, seed: int = 0) -> list[ReplayReport]:
    """One report per episode of the bag; `joint_model` None takes the arm the bag recorded."""
    joint_model = bag_joint_model(Path(bag), joint_model)
    predictor = ChunkPredictor(loaded, joint_model, task)
    stride = stride or predictor.actions_per_chunk
    reports = []
    for frames in bag_episodes(Path(bag), joint_model, BagDatasetConfig(fps=int(fps), cameras=cameras)):
        torch.manual_seed(seed)  # SmolVLA samples noise: the same seed gives the same chunks
        predictor.reset()
        recorded = np.stack([frame["action"] for frame in frames]).astype(np.float64)
        predicted = np.full_like(recorded, np.nan)
        chunks, chunk_frames, errors = [], [], []
        for start in range(0, len(frames), stride):
            frame = frames[start]
            values = {STATE_KEY: frame[STATE_KEY]}
            values.update({IMAGE_PREFIX + c: frame[IMAGE_PREFIX + c] for c in cameras})
            radians, _ = predictor.predict(Observation(stamp=start / fps, values=values), 0.0, fps)
            chunk = np.stack([joint_model.to_lerobot(row) for row in radians])
            horizon = min(len(chunk), len(frames) - start)
            errors.append(np.abs(chunk[:horizon] - recorded[start:start + horizon]))
            predicted[start:start + min(stride, horizon)] = chunk[:min(stride, horizon)]
            chunks.append(chunk)
            chunk_frames.append(start)
        reports.append(ReplayReport(str(bag), len(frames), np.stack(chunks), chunk_frames,
                                    np.concatenate(errors), predicted, recorded))
    return reports


def plot_replay(report: ReplayReport, path: Path, fps: float = 30.0) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 3, figsize=(12, 6), dpi=100, sharex=True)
    seconds = np.arange(report.frames) / fps
    for joint, axis in enumerate(axes.flat):
        axis.plot(seconds, report.recorded[:, joint], label="recorded action", color="black", linewidth=1.5)
        axis.plot(seconds, report.predicted[:, joint], label="replayed policy", color="tab:orange", linewidth=1.2)
        for start in report.chunk_frames:
            axis.axvline(start / fps, color="tab:orange", alpha=0.15, linewidth=0.8)
        axis.set_title(LEROBOT_FEATURE_NAMES[joint])
        axis.grid(alpha=0.3)
    for axis in axes[1]:
        axis.set_xlabel("s")
    axes[0, 0].legend(loc="best", fontsize=8)
    figure.suptitle(f"{Path(report.bag).name}: open-loop replay (faint lines: a new chunk)")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)


def write_reports(reports: list[ReplayReport], output: Path) -> Path:
    output.mkdir(parents=True, exist_ok=True)
    summaries = []
    for index, report in enumerate(reports):
        name = f"{Path(report.bag).name}_{index}"
        plot_replay(report, output / f"{name}.png")
        summaries.append(report.summary() | {"plot": f"{name}.png"})
    path = output / "replay.json"
    path.write_text(json.dumps(summaries, indent=2) + "\n")
    return path
