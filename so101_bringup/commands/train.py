"""`so101 train`: lerobot's training from a preset, and `so101 report` on its runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from so101_bringup.options import add_options, from_options

from .common import usage_errors


def run(args: argparse.Namespace) -> int:
    from training.configs import TrainRequest
    from training.presets import parse_overrides

    with usage_errors():  # a malformed lerobot setting or option: one line, before lerobot's training is imported
        request = from_options(TrainRequest, args, overrides=parse_overrides(args.lerobot_settings))
    from training.train import run_training, training_refusals  # lerobot's training: seconds of imports

    try:
        run_training(request)
    except training_refusals() as error:
        print(f"so101 train: {error}", file=sys.stderr)
        return 1
    return 0


def run_report(args: argparse.Namespace) -> int:
    from training.report import write_report

    curves, table = write_report([Path(run) for run in args.runs], Path(args.output))
    print(table.read_text())
    print(f"Training curves: {curves.resolve()}\nTable: {table.resolve()}")
    return 0


def add_parser(commands) -> None:
    from training.presets import PRESETS
    from training.configs import TrainRequest

    presets = "\n".join(f"  {name}: {preset.description}" for name, preset in PRESETS.items())
    train = commands.add_parser(
        "train", help="train ACT or SmolVLA with lerobot's training from a preset",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a policy with lerobot's own train() from one of the presets:\n" + presets +
                    "\n\nAny lerobot-train setting overrides the preset, in lerobot's syntax, e.g. --steps=5000 "
                    "--batch_size=8 --policy.optimizer_lr=3e-5 --policy.device=cpu.\nRunning the same command "
                    "again resumes from the run's last checkpoint. Several GPUs: accelerate launch "
                    "--multi_gpu --num_processes=N $(which so101) train ...",
    )
    add_options(train, TrainRequest)
    train.set_defaults(run=run)

    report = commands.add_parser(
        "report", help="training curves (PNG) and a comparison table (Markdown) of runs",
        description="Read metrics.jsonl and run_info.json of each run directory and write training_curves.png "
                    "(loss against step, log scale) and training_report.md (model, cameras, final loss, grad "
                    "norm, train time, s/step, params, beside the reference runs).",
    )
    report.add_argument("runs", nargs="+", help="run directories written by so101 train")
    report.add_argument("--output", default="outputs/report", help="where to write the report (default outputs/report)")
    report.set_defaults(run=run_report)
