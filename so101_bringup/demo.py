"""`so101 demo`: the main job on the built-in simulation, end to end, on a CPU, within a time budget.

Scripted demonstrations (recorded once by one sim per core, reused), then two ACTs trained on them
and each evaluated in lockstep through the full ROS graph on seeds no demonstration used:
1. the state ACT (`act_state_cpu`): the sim's object state and the joints, no camera. Perfect
   perception: what it achieves is what the control path (actions, chunk execution, latency,
   gripper) achieves;
2. the vision ACT (`act_small_cpu`): both 64x64 cameras and the joints, trained for what is left of
   the budget, evaluated with a bag per episode, the first replayed open loop.
Both are printed side by side with their Wilson intervals and what each shows. With a checkpoint
given, training is skipped and that checkpoint is evaluated.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from so101_driver.sim.task_variants import DEFAULT_VARIANT, OVERHEAD_VIEWS, VARIANTS
from training.configs import check_aux_object_state

from .commands.common import UsageError
from .options import option

DEMO_REPO_ID = "local/so101_demo"
STATE_PRESET, VISION_PRESET = "act_state_cpu", "act_small_cpu"
REPLAY_RESERVE_S = 60.0  # the open-loop replay of one bag and the summary, after the vision evaluation


@dataclass
class DemoConfig:
    """`so101 demo`'s options (`--name-with-dashes`), with their help."""

    output: Path = option(Path("outputs/demo"), "where everything goes")
    checkpoint: str | None = option(None, "evaluate this checkpoint (a path or a hub id) instead of training one")
    policy: str = option("act", "the checkpoint's policy type with --checkpoint: act or smolvla")
    task_variant: str = option(DEFAULT_VARIANT, "the sim task's randomisation, for the demonstrations and the "
                                                "evaluations alike", choices=sorted(VARIANTS))
    # The workspace view: twice the pixels per cm on the cube at the same image size, the vision ACT's best
    # lever measured here (README, rung b).
    overhead_view: str = option("workspace", "what the sim's overhead camera frames, for the demonstrations and the "
                                             "evaluations alike (workspace: the variant's cubes and targets; cell: "
                                             "the whole work cell)", choices=list(OVERHEAD_VIEWS))
    demonstrations: int = option(200, "scripted demonstrations to train on")
    image_size: int = option(64, "sim camera size, square, for the demonstrations and the evaluations alike")
    workers: int = option(0, "sims recording the demonstrations in parallel (0: one per core)")
    budget_minutes: float = option(30.0, "the whole demo's time: the vision ACT trains for what is left of it once "
                                         "the demonstrations, the state ACT and the evaluations are accounted for")
    state_train_minutes: float = option(6.0, "training time of the state ACT (the sim's object state, no camera), "
                                              "minutes; 0 skips it")
    train_minutes: float | None = option(None, "training time of the vision ACT, minutes (default: the rest of "
                                                "--budget-minutes)", type=float)
    state_episodes: int = option(20, "evaluation episodes of the state ACT")
    episodes: int = option(10, "evaluation episodes of the vision ACT (or of --checkpoint)")
    max_episode_s: float = option(25.0, "maximum evaluation episode length, s")
    eval_seed: int = option(100_000, "seed of the first evaluation episode, far beyond the demonstrations' (0, 1, ...)")
    # Measured in the demo (README): 47/50 unseen seeds with it, 39/50 without, the same 30 minutes.
    aux_object_state: float = option(0.5, "the vision ACT also learns to predict the sim's object state (cube pose, "
                                          "target position) from its image tokens, with this loss weight (0: off); "
                                          "a training-only head, left out of the checkpoint, as `so101 train "
                                          "--aux-object-state` trains it", metavar="WEIGHT")
    device: str = option("cpu", "device for training and evaluation")

    def __post_init__(self):
        if self.policy not in ("act", "smolvla"):
            raise ValueError(f"policy must be act or smolvla, got '{self.policy}'")
        if self.budget_minutes <= 0 or self.state_train_minutes < 0 or (self.train_minutes or 0) < 0:
            raise ValueError("budget-minutes must be above 0, and the training minutes 0 or more")
        check_aux_object_state(self.aux_object_state)


