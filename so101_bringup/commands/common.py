"""What the `so101` commands share: a user's mistake in their options, a graph that failed, a graph's options.

ROS-free: `so101 train` runs where ROS is not installed (the GPU machine).
"""

from __future__ import annotations

import argparse
from contextlib import contextmanager

from so101_bringup.options import add_options, from_options


class UsageError(Exception):
    """Options that do not make a graph (a negative seed, a real arm without its calibration)."""


class GraphFailed(Exception):
    """A node of the graph stopped on a problem the user can fix; the message names the node."""


@contextmanager
def usage_errors():
    """A ValueError inside (a config refusing an option's value) is the user's mistake: one line, exit 2.

    Keep only the checks of options inside: a ValueError from deeper down is not the user's.
    """
    try:
        yield
    except ValueError as error:
        raise UsageError(str(error)) from None


def config_from_options(config_class, options: argparse.Namespace, names: tuple[str, ...] | None = None, **fixed):
    """from_options, with a value the config refuses told as a UsageError."""
    with usage_errors():
        return from_options(config_class, options, names, **fixed)


def add_graph_options(parser: argparse.ArgumentParser, names: tuple[str, ...], defaults: dict | None = None) -> None:
    """A graph's options: the GraphArgs fields its launch file declares, and --real for --no-sim."""
    from so101_bringup.graph import GraphArgs

    add_options(parser, GraphArgs, names, defaults)
    if "sim" in names:  # the real arm, as users say it
        parser.add_argument("--real", dest="sim", action="store_false", help="the real arm: --no-sim")


def graph_from_options(options: argparse.Namespace, names: tuple[str, ...], build, **fixed):
    """(GraphArgs, node specs) of the parsed `names` (and `fixed` values); a user's mistake in them as a UsageError."""
    from so101_bringup.graph import GraphArgs

    with usage_errors():  # a seed that is not one, a real arm without calibration, no checkpoint
        args = from_options(GraphArgs, options, names, **fixed)
        return args, build(args)
