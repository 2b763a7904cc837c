"""The options of `so101 dataset sim`, `so101 dataset from-bags` and `so101 train`, and the dataset
contract they share (task, fps, robot type).

Nothing here imports more than the standard library, so101's option helpers, the bag topics and the
presets: the `so101` command line is built from these dataclasses, and importing the modules that
use them (lerobot, torch, MuJoCo) would cost seconds before `--help` could print.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import MISSING, dataclass, field
from pathlib import Path

from so101_bringup import bag_format
from so101_bringup.options import option
from so101_driver.sim.task_variants import DEFAULT_OVERHEAD_VIEW, DEFAULT_VARIANT, OVERHEAD_VIEWS, VARIANTS

from .presets import DEFAULT_DATASET, PRESETS

TASK = "Pick up the cube and place it in the bowl"
FPS = 30


@dataclass(frozen=True)
class SimDatasetConfig:
    """What `so101 dataset sim` records; its options are these fields (but only_successes)."""

    repo_id: str = option("local/so101_sim_pick_place", "the dataset's repo id")
    episodes: int = option(10, "total episodes the dataset should hold")
    seed: int = option(0, "seed of the first episode")
    task_variant: str = option(DEFAULT_VARIANT, "the sim task's randomisation", choices=sorted(VARIANTS))
    overhead_view: str = option(DEFAULT_OVERHEAD_VIEW, "what the overhead camera frames (workspace: the task "
                                                       "variant's cubes and targets, about twice the pixels per cm)",
                                choices=list(OVERHEAD_VIEWS))
    image_width: int = option(224, "camera image width", flag="--width")
    image_height: int = option(224, "camera image height", flag="--height")
    use_videos: bool = option(True, "store PNG frames instead of AV1 videos", flag="--images", action="store_false")
    environment_state: bool = option(False, "also record the sim's privileged object state (cube pose, target "
                                            "position) as observation.environment_state, for the state ACT "
                                            "(act_state_cpu); lerobot-train would feed it to any policy, which only "
                                            "the sim can then run")
    only_successes: bool = True  # a failed demonstration is skipped, not recorded
    workers: int = option(1, "sims playing episodes in parallel processes (0: one per core); the dataset is the "
                             "same whatever the count")

    def __post_init__(self):
        if self.episodes < 1 or self.image_width < 1 or self.image_height < 1:
            raise ValueError(f"episodes, width and height must be at least 1, got {self.episodes} episodes of "
                             f"{self.image_width}x{self.image_height}")
        if self.workers < 0:
            raise ValueError(f"workers must be 0 (one per core) or more, got {self.workers}")


@dataclass(frozen=True)
class BagDatasetConfig:
    """What `so101 dataset from-bags` makes; its options are these fields (but cameras), and the arm's
    calibration and units are GraphArgs' (as replay takes them)."""

    repo_id: str = option("local/so101_from_bags", "the dataset's repo id")
    fps: int = option(FPS, "dataset frame rate")
    task: str = option(TASK, "task string of every episode")
    use_videos: bool = option(True, "store PNG frames instead of AV1 videos", flag="--images", action="store_false")
    cameras: tuple[str, ...] = tuple(bag_format.CAMERA_TOPICS)

    def __post_init__(self):
        if self.fps <= 0:
            raise ValueError(f"fps must be above 0, got {self.fps}")


def check_aux_object_state(weight: float) -> float:
    """--aux-object-state's value, for `so101 train` and `so101 demo` alike: a loss weight."""
    if not (math.isfinite(weight) and weight >= 0):
        raise ValueError(f"--aux-object-state is a loss weight, 0 (off) or more and finite; got {weight:g}")
    return weight


def image_size(text: str) -> tuple[int, int] | None | str:
    """--resize-with-pad's value: HEIGHTxWIDTH, none, or preset (the preset's choice)."""
    if text.lower() in ("none", "preset"):
        return None if text.lower() == "none" else "preset"
    try:
        height, width = (int(part) for part in text.lower().split("x"))
    except ValueError:
        height = width = 0
    if height < 1 or width < 1:
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH (e.g. 224x224), none or preset, found '{text}'")
    return height, width


@dataclass
class TrainRequest:
    """What `so101 train` runs; its options are these fields (so101_bringup.options), but `overrides`,
    which are lerobot-train's own --key=value settings."""

    preset: str = option(MISSING, "the reference run to reproduce", choices=sorted(PRESETS))
    dataset: str = option(DEFAULT_DATASET, f"hub repo id of the LeRobotDataset (default {DEFAULT_DATASET}); a "
                          "v2.1 dataset is converted once to v3.0 into $HF_LEROBOT_HOME/so101_converted")
    dataset_root: Path | None = option(None, "a local dataset directory instead of the hub (v3.0, or v2.1 "
                                       "converted once)", type=Path)
    output_dir: Path | None = option(None, "run directory (default outputs/train/PRESET); resumed when it has a "
                                     "checkpoint", type=Path)
    exclude_cameras: tuple[str, ...] = option((), "cameras the policy does not see, e.g. --exclude-cameras "
                                              "overhead", type=str, nargs="+", metavar="NAME")
    overrides: dict[str, str] = field(default_factory=dict)
    resize_with_pad: tuple[int, int] | None | str = option(
        "preset", "resize images keeping the aspect ratio with padding, a step saved in the checkpoint's "
        "preprocessor: HxW, none, or preset (the default: 224x224 for ACT, none for SmolVLA, which pads inside "
        "the model)", type=image_size, metavar="HxW|none")
    resume: bool | None = option(None, "--resume requires a checkpoint to resume from, --no-resume never resumes "
                                 "and fails if the run directory exists (default: resume if there is one)",
                                 boolean=True)
    time_budget_min: float | None = option(None, "stop once this many minutes of training have passed, saving that "
                                           "step as the last checkpoint (the run can be resumed later)",
                                           flag="--time-budget", type=float, metavar="MINUTES")
    aux_object_state: float | None = option(None, "train a vision ACT to also predict the sim's object state (cube "
                                            "pose, target position) from its image tokens, with this loss weight "
                                            "(default 0: off; a resumed run keeps its own): a training-only head, "
                                            "left out of the checkpoint. The dataset must record the state "
                                            "(`so101 dataset sim --environment-state`)", type=float,
                                            metavar="WEIGHT")
    frame_cache: bool = option(False, "decode every camera frame once, at the --resize-with-pad size, into "
                               "<dataset root>/so101_frame_cache, and train from it instead of decoding videos at "
                               "every step (the hub dataset at 224x224: 6.8 GB on disk)")

    def __post_init__(self):
        if self.aux_object_state is not None:
            check_aux_object_state(self.aux_object_state)  # before the dataset is looked for
