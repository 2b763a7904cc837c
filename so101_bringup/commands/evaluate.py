"""`so101 eval`: evaluate a policy on the sim or the arm (eval.launch.py in one process), and compare runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import add_graph_options, graph_from_options


def run(args: argparse.Namespace) -> int:
    from so101_bringup.evaluation import EvalRun, comparison_table, results_table
    from so101_bringup.graph import EVAL_ARGUMENTS, eval_nodes
    from so101_bringup.in_process import operator_keyboard, run_graph

    if args.eval_command == "compare":
        runs = [EvalRun.load(Path(run)) for run in args.runs]
        print(comparison_table(runs))
        return 0
    graph_args, specs = graph_from_options(args, EVAL_ARGUMENTS, eval_nodes)

    def started(nodes: dict) -> None:
        if not graph_args.sim:
            operator_keyboard(nodes["so101_eval_manager"])

    nodes = run_graph(specs, until=lambda nodes: nodes["so101_eval_manager"].finished, on_started=started)
    manager = nodes.get("so101_eval_manager")
    # Stopped by the user (Ctrl-C), the run ends as asked: exit 0, with the episodes that finished.
    if manager is None or not manager.run.episodes:
        print("Stopped before any episode finished." if nodes.stopped_by_user else "No episode finished.",
              file=sys.stderr)
        return 0 if nodes.stopped_by_user else 1
    print(results_table(manager.run))
    print(f"Results: {Path(graph_args.output_dir).resolve()}" +
          (f"; bags: {Path(graph_args.output_dir, 'bags').resolve()}" if graph_args.record else ""))
    return 0 if manager.finished or nodes.stopped_by_user else 1


def add_parser(commands) -> None:
    from so101_bringup.graph import EVAL_ARGUMENTS

    evaluate = commands.add_parser(
        "eval", help="evaluate a policy over the ROS graph, in the sim or on the real arm",
        description="Run the nodes of eval.launch.py composed in one process: the sim driver (or the Feetech "
                    "driver and two cameras), policy_node, eval_manager and, with --record, the recorder. Sim "
                    "episodes reset by seed and end on success, at --max-episode-s, or when no chunk comes for 5 s; "
                    "on the real arm the operator starts each episode (Enter) and judges it (y/n). Writes "
                    "results.json and results.md (success rate with its 95% Wilson interval, mean time to "
                    "success) to --output-dir. `so101 eval compare RUN...` puts runs side by side. The options are "
                    "eval.launch.py's arguments.",
    )
    add_graph_options(evaluate, EVAL_ARGUMENTS)
    evaluate.set_defaults(run=run, eval_command="run")
    sub = evaluate.add_subparsers(dest="eval_command")
    compare = sub.add_parser("compare", help="put evaluation runs side by side",
                             description="One row per run: policy, cameras, episodes, success rate with its 95% "
                                         "Wilson interval, mean time to success, inference latency.")
    compare.add_argument("runs", nargs="+", help="directories written by so101 eval")
    compare.set_defaults(run=run, eval_command="compare")
