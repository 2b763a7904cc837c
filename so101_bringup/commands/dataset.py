"""`so101 dataset`: LeRobotDatasets from the scripted expert or from bags."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from so101_bringup.options import add_options, from_options

from .common import add_graph_options, config_from_options, usage_errors


def run_sim(args: argparse.Namespace) -> int:
    from training.configs import SimDatasetConfig

    config = config_from_options(SimDatasetConfig, args)  # before the sim and lerobot load
    from training.sim_dataset import record_sim_dataset

    dataset = record_sim_dataset(Path(args.root), config)
    print(f"{dataset.meta.total_episodes} episodes, {dataset.meta.total_frames} frames in {Path(args.root).resolve()}")
    return 0


def run_from_bags(args: argparse.Namespace) -> int:
    from so101_bringup.bag_format import check_bag_directories
    from training.configs import BagDatasetConfig

    with usage_errors():
        config = from_options(BagDatasetConfig, args)
        check_bag_directories(args.bags)
    from so101_driver.joint_model import joint_model_for
    from training.bag_dataset import FROM_BAG, BagDatasetError, convert_bags

    joint_model = None if args.calibration == FROM_BAG else joint_model_for(args.calibration, args.arm_units)
    try:
        dataset = convert_bags([Path(bag) for bag in args.bags], Path(args.root), joint_model, config)
    except BagDatasetError as error:
        print(f"so101 dataset from-bags: {error}", file=sys.stderr)
        return 1
    print(f"{dataset.meta.total_episodes} episodes, {dataset.meta.total_frames} frames in {Path(args.root).resolve()}")
    return 0


def add_parser(commands) -> None:
    from training.configs import BagDatasetConfig, SimDatasetConfig

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
    sim.set_defaults(run=run_sim)

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
    bags.set_defaults(run=run_from_bags)
