"""The checkpoint an evaluation takes when none is named: the newest `so101 train` wrote for that policy."""

from __future__ import annotations

import json
from pathlib import Path

OUTPUTS = Path("outputs")  # relative to where the commands run, as `so101 train` and the demo write
LAST_CHECKPOINT = "checkpoints/last/pretrained_model"
# `so101 train` runs (outputs/train/<run>), and the demo's (outputs/demo/train).
RUN_PATTERNS = (f"train/*/{LAST_CHECKPOINT}", f"demo/train/{LAST_CHECKPOINT}")


class NoTrainedCheckpoint(ValueError):
    """No checkpoint was named and none was trained here; the message says how to get one."""


def policy_type_of(checkpoint: Path) -> str | None:
    try:
        return json.loads((checkpoint / "config.json").read_text()).get("type")
    except (OSError, ValueError):
        return None


def newest_trained_checkpoint(policy_type: str, outputs: Path = OUTPUTS) -> Path:
    """Of the runs under `outputs` holding a `policy_type` checkpoint, the last checkpoint of the newest.

    Raises NoTrainedCheckpoint, saying how to get one, when there is none.
    """
    candidates = [path for pattern in RUN_PATTERNS for path in outputs.glob(pattern)
                  if policy_type_of(path) == policy_type]
    if not candidates:
        where = " or ".join(f"{outputs.resolve()}/{pattern}" for pattern in RUN_PATTERNS)
        raise NoTrainedCheckpoint(
            f"No checkpoint given, and no {policy_type} checkpoint at {where}. Train one "
            f"(so101 train {'act_dual' if policy_type == 'act' else 'smolvla_dual'}, or ./scripts/demo.sh) or name "
            "one: checkpoint:=<pretrained_model folder or hub repo id>."
        )
    return max(candidates, key=lambda path: (path / "config.json").stat().st_mtime)
