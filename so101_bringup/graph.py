"""Which nodes make up each so101 graph, with which parameters: one answer for launch files and `so101 eval`.

The launch files map each NodeSpec to a launch_ros Node (package, executable, name, the YAML file,
then the overrides); `so101 eval` builds the same nodes in one process with the YAML's values and
the same overrides. ROS-free, so it is tested here without launch installed.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import yaml

from so101_driver.episode_seeds import EpisodeSeeds
from so101_driver.sim.task_variants import (DEFAULT_OVERHEAD_VIEW, DEFAULT_VARIANT, OVERHEAD_VIEWS, VARIANTS,
                                          dataset_sim_settings, overhead_view, task_variant)
from so101_policy.backend_names import BACKEND_HELP, check_backend_for, check_backend_name

from .options import option

PACKAGE = "so101_bringup"
DRIVER, LIFECYCLE_MANAGER = "so101_driver", "so101_lifecycle_manager"
POLICY, EVAL_MANAGER, RECORDER = "so101_policy", "so101_eval_manager", "so101_recorder"
CAMERAS = ("wrist", "overhead")
CAMERA_TOPIC = "/so101/{camera}/image_raw"
NO_CAMERAS = "none"
DEFAULT_EPISODES = 10


@dataclass(frozen=True)
class NodeSpec:
    executable: str
    name: str
    config: str | None = None  # a file in config/, read under the node's name
    overrides: dict = field(default_factory=dict)
    package: str = PACKAGE


@dataclass(frozen=True)
class GraphArgs:
    """The graphs' options: each is a launch argument (name:=value) and a `so101` option (--name-with-dashes)."""

    policy: str = option("act", "act or smolvla")
    checkpoint: str = option("", "pretrained_model folder or hub repo id (default: the newest checkpoint of "
                                    "that policy trained here, under outputs/train or outputs/demo/train)")
    sim: bool = option(True, "true: the MuJoCo arm and cameras; false: the real arm")
    cameras: str = option("wrist,overhead", "cameras the policy sees, e.g. wrist for a wrist-only checkpoint, none "
                                            "for one trained on the sim's object state alone")
    device: str = option("auto", "auto, cuda, mps or cpu")
    backend: str = option("torch", BACKEND_HELP)
    mode: str = option("", "sync, async, temporal_ensemble or rtc (default: async for ACT, rtc for SmolVLA)")
    merge_mode: str = option("", "how the driver meets a new chunk: replace, crossfade or temporal_ensemble "
                                    "(default: temporal_ensemble with mode temporal_ensemble, else replace)")
    task: str = option("", "language instruction (SmolVLA; default: the policy node's)")
    record: bool = option(False, "true: a bag per episode under output_dir/bags")
    episodes: int = option(DEFAULT_EPISODES, "episodes to evaluate (a list of seeds gives one per seed)")
    max_episode_s: float = option(30.0, "maximum episode length, s")
    graph_timeout: float = option(180.0, "wall s to wait for the policy node's (and the sim's) services: its start-up "
                                         "computes a first chunk, which takes minutes with torch_compile for a "
                                         "full-size model on a CPU")
    output_dir: str = option("outputs/eval", "results (and bags) directory")
    seed: str = option("0", "sim: seed of the first episode, each next one taking the next; or a list, "
                               "one per episode (3,7,11)")
    # hardware
    port: str = option("/dev/ttyACM0", "real arm: serial port of the bus adapter")
    calibration_id: str = option("", "real arm: the id given to lerobot-calibrate")
    arm_units: str = option("degrees", "LeRobot units of the arm joints: degrees or range_m100_100")
    wrist_device: str = option("/dev/video0", "real arm: wrist camera (index, /dev/videoN or a video file)")
    overhead_device: str = option("/dev/video2", "real arm: overhead camera")
    camera_width: int = option(640, "real arm: camera width")
    camera_height: int = option(480, "real arm: camera height")
    # teleop
    teleop: bool = option(False, "record: the SO-101 leader arm drives the follower (teleop_node)")
    leader_port: str = option("/dev/ttyACM1", "teleop: serial port of the leader arm's bus adapter")
    leader_calibration_id: str = option("", "teleop: the id given to lerobot-calibrate --teleop.type=so101_leader")
    robot_description: bool = option(True, "publish the arm's URDF on /robot_description and its links on /tf "
                                              "with robot_state_publisher (RViz, Foxglove), where it is installed")
    task_variant: str = option(DEFAULT_VARIANT, f"sim: the task's randomisation, one of {sorted(VARIANTS)}")
    overhead_view: str = option(DEFAULT_OVERHEAD_VIEW, f"sim: what the overhead camera frames, one of "
                                                       f"{list(OVERHEAD_VIEWS)} (workspace: the task variant's cubes "
                                                       "and targets)")
    allow_variant_mismatch: bool = option(False, "sim: evaluate a checkpoint on another task variant or overhead "
                                                 "view than its training data's (refused otherwise)")
    sim_width: int = option(224, "sim: camera width")
    sim_height: int = option(224, "sim: camera height")
    # time (sim)
    realtime: bool = option(False, "sim: run on the wall clock (the machine's speed and load shape the result) "
                                      "instead of lockstep")
    latency_ticks: int = option(3, "sim lockstep: control ticks each inference is charged (-1: the latency "
                                      "measured here)")
    # replay
    bag: str = option("", "replay: the bag directory to play")
    rate: float = option(1.0, "replay: playback speed (1.0: the recorded timing)")
    calibration: str = option("bag", "bags: bag (the arm's description each bag recorded; any other given is "
                                        "checked against it), or sim, a calibration id or a JSON file for bags "
                                        "recorded without one")

    def __post_init__(self):
        check_backend_name(self.backend)
        if self.policy not in ("act", "smolvla"):
            raise ValueError(f"policy must be act or smolvla, got '{self.policy}'")
        check_backend_for(self.backend, self.policy, self.inference_mode == "rtc")
        named = [name.strip() for name in self.cameras.split(",") if name.strip()]
        unknown = sorted(set(named) - set(CAMERAS))
        if not named or (unknown and named != [NO_CAMERAS]):
            raise ValueError(f"cameras must name some of {list(CAMERAS)}, or be {NO_CAMERAS}, got '{self.cameras}'")
        if not self.camera_list and not self.sim:
            raise ValueError(f"cameras {NO_CAMERAS} is for a checkpoint trained on the sim's object state, which only "
                             "the sim publishes: the real arm needs a policy that sees its cameras")
        overhead_view(self.overhead_view, task_variant(self.task_variant))
        if not self.sim and not self.calibration_id:
            raise ValueError("the real arm needs calibration_id (the id given to lerobot-calibrate)")
        seeds = self.episode_seeds  # refused here, with its one line, if it is not a seed
        if seeds.is_list and self.episodes not in (len(seeds.listed), DEFAULT_EPISODES):
            raise ValueError(f"episodes is {self.episodes} but seed lists {len(seeds.listed)} seeds ({seeds}); "
                             "a list of seeds gives one episode per seed: leave episodes out or make them agree")

    @property
    def inference_mode(self) -> str:
        """`mode`, or the policy's default: real-time chunking for SmolVLA, async for ACT."""
        return self.mode or ("rtc" if self.policy == "smolvla" else "async")

    @property
    def episode_seeds(self) -> EpisodeSeeds:
        return EpisodeSeeds.parse(self.seed)

    @property
    def episode_count(self) -> int:
        """One episode per seed listed; otherwise `episodes`, from the first seed up."""
        seeds = self.episode_seeds
        return len(seeds.listed) if seeds.is_list else self.episodes

    @property
    def camera_list(self) -> tuple[str, ...]:
        """The cameras named; none for `none`."""
        return tuple(name.strip() for name in self.cameras.split(",") if name.strip() and name.strip() != NO_CAMERAS)


