"""Tiny ACT checkpoints built offline and saved the way lerobot saves real ones."""

from __future__ import annotations

from pathlib import Path

import torch
from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.policies.act.configuration_act import ACTConfig
from lerobot.policies.act.modeling_act import ACTPolicy
from lerobot.policies.factory import make_pre_post_processors

# Degrees and gripper percent, about what the hub dataset holds.
STATE_MEAN = [0.0, -20.0, 30.0, 40.0, 0.0, 20.0]
STATE_STD = [20.0, 25.0, 25.0, 20.0, 30.0, 15.0]


def tiny_act_checkpoint(path: Path, cameras=("wrist", "overhead"), image_shape=(3, 64, 64), chunk_size=20,
                        state_dim=6, action_dim=6, seed=0) -> Path:
    torch.manual_seed(seed)
    input_features = {"observation.state": PolicyFeature(FeatureType.STATE, (state_dim,))}
    for camera in cameras:
        input_features[f"observation.images.{camera}"] = PolicyFeature(FeatureType.VISUAL, tuple(image_shape))
    config = ACTConfig(
        input_features=input_features,
        output_features={"action": PolicyFeature(FeatureType.ACTION, (action_dim,))},
        chunk_size=chunk_size, n_action_steps=chunk_size, dim_model=32, n_heads=2, dim_feedforward=64,
        n_encoder_layers=1, n_decoder_layers=1, use_vae=False, pretrained_backbone_weights=None, device="cpu",
    )
    policy = ACTPolicy(config)
    stats = {
        "observation.state": {"mean": torch.tensor(STATE_MEAN[:state_dim]), "std": torch.tensor(STATE_STD[:state_dim])},
        "action": {"mean": torch.tensor(STATE_MEAN[:action_dim]), "std": torch.tensor(STATE_STD[:action_dim])},
    }
    for camera in cameras:
        stats[f"observation.images.{camera}"] = {"mean": torch.full((3, 1, 1), 0.45), "std": torch.full((3, 1, 1), 0.25)}
    preprocessor, postprocessor = make_pre_post_processors(config, dataset_stats=stats)
    path.mkdir(parents=True, exist_ok=True)
    policy.save_pretrained(path)
    preprocessor.save_pretrained(path)
    postprocessor.save_pretrained(path)
    return path
