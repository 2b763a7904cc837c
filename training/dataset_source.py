"""Where a training run reads its LeRobotDataset from, converting LeRobot v2.1 datasets once.

lerobot 0.6.1 reads only the v3.0 layout; the reference dataset is stored in v2.1. A v2.1 dataset
(from the hub or a local root) is converted with lerobot's own v2.1-to-v3.0 converter into
$HF_LEROBOT_HOME/so101_converted/<repo_id>, once; later runs reuse that copy.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from lerobot.utils.constants import HF_LEROBOT_HOME

log = logging.getLogger(__name__)

INFO_FILE = Path("meta") / "info.json"
V21 = "v2.1"
V30 = "v3.0"


class DatasetSourceError(RuntimeError):
    """A dataset that cannot be trained on; the message says what was found and what to do."""


@dataclass(frozen=True)
class DatasetSource:
    repo_id: str
    root: Path | None  # None: lerobot fetches the v3.0 dataset from the hub itself
    converted: bool = False


def codebase_version(dataset_root: Path) -> str:
    info_path = dataset_root / INFO_FILE
    if not info_path.is_file():
        raise DatasetSourceError(f"{dataset_root} is not a LeRobotDataset: {INFO_FILE} is missing")
    return str(json.loads(info_path.read_text()).get("codebase_version", "unknown"))


def converted_root(repo_id: str, cache_root: Path | None = None) -> Path:
    return (cache_root or HF_LEROBOT_HOME / "so101_converted") / repo_id


def _hub_codebase_version(repo_id: str) -> str:
    from huggingface_hub import hf_hub_download

    try:
        info = hf_hub_download(repo_id, str(INFO_FILE), repo_type="dataset")
    except Exception as error:  # offline, unknown repo, no access: all stop here with the cause
        raise DatasetSourceError(
            f"could not read {INFO_FILE} of the hub dataset '{repo_id}' ({type(error).__name__}: {error}). "
            "Check the repo id and the network, or pass --dataset-root with a local copy."
        ) from error
    return str(json.loads(Path(info).read_text()).get("codebase_version", "unknown"))


def _convert_v21(repo_id: str, v21_copy: Path, target: Path) -> None:
    """Convert a v2.1 copy we own in place with lerobot's converter, then move it to `target`."""
    from lerobot.scripts.convert_dataset_v21_to_v30 import convert_dataset

    convert_dataset(repo_id=repo_id, root=v21_copy, push_to_hub=False, force_conversion=True)
    # The converter keeps the v2.1 original beside the result as <root>_old; it is our copy.
    shutil.rmtree(v21_copy.parent / f"{v21_copy.name}_old", ignore_errors=True)
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(v21_copy), str(target))


def prepare_dataset(repo_id: str, root: str | Path | None = None, cache_root: Path | None = None) -> DatasetSource:
    """A v3.0 dataset location for lerobot, converting a v2.1 dataset once (and saying so)."""
    if root is not None:
        root = Path(root).expanduser()
        version = codebase_version(root)
    else:
        version = _hub_codebase_version(repo_id)
    if version.startswith("v3"):
        return DatasetSource(repo_id, root)
    if version != V21:
        raise DatasetSourceError(f"dataset '{repo_id}' is in LeRobot format {version}; this lerobot reads {V30} "
                                 f"and converts {V21}. Convert it with a lerobot release that reads {version}.")

    target = converted_root(repo_id, cache_root)
    if target.exists() and codebase_version(target).startswith("v3"):
        log.warning("Dataset '%s' is in LeRobot v2.1 format; using its v3.0 conversion in %s", repo_id, target)
        return DatasetSource(repo_id, target, converted=True)

    staging = target.parent / f"{target.name}.v21-staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    log.warning("Dataset '%s' is in LeRobot v2.1 format, which lerobot 0.6.1 cannot load: converting it once "
                "with lerobot's v2.1-to-v3.0 converter into %s", repo_id, target)
    if root is not None:
        shutil.copytree(root, staging)
    else:
        from huggingface_hub import snapshot_download

        snapshot_download(repo_id, repo_type="dataset", local_dir=staging)
    _convert_v21(repo_id, staging, target)
    return DatasetSource(repo_id, target, converted=True)
