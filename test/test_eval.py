"""Evaluation: the graph builder behind the launch files and `so101 eval`, results, the eval manager, bags."""

import argparse
import importlib
import importlib.util
import json
import subprocess
import sys
import types
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from std_msgs.msg import String
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory

from ros_harness import NodeProcess, RosProbe, TerminalSession, isolated_ros_env, next_domain_id
from so101_bringup import bag_format
from so101_bringup.episode_runner import EpisodeLimits, EpisodeRunner, Phase
from so101_bringup.evaluation import EpisodeResult, EvalRun, Outcome, comparison_table, wilson_interval
from so101_bringup.graph import (
    EVAL_ARGUMENTS,
    REPLAY_OPTIONS,
    GraphArgs,
    NodeSpec,
    eval_nodes,
    graph_args_from_strings,
    node_parameters,
    record_nodes,
    replay_nodes,
    robot_nodes,
    teleop_nodes,
)
from so101_bringup.options import from_options
from so101_bringup.in_process import NODE_CLASSES
from so101_driver.episode_seeds import EpisodeSeeds
from so101_driver.joint_model import JOINT_NAMES
from so101_driver.ros_messages import joint_trajectory_msg

REPO = Path(__file__).parents[1]
SO101 = str(Path(sys.executable).parent / "so101")


def declared(executable: str) -> dict:
    """The node's parameter table, {name: (default, description)}."""
    return importlib.import_module(NODE_CLASSES[executable].split(":")[0]).PARAMETERS


# -- the graph builder --------------------------------------------------------------------------
def by_name(specs):
    return {spec.name: spec for spec in specs}


def test_sim_eval_graph_and_its_parameters():
    specs = by_name(eval_nodes(GraphArgs(policy="act", checkpoint="ckpt", episodes=3, record=True, seed=5,
                                         graph_timeout=600.0)))
    assert list(specs) == ["so101_driver", "so101_lifecycle_manager", "so101_policy", "so101_eval_manager",
                           "so101_recorder"]
    driver = node_parameters(specs["so101_driver"])
    assert driver["backend"] == "sim" and driver["seed"] == 5 and driver["control_rate"] == 30.0  # YAML + overrides
    # The graph drives the driver's lifecycle: no autostart, the manager configures and activates it.
    assert driver["autostart"] is False and node_parameters(specs["so101_lifecycle_manager"]) == {
        "node_names": "so101_driver", "use_sim_time": True}
    policy = node_parameters(specs["so101_policy"])
    assert policy["checkpoint"] == "ckpt" and policy["mode"] == "async" and policy["enabled"] is False
    assert policy["cameras"] == "wrist=/so101/wrist/image_raw,overhead=/so101/overhead/image_raw"
    assert policy["calibration"] == "driver" and policy["fps"] == 30.0  # the units the driver publishes
    manager = node_parameters(specs["so101_eval_manager"])
    assert manager["episodes"] == 3 and manager["sim"] is True and manager["bags_dir"] == "outputs/eval/bags"
    assert manager["graph_timeout"] == 600.0
    assert node_parameters(specs["so101_recorder"])["output_dir"] == "outputs/eval/bags"
    for spec in specs.values():  # every parameter a node is given is one it declares, with its type
        table = {**declared(spec.executable), "use_sim_time": (False, "rclpy declares it on every node")}
        for name, value in node_parameters(spec).items():
            assert name in table, (spec.name, name)
            assert type(value) is type(table[name][0]) or name == "max_relative_target", (spec.name, name, value)
            default, _, *valid_range = table[name]
            for low, high in valid_range:
                assert low <= value <= high, (spec.name, name, value)


def test_the_task_variant_reaches_the_sim_and_a_policy_may_see_no_camera():
    specs = by_name(eval_nodes(GraphArgs(policy="act", checkpoint="ckpt", task_variant="wide", cameras="none")))
    assert node_parameters(specs["so101_driver"])["task_variant"] == "wide"
    assert node_parameters(specs["so101_policy"])["cameras"] == ""  # a checkpoint on the sim's object state
    assert node_parameters(specs["so101_eval_manager"])["cameras"] == "none"
    assert node_parameters(by_name(eval_nodes(GraphArgs(checkpoint="ckpt")))["so101_driver"])["task_variant"] == \
        "pick_place_10cm"
    with pytest.raises(ValueError, match="task_variant must be one of"):
        GraphArgs(task_variant="narrow")
    with pytest.raises(ValueError, match="or be none"):
        GraphArgs(cameras="")
    with pytest.raises(ValueError, match="or be none"):
        GraphArgs(cameras="wrist,none")
    with pytest.raises(ValueError, match="which only the sim publishes"):
        GraphArgs(cameras="none", sim=False, calibration_id="lab")


def checkpoint_trained_on_a_sim_dataset(folder: Path, settings: dict | None) -> Path:
    """A checkpoint folder whose train_config.json names a dataset recorded by `so101 dataset sim` with
    these settings (None: a dataset from elsewhere, without them)."""
    dataset = folder / "dataset"
    (dataset / "meta").mkdir(parents=True)
    (dataset / "meta" / "info.json").write_text(json.dumps({"fps": 30, "robot_type": "so101_follower",
                                                            "features": {}}))
    if settings is not None:
        (dataset / "meta" / "so101_sim.json").write_text(json.dumps({"episodes": 1, "next_seed": 1,
                                                                      "settings": settings}))
    checkpoint = folder / "pretrained_model"
    checkpoint.mkdir()
    (checkpoint / "train_config.json").write_text(json.dumps({"dataset": {"repo_id": "local/x",
                                                                          "root": str(dataset)}}))
    return checkpoint


