"""The places where `so101 train` reaches into lerobot's training, and why.

lerobot's `train()` has no parameters for them, so for the length of one run we wrap names its
module looks up at call time, each around lerobot's own function:
- make_policy: the policy sees only the chosen cameras (lerobot takes every camera of the dataset),
  and the sim's object state (observation.environment_state) only when the preset asks for it; an
  ACT trained without pre-trained backbone weights learns its batch norm (training/backbone_batchnorm.py);
- make_pre_post_processors: ACT's resize-with-pad step goes into the preprocessor, before
  normalization, so it is saved in the checkpoint and inference applies the same resize;
- MetricsTracker: each logged window (loss, grad norm, lr, update and data time) is appended to a
  JSONL file in the run directory, since lerobot writes its metrics only to the console and wandb;
- should_save_checkpoint (with a time budget only): once the budget is spent, the current step is
  saved as a checkpoint and the run stops at the next step, through lerobot's own saving code;
- make_train_eval_datasets: the delta-timestamp windows of numeric keys (the action chunk) are read
  from memory instead of through the Hugging Face dataset (training/delta_query_cache.py), and with
  a frame cache, camera frames from decoded frames at the training size (training/frame_cache.py);
  without one, cameras the policy does not see are not read (training/unseen_cameras.py);
- tqdm (with a time budget only): the progress bar counts minutes of the budget, not steps of a
  horizon the run will never reach;
- save_checkpoint and load_training_state (with an auxiliary object-state target only): the target's
  head, which the checkpoint's model leaves out, is kept in training_state/ and restored on resume
  (training/auxiliary_state.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.processor import NormalizerProcessorStep
from lerobot.utils.constants import TRAINING_STATE_DIR
from lerobot.utils.feature_utils import dataset_to_policy_features
from tqdm import tqdm

from so101_driver.environment_state import ENVIRONMENT_STATE_KEY
from so101_policy.resize_with_pad import IMAGE_PREFIX, ResizeWithPadStep

from .auxiliary_state import AuxiliaryStateTarget, attach_auxiliary_state, load_head, save_head
from .backbone_batchnorm import learn_backbone_batchnorm, needs_learned_batchnorm
from .delta_query_cache import cache_delta_columns
from .frame_cache import FrameCacheInfo, serve_cached_frames
from .unseen_cameras import skip_unseen_cameras

# lerobot's own meters, then what the policy's forward returns beside its loss (ACT: l1_loss, kld_loss with the VAE;
# the auxiliary object-state target: aux_state_mse), which lerobot's tracker averages as it finds them.
METRIC_KEYS = ("loss", "grad_norm", "lr", "update_s", "dataloading_s", "samples_per_s", "l1_loss", "kld_loss",
               "aux_state_mse")


def budget_progress_bar(budget_s: float, clock: Callable[[], float] = time.monotonic) -> type[tqdm]:
    """A tqdm that lerobot drives step by step but that shows minutes spent of the time budget."""

    class BudgetProgress(tqdm):
        def __init__(self, *args, total=None, unit=None, **kwargs):
            super().__init__(*args, total=round(budget_s / 60, 2), unit="min",
                             bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} min{postfix}",
                             **kwargs)
            self._started = clock()
            self.steps = 0

        def update(self, n=1):
            self.steps += n
            minutes = min((clock() - self._started) / 60, self.total)
            self.set_postfix_str(f"step {self.steps}, {(clock() - self._started) / self.steps:.2f} s/step",
                                 refresh=False)
            return super().update(minutes - self.n)

    return BudgetProgress


class TimeBudgetReached(Exception):
    """The run's time budget is spent and its last step is saved."""

    def __init__(self, step: int):
        super().__init__(f"time budget reached: stopped after step {step}, which is saved")
        self.step = step


@dataclass
class RunObservations:
    """What the hooks saw of the run, for the run summary."""

    learnable_params: int | None = None
    total_params: int | None = None
    input_features: dict[str, list[int]] = field(default_factory=dict)
    learned_batchnorm_layers: int = 0  # frozen batch norm layers made trainable (no pre-trained backbone)
    cached_delta_keys: list[str] = field(default_factory=list)  # delta windows read from memory
    frame_cache: FrameCacheInfo | None = None  # where camera frames were read from, when not the videos
    unread_cameras: list[str] = field(default_factory=list)  # camera keys of the dataset the policy does not see
    auxiliary_state: AuxiliaryStateTarget | None = None  # the training-only object-state head, if any


