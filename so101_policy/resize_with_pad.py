"""Resize camera images to a fixed size keeping their aspect ratio, padding the rest.

A processor step in the checkpoint's saved preprocessor, so training and inference apply the
same resize: a 640x480 camera and a 224x224 sim camera both reach the model as 224x224 with the
scene undistorted. Registered with lerobot's ProcessorStepRegistry under `so101_resize_with_pad`;
importing this module is what lets `PolicyProcessorPipeline.from_pretrained` rebuild it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from lerobot.configs import PipelineFeatureType, PolicyFeature
from lerobot.configs.types import FeatureType
from lerobot.processor import ObservationProcessorStep, ProcessorStepRegistry

IMAGE_PREFIX = "observation.images."
REGISTRY_NAME = "so101_resize_with_pad"


def resize_with_pad(images: torch.Tensor, height: int, width: int, pad_value: float = 0.0) -> torch.Tensor:
    """(..., C, H, W) float images -> (..., C, height, width), centred, aspect ratio kept."""
    if images.shape[-2:] == (height, width):
        return images
    leading = images.shape[:-3]
    batch = images.reshape(-1, *images.shape[-3:])
    in_height, in_width = batch.shape[-2:]
    scale = min(height / in_height, width / in_width)
    new_height = max(1, round(in_height * scale))
    new_width = max(1, round(in_width * scale))
    # Antialiasing matters when shrinking 640x480 camera frames by ~3x: without it thin edges alias.
    resized = F.interpolate(batch, size=(new_height, new_width), mode="bilinear", align_corners=False,
                            antialias=new_height < in_height)
    top = (height - new_height) // 2
    left = (width - new_width) // 2
    padded = F.pad(resized, (left, width - new_width - left, top, height - new_height - top), value=pad_value)
    return padded.reshape(*leading, *padded.shape[-3:])


@dataclass
@ProcessorStepRegistry.register(name=REGISTRY_NAME)
class ResizeWithPadStep(ObservationProcessorStep):
    """Every `observation.images.*` (float, channel-first, 0..1) to `height` x `width`."""

    height: int = 224
    width: int = 224
    pad_value: float = 0.0
    cameras: list[str] = field(default_factory=list)  # empty: every camera

    def _applies_to(self, key: str) -> bool:
        return key.startswith(IMAGE_PREFIX) and (not self.cameras or key.removeprefix(IMAGE_PREFIX) in self.cameras)

    def observation(self, observation: dict) -> dict:
        for key, value in observation.items():
            if self._applies_to(key) and isinstance(value, torch.Tensor):
                if not value.is_floating_point():
                    raise TypeError(f"{REGISTRY_NAME}: '{key}' must be float images in 0..1 (channel-first), "
                                    f"found {value.dtype}; place this step after the image conversion")
                observation[key] = resize_with_pad(value, self.height, self.width, self.pad_value)
        return observation

    def get_config(self) -> dict:
        return {"height": self.height, "width": self.width, "pad_value": self.pad_value, "cameras": list(self.cameras)}

    def transform_features(
        self, features: dict[PipelineFeatureType, dict[str, PolicyFeature]]
    ) -> dict[PipelineFeatureType, dict[str, PolicyFeature]]:
        observation = features.get(PipelineFeatureType.OBSERVATION, {})
        for key, feature in list(observation.items()):
            if self._applies_to(key) and feature.type is FeatureType.VISUAL:
                observation[key] = PolicyFeature(type=feature.type, shape=(feature.shape[0], self.height, self.width))
        return features