def _calibration(args: GraphArgs) -> str:
    return "sim" if args.sim else args.calibration_id


def _lockstep(args: GraphArgs) -> bool:
    return args.sim and not args.realtime


def _on_sim_time(nodes: list[NodeSpec], args: GraphArgs) -> list[NodeSpec]:
    """In a sim graph the driver owns time (/clock) and every node runs on it."""
    if not args.sim:
        return nodes
    return [replace(spec, overrides={**spec.overrides, "use_sim_time": True}) for spec in nodes]


def _driver_settings(args: GraphArgs) -> dict:
    """The arm's units, and how the driver merges chunks: the policy's temporal_ensemble mode sends
    a chunk every tick, which only the driver can merge."""
    merge_mode = args.merge_mode or ("temporal_ensemble" if args.mode == "temporal_ensemble" else "")
    return {"arm_units": args.arm_units, **({"merge_mode": merge_mode} if merge_mode else {})}


def with_checkpoint(args: GraphArgs) -> GraphArgs:
    """The args with a checkpoint: the one given, else the newest of args.policy trained here (said on stderr)."""
    if args.checkpoint:
        return args
    from so101_policy.trained_checkpoints import newest_trained_checkpoint

    checkpoint = newest_trained_checkpoint(args.policy)
    print(f"[so101] no checkpoint given: taking the newest {args.policy} trained here, {checkpoint}", file=sys.stderr)
    return replace(args, checkpoint=str(checkpoint))


