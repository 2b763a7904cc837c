"""`so101` options made from GraphArgs: the names, defaults and help that the launch files declare.

`so101 eval --max-episode-s 12` is `eval.launch.py max_episode_s:=12`: each command takes the
argument tuple of its launch file (graph.EVAL_ARGUMENTS, ...), so neither can grow an option the
other lacks.
"""

from __future__ import annotations

import argparse

from .graph import ARGUMENT_HELP, GraphArgs, argument_defaults


def add_graph_options(parser: argparse.ArgumentParser, names: tuple[str, ...], defaults: dict | None = None) -> None:
    """--name-with-dashes for each GraphArgs field in `names`; booleans as --flag / --no-flag."""
    for name, default in argument_defaults(names, defaults).items():
        flag = "--" + name.replace("_", "-")
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=ARGUMENT_HELP[name])
        else:
            help = ARGUMENT_HELP[name]
            if "default" not in help:
                help += f" (default: {default or 'none'})"
            parser.add_argument(flag, type=type(default), default=default, metavar=name.upper(), help=help)
    if "sim" in names:  # the real arm, as users say it
        parser.add_argument("--real", dest="sim", action="store_false", help="the real arm: --no-sim")


def graph_args(options: argparse.Namespace, names: tuple[str, ...], **fixed) -> GraphArgs:
    """The GraphArgs the parsed `names` (and `fixed` values) make; ValueError says what is wrong."""
    return GraphArgs(**{name: getattr(options, name) for name in names}, **fixed)
