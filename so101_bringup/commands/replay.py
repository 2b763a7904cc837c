"""`so101 replay`: bags through a policy, open loop, offline or through the graph."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from so101_bringup.options import add_options

from .common import add_graph_options, config_from_options, graph_from_options


def run(args: argparse.Namespace) -> int:
    from so101_bringup.graph import REPLAY_OPTIONS, with_checkpoint
    from so101_bringup.replay_config import ReplayConfig

    config = config_from_options(ReplayConfig, args)  # before torch and the policy load
    # A checkpoint: the one given, or the newest trained here.
    _, graph_args = graph_from_options(args, REPLAY_OPTIONS, with_checkpoint)
    if config.realtime:
        return _replay_through_the_graph(config, graph_args)
    import numpy as np

    from so101_bringup.replay import replay_bag, write_reports
    from so101_driver.joint_model import UnitError, joint_model_for
    from so101_policy.checkpoint import CheckpointError, load_policy
    from so101_policy.compatibility import check_compatibility
    from so101_policy.inference_backends import with_backend
    from training.bag_dataset import FROM_BAG, BagDatasetError
    from training.configs import TASK

    cameras = graph_args.camera_list
    calibration = graph_args.calibration
    try:
        joint_model = None if calibration == FROM_BAG else joint_model_for(calibration, graph_args.arm_units)
        loaded = with_backend(load_policy(graph_args.checkpoint, graph_args.device), graph_args.backend)
        check_compatibility(loaded.config, cameras)
        reports = [report for bag in config.bags
                   for report in replay_bag(Path(bag), loaded, joint_model, cameras, graph_args.task or TASK,
                                            config.fps, config.stride, config.seed)]
    except (BagDatasetError, CheckpointError, UnitError) as error:
        print(f"so101 replay: {error}", file=sys.stderr)
        return 1
    path = write_reports(reports, Path(graph_args.output_dir))
    for report in reports:
        summary = report.summary()
        errors = ", ".join(f"{name.removesuffix('.pos')} {value:.2f}"
                           for name, value in summary["mean_abs_error"].items())
        print(f"{Path(report.bag).name}: {summary['frames']} frames, {summary['chunks']} chunks; mean |error| "
              f"{errors} ({summary['units']})")
    if len(reports) > 0:
        print(f"overall mean |error| {np.mean(np.concatenate([r.errors for r in reports])):.3f}; "
              f"report and plots: {path.parent.resolve()}")
    return 0


def _replay_through_the_graph(config, graph_args) -> int:
    """Each bag played into the graph (replay.launch.py's nodes) in turn, its report under output_dir."""
    from dataclasses import replace

    import lerobot.policies  # noqa: F401 - registers the policy types from_pretrained chooses among
    from lerobot.configs.policies import PreTrainedConfig

    from so101_bringup.graph import replay_nodes
    from so101_bringup.in_process import run_graph

    policy = PreTrainedConfig.from_pretrained(graph_args.checkpoint).type  # what the checkpoint is
    for index, bag in enumerate(config.bags):
        args = replace(graph_args, policy=policy, bag=str(bag),
                       output_dir=str(Path(graph_args.output_dir) / f"{Path(bag).name}_{index}"))
        nodes = run_graph(replay_nodes(args), until=lambda nodes: nodes["so101_bag_player"].finished)
        player = nodes["so101_bag_player"]
        if not player.finished:
            return 1
        if player.report["chunks"] == 0:
            print(f"so101 replay: no chunk came back from policy_node while {bag} played (its log says why)",
                  file=sys.stderr)
            return 1
        errors = ", ".join(f"{name.removesuffix('.pos')} {value:.2f}"
                           for name, value in player.report["mean_abs_error"].items())
        print(f"{Path(bag).name} at {args.rate:g}x through policy_node: {player.report['chunks']} chunks; "
              f"mean |error| {errors} ({player.report['units']})")
    return 0


def add_parser(commands) -> None:
    from so101_bringup.graph import REPLAY_DEFAULTS, REPLAY_OPTIONS
    from so101_bringup.replay_config import ReplayConfig

    replay = commands.add_parser(
        "replay", help="replay bags through a policy, open loop, against the recorded actions",
        description="Feed each bag's camera frames and joint states (a frame per control tick) through the policy "
                    "node's core, a chunk every --stride frames, as fast as it runs, and compare each chunk "
                    "point by point with the actions the driver recorded (/so101/joint_targets) at the same ticks. "
                    "Writes replay.json (per-joint mean absolute error, LeRobot units) and a plot per episode. "
                    "Seeded: two replays of a bag give identical chunks. The options but the bags, --fps, --stride, "
                    "--seed and --realtime are replay.launch.py's arguments.",
    )
    add_options(replay, ReplayConfig)
    add_graph_options(replay, REPLAY_OPTIONS, REPLAY_DEFAULTS)

    replay.set_defaults(run=run)
