"""`so101 sim`: the sim driver on ROS, or the scripted expert through it."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from so101_bringup.options import add_options, from_options, option
from so101_driver.sim.task_variants import DEFAULT_OVERHEAD_VIEW, DEFAULT_VARIANT, OVERHEAD_VIEWS, VARIANTS


@dataclass(frozen=True)
class SimConfig:
    """`so101 sim`'s options (driver_node's parameters for the sim, and the expert's run)."""

    seed: int = option(0, "seed of the first episode")
    task_variant: str = option(DEFAULT_VARIANT, "the task's randomisation", choices=sorted(VARIANTS))
    overhead_view: str = option(DEFAULT_OVERHEAD_VIEW, "what the overhead camera frames (workspace: the task "
                                                       "variant's cubes and targets)", choices=list(OVERHEAD_VIEWS))
    width: int = option(224, "camera image width")
    height: int = option(224, "camera image height")
    rate: float = option(30.0, "control rate in Hz")
    merge_mode: str = option("replace", "how a new action chunk meets the rest of the old one",
                             choices=["replace", "crossfade", "temporal_ensemble"])
    expert_episodes: int = option(0, "run N episodes of the scripted expert through the ROS graph (action chunks, "
                                     "reset and status services), print the results and exit; 0 (the default) "
                                     "runs the driver alone until Ctrl-C", metavar="N")
    output: Path = option(Path("outputs/sim_expert"), "where --expert-episodes writes results.json, results.md "
                                                      "and camera snapshots")


def run(args: argparse.Namespace) -> int:
    from so101_driver import driver_node

    config = from_options(SimConfig, args)
    ros_args = [
        sys.argv[0],
        "--ros-args",
        "-p", "backend:=sim",
        "-p", f"seed:={config.seed}",
        "-p", f"task_variant:={config.task_variant}",
        "-p", f"overhead_view:={config.overhead_view}",
        "-p", f"camera_width:={config.width}",
        "-p", f"camera_height:={config.height}",
        "-p", f"control_rate:={config.rate}",
        "-p", f"merge_mode:={config.merge_mode}",
        *args.ros_args,
    ]
    if not config.expert_episodes:
        return driver_node.main(args=ros_args)
    return _expert_demo(ros_args, config.expert_episodes, Path(config.output))


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
    add_options(sim, SimConfig)
    sim.add_argument("ros_args", nargs=argparse.REMAINDER,
                     help="further driver parameters, e.g. -- -p watchdog_timeout:=1.0")
    sim.set_defaults(run=run)
