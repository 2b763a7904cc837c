"""Start-up checks of a checkpoint against the ROS side: cameras, state and action, units."""

from __future__ import annotations

import numpy as np
from lerobot.configs.policies import PreTrainedConfig
from lerobot.configs.types import FeatureType

from so101_driver.environment_state import ENVIRONMENT_STATE_KEY, ENVIRONMENT_STATE_NAMES
from so101_driver.joint_model import JOINT_NAMES, LEROBOT_FEATURE_NAMES, JointModel, UnitError

from .checkpoint import CheckpointError, LoadedPolicy
from .observation import IMAGE_PREFIX, STATE_KEY

ACTION_KEY = "action"
# How far past a joint's limit (a fraction of its span) the training data may reach before its units
# are called wrong: a real arm's data reaches past the model's nominal limits (a wrist_roll calibrated
# over a whole turn reads +-180 degrees), while degrees read as range_m100_100 overshoot by half a span
# at 150 degrees.
RANGE_SLACK_FRACTION = 0.15


def checkpoint_cameras(config: PreTrainedConfig) -> tuple[str, ...]:
    """Dataset camera names the checkpoint sees: ("overhead", "wrist") for observation.images.*."""
    return tuple(sorted(key.removeprefix(IMAGE_PREFIX) for key, feature in config.input_features.items()
                        if feature.type is FeatureType.VISUAL))


def takes_environment_state(config: PreTrainedConfig) -> bool:
    """The checkpoint was trained on the sim's privileged object state (observation.environment_state)."""
    return ENVIRONMENT_STATE_KEY in config.input_features


def expected_image_size(config: PreTrainedConfig, camera: str) -> tuple[int, int]:
    """(height, width) of the frames this camera had in training."""
    shape = config.input_features[IMAGE_PREFIX + camera].shape
    return int(shape[1]), int(shape[2])


def check_compatibility(config: PreTrainedConfig, cameras: tuple[str, ...]) -> None:
    """Stop with what was expected and what is there when the checkpoint does not fit the graph."""
    problems = []
    wanted = checkpoint_cameras(config)
    if tuple(sorted(cameras)) != wanted and not wanted:
        why = " (it was trained on the sim's object state)" if takes_environment_state(config) else ""
        problems.append(f"cameras: the checkpoint takes none{why}, the node is given {sorted(cameras)} (cameras:='' "
                        "on policy_node, cameras:=none on the launch files, --cameras none on so101 eval)")
    elif tuple(sorted(cameras)) != wanted:
        problems.append(
            f"cameras: the checkpoint was trained on {list(wanted)}, the node is given {sorted(cameras)} "
            "(set cameras:=name=/topic,... and exclude_cameras:=... to match)"
        )
    state = config.input_features.get(STATE_KEY)
    if state is None or tuple(state.shape) != (len(JOINT_NAMES),):
        found = None if state is None else tuple(state.shape)
        problems.append(f"{STATE_KEY}: expected shape ({len(JOINT_NAMES)},) for {list(LEROBOT_FEATURE_NAMES)}, "
                        f"found {found}")
    objects = config.input_features.get(ENVIRONMENT_STATE_KEY)
    if objects is not None and tuple(objects.shape) != (len(ENVIRONMENT_STATE_NAMES),):
        problems.append(f"{ENVIRONMENT_STATE_KEY}: the sim publishes {list(ENVIRONMENT_STATE_NAMES)}, the checkpoint "
                        f"takes shape {tuple(objects.shape)}")
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


def normalization_stats(loaded: LoadedPolicy) -> dict[str, dict[str, np.ndarray]]:
    """The dataset statistics the checkpoint's normalizer was built from (lerobot saves them all)."""
    for step in loaded.preprocessor.steps:
        if getattr(step, "stats", None):
            return {key: {name: np.asarray(value, dtype=np.float64).reshape(-1) for name, value in stats.items()}
                    for key, stats in step.stats.items()}
    return {}


def check_value_ranges(stats: dict[str, dict[str, np.ndarray]], joint_model: JointModel) -> str:
    """Stop when the training data's state or action holds values this arm cannot reach in its units.

    Each joint's dataset min and max (LeRobot units) are read in the arm's units and calibration and
    compared with its limits: data recorded in degrees read as range_m100_100 lands past them wherever
    a joint moved beyond 100 degrees, and so does data from an arm calibrated very differently. Data
    whose whole range fits inside the limits in both unit systems cannot be told apart this way.
    Returns what was checked, for the start-up log.
    """
    low_limit, high_limit = joint_model.limits
    slack = RANGE_SLACK_FRACTION * (high_limit - low_limit)
    units = joint_model.arm_units.value
    problems, checked = [], []
    for key in (STATE_KEY, ACTION_KEY):
        feature = stats.get(key, {})
        if "min" not in feature or "max" not in feature or feature["min"].shape != (len(JOINT_NAMES),):
            continue
        checked.append(key)
        ends = np.stack([joint_model.to_radians(feature["min"]), joint_model.to_radians(feature["max"])])
        low, high = ends.min(axis=0), ends.max(axis=0)
        for index in np.flatnonzero((low < low_limit - slack) | (high > high_limit + slack)):
            problems.append(
                f"{key} {LEROBOT_FEATURE_NAMES[index]} spans {feature['min'][index]:g}..{feature['max'][index]:g}, "
                f"{np.degrees(low[index]):.0f}..{np.degrees(high[index]):.0f} deg on this arm in {units}, past its "
                f"limits {np.degrees(low_limit[index]):.0f}..{np.degrees(high_limit[index]):.0f} deg"
            )
    if problems:
        raise UnitError(
            f"The checkpoint's training data does not fit this arm in {units}:\n  - " + "\n  - ".join(problems)
            + "\nThe data was recorded in other units (lerobot's use_degrees) or with another calibration: "
            "run the driver with the arm_units and calibration it was recorded with."
        )
    if not checked:
        return "value ranges of the training data not checked: the checkpoint's stats have no min and max"
    return f"{' and '.join(checked)} ranges of the training data fit the arm's limits in {units}"