def package_installed(package: str) -> bool:
    try:
        from ament_index_python.packages import get_package_share_directory

        get_package_share_directory(package)
    except (ImportError, LookupError, ValueError, OSError):
        return False
    return True


def state_publisher_nodes(args: GraphArgs) -> list[NodeSpec]:
    """robot_state_publisher with the SO-101's URDF, turning /joint_states into /tf, where it is installed."""
    if not args.robot_description:
        return []
    if not package_installed("robot_state_publisher"):
        print("[so101] robot_state_publisher is not installed, so no /robot_description or /tf for RViz and Foxglove "
              "(apt install ros-$ROS_DISTRO-robot-state-publisher; robot_description:=false says nothing)",
              file=sys.stderr)
        return []
    from so101_driver.robot_description import robot_description

    return [NodeSpec("robot_state_publisher", "robot_state_publisher", None,
                     {"robot_description": robot_description()}, package="robot_state_publisher")]


def robot_nodes(args: GraphArgs, lockstep_participants: tuple[str, ...] = ()) -> list[NodeSpec]:
    """The arm and its cameras: the sim driver (it renders both cameras), or the Feetech driver and two camera
    nodes; and robot_state_publisher (state_publisher_nodes).

    With `lockstep_participants`, the sim driver takes each tick once they have consumed the last.
    """
    return [*_arm_nodes(args, lockstep_participants), *_on_sim_time(state_publisher_nodes(args), args)]


def _arm_nodes(args: GraphArgs, lockstep_participants: tuple[str, ...]) -> list[NodeSpec]:
    if args.sim:
        seeds = args.episode_seeds
        overrides = {"backend": "sim", "seed": list(seeds.listed) if seeds.is_list else seeds.listed[0],
                     "task_variant": args.task_variant, "overhead_view": args.overhead_view,
                     "camera_width": args.sim_width, "camera_height": args.sim_height,
                     "lockstep": bool(lockstep_participants), **_driver_settings(args)}
        if lockstep_participants:
            overrides["lockstep_participants"] = ",".join(lockstep_participants)
        return _on_sim_time(_managed_driver(overrides), args)
    nodes = _managed_driver({"backend": "feetech", "port": args.port, "calibration_id": args.calibration_id,
                             **_driver_settings(args)})
    for camera, device in (("wrist", args.wrist_device), ("overhead", args.overhead_device)):
        nodes.append(NodeSpec("camera_node", f"so101_{camera}_camera", "cameras.yaml",
                              {"device": device, "width": args.camera_width, "height": args.camera_height,
                               "topic": CAMERA_TOPIC.format(camera=camera), "frame_id": f"so101_{camera}_camera"}))
    return nodes


def _managed_driver(overrides: dict) -> list[NodeSpec]:
    """The driver, and the lifecycle manager that configures and activates it (no autostart): a graph
    drives the driver's transitions, as ros2_control's controller manager does its hardware's."""
    return [NodeSpec("driver_node", DRIVER, "driver.yaml", {**overrides, "autostart": False}),
            NodeSpec("lifecycle_manager", LIFECYCLE_MANAGER, None, {"node_names": DRIVER})]


def policy_node(args: GraphArgs, enabled: bool, lockstep: bool = False, calibration: str = "driver") -> NodeSpec:
    """`calibration`: "driver" takes the one the graph's driver publishes; a graph without one names it."""
    if not args.checkpoint:
        raise ValueError("checkpoint is required: a pretrained_model folder or a hub repo id")  # see with_checkpoint
    overrides = {
        "checkpoint": args.checkpoint, "policy_type": args.policy, "device": args.device, "backend": args.backend,
        "mode": args.inference_mode,
        "cameras": ",".join(f"{c}={CAMERA_TOPIC.format(camera=c)}" for c in args.camera_list),
        "calibration": calibration, "enabled": enabled,
    }
    if args.task:
        overrides["task"] = args.task
    if lockstep:
        overrides.update(lockstep=True, latency_ticks=args.latency_ticks)
    return NodeSpec("policy_node", POLICY, "policy.yaml", overrides)


