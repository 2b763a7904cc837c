"""`so101 sim`: the sim driver on ROS, or the scripted expert through it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def run(args: argparse.Namespace) -> int:
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


def add_parser(commands) -> None:
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
    sim.set_defaults(run=run)
