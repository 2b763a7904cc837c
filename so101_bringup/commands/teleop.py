"""`so101 teleop`: the leader arm drives the follower (teleop.launch.py in one process)."""

from __future__ import annotations

import argparse

from .common import add_graph_options, graph_from_options


def run(args: argparse.Namespace) -> int:
    from so101_bringup.graph import TELEOP_ARGUMENTS, teleop_nodes
    from so101_bringup.in_process import run_graph

    _, specs = graph_from_options(args, TELEOP_ARGUMENTS, teleop_nodes)
    run_graph(specs, until=lambda nodes: False)
    return 0


def add_parser(commands) -> None:
    from so101_bringup.graph import TELEOP_ARGUMENTS

    teleop = commands.add_parser(
        "teleop", help="drive the arm (or the sim) with the SO-101 leader arm",
        description="Run the nodes of teleop.launch.py in one process: the sim driver (or the Feetech driver and "
                    "two cameras) and teleop_node, which reads the leader arm through lerobot's SO101Leader with "
                    "its calibration (lerobot-calibrate --teleop.type=so101_leader) and streams "
                    "/so101/joint_command at the control rate, until Ctrl-C. `so101 record --teleop` records it.",
    )
    add_graph_options(teleop, TELEOP_ARGUMENTS)
    teleop.set_defaults(run=run)
