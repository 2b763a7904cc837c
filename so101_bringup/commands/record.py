"""`so101 record`: bags of whatever drives the arm (record.launch.py in one process)."""

from __future__ import annotations

import argparse
import sys

from .common import add_graph_options, graph_from_options


def run(args: argparse.Namespace) -> int:
    import threading

    from so101_bringup.graph import RECORD_ARGUMENTS, record_nodes
    from so101_bringup.in_process import run_graph

    _, specs = graph_from_options(args, RECORD_ARGUMENTS, record_nodes)

    def keyboard(nodes: dict) -> None:
        recorder = nodes["so101_recorder"]

        def read() -> None:
            print("Enter starts an episode's bag; Enter again ends it (type s or f first to mark success or "
                  "failure); Ctrl-C stops.")
            recording = False
            for line in sys.stdin:
                if recording:
                    outcome = {"s": "success", "f": "failure"}.get(line.strip().lower(), "")
                    print(recorder.mark("end", outcome))
                else:
                    print(recorder.mark("start"))
                recording = not recording

        threading.Thread(target=read, name="so101_record_keys", daemon=True).start()

    run_graph(specs, until=lambda nodes: False, on_started=keyboard)
    return 0


def add_parser(commands) -> None:
    from so101_bringup.graph import RECORD_ARGUMENTS, RECORD_DEFAULTS

    record = commands.add_parser(
        "record", help="record bags of the arm and its cameras, an episode per Enter",
        description="Run the nodes of record.launch.py in one process: the sim driver (or the Feetech driver and "
                    "two cameras) and the recorder. Whatever drives the arm meanwhile (a policy_node, teleop on "
                    "/so101/joint_command, the eval manager) is recorded: both cameras, /joint_states, "
                    "/so101/joint_targets, /so101/action_chunk and the markers, a rosbag2 MCAP bag per episode "
                    "under --output-dir/bags. Episodes start and end with Enter here, or with start/end "
                    "std_msgs/String messages on /so101/episode_marker from anywhere.",
    )
    add_graph_options(record, RECORD_ARGUMENTS, RECORD_DEFAULTS)
    record.set_defaults(run=run)
