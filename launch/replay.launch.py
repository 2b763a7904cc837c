"""Replay a bag into the graph at its recorded timing with the policy node acting on it (open loop).

    ros2 launch so101_bringup replay.launch.py bag:=outputs/eval/bags/episode_000 checkpoint:=<path or hub id>

The bag player compares each chunk with the recorded actions and writes output_dir/replay.json.
For a seeded, as-fast-as-possible replay with identical chunks every time: so101 replay BAG --checkpoint ...
"""

from so101_bringup.graph import replay_nodes
from so101_bringup.launch_support import graph_launch_description

ARGUMENTS = ("bag", "rate", "calibration", "policy", "checkpoint", "cameras", "device", "mode", "task", "output_dir")


def generate_launch_description():
    return graph_launch_description(ARGUMENTS, replay_nodes, shutdown_after="so101_bag_player")
