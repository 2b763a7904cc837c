"""`so101` options made from config dataclasses: the names, defaults and help their fields declare.

A field made with `option(default, help)` is `--name-with-dashes` on the command line and, for
GraphArgs, `name:=` in its launch file: `so101 eval --max-episode-s 12` is `eval.launch.py
max_episode_s:=12`, and `so101 demo --train-minutes 5` is DemoConfig(train_minutes=5). Each command
takes its dataclass's fields (for graphs, the tuple of its launch file: graph.EVAL_ARGUMENTS, ...), so
a command cannot grow an option its config or launch file lacks, nor the reverse.
"""

from __future__ import annotations

import argparse
from dataclasses import field, fields
from pathlib import Path


def option(default, help: str):
    """A config field that is also a command-line option (and a launch argument) with this help."""
    return field(default=default, metadata={"help": help})


def add_options(parser: argparse.ArgumentParser, config_class, names: tuple[str, ...] | None = None,
                defaults: dict | None = None) -> None:
    """--name-with-dashes for each field of `config_class` in `names` (all by default); booleans as
    --flag / --no-flag; `defaults` where the command's differ from the class's."""
    declared = {f.name: f for f in fields(config_class)}
    for name in tuple(declared) if names is None else names:
        default = (defaults or {}).get(name, declared[name].default)
        help = declared[name].metadata["help"]
        flag = "--" + name.replace("_", "-")
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=help)
            continue
        if "default" not in help:
            help += f" (default: {default if default not in (None, '') else 'none'})"
        kind = Path if isinstance(default, Path) else str if default is None else type(default)
        parser.add_argument(flag, type=kind, default=default, metavar=name.upper(), help=help)


def from_options(config_class, options: argparse.Namespace, names: tuple[str, ...] | None = None, **fixed):
    """The config the parsed `names` (all fields by default) and `fixed` values make."""
    if names is None:
        names = tuple(f.name for f in fields(config_class) if f.name not in fixed)
    return config_class(**{name: getattr(options, name) for name in names}, **fixed)