@contextmanager
def _one_line(errors, hint: str):
    """A refusal from the training or dataset code, as the one line `so101` prints for a usage error."""
    try:
        yield
    except errors as error:
        raise UsageError(f"{error} ({hint})") from error


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def dataset_root(config: DemoConfig) -> Path:
    return config.output / f"dataset_{config.task_variant}_{config.overhead_view}_{config.image_size}px"


def dataset_settings(config: DemoConfig):
    """What the demonstrations are recorded with. The sim's object state always: it is the state ACT's input
    and the vision ACT's auxiliary target, a few floats a frame, and a dataset without it could serve neither."""
    from training.configs import SimDatasetConfig

    return SimDatasetConfig(repo_id=DEMO_REPO_ID, episodes=config.demonstrations, task_variant=config.task_variant,
                            overhead_view=config.overhead_view, environment_state=True,
                            image_width=config.image_size, image_height=config.image_size, use_videos=False,
                            workers=config.workers)


def _make_demonstrations(config: DemoConfig, timings: dict) -> Path:
    from training.sim_dataset import SimDatasetError, record_sim_dataset

    root = dataset_root(config)
    started = time.monotonic()
    with _one_line(SimDatasetError, f"the demo keeps its demonstrations in {root}: pass another --output, or "
                                    f"remove {root}"):
        dataset = record_sim_dataset(root, dataset_settings(config))
    timings["demonstrations"] = time.monotonic() - started
    print(f"[demo] {dataset.meta.total_episodes} scripted demonstrations ({config.task_variant}), "
          f"{dataset.meta.total_frames} frames in {root} ({_minutes(timings['demonstrations'])})", flush=True)
    return root


def check_run_dir(config: DemoConfig, preset: str, run_dir: Path) -> None:
    """Refuse, before any work, a run directory the demo cannot go on training: one that trains on another
    dataset (another variant or image size, an older demo's), or with another auxiliary weight."""
    info_path = run_dir / "run_info.json"
    if not info_path.is_file():
        return
    info = json.loads(info_path.read_text())
    trained_on, root = info.get("dataset_root"), dataset_root(config)
    if trained_on and Path(trained_on).resolve() != root.resolve():
        raise UsageError(f"{run_dir} trains on {trained_on}, not on {root} (another --task-variant, "
                         f"--overhead-view or --image-size, or an older demo's): pass another --output, "
                         f"or remove {run_dir}")
    trained_with = info.get("aux_object_state", 0.0)
    if trained_with != _aux_weight(config, preset):
        raise UsageError(f"{run_dir} trains with --aux-object-state {trained_with:g}, not "
                         f"{_aux_weight(config, preset):g} (an older demo's?): pass --aux-object-state "
                         f"{trained_with:g} to train it further, or another --output")


def _aux_weight(config: DemoConfig, preset: str) -> float:
    return config.aux_object_state if preset == VISION_PRESET else 0.0


def _train(config: DemoConfig, preset: str, dataset_root: Path, run_dir: Path, minutes: float, timings: dict,
           timing: str) -> str:
    """`timing`: the name of its minutes in the summary. The run directory passed check_run_dir."""
    from training.configs import TrainRequest
    from training.report import load_metrics, summarize, write_report
    from training.train import RunInfo, run_training, training_refusals

    started = time.monotonic()
    with _one_line(training_refusals(), f"the demo trains in {run_dir}: pass another --output, or remove {run_dir}"):
        run_training(TrainRequest(preset=preset, dataset=DEMO_REPO_ID, dataset_root=dataset_root, output_dir=run_dir,
                                  # The state ACT has no camera, so nothing to resize.
                                  resize_with_pad="preset" if preset == STATE_PRESET else (config.image_size,) * 2,
                                  overrides={"policy.device": config.device, "log_freq": "10"},
                                  time_budget_min=minutes,
                                  aux_object_state=_aux_weight(config, preset)))
    timings[timing] = time.monotonic() - started
    curves, _ = write_report([run_dir], run_dir.parent / f"report_{run_dir.name}")
    summary = summarize(run_dir)
    last = load_metrics(run_dir)[-1]
    # With the auxiliary target the loss is ACT's plus the weighted head's; both parts say more than the sum.
    parts = (f" (ACT's L1 {last['l1_loss']:.3f} + {RunInfo.load(run_dir).aux_object_state:g} x object state "
             f"{last['aux_state_mse']:.3f})" if "aux_state_mse" in last else "")
    print(f"[demo] trained {preset} ({summary.params / 1e6:.1f}M parameters) for {summary.steps[-1]} steps, "
          f"{summary.s_per_step:.2f} s/step, final loss {summary.final_loss:.3f}{parts} "
          f"({_minutes(timings[timing])}); curves: {curves}", flush=True)
    return str(run_dir / "checkpoints" / "last" / "pretrained_model")


