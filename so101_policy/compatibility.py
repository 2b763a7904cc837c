"""Start-up checks of a checkpoint against the ROS side: cameras, state and action, units."""

from __future__ import annotations

from lerobot.configs.policies import PreTrainedConfig
from lerobot.configs.types import FeatureType

from so101_driver.joint_model import JOINT_NAMES, LEROBOT_FEATURE_NAMES

from .checkpoint import CheckpointError
from .observation import IMAGE_PREFIX, STATE_KEY

ACTION_KEY = "action"


def checkpoint_cameras(config: PreTrainedConfig) -> tuple[str, ...]:
    """Dataset camera names the checkpoint sees: ("overhead", "wrist") for observation.images.*."""
    return tuple(sorted(key.removeprefix(IMAGE_PREFIX) for key, feature in config.input_features.items()
                        if feature.type is FeatureType.VISUAL))


def expected_image_size(config: PreTrainedConfig, camera: str) -> tuple[int, int]:
    """(height, width) of the frames this camera had in training."""
    shape = config.input_features[IMAGE_PREFIX + camera].shape
    return int(shape[1]), int(shape[2])


def check_compatibility(config: PreTrainedConfig, cameras: tuple[str, ...]) -> None:
    """Stop with what was expected and what is there when the checkpoint does not fit the graph."""
    problems = []
    wanted = checkpoint_cameras(config)
    if tuple(sorted(cameras)) != wanted:
        problems.append(
            f"cameras: the checkpoint was trained on {list(wanted)}, the node is given {sorted(cameras)} "
            "(set cameras:=name=/topic,... and exclude_cameras:=... to match)"
        )
    state = config.input_features.get(STATE_KEY)
    if state is None or tuple(state.shape) != (len(JOINT_NAMES),):
        found = None if state is None else tuple(state.shape)
        problems.append(f"{STATE_KEY}: expected shape ({len(JOINT_NAMES)},) for {list(LEROBOT_FEATURE_NAMES)}, "
                        f"found {found}")
    action = config.output_features.get(ACTION_KEY)
    if action is None or tuple(action.shape) != (len(JOINT_NAMES),):
        found = None if action is None else tuple(action.shape)
        problems.append(f"{ACTION_KEY}: expected shape ({len(JOINT_NAMES)},) for {list(LEROBOT_FEATURE_NAMES)}, "
                        f"found {found}")
    names = getattr(config, "action_feature_names", None)
    if names and list(names) != list(LEROBOT_FEATURE_NAMES):
        problems.append(f"action names: expected {list(LEROBOT_FEATURE_NAMES)}, found {list(names)}")
    if problems:
        raise CheckpointError("The checkpoint does not fit this SO-101 graph:\n  - " + "\n  - ".join(problems))
