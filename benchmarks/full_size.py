"""Full-size ACT and SmolVLA with random weights, built offline and saved as lerobot saves checkpoints.

ACT as in the reference run (ResNet18 per camera, chunk 50: 52M parameters). SmolVLA with
smolvla_base's architecture: SmolVLM2-500M's vision tower (SigLIP base, 512 px, patch 16) and
text model (SmolLM2-360M shape: 960 wide, 15 heads, 5 KV heads, vocabulary 49,280) cut to 16
layers as SmolVLA does, and its action expert. No hub: the VLM config is written here, weights are
random, the tokenizer is word-level (the task's words), so compute matches and outputs do not.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.policies.factory import make_pre_post_processors

sys.path.insert(0, str(Path(__file__).parents[1] / "test"))
from tiny_policies import tiny_vlm  # noqa: E402

CAMERAS = ("wrist", "overhead")
SMOLVLM2_500M_TEXT = dict(model_type="llama", hidden_size=960, intermediate_size=2560, num_hidden_layers=32,
                          num_attention_heads=15, num_key_value_heads=5, head_dim=64, max_position_embeddings=8192,
                          rope_theta=100000.0, rms_norm_eps=1e-5)
SMOLVLM2_500M_VISION = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                            image_size=512, patch_size=16)
SMOLVLM2_VOCAB = 49280


def _features(cameras, image_shape) -> dict[str, PolicyFeature]:
    features = {"observation.state": PolicyFeature(FeatureType.STATE, (6,))}
    features.update({f"observation.images.{c}": PolicyFeature(FeatureType.VISUAL, tuple(image_shape)) for c in cameras})
    return features


def _stats(cameras) -> dict:
    stats = {key: {"mean": torch.zeros(6), "std": torch.full((6,), 30.0)} for key in ("observation.state", "action")}
    stats.update({f"observation.images.{c}": {"mean": torch.full((3, 1, 1), 0.45), "std": torch.full((3, 1, 1), 0.25)}
                  for c in cameras})
    return stats


def _built(path: Path) -> bool:
    """Benchmarks share one build per workdir (SmolVLA takes a minute and 1.7 GB)."""
    return (path / "model.safetensors").is_file() and (path / "policy_postprocessor.json").is_file()


def _save(policy, config, path: Path, cameras) -> Path:
    preprocessor, postprocessor = make_pre_post_processors(config, dataset_stats=_stats(cameras))
    path.mkdir(parents=True, exist_ok=True)
    for saveable in (policy, preprocessor, postprocessor):
        saveable.save_pretrained(path)
    print(f"full {config.type}: {sum(p.numel() for p in policy.parameters()) / 1e6:.1f}M parameters -> {path}")
    return path


def full_act_checkpoint(path: Path, size: int = 224, cameras=CAMERAS) -> Path:
    from lerobot.policies.act.configuration_act import ACTConfig
    from lerobot.policies.act.modeling_act import ACTPolicy

    if _built(path):
        return path
    config = ACTConfig(input_features=_features(cameras, (3, size, size)),
                       output_features={"action": PolicyFeature(FeatureType.ACTION, (6,))},
                       chunk_size=50, n_action_steps=50, pretrained_backbone_weights=None, device="cpu")
    return _save(ACTPolicy(config), config, path, cameras)


def smolvlm2_500m_architecture(path: Path) -> Path:
    if (path / "config.json").is_file():
        return path
    return tiny_vlm(path, SMOLVLM2_500M_TEXT, SMOLVLM2_500M_VISION, scale_factor=4, vocab_size=SMOLVLM2_VOCAB)


def full_smolvla_checkpoint(path: Path, vlm: Path, cameras=CAMERAS, size: int = 224) -> Path:
    """SmolVLA with smolvla_base's defaults (16 VLM layers, 512 px padded images, 10 flow steps, chunk 50)."""
    from lerobot.policies.smolvla.configuration_smolvla import SmolVLAConfig
    from lerobot.policies.smolvla.modeling_smolvla import SmolVLAPolicy

    if _built(path):
        return path
    config = SmolVLAConfig(input_features=_features(cameras, (3, size, size)),
                           output_features={"action": PolicyFeature(FeatureType.ACTION, (6,))},
                           vlm_model_name=str(vlm), load_vlm_weights=False, device="cpu")
    return _save(SmolVLAPolicy(config), config, path, cameras)