def test_a_checkpoint_is_evaluated_on_its_training_datas_task_variant_unless_asked(tmp_path, capsys):
    wide = checkpoint_trained_on_a_sim_dataset(tmp_path / "wide", {"task_variant": "wide"})
    with pytest.raises(ValueError, match=r"trained on sim task variant wide \(.*\), the sim would run task variant "
                                         r"pick_place_10cm: pass --task-variant wide"):
        eval_nodes(GraphArgs(checkpoint=str(wide)))
    assert node_parameters(by_name(eval_nodes(GraphArgs(checkpoint=str(wide), task_variant="wide")))[
        "so101_driver"])["task_variant"] == "wide"
    eval_nodes(GraphArgs(checkpoint=str(wide), allow_variant_mismatch=True))
    assert "evaluating on task variant pick_place_10cm; the checkpoint was trained on task variant wide" in \
        capsys.readouterr().err
    # Recorded before variants had names: the sim then laid out scenes as `wide` does.
    older = checkpoint_trained_on_a_sim_dataset(tmp_path / "older", {"seed": 0})
    with pytest.raises(ValueError, match="trained on sim task variant wide"):
        eval_nodes(GraphArgs(checkpoint=str(older)))
    # Data not from the sim (the hub's, bags) and the real arm: nothing to hold the sim to.
    eval_nodes(GraphArgs(checkpoint=str(checkpoint_trained_on_a_sim_dataset(tmp_path / "hub", None))))
    eval_nodes(GraphArgs(checkpoint=str(wide), sim=False, calibration_id="lab"))
    refused = subprocess.run([SO101, "eval", "--checkpoint", str(wide), "--task-variant", "pick_place_10cm"],
                             capture_output=True, text=True, timeout=120, env=isolated_ros_env(next_domain_id()))
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "so101 eval: error: the checkpoint was trained on sim task variant wide" in refused.stderr


def test_a_checkpoint_is_evaluated_with_its_training_datas_overhead_view_unless_asked(tmp_path):
    framed = checkpoint_trained_on_a_sim_dataset(tmp_path / "framed", {"task_variant": "pick_place_10cm",
                                                                       "overhead_view": "workspace"})
    with pytest.raises(ValueError, match=r"trained on sim overhead view workspace \(.*\), the sim would run overhead "
                                         r"view cell: pass --overhead-view workspace \(overhead_view:=workspace\)"):
        eval_nodes(GraphArgs(checkpoint=str(framed)))
    driver = by_name(eval_nodes(GraphArgs(checkpoint=str(framed), overhead_view="workspace")))["so101_driver"]
    assert node_parameters(driver)["overhead_view"] == "workspace"
    # Both differ: both named, in one line.
    with pytest.raises(ValueError, match=r"task variant pick_place_10cm, overhead view workspace .* pass --task-variant "
                                         r"pick_place_10cm .* --overhead-view workspace"):
        eval_nodes(GraphArgs(checkpoint=str(framed), task_variant="wide"))
    # Recorded before views had names: the camera saw the cell.
    older = checkpoint_trained_on_a_sim_dataset(tmp_path / "older", {"task_variant": "pick_place_10cm"})
    eval_nodes(GraphArgs(checkpoint=str(older)))
    with pytest.raises(ValueError, match="trained on sim overhead view cell"):
        eval_nodes(GraphArgs(checkpoint=str(older), overhead_view="workspace"))
    with pytest.raises(ValueError, match=r"overhead_view must be one of \['cell', 'workspace'\], got 'top'"):
        GraphArgs(overhead_view="top")


def test_real_arm_graph_smolvla_wrist_only():
    args = GraphArgs(policy="smolvla", checkpoint="user/smolvla_wrist", sim=False, cameras="wrist",
                     calibration_id="my_arm", wrist_device="/dev/video4")
    specs = by_name(eval_nodes(args))
    assert list(specs) == ["so101_driver", "so101_lifecycle_manager", "so101_wrist_camera", "so101_overhead_camera",
                           "so101_policy", "so101_eval_manager"]
    assert node_parameters(specs["so101_driver"])["autostart"] is False
    assert node_parameters(specs["so101_driver"])["backend"] == "feetech"
    assert node_parameters(specs["so101_driver"])["calibration_id"] == "my_arm"
    wrist = node_parameters(specs["so101_wrist_camera"])
    assert wrist["device"] == "/dev/video4" and wrist["topic"] == "/so101/wrist/image_raw" and wrist["fps"] == 30.0
    policy = node_parameters(specs["so101_policy"])
    assert policy["mode"] == "rtc" and policy["cameras"] == "wrist=/so101/wrist/image_raw"
    assert policy["calibration"] == "driver"
    assert node_parameters(specs["so101_eval_manager"])["sim"] is False


@pytest.mark.parametrize("sim", [True, False])
def test_temporal_ensembling_sets_the_drivers_merge_mode(sim):
    args = GraphArgs(checkpoint="outputs/act", mode="temporal_ensemble", sim=sim, calibration_id="my_arm")
    specs = by_name(eval_nodes(args))
    assert node_parameters(specs["so101_policy"])["mode"] == "temporal_ensemble"
    assert node_parameters(specs["so101_driver"])["merge_mode"] == "temporal_ensemble"
    async_args = GraphArgs(checkpoint="outputs/act", sim=sim, calibration_id="my_arm")
    assert node_parameters(by_name(eval_nodes(async_args))["so101_driver"])["merge_mode"] == "replace"


def test_robot_and_record_graphs():
    assert [s.name for s in robot_nodes(GraphArgs())] == ["so101_driver", "so101_lifecycle_manager"]
    assert [s.name for s in record_nodes(GraphArgs())] == ["so101_driver", "so101_lifecycle_manager", "so101_recorder"]


def test_arguments_are_checked_and_typed():
    with pytest.raises(ValueError, match="policy must be act or smolvla"):
        GraphArgs(policy="pi0")
    with pytest.raises(ValueError, match="cameras must name some of"):
        GraphArgs(cameras="top")
    with pytest.raises(ValueError, match="needs calibration_id"):
        GraphArgs(sim=False)
    args = graph_args_from_strings({"sim": "false", "calibration_id": "a", "episodes": "4", "max_episode_s": "12.5"})
    assert (args.sim, args.episodes, args.max_episode_s) == (False, 4, 12.5)
    with pytest.raises(ValueError, match="sim takes true or false, got 'maybe'"):
        graph_args_from_strings({"sim": "maybe"})
    with pytest.raises(ValueError, match="episodes takes an integer, got 'two'"):  # the argument is named
        graph_args_from_strings({"episodes": "two"})


