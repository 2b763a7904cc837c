"""Which nodes make up each so101 graph, with which parameters: one answer for launch files and `so101 eval`.

The launch files map each NodeSpec to a launch_ros Node (package, executable, name, the YAML file,
then the overrides); `so101 eval` builds the same nodes in one process with the YAML's values and
the same overrides. ROS-free, so it is tested here without launch installed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import yaml

from so101_driver.episode_seeds import EpisodeSeeds

PACKAGE = "so101_bringup"
POLICY, EVAL_MANAGER, RECORDER = "so101_policy", "so101_eval_manager", "so101_recorder"
CAMERAS = ("wrist", "overhead")
CAMERA_TOPIC = "/so101/{camera}/image_raw"
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
    """The launch arguments; `so101 eval` options carry the same names."""

    policy: str = "act"  # act | smolvla
    checkpoint: str = ""
    sim: bool = True
    cameras: str = "wrist,overhead"  # the cameras the policy sees
    device: str = "auto"
    mode: str = ""  # empty: async for ACT, rtc for SmolVLA
    task: str = ""  # empty: the policy node's default task string
    record: bool = False
    episodes: int = DEFAULT_EPISODES
    max_episode_s: float = 30.0
    output_dir: str = "outputs/eval"
    seed: str = "0"  # sim: the first episode's (then counting up), or one per episode: "3,7,11"
    # hardware
    port: str = "/dev/ttyACM0"
    calibration_id: str = ""
    wrist_device: str = "/dev/video0"
    overhead_device: str = "/dev/video2"
    camera_width: int = 640
    camera_height: int = 480
    sim_width: int = 224
    sim_height: int = 224
    # time (sim)
    realtime: bool = False  # sim on the wall clock instead of lockstep
    latency_ticks: int = 3  # lockstep: control ticks each inference is charged (-1: measured here)
    # replay
    bag: str = ""
    rate: float = 1.0
    calibration: str = "bag"  # the arm that recorded the bag: its recorded description, or sim, an id, a JSON

    def __post_init__(self):
        if self.policy not in ("act", "smolvla"):
            raise ValueError(f"policy must be act or smolvla, got '{self.policy}'")
        unknown = sorted(set(self.camera_list) - set(CAMERAS))
        if unknown or not self.camera_list:
            raise ValueError(f"cameras must name some of {list(CAMERAS)}, got '{self.cameras}'")
        if not self.sim and not self.calibration_id:
            raise ValueError("the real arm needs calibration_id (the id given to lerobot-calibrate)")
        seeds = self.episode_seeds  # refused here, with its one line, if it is not a seed
        if seeds.is_list and self.episodes not in (len(seeds.listed), DEFAULT_EPISODES):
            raise ValueError(f"episodes is {self.episodes} but seed lists {len(seeds.listed)} seeds ({seeds}); "
                             "a list of seeds gives one episode per seed: leave episodes out or make them agree")

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
        return tuple(name.strip() for name in self.cameras.split(",") if name.strip())


def _calibration(args: GraphArgs) -> str:
    return "sim" if args.sim else args.calibration_id


def _lockstep(args: GraphArgs) -> bool:
    return args.sim and not args.realtime


def _on_sim_time(nodes: list[NodeSpec], args: GraphArgs) -> list[NodeSpec]:
    """In a sim graph the driver owns time (/clock) and every node runs on it."""
    if not args.sim:
        return nodes
    return [replace(spec, overrides={**spec.overrides, "use_sim_time": True}) for spec in nodes]


def _merge_mode(args: GraphArgs) -> dict:
    """The policy's temporal_ensemble mode sends a chunk every tick; only the driver can merge them."""
    return {"merge_mode": "temporal_ensemble"} if args.mode == "temporal_ensemble" else {}


def robot_nodes(args: GraphArgs, lockstep_participants: tuple[str, ...] = ()) -> list[NodeSpec]:
    """The arm and its cameras: the sim driver (it renders both cameras), or the Feetech driver and two camera nodes.

    With `lockstep_participants`, the sim driver takes each tick once they have consumed the last.
    """
    if args.sim:
        seeds = args.episode_seeds
        overrides = {"backend": "sim", "seed": list(seeds.listed) if seeds.is_list else seeds.listed[0],
                     "camera_width": args.sim_width, "camera_height": args.sim_height, "lockstep": bool(lockstep_participants), **_merge_mode(args)}
        if lockstep_participants:
            overrides["lockstep_participants"] = ",".join(lockstep_participants)
        return _on_sim_time([NodeSpec("driver_node", "so101_driver", "driver.yaml", overrides)], args)
    nodes = [NodeSpec("driver_node", "so101_driver", "driver.yaml",
                      {"backend": "feetech", "port": args.port, "calibration_id": args.calibration_id,
                       **_merge_mode(args)})]
    for camera, device in (("wrist", args.wrist_device), ("overhead", args.overhead_device)):
        nodes.append(NodeSpec("camera_node", f"so101_{camera}_camera", "cameras.yaml",
                              {"device": device, "width": args.camera_width, "height": args.camera_height,
                               "topic": CAMERA_TOPIC.format(camera=camera), "frame_id": f"so101_{camera}_camera"}))
    return nodes