def policy_input_features(dataset_features: dict, cameras: tuple[str, ...],
                          resize_with_pad: tuple[int, int] | None,
                          environment_state: bool = False) -> dict[str, PolicyFeature]:
    """The dataset's non-action features, keeping only the chosen cameras (at the padded size), and the sim's
    object state only with `environment_state`: a vision policy must not see what a real arm cannot give it."""
    selected = {}
    for key, feature in dataset_to_policy_features(dataset_features).items():
        if feature.type is FeatureType.ACTION:
            continue
        if key == ENVIRONMENT_STATE_KEY and not environment_state:
            continue
        if feature.type is FeatureType.VISUAL:
            if key.removeprefix(IMAGE_PREFIX) not in cameras:
                continue
            if resize_with_pad is not None:
                feature = PolicyFeature(type=feature.type, shape=(feature.shape[0], *resize_with_pad))
        selected[key] = feature
    return selected


def add_resize_with_pad(preprocessor, height: int, width: int, cameras: tuple[str, ...]) -> None:
    """Insert the step before normalization, once (a resumed run's preprocessor already has it)."""
    if any(isinstance(step, ResizeWithPadStep) for step in preprocessor.steps):
        return
    steps = list(preprocessor.steps)
    position = next((i for i, step in enumerate(steps) if isinstance(step, NormalizerProcessorStep)), len(steps))
    steps.insert(position, ResizeWithPadStep(height=height, width=width, cameras=list(cameras)))
    preprocessor.steps = steps


class MetricsLog:
    """Appends one JSON line per logged training window."""

    def __init__(self, path: Path):
        self.path = path
        self.started = time.monotonic()

    def append(self, tracker) -> None:
        meters = tracker.metrics
        if meters["loss"].count == 0:
            return  # nothing was measured in this window
        record = {"step": int(tracker.steps), "samples": int(tracker.samples), "epochs": float(tracker.epochs),
                  "wall_s": round(time.monotonic() - self.started, 3)}
        record.update({key: float(meters[key].avg) for key in METRIC_KEYS if key in meters})
        with self.path.open("a") as file:
            file.write(json.dumps(record) + "\n")


