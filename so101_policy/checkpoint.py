"""Loading a LeRobot checkpoint (ACT or SmolVLA) through lerobot's own factory and processors."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from draccus.utils import DraccusException
from lerobot.configs.policies import PreTrainedConfig
from lerobot.policies.factory import get_policy_class, make_pre_post_processors
from lerobot.policies.pretrained import PreTrainedPolicy
from lerobot.processor import PolicyProcessorPipeline

# Registers the so101_resize_with_pad step that ACT checkpoints trained by `so101 train` carry.
from . import resize_with_pad  # noqa: F401

log = logging.getLogger(__name__)

SUPPORTED_TYPES = ("act", "smolvla")
PREPROCESSOR_FILE = "policy_preprocessor.json"
MIGRATION_COMMAND = "python -m lerobot.processor.migrate_policy_normalization --pretrained-path {path}"


def error_summary(error: BaseException) -> str:
    """An error in one line: its type and its first line (torch puts hints, such as TORCHDYNAMO_VERBOSE or
    TORCH_USE_CUDA_DSA, in its last lines)."""
    first_line = next((line.strip() for line in str(error).splitlines() if line.strip()), "")
    return f"{type(error).__name__}: {first_line}"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot run here; the message says what was expected and what to do."""


@dataclass
class LoadedPolicy:
    policy: PreTrainedPolicy
    config: PreTrainedConfig
    preprocessor: PolicyProcessorPipeline
    postprocessor: PolicyProcessorPipeline
    source: str
    device: torch.device

    @property
    def type(self) -> str:
        return self.config.type

    @property
    def real_time_chunking(self) -> bool:
        """lerobot's RTC guidance is on (load_policy's `real_time_chunking`)."""
        rtc = getattr(self.config, "rtc_config", None)
        return rtc is not None and rtc.enabled


def resolve_device(requested: str) -> torch.device:
    """auto picks cuda, then mps, then cpu; a named device must exist."""
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise CheckpointError("device:=cuda was asked for but no CUDA GPU is visible; use device:=auto or cpu.")
    if requested == "mps" and not torch.backends.mps.is_available():
        raise CheckpointError("device:=mps was asked for but MPS is not available; use device:=auto or cpu.")
    if requested not in ("cuda", "mps", "cpu"):
        raise CheckpointError(f"device must be auto, cuda, mps or cpu; got {requested!r}.")
    return torch.device(requested)


def load_policy(checkpoint: str | Path, device: str = "auto", expected_type: str | None = None,
                real_time_chunking: bool = False) -> LoadedPolicy:
    """A checkpoint directory (`.../pretrained_model`) or a hub repo id, ready for inference.

    `real_time_chunking` turns on lerobot's RTC guidance (SmolVLA only) before the model is built.
    """
    source = str(checkpoint)
    local = Path(source).expanduser()
    if local.exists():
        source = str(local)
        if not (local / "config.json").is_file():
            raise CheckpointError(
                f"{local} is not a LeRobot checkpoint: it has no config.json. Point checkpoint at the "
                "`pretrained_model` folder of a training run (outputs/train/<run>/checkpoints/last/pretrained_model)."
            )
    elif source.startswith(("/", "./", "../", "~")) or source.count("/") != 1:
        raise CheckpointError(
            f"No checkpoint at {local}: there is no such folder, and it is not a hub repo id (owner/name). Point "
            "checkpoint at the `pretrained_model` folder of a training run "
            "(outputs/train/<run>/checkpoints/last/pretrained_model) or give a hub id such as lerobot/smolvla_base."
        )
    try:
        config = PreTrainedConfig.from_pretrained(source)
    except (FileNotFoundError, OSError, ValueError, TypeError, DraccusException) as error:
        # draccus and lerobot's config checks (TypeError: a value they cannot compare) may span lines.
        raise CheckpointError(f"Could not read the policy config of '{source}': {' '.join(str(error).split())} "
                              "(fix config.json, or point at the checkpoint as training saved it)") from error

    if config.type not in SUPPORTED_TYPES:
        raise CheckpointError(f"'{source}' is a {config.type} policy; this node runs {list(SUPPORTED_TYPES)}.")
    if expected_type and expected_type != config.type:
        raise CheckpointError(
            f"policy_type:={expected_type} but '{source}' holds a {config.type} policy. "
            f"Set policy_type:={config.type} (or leave it empty to take the checkpoint's)."
        )
    if real_time_chunking:
        if config.type != "smolvla":
            raise CheckpointError(
                f"mode:=rtc (real-time chunking) needs a flow-matching policy (smolvla); '{source}' is "
                f"{config.type}. Use mode:=async or temporal_ensemble."
            )
        from lerobot.policies.rtc.configuration_rtc import RTCConfig

        config.rtc_config = RTCConfig(enabled=True, execution_horizon=config.n_action_steps)
    torch_device = resolve_device(device)
    config.device = torch_device.type
    if config.type == "act":
        # The checkpoint holds the backbone's weights; naming ImageNet ones would download them.
        config.pretrained_backbone_weights = None
    if local.exists() and not (local / PREPROCESSOR_FILE).is_file():
        raise CheckpointError(
            f"'{source}' has no {PREPROCESSOR_FILE}: it was saved by LeRobot before 0.4, which kept the "
            "normalization statistics inside model.safetensors. Migrate it once with lerobot's own tool:\n  "
            + MIGRATION_COMMAND.format(path=source)
        )

    policy_class = get_policy_class(config.type)
    try:
        # strict: a checkpoint whose weights do not fit its config must not run on random weights.
        policy = policy_class.from_pretrained(source, config=config, strict=True)
    except (RuntimeError, FileNotFoundError, OSError) as error:
        raise CheckpointError(f"The weights in '{source}' do not load into a {config.type} policy: {error}") from error
    try:
        preprocessor, postprocessor = make_pre_post_processors(
            config,
            pretrained_path=source,
            preprocessor_overrides={"device_processor": {"device": torch_device.type}},
        )
    except (FileNotFoundError, OSError) as error:
        raise CheckpointError(
            f"'{source}' lacks its processor pipelines ({error}). Checkpoints from LeRobot before 0.4 are "
            "migrated with:\n  " + MIGRATION_COMMAND.format(path=source)
        ) from error
    policy.eval()
    log.info(f"Loaded {config.type} from {source} on {torch_device}")
    return LoadedPolicy(policy, config, preprocessor, postprocessor, source, torch_device)
