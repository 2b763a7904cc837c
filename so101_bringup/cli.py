"""`so101`: the user command, a dispatcher over one module per command (so101_bringup.commands)."""

from __future__ import annotations

import argparse
import signal
import sys

from so101_bringup.commands import dataset, demo, evaluate, export, record, replay, sim, teleop, train
from so101_bringup.commands.common import GraphFailed, UsageError

COMMANDS = (sim, train, dataset, evaluate, replay, export, record, teleop, demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="so101", description="SO-101 arm: simulation, policies, training.")
    commands = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if args.command == "train":
        args.lerobot_settings = unknown  # lerobot-train's own --key=value settings
    elif unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if getattr(args, "ros_args", None) and args.ros_args[:1] == ["--"]:
        args.ros_args = args.ros_args[1:]
    try:
        return args.run(args)
    except UsageError as error:
        print(f"so101 {args.command}: error: {error}", file=sys.stderr)
        return 2
    except GraphFailed as error:
        print(f"so101 {args.command}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # A Ctrl-C outside a running graph (the graphs stop cleanly on their own): no traceback, and, as
        # for a graph the user stops, no failure (graph_exit).
        print(f"so101 {args.command}: stopped (Ctrl-C)", file=sys.stderr)
        return 0


def program() -> None:
    """The `so101` console script: main(), then the exit.

    Once main() is over, a Ctrl-C (a second one, from a user or sent on by a launcher, late on a busy machine)
    would end the process by SIGINT with a traceback during the interpreter's exit: seen as exit -2 under load.
    It is ignored from there on; main() itself leaves the process's handlers alone (it is also a library call).
    """
    try:
        code = main()
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(code)


if __name__ == "__main__":
    program()
