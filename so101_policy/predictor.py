"""One observation in, one chunk of joint targets (radians) out, through lerobot's pipeline."""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from lerobot.policies.utils import prepare_observation_for_inference

from so101_driver.environment_state import ENVIRONMENT_STATE_KEY
from so101_driver.joint_model import ROBOT_TYPE, JointModel

from .checkpoint import LoadedPolicy
from .compatibility import checkpoint_cameras, expected_image_size, takes_environment_state
from .observation import IMAGE_PREFIX, STATE_KEY, Observation
from .resize_with_pad import ResizeWithPadStep
from .torch_compile import CompiledPolicy


class FrameSizeError(ValueError):
    """Frames of another size than the checkpoint was trained on."""


class ChunkPredictor:
    def __init__(self, loaded: LoadedPolicy, joint_model: JointModel, task: str, full_chunk: bool = False,
                 training_frame_sizes: dict[str, tuple[int, int]] | None = None):
        """`full_chunk`: publish all chunk_size predictions (temporal ensembling), not n_action_steps.

        `training_frame_sizes`: camera -> (height, width) of the training dataset's frames, where
        its metadata is on this machine (dataset_contract); each camera must send that size.
        """
        self.loaded = loaded
        self.joint_model = joint_model
        self.task = task
        config = loaded.config
        self.actions_per_chunk = int(config.chunk_size if full_chunk else config.n_action_steps)
        # SmolVLA resizes with padding inside the model; an ACT checkpoint resizes only if its
        # saved preprocessor has a resize step.
        self.resizes_images = loaded.type == "smolvla" or any(
            isinstance(step, ResizeWithPadStep) for step in loaded.preprocessor.steps
        )
        self._last_raw: tuple[float, torch.Tensor] | None = None  # RTC: the last chunk, normalized
        cameras = checkpoint_cameras(config)
        # What the model takes, and nothing more: an observation's other cameras would change the
        # batch a compiled model was compiled for, and it would compile again mid-episode.
        self._inputs = (STATE_KEY, *(IMAGE_PREFIX + camera for camera in cameras),
                        *((ENVIRONMENT_STATE_KEY,) if takes_environment_state(config) else ()))
        if training_frame_sizes:
            # What the model learned from, before any resize in its pipeline: a camera with another
            # resolution (even one the pipeline resizes) is not what it was trained on.
            self.frame_sizes = {camera: training_frame_sizes[camera] for camera in cameras
                                if camera in training_frame_sizes}
            self.frame_sizes_from = "its training data"
        else:
            # A compiled SmolVLA resizes in its model too, but compiling again for another size would take
            # minutes mid-episode: it takes the size it was compiled for (warm_up), its training data's.
            fixed = not self.resizes_images or isinstance(loaded.policy, CompiledPolicy)
            self.frame_sizes = {c: expected_image_size(config, c) for c in cameras} if fixed else {}
            self.frame_sizes_from = "its model" if not self.resizes_images else "its model, compiled for that size"

    def check_frame_size(self, camera: str, frame: np.ndarray) -> None:
        expected = self.frame_sizes.get(camera)
        if expected is not None and tuple(frame.shape[:2]) != expected:
            found = frame.shape[:2]
            raise FrameSizeError(
                f"camera '{camera}' sends {found[1]}x{found[0]} frames; the checkpoint was trained on "
                f"{expected[1]}x{expected[0]} ({self.frame_sizes_from}). Set the camera (or sim) resolution to match."
            )

    def check_frame_sizes(self, observation: Observation) -> None:
        for camera in self.frame_sizes:
            self.check_frame_size(camera, observation.values[IMAGE_PREFIX + camera])

    @property
    def real_time_chunking(self) -> bool:
        return self.loaded.real_time_chunking

    def _policy_arguments(self, observation: Observation, expected_latency: float, fps: float) -> dict:
        """predict_action_chunk's arguments besides the batch. With RTC, lerobot's RTC inputs: the steps
        inference will take, and the previous chunk from this observation's time on, in the policy's own
        (normalized) action space."""
        if not self.real_time_chunking:
            return {}
        if self._last_raw is None:
            return {"inference_delay": 0, "prev_chunk_left_over": None}
        stamp, raw = self._last_raw
        executed = max(0, round((observation.stamp - stamp) * fps))
        left_over = raw[:, executed:]
        if left_over.shape[1] == 0:
            return {"inference_delay": 0, "prev_chunk_left_over": None}
        return {"inference_delay": min(math.ceil(expected_latency * fps), left_over.shape[1]),
                "prev_chunk_left_over": left_over}

    def warm_up(self) -> float:
        """Two chunks from a blank observation of the checkpoint's shapes, then a reset; the seconds they took.

        What a backend builds at its first chunks is built here, at start-up: torch.compile compiles at
        the first call and records its CUDA graphs at the second, cuda_graph records at the first. A
        backend that cannot compute stops the start-up, not the first episode. The chunks go nowhere:
        their units are not checked, as a blank observation's chunk means nothing.
        """
        config = self.loaded.config
        values = {key: np.zeros(config.input_features[key].shape, np.float32)
                  for key in (STATE_KEY, ENVIRONMENT_STATE_KEY) if key in config.input_features}
        for camera in checkpoint_cameras(config):
            height, width = self.frame_sizes.get(camera) or expected_image_size(config, camera)
            values[IMAGE_PREFIX + camera] = np.zeros((height, width, 3), np.uint8)
        observation = Observation(stamp=0.0, values=values)
        started = time.perf_counter()
        self.reset()
        for _ in range(2):
            with self._grad_mode():
                chunk = self._model_chunk(observation, self._policy_arguments(observation, 0.0, 1.0))
                chunk.cpu()  # waits for a GPU to finish it
            self.reset()
        return time.perf_counter() - started

    def predict(self, observation: Observation, expected_latency: float = 0.0,
                fps: float = 30.0) -> tuple[np.ndarray, float]:
        """Joint targets in radians, shape (actions_per_chunk, 6), and the seconds it took.

        With real-time chunking, `expected_latency` (s) and `fps` say how much of the previous
        chunk will have run by the time this one arrives.
        """
        with self._grad_mode():
            return self._predict(observation, expected_latency, fps)

    def _grad_mode(self):
        # RTC's guidance takes gradients inside, which inference_mode forbids and no_grad allows.
        return torch.no_grad() if self.real_time_chunking else torch.inference_mode()

    def _predict(self, observation: Observation, expected_latency: float, fps: float) -> tuple[np.ndarray, float]:
        started = time.perf_counter()
        self.check_frame_sizes(observation)
        actions = self._model_chunk(observation, self._policy_arguments(observation, expected_latency, fps))
        if self.real_time_chunking:
            self._last_raw = (observation.stamp, actions[:, : self.actions_per_chunk].clone())
        actions = self.loaded.postprocessor(actions)
        lerobot_units = actions[0, : self.actions_per_chunk].float().cpu().numpy().astype(np.float64)
        radians = self.joint_model.to_radians(lerobot_units)
        return radians, time.perf_counter() - started

    def _model_chunk(self, observation: Observation, kwargs: dict) -> torch.Tensor:
        """The policy's chunk, in its own units, through lerobot's preprocessor."""
        batch = prepare_observation_for_inference({key: observation.values[key] for key in self._inputs},
                                                  self.loaded.device, self.task, ROBOT_TYPE)
        return self.loaded.policy.predict_action_chunk(self.loaded.preprocessor(batch), **kwargs)

    def reset(self) -> None:
        self.loaded.policy.reset()
        self._last_raw = None