def graph_cameras(checkpoint: str) -> str:
    """GraphArgs' cameras for a checkpoint: the ones it was trained on, or none (one on the sim's object state)."""
    from lerobot.configs.policies import PreTrainedConfig

    from so101_policy.compatibility import checkpoint_cameras

    return ",".join(checkpoint_cameras(PreTrainedConfig.from_pretrained(checkpoint))) or "none"


def _evaluate(config: DemoConfig, checkpoint: str, output: Path, episodes: int, record: bool, timings: dict,
              timing: str):
    from .graph import GraphArgs, eval_nodes
    from .in_process import run_graph

    args = GraphArgs(policy=config.policy, checkpoint=checkpoint, device=config.device, record=record,
                     cameras=graph_cameras(checkpoint), episodes=episodes, max_episode_s=config.max_episode_s,
                     output_dir=str(output), seed=str(config.eval_seed), task_variant=config.task_variant,
                     overhead_view=config.overhead_view,
                     sim_width=config.image_size, sim_height=config.image_size)
    try:
        specs = eval_nodes(args)
    except ValueError as error:  # the checkpoint's training variant is not this demo's
        raise UsageError(f"{error} (so101 eval has that option; the demo evaluates on its own --task-variant "
                         "and --overhead-view)") from error
    started = time.monotonic()
    nodes = run_graph(specs, until=lambda nodes: nodes["so101_eval_manager"].finished)
    timings[timing] = time.monotonic() - started
    return nodes["so101_eval_manager"].run


def _vision_minutes(config: DemoConfig, started: float, state_eval) -> float:
    """What is left of the budget for training the vision ACT: the budget, less what has run, less its
    evaluation at worst (every episode to its time limit, at the wall seconds per sim second the state
    ACT's evaluation measured, or 2 if it did not run), less the replay."""
    if config.train_minutes is not None:
        return config.train_minutes
    wall_per_sim_s = 2.0
    if state_eval is not None:
        run, wall_s = state_eval
        simulated = sum(episode.duration_s for episode in run.episodes)
        wall_per_sim_s = wall_s / simulated if simulated else wall_per_sim_s
    reserve = config.episodes * config.max_episode_s * wall_per_sim_s + REPLAY_RESERVE_S
    left = config.budget_minutes * 60 - (time.monotonic() - started) - reserve
    minutes = max(1.0, round(left / 60, 1))
    print(f"[demo] {_minutes(max(left, 0))} of the {config.budget_minutes:g} min budget left for the vision ACT "
          f"({_minutes(reserve)} kept for its evaluation and replay): training it for {minutes:.1f} min", flush=True)
    return minutes


def _replay_first_bag(config: DemoConfig, checkpoint: str, run) -> Path | None:
    from so101_driver.joint_model import JointModel
    from so101_policy.checkpoint import load_policy

    from .replay import replay_bag, write_reports

    bags = [Path(e.bag) for e in run.episodes if e.bag and Path(e.bag).is_dir()]
    if not bags:
        return None
    loaded = load_policy(checkpoint, config.device)
    reports = replay_bag(bags[0], loaded, JointModel.for_sim(), ("wrist", "overhead"), task="")
    return write_reports(reports, config.output / "replay")


