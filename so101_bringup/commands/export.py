"""`so101 export`: a checkpoint's model built for an inference backend."""

from __future__ import annotations

import argparse
import sys

from so101_bringup.options import add_options

from .common import config_from_options


def run(args: argparse.Namespace) -> int:
    import contextlib

    from so101_bringup.export import ExportConfig, export

    config = config_from_options(ExportConfig, args)  # before torch and lerobot load
    from so101_policy.checkpoint import CheckpointError

    try:
        with contextlib.redirect_stdout(sys.stderr):  # lerobot's loading notes: stdout is the path alone
            path, runtime = export(config)
    except CheckpointError as error:
        print(f"so101 export: {error}", file=sys.stderr)
        return 1
    print(f"so101 export: loaded by {runtime}", file=sys.stderr)
    print(path)  # alone on stdout: model=$(so101 export ...)
    return 0


def add_parser(commands) -> None:
    from so101_bringup.export import ExportConfig

    export = commands.add_parser(
        "export", help="build a checkpoint's exported model (ACT's, SmolVLA's image encoder) for onnxruntime or "
             "openvino ahead of time",
        description="Export the checkpoint's model for --backend and cache it next to the checkpoint (or in "
                    "~/.cache/so101/onnx), where policy_node, so101 eval and so101 replay with the same backend "
                    "find it; prints where it is.",
    )
    add_options(export, ExportConfig)
    export.set_defaults(run=run)