@pytest.mark.parametrize("seed, expected", [("5", [5, 6, 7, 8]), ("3,7,11", [3, 7, 11, 12]),
                                            ("[3, 7, 11]", [3, 7, 11, 12]), (9, [9, 10, 11, 12])])
def test_episode_seeds_count_up_from_the_first_or_follow_a_list(seed, expected):
    seeds = EpisodeSeeds.parse(seed)
    assert [seeds[k] for k in range(4)] == expected


@pytest.mark.parametrize("seed", ["-1", "two", "", "3,,x", "2147483648", [1, -2], True])
def test_a_seed_that_is_not_one_is_refused_in_one_line(seed):
    with pytest.raises(ValueError, match=r"seed (takes integers from 0 to 2147483647|needs at least one value)"):
        EpisodeSeeds.parse(seed)


def test_a_list_of_seeds_is_one_episode_each_and_reaches_the_driver():
    specs = by_name(eval_nodes(GraphArgs(checkpoint="ckpt", seed="3,7,11")))
    assert node_parameters(specs["so101_driver"])["seed"] == [3, 7, 11]
    assert node_parameters(specs["so101_eval_manager"])["episodes"] == 3
    specs = by_name(eval_nodes(GraphArgs(checkpoint="ckpt", seed="4", episodes=2)))
    assert node_parameters(specs["so101_driver"])["seed"] == 4
    assert node_parameters(specs["so101_eval_manager"])["episodes"] == 2
    with pytest.raises(ValueError, match="episodes is 5 but seed lists 2 seeds"):
        GraphArgs(seed="3,7", episodes=5)


def test_so101_eval_refuses_a_bad_seed_and_a_missing_checkpoint_in_one_line(tmp_path):
    env = isolated_ros_env(next_domain_id())
    bad_seed = subprocess.run([SO101, "eval", "--checkpoint", "x/y", "--seed", "-1"], capture_output=True, text=True,
                              timeout=120, env=env)
    assert (bad_seed.returncode, bad_seed.stderr.strip()) == (
        2, "so101 eval: error: seed takes integers from 0 to 2147483647 (one, or a list), got -1.")
    missing = subprocess.run([SO101, "eval", "--checkpoint", str(tmp_path / "nothing"), "--episodes", "1",
                              "--output-dir", str(tmp_path / "eval")], capture_output=True, text=True, timeout=300,
                             env=env)
    assert missing.returncode == 1 and "Traceback" not in missing.stderr, missing.stderr
    assert missing.stderr.strip().splitlines()[-1].startswith(
        f"so101 eval: [so101_policy] No checkpoint at {tmp_path / 'nothing'}: there is no such folder")


def _stub_launch_modules(monkeypatch):
    """launch and launch_ros cannot be installed here: stand-ins that record what the launch file builds."""
    class Recorded:
        def __init__(self, *args, **kwargs):
            self.args, self.kwargs = args, kwargs

    class LaunchConfiguration(Recorded):
        def perform(self, context):
            return context[self.args[0]]

    modules = {
        "launch": {"LaunchDescription": Recorded},
        "launch.actions": {n: Recorded for n in ("DeclareLaunchArgument", "OpaqueFunction", "Shutdown")},
        "launch.substitutions": {"LaunchConfiguration": LaunchConfiguration},
        "launch_ros": {}, "launch_ros.actions": {"Node": Recorded},
    }
    for name, attributes in modules.items():
        module = types.ModuleType(name)
        module.__dict__.update(attributes)
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.delitem(sys.modules, "so101_bringup.launch_support", raising=False)


def test_eval_launch_file_maps_the_builder_to_launch_ros_nodes(monkeypatch):
    _stub_launch_modules(monkeypatch)
    spec = importlib.util.spec_from_file_location("eval_launch", REPO / "launch" / "eval.launch.py")
    launch_file = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(launch_file)
    description = launch_file.generate_launch_description()
    *declarations, opaque = description.args[0]
    assert [d.args[0] for d in declarations] == list(EVAL_ARGUMENTS)
    assert "bag" not in EVAL_ARGUMENTS and "rate" not in EVAL_ARGUMENTS  # replay's, which do nothing here
    defaults = {d.args[0]: d.kwargs["default_value"] for d in declarations}
    assert defaults["policy"] == "act" and defaults["sim"] == "true"
    context = {**defaults, "checkpoint": "ckpt", "record": "true"}
    actions = opaque.kwargs["function"](context)
    nodes = [a for a in actions if a.kwargs.get("executable")]
    assert [n.kwargs["executable"] for n in nodes] == ["driver_node", "lifecycle_manager", "policy_node",
                                                       "eval_manager", "recorder"]
    policy = nodes[2].kwargs
    assert policy["package"] == "so101_bringup" and policy["name"] == "so101_policy"
    assert policy["parameters"][0].endswith("config/policy.yaml") and policy["parameters"][1]["checkpoint"] == "ckpt"
    assert len(actions) == len(nodes)
    # Any node that exits ends the launch: the eval manager after its episodes, a node that fails at once.
    running = types.SimpleNamespace(is_shutdown=False)
    assert [n.kwargs["on_exit"](types.SimpleNamespace(returncode=0), running).kwargs["reason"] for n in nodes] == [
        f"{name} exited" for name in ("so101_driver", "so101_lifecycle_manager", "so101_policy", "so101_eval_manager",
                                      "so101_recorder")]