@contextmanager
def training_hooks(cameras: tuple[str, ...], resize_with_pad: tuple[int, int] | None, metrics_path: Path,
                   on_policy_made: Callable[[RunObservations], None] = lambda observed: None,
                   time_budget_s: float | None = None, frame_cache: bool = False,
                   environment_state: bool = False,
                   auxiliary_state_weight: float = 0.0) -> Iterator[RunObservations]:
    """`on_policy_made` runs once lerobot has validated the run (its output_dir may now be created).

    `time_budget_s`: wall-clock seconds from the first training step; raises TimeBudgetReached.
    `frame_cache`: camera frames come from a cache of decoded frames at the `resize_with_pad` size.
    `environment_state`: the policy takes the sim's object state (observation.environment_state).
    `auxiliary_state_weight`: above 0, a vision ACT also learns to predict that state, with this loss weight.
    """
    import lerobot.scripts.lerobot_train as lerobot_train

    observed = RunObservations()
    metrics = MetricsLog(metrics_path)
    original_make_policy = lerobot_train.make_policy
    original_make_processors = lerobot_train.make_pre_post_processors
    original_tracker = lerobot_train.MetricsTracker
    original_should_save = lerobot_train.should_save_checkpoint
    original_tqdm = lerobot_train.tqdm
    original_make_datasets = lerobot_train.make_train_eval_datasets
    original_save_checkpoint = lerobot_train.save_checkpoint
    original_load_training_state = lerobot_train.load_training_state
    budget = {"started": None, "saved_step": None}

    def make_policy(cfg, ds_meta=None, **kwargs):
        if ds_meta is not None:
            cfg.input_features = policy_input_features(ds_meta.features, cameras, resize_with_pad, environment_state)
        policy = original_make_policy(cfg, ds_meta=ds_meta, **kwargs)
        if needs_learned_batchnorm(cfg):
            observed.learned_batchnorm_layers = learn_backbone_batchnorm(policy)
        observed.learnable_params = sum(p.numel() for p in policy.parameters() if p.requires_grad)
        observed.total_params = sum(p.numel() for p in policy.parameters())
        if auxiliary_state_weight > 0:  # after counting: the head is not part of the saved policy
            observed.auxiliary_state = attach_auxiliary_state(policy, ds_meta.stats[ENVIRONMENT_STATE_KEY],
                                                              auxiliary_state_weight)
        observed.input_features = {key: list(feature.shape) for key, feature in cfg.input_features.items()}
        on_policy_made(observed)
        return policy

    def make_pre_post_processors(*args, **kwargs):
        preprocessor, postprocessor = original_make_processors(*args, **kwargs)
        if resize_with_pad is not None:
            add_resize_with_pad(preprocessor, *resize_with_pad, cameras)
        return preprocessor, postprocessor

    class RecordingMetricsTracker(original_tracker):
        # lerobot resets the averages right after it logs them: the moment to record the window.
        def reset_averages(self) -> None:
            if self.accelerator is None or self.accelerator.is_main_process:
                metrics.append(self)
            super().reset_averages()

        def step(self) -> None:
            if budget["saved_step"] is not None:  # the step after the budget's checkpoint
                if self.accelerator is None or self.accelerator.is_main_process:
                    metrics.append(self)  # the window since the last log, which lerobot will not log
                raise TimeBudgetReached(budget["saved_step"])
            if budget["started"] is None:
                budget["started"] = time.monotonic()
            super().step()

    def should_save_checkpoint(step: int, save_freq: int, total_steps: int) -> bool:
        if time_budget_s is not None and budget["started"] is not None and \
                time.monotonic() - budget["started"] >= time_budget_s:
            budget["saved_step"] = step
            return True
        return original_should_save(step, save_freq, total_steps)

    lerobot_train.make_policy = make_policy
    lerobot_train.make_pre_post_processors = make_pre_post_processors
    lerobot_train.MetricsTracker = RecordingMetricsTracker
    def make_train_eval_datasets(cfg):
        dataset, eval_dataset = original_make_datasets(cfg)
        observed.cached_delta_keys = cache_delta_columns(dataset)
        if frame_cache:
            observed.frame_cache = serve_cached_frames(dataset, resize_with_pad)
        else:
            observed.unread_cameras = skip_unseen_cameras(dataset, cameras)
        return dataset, eval_dataset

    def save_checkpoint(*args, **kwargs):
        original_save_checkpoint(*args, **kwargs)
        if observed.auxiliary_state is not None:
            checkpoint_dir = Path(kwargs["checkpoint_dir"] if "checkpoint_dir" in kwargs else args[0])
            save_head(observed.auxiliary_state, checkpoint_dir / TRAINING_STATE_DIR)

    def load_training_state(checkpoint_dir, *args, **kwargs):
        loaded = original_load_training_state(checkpoint_dir, *args, **kwargs)
        if observed.auxiliary_state is not None:
            state_dir = Path(checkpoint_dir) / TRAINING_STATE_DIR
            if load_head(observed.auxiliary_state, state_dir):
                print(f"The auxiliary object-state head resumed from {state_dir}", flush=True)
            else:
                print(f"The auxiliary object-state head starts afresh: {state_dir} has none", flush=True)
        return loaded

    lerobot_train.should_save_checkpoint = should_save_checkpoint
    lerobot_train.make_train_eval_datasets = make_train_eval_datasets
    lerobot_train.save_checkpoint = save_checkpoint
    lerobot_train.load_training_state = load_training_state
    if time_budget_s is not None:
        lerobot_train.tqdm = budget_progress_bar(time_budget_s)
    try:
        yield observed
    finally:
        lerobot_train.make_policy = original_make_policy
        lerobot_train.make_pre_post_processors = original_make_processors
        lerobot_train.MetricsTracker = original_tracker
        lerobot_train.should_save_checkpoint = original_should_save
        lerobot_train.tqdm = original_tqdm
        lerobot_train.make_train_eval_datasets = original_make_datasets
        lerobot_train.save_checkpoint = original_save_checkpoint
        lerobot_train.load_training_state = original_load_training_state
