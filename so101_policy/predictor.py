"""One observation in, one chunk of joint targets (radians) out, through lerobot's pipeline."""

from __future__ import annotations

import time

import numpy as np
import torch
from lerobot.policies.utils import prepare_observation_for_inference

from so101_driver.joint_model import JointModel

from .checkpoint import LoadedPolicy
from .compatibility import checkpoint_cameras, expected_image_size
from .observation import IMAGE_PREFIX, Observation

ROBOT_TYPE = "so101_follower"


class FrameSizeError(ValueError):
    """Frames of a size the checkpoint was not trained on, with nothing in its pipeline to resize them."""


class ChunkPredictor:
    def __init__(self, loaded: LoadedPolicy, joint_model: JointModel, task: str, full_chunk: bool = False):
        """`full_chunk`: publish all chunk_size predictions (temporal ensembling), not n_action_steps."""
        self.loaded = loaded
        self.joint_model = joint_model
        self.task = task
        config = loaded.config
        self.actions_per_chunk = int(config.chunk_size if full_chunk else config.n_action_steps)
        # SmolVLA resizes with padding inside the model; an ACT checkpoint resizes only if its
        # saved preprocessor has a resize step.
        self.resizes_images = loaded.type == "smolvla" or any(
            "resize" in type(step).__name__.lower() for step in loaded.preprocessor.steps
        )

    def check_frame_sizes(self, observation: Observation) -> None:
        if self.resizes_images:
            return
        for camera in checkpoint_cameras(self.loaded.config):
            expected = expected_image_size(self.loaded.config, camera)
            found = observation.values[IMAGE_PREFIX + camera].shape[:2]
            if tuple(found) != expected:
                raise FrameSizeError(
                    f"camera '{camera}' sends {found[1]}x{found[0]} frames; this checkpoint was trained on "
                    f"{expected[1]}x{expected[0]} and does not resize. Set the camera (or sim) resolution to match."
                )

    @torch.inference_mode()
    def predict(self, observation: Observation) -> tuple[np.ndarray, float]:
        """Joint targets in radians, shape (actions_per_chunk, 6), and the seconds it took."""
        started = time.perf_counter()
        self.check_frame_sizes(observation)
        batch = prepare_observation_for_inference(dict(observation.values), self.loaded.device, self.task,
                                                  ROBOT_TYPE)
        batch = self.loaded.preprocessor(batch)
        actions = self.loaded.policy.predict_action_chunk(batch)
        actions = self.loaded.postprocessor(actions)
        lerobot_units = actions[0, : self.actions_per_chunk].float().cpu().numpy().astype(np.float64)
        radians = np.stack([self.joint_model.to_radians(row) for row in lerobot_units])
        return radians, time.perf_counter() - started

    def reset(self) -> None:
        self.loaded.policy.reset()
