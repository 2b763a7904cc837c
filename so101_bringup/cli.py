"""`so101`: the user command. Each subcommand is a thin front over tested Python."""

from __future__ import annotations

import argparse
import sys


def _sim(args: argparse.Namespace) -> int:
    from so101_driver import driver_node

    ros_args = [
        "--ros-args",
        "-p", "backend:=sim",
        "-p", f"seed:={args.seed}",
        "-p", f"camera_width:={args.width}",
        "-p", f"camera_height:={args.height}",
        "-p", f"control_rate:={args.rate}",
        "-p", f"merge_mode:={args.merge_mode}",
    ]
    return driver_node.main(args=[sys.argv[0], *ros_args, *args.ros_args])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="so101", description="SO-101 arm: simulation, policies, training.")
    commands = parser.add_subparsers(dest="command", required=True)

    sim = commands.add_parser(
        "sim",
        help="run the MuJoCo SO-101 driver (joint states, both cameras, chunk execution) on ROS 2",
        description="Start driver_node with the sim backend: it publishes /joint_states and "
                    "/so101/{wrist,overhead}/image_raw, executes /so101/action_chunk and "
                    "/so101/joint_command, and serves /so101/reset. Ctrl-C stops it.",
    )
    sim.add_argument("--seed", type=int, default=0, help="seed of the first episode (default 0)")
    sim.add_argument("--width", type=int, default=224, help="camera image width (default 224)")
    sim.add_argument("--height", type=int, default=224, help="camera image height (default 224)")
    sim.add_argument("--rate", type=float, default=30.0, help="control rate in Hz (default 30)")
    sim.add_argument("--merge-mode", default="replace", choices=["replace", "crossfade", "temporal_ensemble"],
                     help="how a new action chunk meets the rest of the old one (default replace)")
    sim.add_argument("ros_args", nargs=argparse.REMAINDER,
                     help="further driver parameters, e.g. -- -p watchdog_timeout:=1.0")
    sim.set_defaults(run=_sim)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "ros_args", None) and args.ros_args[:1] == ["--"]:
        args.ros_args = args.ros_args[1:]
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
