"""`so101`: the user command. Each subcommand is a thin front over tested Python."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from so101_bringup.options import add_options, from_options


def _sim(args: argparse.Namespace) -> int:
    from so101_driver import driver_node

    ros_args = [
        sys.argv[0],
        "--ros-args",
        "-p", "backend:=sim",
        "-p", f"seed:={args.seed}",
        "-p", f"camera_width:={args.width}",
        "-p", f"camera_height:={args.height}",
        "-p", f"control_rate:={args.rate}",
        "-p", f"merge_mode:={args.merge_mode}",
        *args.ros_args,
    ]
    if not args.expert_episodes:
        return driver_node.main(args=ros_args)
    return _expert_demo(ros_args, args.expert_episodes, Path(args.output))


def _expert_demo(ros_args: list[str], episodes: int, output: Path) -> int:
    """The sim driver and the scripted expert composed in one process, talking over ROS."""
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    from rclpy.parameter import Parameter

    from so101_bringup.expert_demo import ExpertDemoNode, results_table
    from so101_driver.driver_node import DriverNode
    from so101_driver.stop_signals import stop_once

    with stop_once("so101 sim", process_ends=False) as stop:
        rclpy.init(args=ros_args)
        driver = demo = None
        try:
            driver = DriverNode()
            # The driver owns time in the sim: the expert runs on its /clock.
            demo = ExpertDemoNode(driver.backend.arm, episodes, output, fps=driver.core.config.control_rate_hz,
                                  parameter_overrides=[Parameter("use_sim_time", value=True)])
            executor = SingleThreadedExecutor()
            executor.add_node(driver)
            executor.add_node(demo)
            while not demo.done:
                executor.spin_once(timeout_sec=0.1)
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        finally:
            if stop is not None:
                stop.now_stopping()
            if driver is not None:
                driver.close()
            for node in (demo, driver):
                if node is not None:
                    node.destroy_node()
            rclpy.try_shutdown()
    if demo is not None and demo.results:
        print(results_table(demo.results))
        print(f"Results and camera snapshots: {output.resolve()}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from training.dataset_source import DatasetSourceError
    from training.presets import PresetError, parse_overrides
    from training.train import TrainError, TrainRequest, run_training

    try:
        run_training(from_options(TrainRequest, args, overrides=parse_overrides(args.lerobot_settings)))
    except (TrainError, DatasetSourceError, PresetError) as error:  # each says what was found and what to do
        print(f"so101 train: {error}", file=sys.stderr)
        return 1
    return 0


def _report(args: argparse.Namespace) -> int:
    from training.report import write_report

    curves, table = write_report([Path(run) for run in args.runs], Path(args.output))
    print(table.read_text())
    print(f"Training curves: {curves.resolve()}\nTable: {table.resolve()}")
    return 0


def _dataset_sim(args: argparse.Namespace) -> int:
    from training.sim_dataset import SimDatasetConfig, record_sim_dataset

    dataset = record_sim_dataset(Path(args.root), from_options(SimDatasetConfig, args))
    print(f"{dataset.meta.total_episodes} episodes, {dataset.meta.total_frames} frames in {Path(args.root).resolve()}")
    return 0


def _dataset_from_bags(args: argparse.Namespace) -> int:
    from so101_driver.joint_model import joint_model_for
    from training.bag_dataset import FROM_BAG, BagDatasetConfig, BagDatasetError, convert_bags

    config = from_options(BagDatasetConfig, args)
    joint_model = None if args.calibration == FROM_BAG else joint_model_for(args.calibration, args.arm_units)
    try:
        dataset = convert_bags([Path(bag) for bag in args.bags], Path(args.root), joint_model, config)
    except BagDatasetError as error:
        print(f"so101 dataset from-bags: {error}", file=sys.stderr)
        return 1
    print(f"{dataset.meta.total_episodes} episodes, {dataset.meta.total_frames} frames in {Path(args.root).resolve()}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from so101_bringup.evaluation import EvalRun, comparison_table, results_table
    from so101_bringup.graph import EVAL_ARGUMENTS, eval_nodes
    from so101_bringup.in_process import operator_keyboard, run_graph

    if args.eval_command == "compare":
        runs = [EvalRun.load(Path(run)) for run in args.runs]
        print(comparison_table(runs))
        return 0
    graph_args, specs = _graph(args, EVAL_ARGUMENTS, eval_nodes)

    def started(nodes: dict) -> None:
        if not graph_args.sim:
            operator_keyboard(nodes["so101_eval_manager"])

    nodes = run_graph(specs, until=lambda nodes: nodes["so101_eval_manager"].finished, on_started=started)
    manager = nodes.get("so101_eval_manager")
    if manager is None or not manager.run.episodes:
        print("No episode finished.", file=sys.stderr)
        return 1
    print(results_table(manager.run))
    print(f"Results: {Path(graph_args.output_dir).resolve()}" +
          (f"; bags: {Path(graph_args.output_dir, 'bags').resolve()}" if graph_args.record else ""))
    return 0 if manager.finished else 1


def _add_eval(commands) -> None:
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
    evaluate.set_defaults(run=_eval, eval_command="run")
    sub = evaluate.add_subparsers(dest="eval_command")
    compare = sub.add_parser("compare", help="put evaluation runs side by side",
                             description="One row per run: policy, cameras, episodes, success rate with its 95% "
                                         "Wilson interval, mean time to success, inference latency.")
    compare.add_argument("runs", nargs="+", help="directories written by so101 eval")
    compare.set_defaults(run=_eval, eval_command="compare")


def _replay(args: argparse.Namespace) -> int:
    import numpy as np

    from so101_bringup.graph import REPLAY_OPTIONS, with_checkpoint
    from so101_bringup.replay import ReplayConfig, replay_bag, write_reports
    from so101_driver.joint_model import joint_model_for
    from training.bag_dataset import FROM_BAG, BagDatasetError
    from training.sim_dataset import TASK
    from so101_driver.joint_model import UnitError
    from so101_policy.checkpoint import CheckpointError, load_policy
    from so101_policy.compatibility import check_compatibility
    from so101_policy.inference_backends import with_backend

    try:
        config = from_options(ReplayConfig, args)
    except ValueError as error:
        raise UsageError(str(error)) from None
    _, graph_args = _graph(args, REPLAY_OPTIONS, with_checkpoint)  # a checkpoint: the one given, or the newest
    if config.realtime:
        return _replay_through_the_graph(config, graph_args)
    cameras = graph_args.camera_list
    calibration = graph_args.calibration
    try:
        joint_model = None if calibration == FROM_BAG else joint_model_for(calibration, graph_args.arm_units)
        loaded = with_backend(load_policy(graph_args.checkpoint, graph_args.device), graph_args.backend)
        check_compatibility(loaded.config, cameras)
        reports = [report for bag in config.bags
                   for report in replay_bag(Path(bag), loaded, joint_model, cameras, graph_args.task or TASK,
                                            config.fps, config.stride, config.seed)]
    except (BagDatasetError, CheckpointError, UnitError) as error:
        print(f"so101 replay: {error}", file=sys.stderr)
        return 1
    path = write_reports(reports, Path(graph_args.output_dir))
    for report in reports:
        summary = report.summary()
        errors = ", ".join(f"{name.removesuffix('.pos')} {value:.2f}"
                           for name, value in summary["mean_abs_error"].items())
        print(f"{Path(report.bag).name}: {summary['frames']} frames, {summary['chunks']} chunks; mean |error| "
              f"{errors} ({summary['units']})")
    if len(reports) > 0:
        print(f"overall mean |error| {np.mean(np.concatenate([r.errors for r in reports])):.3f}; "
              f"report and plots: {path.parent.resolve()}")
    return 0


def _record(args: argparse.Namespace) -> int:
    import threading

    from so101_bringup.graph import RECORD_ARGUMENTS, record_nodes
    from so101_bringup.in_process import run_graph

    _, specs = _graph(args, RECORD_ARGUMENTS, record_nodes)

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


def _replay_through_the_graph(config, graph_args) -> int:
    """Each bag played into the graph (replay.launch.py's nodes) in turn, its report under output_dir."""
    from dataclasses import replace

    from lerobot.configs.policies import PreTrainedConfig

    from so101_bringup.graph import replay_nodes
    from so101_bringup.in_process import run_graph

    policy = PreTrainedConfig.from_pretrained(graph_args.checkpoint).type  # what the checkpoint is
    for index, bag in enumerate(config.bags):
        args = replace(graph_args, policy=policy, bag=str(bag),
                       output_dir=str(Path(graph_args.output_dir) / f"{Path(bag).name}_{index}"))
        nodes = run_graph(replay_nodes(args), until=lambda nodes: nodes["so101_bag_player"].finished)
        player = nodes["so101_bag_player"]
        if not player.finished:
            return 1
        if player.report["chunks"] == 0:
            print(f"so101 replay: no chunk came back from policy_node while {bag} played (its log says why)",
                  file=sys.stderr)
            return 1
        errors = ", ".join(f"{name.removesuffix('.pos')} {value:.2f}"
                           for name, value in player.report["mean_abs_error"].items())
        print(f"{Path(bag).name} at {args.rate:g}x through policy_node: {player.report['chunks']} chunks; "
              f"mean |error| {errors} ({player.report['units']})")
    return 0


def _export(args: argparse.Namespace) -> int:
    import contextlib

    from so101_bringup.export import ExportConfig, export
    from so101_policy.checkpoint import CheckpointError

    try:
        with contextlib.redirect_stdout(sys.stderr):  # lerobot's loading notes: stdout is the path alone
            path, runtime = export(from_options(ExportConfig, args))
    except CheckpointError as error:
        print(f"so101 export: {error}", file=sys.stderr)
        return 1
    print(f"so101 export: loaded by {runtime}", file=sys.stderr)
    print(path)  # alone on stdout: model=$(so101 export ...)
    return 0


def _add_export(commands) -> None:
    from so101_bringup.export import ExportConfig

    export = commands.add_parser(
        "export", help="build a checkpoint's model for an inference backend (onnxruntime, openvino) ahead of time",
        description="Export the checkpoint's model for --backend and cache it next to the checkpoint (or in "
                    "~/.cache/so101/onnx), where policy_node, so101 eval and so101 replay with the same backend "
                    "find it; prints where it is.",
    )
    add_options(export, ExportConfig)
    export.set_defaults(run=_export)


def _add_replay(commands) -> None:
    from so101_bringup.graph import REPLAY_DEFAULTS, REPLAY_OPTIONS
    from so101_bringup.replay import ReplayConfig

    replay = commands.add_parser(
        "replay", help="replay bags through a policy, open loop, against the recorded actions",
        description="Feed each bag's camera frames and joint states (a frame per control tick) through the policy "
                    "node's core, a chunk every --stride frames, as fast as it runs, and compare each chunk "
                    "point by point with the actions the driver recorded (/so101/joint_targets) at the same ticks. "
                    "Writes replay.json (per-joint mean absolute error, LeRobot units) and a plot per episode. "
                    "Seeded: two replays of a bag give identical chunks. The options but the bags, --fps, --stride, "
                    "--seed and --realtime are replay.launch.py's arguments.",
    )
    add_options(replay, ReplayConfig)
    add_graph_options(replay, REPLAY_OPTIONS, REPLAY_DEFAULTS)

    replay.set_defaults(run=_replay)


def _demo(args: argparse.Namespace) -> int:
    from so101_bringup.demo import DemoConfig, run_demo

    try:
        config = from_options(DemoConfig, args)
    except ValueError as error:
        raise UsageError(str(error)) from None
    return run_demo(config)


def _add_demo(commands) -> None:
    from so101_bringup.demo import DemoConfig

    demo = commands.add_parser(
        "demo", help="the main job on the sim: demonstrations, a small ACT trained on CPU, evaluated over ROS",
        description="Make scripted demonstrations in the MuJoCo sim, one sim per core (reused when they exist), "
                    "train a small ACT (the act_small_cpu preset) for --train-minutes, evaluate it in lockstep "
                    "through the full ROS graph (sim driver, policy_node, eval_manager, recorder) for --episodes "
                    "episodes on seeds no demonstration used, replay the first "
                    "bag open loop, and print the results and where the bags and plots are. Running it again "
                    "trains further from the last checkpoint. With --checkpoint (a path or a hub id) it skips "
                    "the demonstrations and training and evaluates that checkpoint. The options are DemoConfig's "
                    "fields.",
    )
    add_options(demo, DemoConfig)
    demo.set_defaults(run=_demo)


def _teleop(args: argparse.Namespace) -> int:
    from so101_bringup.graph import TELEOP_ARGUMENTS, teleop_nodes
    from so101_bringup.in_process import run_graph

    _, specs = _graph(args, TELEOP_ARGUMENTS, teleop_nodes)
    run_graph(specs, until=lambda nodes: False)
    return 0


def _add_teleop(commands) -> None:
    from so101_bringup.graph import TELEOP_ARGUMENTS

    teleop = commands.add_parser(
        "teleop", help="drive the arm (or the sim) with the SO-101 leader arm",
        description="Run the nodes of teleop.launch.py in one process: the sim driver (or the Feetech driver and "
                    "two cameras) and teleop_node, which reads the leader arm through lerobot's SO101Leader with "
                    "its calibration (lerobot-calibrate --teleop.type=so101_leader) and streams "
                    "/so101/joint_command at the control rate, until Ctrl-C. `so101 record --teleop` records it.",
    )
    add_graph_options(teleop, TELEOP_ARGUMENTS)
    teleop.set_defaults(run=_teleop)


def _add_record(commands) -> None:
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
    record.set_defaults(run=_record)


def _add_train(commands) -> None:
    from training.presets import PRESETS
    from training.train import TrainRequest

    presets = "\n".join(f"  {name}: {preset.description}" for name, preset in PRESETS.items())
    train = commands.add_parser(
        "train", help="train ACT or SmolVLA with lerobot's training from a preset",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a policy with lerobot's own train() from one of the presets:\n" + presets +
                    "\n\nAny lerobot-train setting overrides the preset, in lerobot's syntax, e.g. --steps=5000 "
                    "--batch_size=8 --policy.optimizer_lr=3e-5 --policy.device=cpu.\nRunning the same command "
                    "again resumes from the run's last checkpoint. Several GPUs: accelerate launch "
                    "--multi_gpu --num_processes=N $(which so101) train ...",
    )
    add_options(train, TrainRequest)
    train.set_defaults(run=_train)

    report = commands.add_parser(
        "report", help="training curves (PNG) and a comparison table (Markdown) of runs",
        description="Read metrics.jsonl and run_info.json of each run directory and write training_curves.png "
                    "(loss against step, log scale) and training_report.md (model, cameras, final loss, grad "
                    "norm, train time, s/step, params, beside the reference runs).",
    )
    report.add_argument("runs", nargs="+", help="run directories written by so101 train")
    report.add_argument("--output", default="outputs/report", help="where to write the report (default outputs/report)")
    report.set_defaults(run=_report)


def _add_dataset(commands) -> None:
    from training.bag_dataset import BagDatasetConfig
    from training.sim_dataset import SimDatasetConfig

    dataset = commands.add_parser("dataset", help="make LeRobotDatasets: scripted sim demos, or from ROS bags")
    kinds = dataset.add_subparsers(dest="kind", required=True)
    sim = kinds.add_parser(
        "sim", help="scripted-expert demonstrations from the MuJoCo SO-101",
        description="Record scripted-expert episodes as a LeRobotDataset v3 with the hub dataset's features "
                    "(observation.state and action in degrees with the gripper 0..100, "
                    "observation.images.wrist/overhead, 30 fps, its task string). Only successful episodes are "
                    "kept. Seeded; run it again with a larger --episodes to add to the same --root.",
    )
    sim.add_argument("--root", default="outputs/datasets/so101_sim",
                     help="dataset directory (default: outputs/datasets/so101_sim)")
    add_options(sim, SimDatasetConfig, defaults={"episodes": 20, "workers": 0})
    sim.set_defaults(run=_dataset_sim)

    bags = kinds.add_parser(
        "from-bags", help="rosbag2 (MCAP) bags of the ROS graph as a LeRobotDataset",
        description="Turn bags recorded from the ROS graph (so101 record) into a LeRobotDataset v3: a frame per "
                    "control tick (/so101/joint_targets, what the driver sent the servos: the action) at most "
                    "--fps per second, with the latest image of each camera and the latest /joint_states; joints "
                    "in LeRobot units through the calibration. Episodes: one per bag, or one per "
                    "start/end pair on /so101/episode_marker.",
    )
    bags.add_argument("bags", nargs="+", help="bag directories (each with metadata.yaml and .mcap files)")
    bags.add_argument("--root", required=True, help="dataset directory to create")
    add_options(bags, BagDatasetConfig)
    add_graph_options(bags, ("calibration", "arm_units"))
    bags.set_defaults(run=_dataset_from_bags)


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
    sim.add_argument("--expert-episodes", type=int, default=0, metavar="N",
                     help="run N episodes of the scripted expert through the ROS graph (action chunks, "
                          "reset and status services), print the results and exit; 0 (default) runs the "
                          "driver alone until Ctrl-C")
    sim.add_argument("--output", default="outputs/sim_expert",
                     help="where --expert-episodes writes results.json, results.md and camera snapshots")
    sim.add_argument("ros_args", nargs=argparse.REMAINDER,
                     help="further driver parameters, e.g. -- -p watchdog_timeout:=1.0")
    sim.set_defaults(run=_sim)
    _add_train(commands)
    _add_dataset(commands)
    _add_eval(commands)
    _add_replay(commands)
    _add_export(commands)
    _add_record(commands)
    _add_teleop(commands)
    _add_demo(commands)
    return parser


class UsageError(Exception):
    """Options that do not make a graph (a negative seed, a real arm without its calibration)."""


def add_graph_options(parser: argparse.ArgumentParser, names: tuple[str, ...], defaults: dict | None = None) -> None:
    """A graph's options: the GraphArgs fields its launch file declares, and --real for --no-sim."""
    from so101_bringup.graph import GraphArgs

    add_options(parser, GraphArgs, names, defaults)
    if "sim" in names:  # the real arm, as users say it
        parser.add_argument("--real", dest="sim", action="store_false", help="the real arm: --no-sim")


def _graph(options: argparse.Namespace, names: tuple[str, ...], build, **fixed):
    """(GraphArgs, node specs) of the parsed `names` (and `fixed` values); a user's mistake in them as a UsageError."""
    from so101_bringup.graph import GraphArgs

    try:
        args = from_options(GraphArgs, options, names, **fixed)
        return args, build(args)
    except ValueError as error:  # a seed that is not one, a real arm without calibration, no checkpoint
        raise UsageError(str(error)) from None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if args.command == "train":
        args.lerobot_settings = unknown  # lerobot-train's own --key=value settings
    elif unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if getattr(args, "ros_args", None) and args.ros_args[:1] == ["--"]:
        args.ros_args = args.ros_args[1:]
    from so101_bringup.in_process import GraphFailed

    try:
        return args.run(args)
    except UsageError as error:
        print(f"so101 {args.command}: error: {error}", file=sys.stderr)
        return 2
    except GraphFailed as error:
        print(f"so101 {args.command}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # A Ctrl-C outside a running graph (the graphs stop cleanly on their own): no traceback.
        print(f"so101 {args.command}: stopped (Ctrl-C)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