def what_it_shows(state_run, vision_run, image_size: int = 64, aux_object_state: float = 0.0) -> str:
    """The two rows in words; `aux_object_state`: the vision ACT's auxiliary target weight, if it had one."""
    lines = []
    if state_run is not None:
        summary = state_run.summary()
        rate = f"{summary['successes']}/{summary['episodes']}"
        lines.append(f"The state ACT sees where the cube and the target are (the sim's object state) and no camera: "
                     f"perfect perception. Its {rate} is what the control path (actions, chunk execution, latency, "
                     "gripper) achieves; "
                     + ("the control path works." if summary["success_rate"] >= 0.9 else
                        "below 90%, the defect is in the control path or in too little training for it, not in "
                        "perception."))
    if vision_run is not None:
        summary = vision_run.summary()
        rate = f"{summary['successes']}/{summary['episodes']}"
        line = (f"The vision ACT sees only the two {image_size}x{image_size} cameras and the joints"
                + (" (the object state was only a training target for its image features)" if aux_object_state else "")
                + f": its {rate} adds perception, learned from scratch in the minutes left")
        if state_run is not None:
            line += "; the gap between the rows is what perception costs at this budget"
        lines.append(line + ".")
    return "\n".join(lines)


def run_demo(config: DemoConfig) -> int:
    from .evaluation import comparison_table, results_table

    config.output.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    started = time.monotonic()
    runs: dict[str, dict] = {}
    state_run = vision_run = replay = None
    if config.checkpoint is None:
        # Before any work: a run directory the demo cannot go on training is refused now, not after minutes.
        check_run_dir(config, STATE_PRESET, config.output / "train_state")
        check_run_dir(config, VISION_PRESET, config.output / "train")
        dataset_root = _make_demonstrations(config, timings)
        state_eval = None
        if config.state_train_minutes > 0:
            state_checkpoint = _train(config, STATE_PRESET, dataset_root, config.output / "train_state",
                                      config.state_train_minutes, timings, "state_training")
            state_run = _evaluate(config, state_checkpoint, config.output / "eval_state", config.state_episodes,
                                  False, timings, "state_evaluation")
            state_eval = (state_run, timings["state_evaluation"])
            runs["state"] = {"checkpoint": state_checkpoint, "evaluation": state_run.summary()}
        vision_checkpoint = _train(config, VISION_PRESET, dataset_root, config.output / "train",
                                   _vision_minutes(config, started, state_eval), timings, "vision_training")
    else:
        print(f"[demo] evaluating the given checkpoint {config.checkpoint}; no training", flush=True)
        vision_checkpoint = config.checkpoint
    vision_run = _evaluate(config, vision_checkpoint, config.output / "eval", config.episodes, True, timings,
                           "vision_evaluation")
    runs["vision"] = {"checkpoint": vision_checkpoint, "evaluation": vision_run.summary()}
    if graph_cameras(vision_checkpoint) != "none":
        replay = _replay_first_bag(config, vision_checkpoint, vision_run)
    timings["total"] = time.monotonic() - started
    (config.output / "demo_summary.json").write_text(json.dumps(
        {"config": {k: str(v) for k, v in asdict(config).items()}, "timings_s": {k: round(v, 1) for k, v in
                                                                                  timings.items()},
         "runs": runs}, indent=2) + "\n")
    if state_run is not None:
        state_run.name = "state ACT (object state, no camera)"
        vision_run.name = f"vision ACT ({config.image_size}x{config.image_size} cameras)"
        print("\n" + results_table(state_run))
    print("\n" + results_table(vision_run))
    print(comparison_table([run for run in (state_run, vision_run) if run is not None]))
    if config.checkpoint is None:
        print(what_it_shows(state_run, vision_run, config.image_size, config.aux_object_state))
    print("Measured: " + ", ".join(f"{name.replace('_', ' ')} {_minutes(seconds)}"
                                   for name, seconds in timings.items()))
    print(f"Results: {config.output / 'eval' / 'results.md'}; bags: {config.output / 'eval' / 'bags'}"
          + (f"; the state ACT's: {config.output / 'eval_state' / 'results.md'}" if state_run is not None else ""))
    if config.checkpoint is None:
        print(f"Training curves: {config.output / 'report_train' / 'training_curves.png'}; checkpoint: "
              f"{vision_checkpoint}")
    if replay is not None:
        print(f"Open-loop replay of the first bag: {replay.parent}")
    return 0
