"""`so101` options made from config dataclasses: the names, defaults and help their fields declare.

A field made with `option(default, help)` is `--name-with-dashes` on the command line and, for
GraphArgs, `name:=` in its launch file: `so101 eval --max-episode-s 12` is `eval.launch.py
max_episode_s:=12`, and `so101 demo --train-minutes 5` is DemoConfig(train_minutes=5). Each command
takes its dataclass's fields (for graphs, the tuple of its launch file: graph.EVAL_ARGUMENTS, ...), so
a command cannot grow an option its config or launch file lacks, nor the reverse.
"""

from __future__ import annotations

import argparse
from dataclasses import MISSING, field, fields
from pathlib import Path


def option(default, help: str, *, flag: str | None = None, **argparse_settings):
    """A config field that is also a command-line option (and a launch argument) with this help.

    A field without a default (`MISSING`) is a positional argument. `flag` names the option where
    the field's name would not do on a command line (`--time-budget` for time_budget_min, `--images`
    for use_videos); `argparse_settings` go to add_argument as they are (type, choices, nargs, metavar,
    action) for what the default alone cannot tell: a Path that defaults to None, a list, a value with
    its own syntax, a flag that stores False.
    """
    metadata = {"help": help, "flag": flag, "argparse": argparse_settings}
    return field(metadata=metadata) if default is MISSING else field(default=default, metadata=metadata)


def add_options(parser: argparse.ArgumentParser, config_class, names: tuple[str, ...] | None = None,
                defaults: dict | None = None) -> None:
    """--name-with-dashes for each field of `config_class` in `names` (all option() fields by default);
    booleans as --flag / --no-flag (a None default leaves it unset); `defaults` where the command's
    differ from the class's."""
    declared = {f.name: f for f in fields(config_class) if "help" in f.metadata}
    for name in tuple(declared) if names is None else names:
        metadata = declared[name].metadata
        default = (defaults or {}).get(name, declared[name].default)
        help, settings = metadata["help"], dict(metadata.get("argparse") or {})
        if default is MISSING:
            parser.add_argument(name, help=help, **settings)
            continue
        flag = metadata.get("flag") or "--" + name.replace("_", "-")
        if "action" in settings:  # a flag of its own kind: --images for use_videos=False, say
            parser.add_argument(flag, dest=name, default=default, help=help, **settings)
            continue
        if isinstance(default, bool) or settings.pop("boolean", False):
            parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=default, help=help)
            continue
        if "default" not in help:
            help += f" (default: {default if default not in (None, '', ()) else 'none'})"
        settings.setdefault("type", Path if isinstance(default, Path) else str if default is None else type(default))
        settings.setdefault("metavar", name.upper())
        parser.add_argument(flag, dest=name, default=default, help=help, **settings)


def from_options(config_class, options: argparse.Namespace, names: tuple[str, ...] | None = None, **fixed):
    """The config the parsed `names` (all fields by default) and `fixed` values make."""
    if names is None:
        names = tuple(f.name for f in fields(config_class) if "help" in f.metadata and f.name not in fixed)
    return config_class(**{name: getattr(options, name) for name in names}, **fixed)
