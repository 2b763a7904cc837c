"""What a checkpoint's training data says about the arm: joint names and order, fps, camera sizes.

A LeRobot checkpoint folder holds train_config.json, which names the dataset it was trained on; that
dataset's meta/info.json (on this machine: where training read it, or lerobot's local cache of hub
datasets) names each state and action dimension and gives the fps. The policy node checks them at
start-up against the SO-101's joints and its own fps, and each camera's first frame against the
dataset's frame size, so a checkpoint trained on another joint order, rate or camera resolution
stops before it moves anything. Where the dataset is not on this machine the check
cannot run, and the node says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from so101_driver.joint_model import LEROBOT_FEATURE_NAMES

from .checkpoint import CheckpointError
from .observation import IMAGE_PREFIX


@dataclass(frozen=True)
class TrainingData:
    repo_id: str
    path: Path  # the dataset's folder on this machine
    fps: float
    robot_type: str
    names: dict[str, list[str] | None]  # observation.state and action: their dimensions' names
    frame_sizes: dict[str, tuple[int, int]]  # camera name -> (height, width) of the dataset's frames


def training_data(checkpoint: str | Path) -> tuple[TrainingData | None, str]:
    """The dataset the checkpoint was trained on, or (None, why it cannot be read here)."""
    from lerobot.utils.constants import HF_LEROBOT_HOME

    train_config = _train_config(checkpoint)
    if train_config is None:
        return None, f"{checkpoint} has no train_config.json naming its dataset"
    dataset = json.loads(train_config.read_text()).get("dataset") or {}
    repo_id, root = dataset.get("repo_id") or "", dataset.get("root")
    candidates = [Path(root).expanduser()] if root else []
    if repo_id:
        candidates.append(HF_LEROBOT_HOME / repo_id)
    for path in candidates:
        info_path = path / "meta" / "info.json"
        if info_path.is_file():
            info = json.loads(info_path.read_text())
            features = info.get("features", {})
            names = {key: (features.get(key) or {}).get("names") for key in ("observation.state", "action")}
            return TrainingData(repo_id, path, float(info["fps"]), info.get("robot_type") or "", names,
                                _frame_sizes(features)), ""
    where = " or ".join(str(path) for path in candidates) or "nowhere"
    return None, f"its dataset {repo_id or '(unnamed)'} is not on this machine ({where})"


def _frame_sizes(features: dict) -> dict[str, tuple[int, int]]:
    """observation.images.<camera> -> (height, width), by the shape's names where lerobot gives them."""
    sizes = {}
    for key, feature in features.items():
        if not key.startswith(IMAGE_PREFIX) or feature.get("dtype") not in ("image", "video"):
            continue
        shape, names = list(feature["shape"]), list(feature.get("names") or ["height", "width", "channels"])
        sizes[key.removeprefix(IMAGE_PREFIX)] = (int(shape[names.index("height")]), int(shape[names.index("width")]))
    return sizes


def _train_config(checkpoint: str | Path) -> Path | None:
    local = Path(checkpoint).expanduser()
    if local.exists():
        return local / "train_config.json" if (local / "train_config.json").is_file() else None
    try:  # a hub id: the file is in the checkpoint's repository (already cached where the model was)
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(str(checkpoint), "train_config.json"))
    except Exception:  # noqa: BLE001 - offline, or a repository without one: not checkable here
        return None


def check_training_data(data: TrainingData, fps: float) -> None:
    """Stop with what was expected and found when the training data's joints or rate differ from this graph's."""
    problems = []
    for key, names in data.names.items():
        if names is not None and [str(name) for name in _flat(names)] != list(LEROBOT_FEATURE_NAMES):
            problems.append(f"{key} names: the SO-101 graph sends {list(LEROBOT_FEATURE_NAMES)}, "
                            f"the dataset has {list(_flat(names))}")
    if abs(data.fps - fps) > 1e-6:
        problems.append(f"fps: the dataset ran at {data.fps:g} fps, the node spaces chunk points at {fps:g} "
                        f"(set fps:={data.fps:g})")
    if problems:
        raise CheckpointError(f"The checkpoint's training data ({data.repo_id} at {data.path}) does not fit this "
                              "graph:\n  - " + "\n  - ".join(problems))


def _flat(names) -> list:
    """Feature names as lerobot writes them: a list, or {"motors": [...]} in older datasets."""
    if isinstance(names, dict):
        return [name for value in names.values() for name in value]
    return list(names)
