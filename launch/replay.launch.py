"""Replay a bag into the graph at its recorded timing with the policy node acting on it (open loop).

    ros2 launch so101_bringup replay.launch.py bag:=outputs/eval/bags/episode_000 checkpoint:=<path or hub id>

The bag player compares each chunk with the recorded actions and writes output_dir/replay.json
(default outputs/replay).
Without a checkpoint it takes the newest one trained here for that policy.
For a seeded, as-fast-as-possible replay with identical chunks every time: so101 replay BAG --checkpoint ...
"""

from so101_bringup.graph import REPLAY_ARGUMENTS, REPLAY_DEFAULTS, replay_nodes
from so101_bringup.launch_support import graph_launch_description


def generate_launch_description():
    return graph_launch_description(REPLAY_ARGUMENTS, replay_nodes, defaults=REPLAY_DEFAULTS)