def policy_node(args: GraphArgs, enabled: bool, lockstep: bool = False, calibration: str = "driver") -> NodeSpec:
    """`calibration`: "driver" takes the one the graph's driver publishes; a graph without one names it."""
    if not args.checkpoint:
        raise ValueError("checkpoint is required: a pretrained_model folder or a hub repo id")
    overrides = {
        "checkpoint": args.checkpoint, "policy_type": args.policy, "device": args.device,
        "mode": args.mode or ("rtc" if args.policy == "smolvla" else "async"),
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
                    {"output_dir": str(Path(args.output_dir) / "bags"), "policy": args.policy,
                     "checkpoint": args.checkpoint, "cameras": ",".join(CAMERAS), "lockstep": lockstep})


def eval_nodes(args: GraphArgs) -> list[NodeSpec]:
    """The robot, the policy (paused until the eval manager starts an episode), the eval manager, the recorder.

    A sim evaluation runs in lockstep unless `realtime`: the policy, the eval manager and the
    recorder are the participants whose consumption of each tick the sim driver waits for.
    """
    lockstep = _lockstep(args)
    participants = (POLICY, EVAL_MANAGER, *((RECORDER,) if args.record else ())) if lockstep else ()
    nodes = [policy_node(args, enabled=False, lockstep=lockstep),
             NodeSpec("eval_manager", EVAL_MANAGER, "eval.yaml",
                      {"episodes": args.episode_count, "sim": args.sim, "max_episode_s": args.max_episode_s,
                       "output_dir": args.output_dir, "policy": args.policy, "checkpoint": args.checkpoint,
                       "cameras": ",".join(args.camera_list), "lockstep": lockstep,
                       "bags_dir": str(Path(args.output_dir) / "bags") if args.record else ""})]
    if args.record:
        nodes.append(recorder_node(args, lockstep))
    return [*robot_nodes(args, participants), *_on_sim_time(nodes, args)]


def record_nodes(args: GraphArgs) -> list[NodeSpec]:
    """The robot and the recorder: bags of whatever drives the arm (teleop, a policy), episodes by marker."""
    return [*robot_nodes(args), *_on_sim_time([recorder_node(args)], args)]


def replay_nodes(args: GraphArgs) -> list[NodeSpec]:
    """A bag played into the graph at its recorded timing, and the policy acting on it (open loop).

    The player publishes the bag's time on /clock and the arm's description, as a driver would;
    both nodes run on the one and the policy takes its units from the other.
    """
    if not args.bag:
        raise ValueError("bag is required: a bag directory recorded by so101 eval --record or so101 record")
    nodes = [NodeSpec("bag_player", "so101_bag_player", None,
                      {"bag": args.bag, "rate": args.rate, "output_dir": str(Path(args.output_dir) / "replay"),
                       "calibration": args.calibration}),
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


ARGUMENT_HELP = {
    "policy": "act or smolvla",
    "checkpoint": "pretrained_model folder or hub repo id",
    "sim": "true: the MuJoCo arm and cameras; false: the real arm",
    "cameras": "cameras the policy sees, e.g. wrist for a wrist-only checkpoint",
    "device": "auto, cuda, mps or cpu",
    "mode": "sync, async, temporal_ensemble or rtc (default: async for ACT, rtc for SmolVLA)",
    "task": "language instruction (SmolVLA)",
    "record": "true: a bag per episode under output_dir/bags",
    "episodes": "episodes to evaluate",
    "max_episode_s": "maximum episode length, s",
    "output_dir": "results (and bags) directory",
    "seed": "sim: seed of the first episode, the next taking the next; or a list, one per episode (3,7,11)",
    "port": "real arm: serial port of the bus adapter",
    "calibration_id": "real arm: the id given to lerobot-calibrate",
    "wrist_device": "real arm: wrist camera (index, /dev/videoN or a video file)",
    "overhead_device": "real arm: overhead camera",
    "camera_width": "real arm: camera width",
    "camera_height": "real arm: camera height",
    "sim_width": "sim: camera width",
    "sim_height": "sim: camera height",
    "realtime": "sim: run on the wall clock (the machine's speed and load shape the result) instead of lockstep",
    "latency_ticks": "sim lockstep: control ticks each inference is charged (-1: the latency measured here)",
    "bag": "replay: the bag directory to play",
    "rate": "replay: playback speed (1.0: the recorded timing)",
    "calibration": "replay: bag (the arm's description the bag recorded), or sim, a calibration id or a JSON "
                   "file for a bag recorded without one",
}


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
        typed[name] = _parse_bool(text) if kind is bool else kind(text)
    return GraphArgs(**typed)


def launch_defaults(names: tuple[str, ...]) -> dict[str, str]:
    """Each argument's default as launch writes it (booleans in lower case)."""
    defaults = {arg.name: arg.default for arg in fields(GraphArgs)}
    return {name: str(defaults[name]).lower() if isinstance(defaults[name], bool) else str(defaults[name])
            for name in names}
