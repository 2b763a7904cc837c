"""Tiny ACT checkpoints built offline and saved the way lerobot saves real ones."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.policies.act.configuration_act import ACTConfig
from lerobot.policies.act.modeling_act import ACTPolicy
from lerobot.policies.factory import make_pre_post_processors

# Degrees and gripper percent, about what the hub dataset holds.
STATE_MEAN = [0.0, -20.0, 30.0, 40.0, 0.0, 20.0]
STATE_STD = [20.0, 25.0, 25.0, 20.0, 30.0, 15.0]


# The sim's object state (so101_driver.environment_state), about where the sim puts things: metres, a quaternion.
ENVIRONMENT_MEAN = [0.21, 0.0, 0.0125, 1.0, 0.0, 0.0, 0.0, 0.21, 0.1, 0.0]
ENVIRONMENT_STD = [0.02, 0.02, 0.01, 0.01, 0.01, 0.01, 0.1, 0.02, 0.02, 0.01]


def tiny_act_checkpoint(path: Path, cameras=("wrist", "overhead"), image_shape=(3, 64, 64), chunk_size=20,
                        state_dim=6, action_dim=6, seed=0, action_mean=STATE_MEAN, action_std=STATE_STD,
                        value_range: tuple[list[float], list[float]] | None = None,
                        environment_state: bool = False) -> Path:
    """`action_mean`, `action_std`: the action's normalization stats (the state's by default);
    `value_range`: (min, max) per joint of both, as lerobot's dataset stats carry them;
    `environment_state`: the policy takes the sim's object state (observation.environment_state)."""
    torch.manual_seed(seed)
    input_features = {"observation.state": PolicyFeature(FeatureType.STATE, (state_dim,))}
    if environment_state:
        input_features["observation.environment_state"] = PolicyFeature(FeatureType.ENV, (len(ENVIRONMENT_MEAN),))
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
        "action": {"mean": torch.tensor(action_mean[:action_dim], dtype=torch.float32),
                   "std": torch.tensor(action_std[:action_dim], dtype=torch.float32)},
    }
    if value_range is not None:
        for key in ("observation.state", "action"):
            stats[key].update(min=torch.tensor(value_range[0]), max=torch.tensor(value_range[1]))
    for camera in cameras:
        stats[f"observation.images.{camera}"] = {"mean": torch.full((3, 1, 1), 0.45), "std": torch.full((3, 1, 1), 0.25)}
    if environment_state:
        stats["observation.environment_state"] = {"mean": torch.tensor(ENVIRONMENT_MEAN),
                                                  "std": torch.tensor(ENVIRONMENT_STD)}
    preprocessor, postprocessor = make_pre_post_processors(config, dataset_stats=stats)
    path.mkdir(parents=True, exist_ok=True)
    policy.save_pretrained(path)
    preprocessor.save_pretrained(path)
    postprocessor.save_pretrained(path)
    return path


TINY_TEXT = dict(model_type="llama", hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=256)
TINY_VISION = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=32,
                   patch_size=8)


def tiny_vlm(path: Path, text_config: dict = TINY_TEXT, vision_config: dict = TINY_VISION, scale_factor: int = 2,
             vocab_size: int | None = None) -> Path:
    """A SmolVLM-shaped VLM config, tokenizer and processor, made offline (no hub download).

    The configs default to a tiny model; benchmarks pass SmolVLM2-500M's to get the real architecture
    (random weights). The word-level tokenizer knows the task's words; `vocab_size` widens the
    embedding table to the real one's size.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (
        PreTrainedTokenizerFast,
        SmolVLMConfig,
        SmolVLMImageProcessor,
        SmolVLMProcessor,
        SmolVLMVideoProcessor,
    )

    words = ["<pad>", "<unk>", "<|im_start|>", "<end_of_utterance>", "<image>", "<fake_token_around_image>",
             "<global-img>", "Pick", "up", "the", "cube", "and", "place", "it", "in", "bowl", "\n"]
    vocab = {word: index for index, word in enumerate(words)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", unk_token="<unk>", bos_token="<|im_start|>",
        eos_token="<end_of_utterance>",
        extra_special_tokens={"image_token": "<image>", "fake_image_token": "<fake_token_around_image>",
                              "global_image_token": "<global-img>", "end_of_utterance_token": "<end_of_utterance>"},
    )
    path.mkdir(parents=True, exist_ok=True)
    SmolVLMProcessor(image_processor=SmolVLMImageProcessor(size={"longest_edge": 64}), tokenizer=tokenizer,
                     video_processor=SmolVLMVideoProcessor(), image_seq_len=4).save_pretrained(path)
    SmolVLMConfig(
        text_config=dict(text_config, vocab_size=vocab_size or len(words)), vision_config=dict(vision_config),
        scale_factor=scale_factor, image_token_id=vocab["<image>"],
    ).save_pretrained(path)
    return path


def tiny_smolvla_checkpoint(path: Path, vlm: Path, cameras=("wrist", "overhead"), image_shape=(3, 64, 64),
                            chunk_size=10, seed=0, vlm_weights: bool = False) -> Path:
    """SmolVLA on the tiny VLM, saved as lerobot saves it.

    `vlm_weights`: as a checkpoint fine-tuned from smolvla_base is (load_vlm_weights true), so lerobot
    loads the VLM from its weights in bf16 before the checkpoint's own; the tiny VLM gets random
    weights for that. Otherwise the VLM is built from its config, in fp32.
    """
    from lerobot.policies.smolvla.configuration_smolvla import SmolVLAConfig
    from lerobot.policies.smolvla.modeling_smolvla import SmolVLAPolicy

    torch.manual_seed(seed)
    input_features = {"observation.state": PolicyFeature(FeatureType.STATE, (6,))}
    for camera in cameras:
        input_features[f"observation.images.{camera}"] = PolicyFeature(FeatureType.VISUAL, tuple(image_shape))
    config = SmolVLAConfig(
        input_features=input_features, output_features={"action": PolicyFeature(FeatureType.ACTION, (6,))},
        vlm_model_name=str(vlm), load_vlm_weights=False, num_vlm_layers=2, chunk_size=chunk_size,
        n_action_steps=chunk_size, resize_imgs_with_padding=(32, 32), num_steps=2, tokenizer_max_length=16,
        device="cpu",
    )
    policy = SmolVLAPolicy(config)
    stats = {key: {"mean": torch.tensor(STATE_MEAN), "std": torch.tensor(STATE_STD)}
             for key in ("observation.state", "action")}
    for camera in cameras:
        stats[f"observation.images.{camera}"] = {"mean": torch.full((3, 1, 1), 0.45), "std": torch.full((3, 1, 1), 0.25)}
    preprocessor, postprocessor = make_pre_post_processors(config, dataset_stats=stats)
    path.mkdir(parents=True, exist_ok=True)
    for saveable in (policy, preprocessor, postprocessor):
        saveable.save_pretrained(path)
    if vlm_weights:
        from transformers import SmolVLMConfig, SmolVLMForConditionalGeneration

        SmolVLMForConditionalGeneration(SmolVLMConfig.from_pretrained(vlm)).save_pretrained(vlm)
        saved = json.loads((path / "config.json").read_text())
        (path / "config.json").write_text(json.dumps(dict(saved, load_vlm_weights=True), indent=4))
    return path
