"""`so101 train`: a preset, a dataset and overrides, run through lerobot's own `train()`.

The run directory is lerobot's output_dir (checkpoints/NNNNNN, checkpoints/last) plus
`run_info.json` (what was trained on what) and `metrics.jsonl` (one line per logged window).
Running the same command again resumes from checkpoints/last.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .auxiliary_state import check_auxiliary_state
from .configs import TrainRequest
from .dataset_source import prepare_dataset
from .lerobot_hooks import TimeBudgetReached, training_hooks
from .presets import PRESETS, PresetError, resolve

RUN_INFO = "run_info.json"
METRICS = "metrics.jsonl"
LAST_CONFIG = Path("checkpoints") / "last" / "pretrained_model" / "train_config.json"


class TrainError(RuntimeError):
    """A run that cannot start; the message says what was found and what to do."""


def training_refusals() -> tuple[type[Exception], ...]:
    """Every error run_training raises to refuse a run before it trains, each a sentence for the user."""
    from .auxiliary_state import AuxiliaryStateError
    from .dataset_source import DatasetSourceError
    from .frame_cache import FrameCacheError

    return TrainError, DatasetSourceError, PresetError, FrameCacheError, AuxiliaryStateError


@dataclass
class RunInfo:
    preset: str
    policy_type: str
    dataset: str
    dataset_root: str | None
    dataset_converted: bool
    cameras: list[str]
    resize_with_pad: list[int] | None
    settings: dict[str, str]
    learnable_params: int | None = None
    total_params: int | None = None
    input_features: dict[str, list[int]] = field(default_factory=dict)
    learned_batchnorm_layers: int = 0  # backbone batch norm trained, not frozen (no pre-trained weights)
    frame_cache: dict | None = None  # the decoded-frame cache trained from (FrameCacheInfo), if any
    environment_state: bool = False  # the policy takes the sim's object state (observation.environment_state)
    numeric_path: str | None = None  # a CPU run's: its CPU and whether it trains in bf16 (cpu_numerics)
    aux_object_state: float = 0.0  # the auxiliary object-state target's loss weight (0: none)

    @classmethod
    def load(cls, run_dir: Path) -> RunInfo:
        return cls(**json.loads((run_dir / RUN_INFO).read_text()))

    def save(self, run_dir: Path) -> None:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / RUN_INFO).write_text(json.dumps(asdict(self), indent=2) + "\n")


@contextmanager
def _lerobot_command_line(arguments: list[str]):
    # lerobot's train() and TrainPipelineConfig.validate() read sys.argv themselves
    # (`--policy.path`, `--config_path`), so the settings go where they look.
    saved = sys.argv
    sys.argv = ["lerobot-train", *arguments]
    try:
        yield
    finally:
        sys.argv = saved


def _dataset_inputs(repo_id: str, root: Path | None) -> tuple[tuple[str, ...], bool]:
    """The dataset's cameras, and whether it records the sim's object state."""
    from lerobot.datasets import LeRobotDatasetMetadata

    from so101_driver.environment_state import ENVIRONMENT_STATE_KEY

    meta = LeRobotDatasetMetadata(repo_id, root=root)
    return (tuple(key.removeprefix("observation.images.") for key in meta.camera_keys),
            ENVIRONMENT_STATE_KEY in meta.features)


def plan_run(request: TrainRequest) -> tuple[Path, RunInfo, list[str]]:
    """The run directory, its summary and lerobot-train's arguments, resuming where there is a checkpoint."""
    if request.preset not in PRESETS:
        raise PresetError(f"unknown preset '{request.preset}'; presets are {sorted(PRESETS)}")
    run_dir = Path(request.output_dir or Path("outputs") / "train" / request.preset)
    last_config = run_dir / LAST_CONFIG
    if last_config.is_file() and request.resume is not False:
        if not (run_dir / RUN_INFO).is_file():
            raise TrainError(f"{run_dir} has a checkpoint but no {RUN_INFO}: it was not written by `so101 train`. "
                             f"Resume it with lerobot-train --config_path={last_config} --resume=true")
        info = RunInfo.load(run_dir)
        if request.aux_object_state is not None and request.aux_object_state != info.aux_object_state:
            raise TrainError(f"{run_dir} trains with --aux-object-state {info.aux_object_state:g}, not "
                             f"{request.aux_object_state:g}: resume it without the option, or start another run "
                             "with --output-dir")
        print(f"Resuming {run_dir} from {last_config.parent}")
        overrides = [f"--{key}={value}" for key, value in request.overrides.items()]
        # The saved config names the directory the run was started in; a run moved or copied since
        # would save its next checkpoints there, into another run.
        return run_dir, info, [f"--config_path={last_config}", "--resume=true", f"--output_dir={run_dir}", *overrides]
    if request.resume:
        raise TrainError(f"nothing to resume: {last_config} does not exist")
    if run_dir.exists():
        raise TrainError(f"{run_dir} exists and holds no checkpoint to resume from; remove it or pass another "
                         "--output-dir")

    source = prepare_dataset(request.dataset, request.dataset_root)
    cameras, has_environment_state = _dataset_inputs(source.repo_id, source.root)
    resolved = resolve(request.preset, request.overrides, tuple(request.exclude_cameras), cameras,
                       has_environment_state)
    aux_object_state = request.aux_object_state or 0.0
    check_auxiliary_state(aux_object_state, resolved.preset.policy_type, has_environment_state,
                          resolved.preset.environment_state)
    resize = resolved.preset.resize_with_pad if request.resize_with_pad == "preset" else request.resize_with_pad
    settings = {**resolved.settings, "dataset.repo_id": source.repo_id, "output_dir": str(run_dir)}
    if source.root is not None:
        # Absolute: the checkpoint's train_config.json names it, and the policy node reads the
        # dataset's joint names and fps from there, from whatever directory it runs in.
        settings["dataset.root"] = str(Path(source.root).resolve())
    info = RunInfo(
        preset=resolved.preset.name, policy_type=resolved.preset.policy_type, dataset=source.repo_id,
        dataset_root=None if source.root is None else str(source.root), dataset_converted=source.converted,
        cameras=list(resolved.cameras), resize_with_pad=None if resize is None else list(resize), settings=settings,
        environment_state=resolved.preset.environment_state,
        numeric_path=resolved.numeric_path, aux_object_state=aux_object_state,
    )
    return run_dir, info, [f"--{key}={value}" for key, value in settings.items()]