def recorder_node(args: GraphArgs, lockstep: bool = False) -> NodeSpec:
    return NodeSpec("recorder", RECORDER, None,
                    {"output_dir": str(Path(args.output_dir) / "bags"),
                     # What drives the arm, for the bags' metadata: a policy only when a checkpoint is named.
                     "policy": args.policy if args.checkpoint else "", "checkpoint": args.checkpoint,
                     "cameras": ",".join(CAMERAS), "lockstep": lockstep})


def eval_nodes(args: GraphArgs) -> list[NodeSpec]:
    """The robot, the policy (paused until the eval manager starts an episode), the eval manager, the recorder.

    A sim evaluation runs in lockstep unless `realtime`: the policy, the eval manager and the
    recorder are the participants whose consumption of each tick the sim driver waits for.
    """
    args = with_checkpoint(args)
    if args.sim:
        _check_sim_settings(args)
    lockstep = _lockstep(args)
    participants = (POLICY, EVAL_MANAGER, *((RECORDER,) if args.record else ())) if lockstep else ()
    nodes = [policy_node(args, enabled=False, lockstep=lockstep),
             NodeSpec("eval_manager", EVAL_MANAGER, "eval.yaml",
                      {"episodes": args.episode_count, "sim": args.sim, "max_episode_s": args.max_episode_s,
                       "graph_timeout": args.graph_timeout,
                       "output_dir": args.output_dir, "policy": args.policy, "checkpoint": args.checkpoint,
                       "cameras": ",".join(args.camera_list) or NO_CAMERAS, "backend": args.backend,
                       "lockstep": lockstep,
                       "bags_dir": str(Path(args.output_dir) / "bags") if args.record else ""})]
    if args.record:
        nodes.append(recorder_node(args, lockstep))
    return [*robot_nodes(args, participants), *_on_sim_time(nodes, args)]


def _check_sim_settings(args: GraphArgs) -> None:
    """A sim evaluation runs the task variant and overhead view the checkpoint's training data was recorded
    with, unless asked otherwise; where that data is not on this machine, or not from the sim, there is
    nothing to hold it to."""
    if not Path(args.checkpoint).expanduser().exists():
        return  # a hub id: its training data is not on this machine to read
    from so101_policy.dataset_contract import training_data

    data, _ = training_data(args.checkpoint)
    recorded = None if data is None else dataset_sim_settings(data.path)
    if recorded is None:
        return
    flags = {"task_variant": "--task-variant", "overhead_view": "--overhead-view"}
    differ = {name: value for name, value in recorded.items() if value != getattr(args, name)}
    if not differ:
        return
    trained = ", ".join(f"{name.replace('_', ' ')} {value}" for name, value in differ.items())
    would_run = ", ".join(f"{name.replace('_', ' ')} {getattr(args, name)}" for name in differ)
    if not args.allow_variant_mismatch:
        fix = " ".join(f"{flags[name]} {value} ({name}:={value})" for name, value in differ.items())
        raise ValueError(f"the checkpoint was trained on sim {trained} ({data.path}), the sim would run "
                         f"{would_run}: pass {fix}, or --allow-variant-mismatch to evaluate it on another")
    print(f"[so101] evaluating on {would_run}; the checkpoint was trained on {trained}", file=sys.stderr)


def teleop_node(args: GraphArgs) -> NodeSpec:
    """The leader arm streaming /so101/joint_command, in the follower's units (from the driver's /so101/arm)."""
    if not args.leader_calibration_id:
        raise ValueError("teleop needs leader_calibration_id: the id given to lerobot-calibrate "
                         "--teleop.type=so101_leader")
    return NodeSpec("teleop_node", "so101_teleop", None,
                    {"port": args.leader_port, "calibration_id": args.leader_calibration_id})


def teleop_nodes(args: GraphArgs) -> list[NodeSpec]:
    """The robot and the leader arm driving it."""
    return [*robot_nodes(args), *_on_sim_time([teleop_node(args)], args)]


def record_nodes(args: GraphArgs) -> list[NodeSpec]:
    """The robot and the recorder: bags of whatever drives the arm (the leader arm with `teleop`, a
    policy), episodes by marker."""
    driving = [teleop_node(args)] if args.teleop else []
    return [*robot_nodes(args), *_on_sim_time([*driving, recorder_node(args)], args)]