def test_a_launch_fails_when_a_node_fails_and_not_when_the_work_is_done_or_the_user_stops_it(monkeypatch):
    """launch's exit status is 1 only where an exception escapes its event loop: each node's on_exit raises
    where the exit failed the graph, and shuts the graph down otherwise."""
    _stub_launch_modules(monkeypatch)
    from so101_bringup.commands.common import GraphFailed
    from so101_bringup.launch_support import launch_node

    on_exit = {name: launch_node(NodeSpec(executable, name, None, {})).kwargs["on_exit"]
               for executable, name in (("policy_node", "so101_policy"), ("eval_manager", "so101_eval_manager"),
                                        ("driver_node", "so101_driver"))}
    running, stopping = types.SimpleNamespace(is_shutdown=False), types.SimpleNamespace(is_shutdown=True)

    def exited(returncode):
        return types.SimpleNamespace(returncode=returncode)

    # The work done: the eval manager's last episode.
    assert on_exit["so101_eval_manager"](exited(0), running).kwargs["reason"] == "so101_eval_manager exited"
    # A node's one-line refusal (exit 1), a node killed mid-episode (SIGKILL: -9), a crash (SIGSEGV).
    with pytest.raises(GraphFailed, match=r"^so101_policy exited with code 1; the graph is shut down"):
        on_exit["so101_policy"](exited(1), running)
    with pytest.raises(GraphFailed, match=r"^so101_driver killed by SIGKILL; the graph is shut down"):
        on_exit["so101_driver"](exited(-9), running)
    with pytest.raises(GraphFailed, match="killed by SIGSEGV"):
        on_exit["so101_policy"](exited(-11), running)
    # Ctrl-C: the nodes exit 0, or are stopped by launch while the graph shuts down (-2, -15, or a node's 1).
    for returncode in (0, -2, -15, 1):
        assert on_exit["so101_driver"](exited(returncode), stopping).kwargs["reason"] == "so101_driver exited"


