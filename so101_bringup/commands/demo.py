"""`so101 demo`: demonstrations, training and evaluation on the sim in one command."""

from __future__ import annotations

import argparse

from so101_bringup.options import add_options

from .common import config_from_options


def run(args: argparse.Namespace) -> int:
    from so101_bringup.demo import DemoConfig, run_demo

    return run_demo(config_from_options(DemoConfig, args))


def add_parser(commands) -> None:
    from so101_bringup.demo import DemoConfig

    demo = commands.add_parser(
        "demo", help="the main job on the sim: demonstrations, a small ACT trained on CPU, evaluated over ROS",
        description="Make scripted demonstrations in the MuJoCo sim, one sim per core (reused when they exist), "
                    "train a small ACT (the act_small_cpu preset) for --train-minutes, evaluate it in lockstep "
                    "through the full ROS graph (sim driver, policy_node, eval_manager, recorder) for --episodes "
                    "episodes on seeds no demonstration used, replay the first "
                    "bag open loop, and print the results and where the bags and plots are. Running it again "
                    "trains further from the last checkpoint. With --checkpoint (a path or a hub id) it skips "
                    "the demonstrations and training and evaluates that checkpoint. The options are DemoConfig's "
                    "fields.",
    )
    add_options(demo, DemoConfig)
    demo.set_defaults(run=run)