def replay_nodes(args: GraphArgs) -> list[NodeSpec]:
    """A bag played into the graph at its recorded timing, and the policy acting on it (open loop).

    The player publishes the bag's time on /clock and the arm's description, as a driver would;
    both nodes run on the one and the policy takes its units from the other.
    """
    if not args.bag:
        raise ValueError("bag is required: a bag directory recorded by so101 eval --record or so101 record")
    args = with_checkpoint(args)
    nodes = [NodeSpec("bag_player", "so101_bag_player", None,
                      {"bag": args.bag, "rate": args.rate, "output_dir": args.output_dir,
                       "calibration": args.calibration, "arm_units": args.arm_units}),
             policy_node(args, enabled=True)]
    return [replace(spec, overrides={**spec.overrides, "use_sim_time": True}) for spec in nodes]


def config_dir() -> Path:
    """config/ of the installed package (colcon), else of this source tree (pip install -e)."""
    try:
        from ament_index_python.packages import get_package_share_directory
    except ImportError:
        return Path(__file__).parents[1] / "config"
    try:
        return Path(get_package_share_directory(PACKAGE)) / "config"
    except (LookupError, ValueError, OSError):  # not installed by colcon, or no AMENT_PREFIX_PATH
        return Path(__file__).parents[1] / "config"


def node_parameters(spec: NodeSpec, directory: Path | None = None) -> dict:
    """The YAML's parameters for this node, then the overrides: what the node starts with."""
    parameters = {}
    if spec.config:
        path = (directory or config_dir()) / spec.config
        document = yaml.safe_load(path.read_text()) or {}
        section = document.get(spec.name) or document.get("/**") or {}
        parameters.update(section.get("ros__parameters", {}))
    parameters.update(spec.overrides)
    return parameters


ARGUMENT_HELP = {arg.name: arg.metadata["help"] for arg in fields(GraphArgs)}

# What each graph takes: its launch file's arguments, and the options of the `so101` command that runs it.
ROBOT_ARGUMENTS = ("sim", "seed", "task_variant", "overhead_view", "sim_width", "sim_height", "port", "calibration_id",
                   "arm_units", "wrist_device", "overhead_device", "camera_width", "camera_height", "robot_description")
EVAL_ARGUMENTS = ("policy", "checkpoint", "cameras", "device", "backend", "mode", "merge_mode", "task", "record",
                  "episodes", "max_episode_s", "graph_timeout", "output_dir", "realtime", "latency_ticks",
                  "allow_variant_mismatch", *ROBOT_ARGUMENTS)
TELEOP_ARGUMENTS = (*ROBOT_ARGUMENTS, "leader_port", "leader_calibration_id")
RECORD_ARGUMENTS = (*TELEOP_ARGUMENTS, "teleop", "output_dir", "policy", "checkpoint")
RECORD_DEFAULTS = {"output_dir": "outputs/record"}  # where a graph's defaults differ from GraphArgs'
REPLAY_ARGUMENTS = ("bag", "rate", "calibration", "arm_units", "policy", "checkpoint", "cameras", "device",
                    "backend", "mode", "task", "output_dir")
REPLAY_OPTIONS = tuple(name for name in REPLAY_ARGUMENTS if name != "bag")  # `so101 replay` takes bags, many
REPLAY_DEFAULTS = {"output_dir": "outputs/replay"}


_KIND_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "text"}


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered not in ("true", "false", "1", "0"):
        raise ValueError(f"expected true or false, got '{text}'")
    return lowered in ("true", "1")


def graph_args_from_strings(values: dict[str, str]) -> GraphArgs:
    """Launch-argument strings -> GraphArgs, typed as its fields are."""
    defaults = {arg.name: arg.default for arg in fields(GraphArgs)}
    typed = {}
    for name, text in values.items():
        if name not in defaults:
            raise ValueError(f"unknown argument '{name}'; arguments are {sorted(defaults)}")
        kind = type(defaults[name])
        try:
            typed[name] = _parse_bool(text) if kind is bool else kind(text)
        except ValueError:
            raise ValueError(f"{name} takes {_KIND_NAMES[kind]}, got '{text}'") from None
    return GraphArgs(**typed)


def argument_defaults(names: tuple[str, ...], overrides: dict | None = None) -> dict:
    """Each argument's default: GraphArgs', or the graph's own where it has one."""
    defaults = {arg.name: arg.default for arg in fields(GraphArgs)} | (overrides or {})
    return {name: defaults[name] for name in names}


def launch_defaults(names: tuple[str, ...], overrides: dict | None = None) -> dict[str, str]:
    """Each argument's default as launch writes it (booleans in lower case)."""
    return {name: str(value).lower() if isinstance(value, bool) else str(value)
            for name, value in argument_defaults(names, overrides).items()}