def test_every_launch_file_builds(monkeypatch):
    _stub_launch_modules(monkeypatch)
    for path in sorted((REPO / "launch").glob("*.launch.py")):
        spec = importlib.util.spec_from_file_location(path.stem.replace(".", "_"), path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        *declarations, opaque = module.generate_launch_description().args[0]
        context = {d.args[0]: d.kwargs["default_value"] for d in declarations}
        required = (("checkpoint", "ckpt"), ("bag", "a_bag"), ("leader_calibration_id", "my_leader"))
        context.update({key: value for key, value in required if key in context})
        assert opaque.kwargs["function"](context), path.name


def _launch_arguments(monkeypatch, name: str) -> dict[str, str]:
    """{argument: default} that a launch file declares."""
    _stub_launch_modules(monkeypatch)
    spec = importlib.util.spec_from_file_location(name.replace(".", "_"), REPO / "launch" / f"{name}.launch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    *declarations, _ = module.generate_launch_description().args[0]
    return {d.args[0]: d.kwargs["default_value"] for d in declarations}


def _command_options(command: str) -> dict[str, object]:
    """{option as a launch argument name: default} of a `so101` command."""
    from so101_bringup.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    return {action.dest: action.default for action in sub._actions
            if action.option_strings and action.dest != "help" and action.option_strings != ["--real"]}


@pytest.mark.parametrize("launch, command", [("eval", "eval"), ("record", "record"), ("teleop", "teleop")])
def test_a_launch_file_and_its_so101_command_take_the_same_options_and_defaults(monkeypatch, launch, command):
    arguments, options = _launch_arguments(monkeypatch, launch), _command_options(command)
    assert set(arguments) == set(options)
    for name, default in options.items():
        assert arguments[name] == (str(default).lower() if isinstance(default, bool) else str(default)), name


def test_so101_replay_takes_replay_launch_arguments_and_its_own_options(monkeypatch):
    """The launch file's arguments, with their defaults, but `bag` (the command takes many, positional),
    and the command's own offline options (ReplayConfig): nothing else, so neither can drift."""
    from dataclasses import fields

    from so101_bringup.cli import build_parser
    from so101_bringup.replay_config import ReplayConfig

    parser = build_parser()
    replay = parser._subparsers._group_actions[0].choices["replay"]
    launch_arguments = _launch_arguments(monkeypatch, "replay")
    options = _command_options("replay")
    own = {f.name for f in fields(ReplayConfig)}
    assert set(options) | {"bag"} == set(launch_arguments) | own - {"bags"}
    for name in set(launch_arguments) - {"bag"}:
        default = options[name]
        assert launch_arguments[name] == (str(default).lower() if isinstance(default, bool) else str(default)), name
    assert {a.dest for a in replay._actions if not a.option_strings} == {"bags"}
    # --realtime reaches the graph with every option, arm_units included (once dropped there).
    args = parser.parse_args(["replay", "b1", "--checkpoint", "ckpt", "--calibration", "lab", "--arm-units",
                              "range_m100_100", "--output-dir", "out"])
    graph = from_options(GraphArgs, args, REPLAY_OPTIONS, bag="b1")
    player = node_parameters(by_name(replay_nodes(graph))["so101_bag_player"])
    assert (player["calibration"], player["arm_units"], player["output_dir"]) == ("lab", "range_m100_100", "out")


def test_replay_dataset_and_train_mistakes_are_one_line(tmp_path):
    """Found by users' tries: each of these printed a traceback (or, for fps 0, a ZeroDivisionError; for
    episodes 0, "0 episodes"; for workers -1, a traceback and half a dataset)."""
    bag = tmp_path / "bag"
    bag.mkdir()
    (bag / "metadata.yaml").write_text("rosbag2_bagfile_information: {}\n")
    cases = [
        (["replay", str(tmp_path / "nowhere"), "--checkpoint", "ckpt"], 2, "is not a rosbag2 directory"),
        (["replay", str(bag), "--checkpoint", "ckpt", "--fps", "0"], 2, "fps must be above 0"),
        (["replay", str(bag), "--checkpoint", str(tmp_path / "no_model")], 1, "so101 replay: No checkpoint at"),
        (["replay", str(bag), "--checkpoint", "ckpt", "--backend", "tensorrt"], 2, "backend must be one of"),
        (["eval", "--checkpoint", "ckpt", "--backend", "tensorrt"], 2, "backend must be one of"),
        (["eval", "--checkpoint", "ckpt", "--policy", "smolvla", "--backend", "cuda_graph"], 2,
         "backend cuda_graph runs ACT"),
        (["eval", "--checkpoint", "ckpt", "--policy", "smolvla", "--backend", "torch_compile_bf16"], 2,
         "cannot run real-time chunking (mode rtc, SmolVLA's default)"),
        (["train", "act_dual", "--dataset-root", str(tmp_path / "no_data")], 1, "so101 train: "),
        (["train", "act_dual", "--resize-with-pad", "0x0"], 2, "expected HEIGHTxWIDTH"),
        (["train", "act_dual", "--steps"], 2, "'--steps' has no value: write --steps=VALUE"),
        (["dataset", "sim", "--root", str(tmp_path / "sim"), "--workers", "-1"], 2, "workers must be 0 (one per core)"),
        (["dataset", "sim", "--root", str(tmp_path / "sim"), "--width", "0"], 2, "must be at least 1"),
        (["dataset", "sim", "--root", str(tmp_path / "sim"), "--episodes", "0"], 2, "must be at least 1"),
        (["dataset", "from-bags", str(tmp_path / "nowhere"), "--root", str(tmp_path / "ds")], 2,
         "is not a rosbag2 directory"),
        (["dataset", "from-bags", str(bag), "--root", str(tmp_path / "ds"), "--fps", "0"], 2, "fps must be above 0"),
    ]
    def so101(arguments, env):
        return subprocess.run([SO101, *arguments], capture_output=True, text=True, timeout=120, env=env)

    with ThreadPoolExecutor(max_workers=4) as pool:  # separate commands: mostly imports, on both cores
        results = list(pool.map(so101, [arguments for arguments, _, _ in cases],
                                [isolated_ros_env(next_domain_id()) for _ in cases]))
    for (arguments, code, said), result in zip(cases, results):
        assert result.returncode == code and said in result.stderr, (arguments, result.stderr[-2000:])
        assert "Traceback" not in result.stderr, (arguments, result.stderr[-2000:])
    assert not (tmp_path / "sim").exists() and not (tmp_path / "ds").exists()  # refused before anything is written


def test_every_so101_eval_option_reaches_the_graph():
    """Options that were once dropped on the way: merge_mode, arm_units, calibration_id, the seed list."""
    from so101_bringup.cli import build_parser

    options = build_parser().parse_args(
        ["eval", "--checkpoint", "ckpt", "--no-sim", "--calibration-id", "lab", "--arm-units", "range_m100_100",
         "--merge-mode", "crossfade", "--camera-width", "320", "--episodes", "3", "--policy", "smolvla"])
    specs = by_name(eval_nodes(from_options(GraphArgs, options, EVAL_ARGUMENTS)))
    driver = node_parameters(specs["so101_driver"])
    assert (driver["backend"], driver["calibration_id"], driver["arm_units"], driver["merge_mode"]) == (
        "feetech", "lab", "range_m100_100", "crossfade")
    assert node_parameters(specs["so101_wrist_camera"])["width"] == 320
    assert node_parameters(specs["so101_eval_manager"])["episodes"] == 3
    assert node_parameters(specs["so101_policy"])["mode"] == "rtc"  # SmolVLA's default


def test_without_a_checkpoint_the_newest_trained_for_the_policy_is_taken(tmp_path, monkeypatch, capsys):
    import os

    def trained(run: str, policy_type: str, age_s: float) -> Path:
        checkpoint = tmp_path / run / "checkpoints" / "last" / "pretrained_model"
        checkpoint.mkdir(parents=True)
        (checkpoint / "config.json").write_text(json.dumps({"type": policy_type}))
        os.utime(checkpoint / "config.json", (1e9 - age_s, 1e9 - age_s))
        return checkpoint

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=r"No checkpoint given, and no act checkpoint at .*outputs/train/\*/checkpoints"
                                         r"/last/pretrained_model.* Train one \(so101 train act_dual"):
        eval_nodes(GraphArgs())
    trained("outputs/train/act_old", "act", age_s=100)
    newest = trained("outputs/demo/train", "act", age_s=10)
    trained("outputs/train/smolvla_newer", "smolvla", age_s=1)
    specs = by_name(eval_nodes(GraphArgs(policy="act")))
    assert node_parameters(specs["so101_policy"])["checkpoint"] == str(newest.relative_to(tmp_path))
    assert f"taking the newest act trained here, {newest.relative_to(tmp_path)}" in capsys.readouterr().err


def test_teleop_graphs_add_the_leader_arm_to_the_robot():
    args = GraphArgs(sim=False, calibration_id="my_arm", leader_port="/dev/ttyACM3", leader_calibration_id="my_leader",
                     teleop=True)
    for specs in (teleop_nodes(args), record_nodes(args)):
        teleop = by_name(specs)["so101_teleop"]
        assert teleop.executable == "teleop_node"
        assert node_parameters(teleop) == {"port": "/dev/ttyACM3", "calibration_id": "my_leader"}
    assert "so101_teleop" not in by_name(record_nodes(replace(args, teleop=False)))
    with pytest.raises(ValueError, match="teleop needs leader_calibration_id"):
        teleop_nodes(GraphArgs())


def test_recordings_without_a_policy_do_not_claim_one():
    """Teleop bags once recorded `policy: act`, GraphArgs' default."""
    assert node_parameters(by_name(record_nodes(GraphArgs()))["so101_recorder"])["policy"] == ""
    with_policy = record_nodes(GraphArgs(policy="smolvla", checkpoint="ckpt"))
    assert node_parameters(by_name(with_policy)["so101_recorder"])["policy"] == "smolvla"


def test_the_eval_manager_gives_up_in_one_line_when_the_policy_never_answers(tmp_path):
    """A policy node that died at start-up (a wrong checkpoint) once left the evaluation waiting for ever."""
    manager = NodeProcess("eval_manager", ["--ros-args", "-p", "graph_timeout:=2.0", "-p", f"output_dir:={tmp_path}"],
                          isolated_ros_env(next_domain_id()), tmp_path / "manager.log")
    try:
        assert manager.wait(timeout=60) == 1, manager.output
    finally:
        manager.stop()
    last = manager.output.strip().splitlines()[-1]
    assert last.startswith("[so101_eval_manager] no so101/policy/reset, so101/policy/enable, so101/reset, "
                           "so101/episode_status after 2 s: the node that serves it is not running"), manager.output
    assert "Traceback" not in manager.output


# -- results ------------------------------------------------------------------------------------
def test_wilson_interval():
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson_interval(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)


def test_results_tables_and_comparison(tmp_path):
    run = EvalRun("act_dual", {"policy": "act", "cameras": "wrist,overhead"}, [
        EpisodeResult(0, Outcome.SUCCESS, 12.0, seed=1, chunks=20, latency_p50_ms=80, latency_p95_ms=95),
        EpisodeResult(1, Outcome.TIMEOUT, 30.0, seed=2, chunks=50, latency_p50_ms=82, latency_p95_ms=99),
        EpisodeResult(2, Outcome.SUCCESS, 14.0, seed=3, chunks=22, latency_p50_ms=81, latency_p95_ms=97)])
    run.save(tmp_path / "act_dual")
    loaded = EvalRun.load(tmp_path / "act_dual")
    summary = loaded.summary()
    assert summary["successes"] == 2 and summary["mean_time_to_success_s"] == 13.0
    assert summary["outcomes"]["timeout"] == 1
    assert "2/3 = 67% [21, 94]" in (tmp_path / "act_dual" / "results.md").read_text()
    other = EvalRun("smolvla_wrist", {"policy": "smolvla", "cameras": "wrist"},
                    [EpisodeResult(0, Outcome.STALLED, 5.0)])
    table = comparison_table([loaded, other])
    assert "| act_dual | act | wrist,overhead | torch | 3 | 2/3 = 67% [21, 94] | 13.0 | 81 |" in table
    assert "| smolvla_wrist | smolvla | wrist | torch | 1 | 0/1 = 0% [0, 79] | - | - |" in table


def test_episode_runner_limits():
    runner = EpisodeRunner(2, EpisodeLimits(max_episode_s=10.0, stall_timeout_s=2.0))
    runner.start(100.0, seed=4)
    runner.on_chunk(101.0)
    assert runner.check(102.5) is None
    assert runner.check(103.1) is Outcome.STALLED
    runner.on_chunk(103.0)
    assert runner.check(110.0) is Outcome.TIMEOUT
    result = runner.finish(104.0, Outcome.SUCCESS)
    assert (result.seed, result.chunks, result.duration_s) == (4, 2, 4.0) and runner.phase is Phase.BETWEEN
    with pytest.raises(RuntimeError):
        runner.finish(105.0, Outcome.SUCCESS)
    runner.start(106.0)
    runner.finish(107.0, Outcome.FAILURE)
    assert runner.phase is Phase.DONE


# -- the eval manager's operator flow, through its services -------------------------------------
def test_operator_starts_and_judges_real_arm_episodes(tmp_path):
    domain = next_domain_id()
    probe = RosProbe(domain)
    node = probe.node
    calls = []

    def enable(request, response):
        calls.append(("enable", request.data))
        response.success = True
        return response

    def reset(request, response):
        calls.append(("reset", None))
        response.success = True
        return response

    node.create_service(SetBool, "/so101/policy/enable", enable)
    node.create_service(Trigger, "/so101/policy/reset", reset)
    markers = []
    node.create_subscription(String, bag_format.EPISODE_MARKER, lambda m: markers.append(m.data), 10)
    chunk_pub = node.create_publisher(JointTrajectory, bag_format.ACTION_CHUNK, 10)
    manager = NodeProcess("eval_manager", ["--ros-args", "-p", "sim:=false", "-p", "episodes:=2", "-p",
                                           f"output_dir:={tmp_path / 'real'}", "-p", "stall_timeout_s:=30.0"],
                          isolated_ros_env(domain), tmp_path / "manager.log")
    clients = {name: node.create_client(Trigger, f"/so101/eval/{name}") for name in ("start", "success", "failure")}
    try:
        probe.spin_until(lambda: all(c.service_is_ready() for c in clients.values()), 60,
                         lambda: f"the operator services (log:\n{manager.output})")

        def call(name):
            future = clients[name].call_async(Trigger.Request())
            probe.spin_until(future.done, 10, f"so101/eval/{name}")
            return future.result()

        assert not call("success").success  # nothing is running yet
        for verdict in ("success", "failure"):
            assert call("start").success
            probe.spin_until(lambda: any(m.startswith("start") for m in markers[-1:]), 10, "the start marker")
            assert calls[-3:] == [("enable", False), ("reset", None), ("enable", True)]
            chunk_pub.publish(joint_trajectory_msg(0.0, JOINT_NAMES, np.zeros((3, 6)), 1 / 30))
            probe.spin_for(0.3)
            assert call(verdict).success
            probe.spin_until(lambda: markers[-1].startswith("end"), 10, "the end marker")
            assert markers[-1].split()[1] == verdict
        probe.spin_until(lambda: manager.process.poll() is not None, 20, "the manager to exit after 2 episodes")
        results = json.loads((tmp_path / "real" / "results.json").read_text())
        assert [e["outcome"] for e in results["episodes"]] == ["success", "failure"]
        assert results["episodes"][0]["chunks"] >= 1 and results["summary"]["successes"] == 1
    finally:
        probe.close()
        manager.stop()


# -- so101 eval end to end in the sim -----------------------------------------------------------
@pytest.fixture(scope="module")
def eval_run(tiny_eval):
    return tiny_eval


def test_so101_eval_runs_episodes_and_writes_results(eval_run):
    output, stdout, _ = eval_run
    results = json.loads((output / "results.json").read_text())
    assert len(results["episodes"]) == 2 and results["settings"]["policy"] == "act"
    for episode in results["episodes"]:
        assert episode["outcome"] in ("success", "timeout", "stalled")
        assert episode["chunks"] > 0 and episode["latency_p50_ms"] > 0
        assert episode["bag"].endswith(f"episode_{episode['index']:03d}")
    assert [e["seed"] for e in results["episodes"]] == [7, 3]  # the seeds asked for, in order
    # The sim's own word, the defaults.
    assert results["settings"]["task_variant"] == "pick_place_10cm" and results["settings"]["overhead_view"] == "cell"
    assert "95% Wilson interval" in (output / "results.md").read_text() and "Success rate" in stdout


def test_recorded_bags_are_readable_by_rosbags_and_mcap(eval_run):
    from mcap.reader import make_reader
    from rosbags.highlevel import AnyReader

    output, _, _ = eval_run
    bag = output / "bags" / "episode_000"
    with AnyReader([bag], default_typestore=bag_format.typestore()) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
        markers = [reader.deserialize(raw, c.msgtype).data
                   for c, _, raw in reader.messages([c for c in reader.connections
                                                     if c.topic == bag_format.EPISODE_MARKER])]
    for topic in (*bag_format.CAMERA_TOPICS.values(), bag_format.JOINT_STATES, bag_format.JOINT_TARGETS,
                  bag_format.ACTION_CHUNK):
        assert counts[topic] > 0, topic
    assert counts[bag_format.ARM] == 1  # the driver's description of the arm opens every bag
    assert markers[0].startswith("start episode=0") and markers[-1].startswith("end ")
    metadata = (bag / "metadata.yaml").read_text()
    assert "outcome:" in metadata and "policy: act" in metadata and "seed: '7'" in metadata
    with open(next(bag.glob("*.mcap")), "rb") as file:
        summary = make_reader(file).get_summary()
    assert {channel.topic for channel in summary.channels.values()} >= set(counts)


def test_recorded_bags_carry_the_arm_for_foxglove(eval_run):
    """/robot_description and /tf_static once, a /tf per joint state whose chain puts the gripper where
    the sim's MuJoCo model has it for that joint state."""
    import mujoco
    from rosbags.highlevel import AnyReader

    from so101_driver.sim.scene import SceneConfig, build_scene

    output, _, _ = eval_run
    with AnyReader([output / "bags" / "episode_000"], default_typestore=bag_format.typestore()) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
        by_topic = {topic: [reader.deserialize(raw, c.msgtype) for c, _, raw in reader.messages(
            [c for c in reader.connections if c.topic == topic])] for topic in (bag_format.JOINT_STATES, bag_format.TF)}
    assert counts[bag_format.ROBOT_DESCRIPTION] == 1 and counts[bag_format.TF_STATIC] == 1
    assert counts[bag_format.TF] == counts[bag_format.JOINT_STATES]
    state, tf = by_topic[bag_format.JOINT_STATES][-1], by_topic[bag_format.TF][-1]
    assert {t.header.stamp.sec * 10**9 + t.header.stamp.nanosec for t in tf.transforms} == {
        state.header.stamp.sec * 10**9 + state.header.stamp.nanosec}

    def matrix(transform) -> np.ndarray:
        q, v = transform.rotation, transform.translation
        result, rotation = np.eye(4), np.zeros(9)
        mujoco.mju_quat2Mat(rotation, np.array([q.w, q.x, q.y, q.z]))
        result[:3, :3], result[:3, 3] = rotation.reshape(3, 3), [v.x, v.y, v.z]
        return result

    parent_of = {t.child_frame_id: t for t in tf.transforms}
    pose, link = np.eye(4), "gripper_link"
    while link in parent_of:
        pose, link = matrix(parent_of[link].transform) @ pose, parent_of[link].header.frame_id
    assert link == "base_link"
    model = build_scene(SceneConfig(image_width=16, image_height=16))
    data = mujoco.MjData(model)
    for name, angle in zip(state.name, state.position):
        data.joint(name).qpos[0] = angle
    mujoco.mj_kinematics(model, data)
    base_rotation = data.body("base").xmat.reshape(3, 3)
    expected = base_rotation.T @ (data.body("gripper").xpos - data.body("base").xpos)
    np.testing.assert_allclose(pose[:3, 3], expected, atol=1e-4)


def test_the_foxglove_layout_shows_what_a_recorded_bag_holds(eval_run):
    import re

    from rosbags.highlevel import AnyReader

    output, _, _ = eval_run
    with AnyReader([output / "bags" / "episode_000"], default_typestore=bag_format.typestore()) as reader:
        recorded = {c.topic for c in reader.connections}
    layout = json.loads((REPO / "config" / "foxglove_layout.json").read_text())
    text = json.dumps(layout["configById"])
    shown = set(re.findall(r'"(/[a-z_/0-9]+?)(?:\.|")', text))
    assert shown and shown <= recorded, shown - recorded
    assert {bag_format.ROBOT_DESCRIPTION, *bag_format.CAMERA_TOPICS.values()} <= shown
    assert layout["configById"]["3D!so101_arm"]["followTf"] == "base_link"

    def panels(node):  # every panel the layout tree places is configured
        return {node} if isinstance(node, str) else panels(node["first"]) | panels(node["second"])

    assert panels(layout["layout"]) == set(layout["configById"])


def test_recorded_bags_become_a_dataset_and_runs_compare(eval_run, tmp_path):
    from lerobot.datasets import LeRobotDataset

    output, _, _ = eval_run
    bags = sorted(str(p) for p in (output / "bags").iterdir())
    result = subprocess.run([SO101, "dataset", "from-bags", *bags, "--root", str(tmp_path / "ds"), "--images"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    dataset = LeRobotDataset("local/so101_from_bags", root=tmp_path / "ds")
    assert dataset.num_episodes == 2 and dataset[0]["observation.images.wrist"].shape == (3, 64, 64)
    compare = subprocess.run([SO101, "eval", "compare", str(output), str(output)], capture_output=True, text=True,
                             timeout=60)
    assert compare.returncode == 0 and compare.stdout.count("| run | policy |") == 1
    assert compare.stdout.count("| run | act | wrist,overhead | torch | 2 |") == 2


def test_replay_is_deterministic_and_reports_action_error(eval_run, tmp_path):
    from so101_bringup.replay import replay_bag
    from so101_driver.joint_model import JointModel
    from so101_policy.checkpoint import load_policy

    output, _, checkpoint = eval_run
    bag = output / "bags" / "episode_000"
    loaded = load_policy(checkpoint, "cpu")
    first, second = (replay_bag(bag, loaded, JointModel.for_sim(), ("wrist", "overhead"), task="", stride=10)[0]
                     for _ in range(2))
    np.testing.assert_array_equal(first.chunks, second.chunks)  # identical chunks
    assert first.chunk_frames[:2] == [0, 10] and first.chunks.shape[1:] == (20, 6)
    assert first.errors.shape[1] == 6 and np.all(np.isfinite(first.errors))
    # The bag's actions are what this very checkpoint commanded (after the driver's step clamp):
    # once the arm has caught up, the replay reproduces them closely.
    settled = ~np.isnan(first.predicted[:, 0])
    late = np.arange(first.frames) > first.frames // 2
    assert np.median(np.abs(first.predicted - first.recorded)[settled & late]) < 3.0
    result = subprocess.run([SO101, "replay", str(bag), "--checkpoint", str(checkpoint), "--device", "cpu",
                             "--output-dir", str(tmp_path / "replay")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "replay" / "replay.json").read_text())
    assert set(report[0]["mean_abs_error"]) == {"shoulder_pan.pos", "shoulder_lift.pos", "elbow_flex.pos",
                                                "wrist_flex.pos", "wrist_roll.pos", "gripper.pos"}
    assert (tmp_path / "replay" / report[0]["plot"]).stat().st_size > 10_000


def test_so101_record_writes_a_bag_per_keyboard_episode_and_survives_a_terminals_ctrl_c(tmp_path):
    """Two episodes by keyboard; the second is cut by Ctrl-C as a terminal under ros2 launch sends it."""
    from mcap.reader import make_reader
    from rosbags.highlevel import AnyReader
    from sensor_msgs.msg import JointState

    domain = next_domain_id()
    env = dict(isolated_ros_env(domain), MUJOCO_GL="egl", PYTHONUNBUFFERED="1")
    terminal = TerminalSession([SO101, "record", "--output-dir", str(tmp_path)], env)
    probe = RosProbe(domain)
    states: list = []
    probe.node.create_subscription(JointState, "/joint_states", states.append, 50)

    def wait_for_ticks(count: int) -> None:
        seen = len(states)
        probe.spin_until(lambda: len(states) >= seen + count, 30, f"{count} joint states")

    try:
        terminal.read_until("recording")  # the recorder's start-up line
        wait_for_ticks(1)
        terminal.type_line()  # start
        terminal.read_until("start episode=0")
        wait_for_ticks(40)
        terminal.type_line("s")  # end, a success
        terminal.read_until("(success)")  # the recorder closed the bag
        terminal.type_line()  # start another, cut short below
        terminal.read_until("start episode=1")
        wait_for_ticks(15)
        exit_code = terminal.ctrl_c()
    finally:
        probe.close()
        terminal.kill()
    log = terminal.log
    assert exit_code == 0 and "Traceback" not in log, log
    first, interrupted = tmp_path / "bags" / "episode_000", tmp_path / "bags" / "episode_001"
    assert "outcome: success" in (first / "metadata.yaml").read_text(), log
    assert "outcome: interrupted" in (interrupted / "metadata.yaml").read_text(), log
    for bag in (first, interrupted):
        with AnyReader([bag], default_typestore=bag_format.typestore()) as reader:
            counts = {c.topic: c.msgcount for c in reader.connections}
        with open(next(bag.glob("*.mcap")), "rb") as file:
            summary = make_reader(file).get_summary()
        assert {channel.topic for channel in summary.channels.values()} >= {t for t, n in counts.items() if n}
        assert counts[bag_format.JOINT_STATES] > (20 if bag is first else 5), (bag.name, counts)
        assert counts[bag_format.CAMERA_TOPICS["wrist"]] > (20 if bag is first else 5), (bag.name, counts)


def test_realtime_replay_plays_the_bag_through_policy_node(eval_run, tmp_path):
    """On openvino the policy node exports its model first (a fresh copy of the checkpoint, nothing
    cached): the player waits for it instead of playing the bag into a graph still starting. The player
    and the comparison do not depend on the backend; policy_node on torch is test_policy_node's."""
    import shutil

    output, _, checkpoint = eval_run
    backend = "openvino"
    checkpoint = Path(shutil.copytree(checkpoint, tmp_path / "fresh_checkpoint"))
    shutil.rmtree(checkpoint / "onnx", ignore_errors=True)
    bag = output / "bags" / "episode_000"
    env = isolated_ros_env(next_domain_id())
    result = subprocess.run([SO101, "replay", str(bag), "--checkpoint", str(checkpoint), "--device", "cpu",
                             "--realtime", "--rate", "1.0", "--output-dir", str(tmp_path / "replay"),
                             "--backend", backend], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(next((tmp_path / "replay").glob("*/replay.json")).read_text())[0]
    assert report["chunks"] > 0 and report["points_compared"] > 0
    assert all(np.isfinite(v) for v in report["mean_abs_error"].values())
    assert "through policy_node" in result.stdout