def _forget_accelerator_settings() -> None:
    """accelerate keeps one AcceleratorState (its mixed precision among it) per process and refuses an
    Accelerator with other settings; the demo trains two presets in one process, float32 then bf16. The
    process-wide part (PartialState: devices, the distributed group) stays as accelerate set it up."""
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state()
    GradientState._reset_state()


def run_training(request: TrainRequest) -> Path:
    """Train (or resume) one run; returns the run directory."""
    from lerobot.scripts import lerobot_train

    run_dir, info, arguments = plan_run(request)
    resize = None if info.resize_with_pad is None else tuple(info.resize_with_pad)
    print(f"so101 train {info.preset}: {info.policy_type} on {info.dataset}, cameras {info.cameras}"
          + (", the sim's object state" if info.environment_state else "")
          + (f", learning the object state as an auxiliary target (weight {info.aux_object_state:g})"
             if info.aux_object_state else "")
          + (f", images resized with padding to {resize[0]}x{resize[1]}" if resize else ""))
    if info.numeric_path:
        print(f"Numeric path: {info.numeric_path}", flush=True)

    def record_policy(seen) -> None:
        # Written once lerobot has accepted output_dir (it refuses an existing one unless resuming).
        info.learnable_params = seen.learnable_params
        info.total_params = seen.total_params
        info.input_features = seen.input_features
        info.learned_batchnorm_layers = seen.learned_batchnorm_layers
        cache = seen.frame_cache
        info.frame_cache = None if cache is None else asdict(cache)  # a resume may train without it
        if cache is not None:
            print(f"Camera frames from {cache.path} ({cache.frames} frames, {cache.gigabytes:g} GB, "
                  + (f"built in {cache.built_s:g} s)" if cache.built_s is not None else "built before)"), flush=True)
        info.save(run_dir)

    budget = None if request.time_budget_min is None else 60.0 * request.time_budget_min
    if budget is not None:
        print(f"Training for {request.time_budget_min:g} min of wall-clock time (the time budget): lerobot's "
              f"steps={info.settings.get('steps')} is only an upper bound; the last step is saved when the budget "
              "is spent.", flush=True)
    with _lerobot_command_line(arguments), training_hooks(tuple(info.cameras), resize, run_dir / METRICS,
                                                          record_policy, budget, request.frame_cache,
                                                          info.environment_state, info.aux_object_state):
        try:
            lerobot_train.train()
        except TimeBudgetReached as stop:
            print(f"Time budget of {request.time_budget_min:g} min reached: stopped after step {stop.step}, "
                  "saved as the last checkpoint")
        finally:
            _forget_accelerator_settings()
    print(f"Run directory: {run_dir.resolve()} (checkpoints/last/pretrained_model, {METRICS}, {RUN_INFO})")
    return run_dir
