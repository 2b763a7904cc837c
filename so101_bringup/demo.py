"""`so101 demo`: the main job on the built-in simulation, end to end, on a CPU.

Scripted demonstrations (recorded once by one sim per core, reused), a small ACT trained for a
bounded time with the `act_small_cpu` preset, a lockstep evaluation through the full ROS graph on
seeds no demonstration used, with a bag per episode, an open-loop replay of the first bag, and a
summary of what was measured, whatever the success rate. With a checkpoint given, training is
skipped and that checkpoint is evaluated.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .options import option

DEMO_REPO_ID = "local/so101_demo"


@dataclass
class DemoConfig:
    """`so101 demo`'s options (`--name-with-dashes`), with their help."""

    output: Path = option(Path("outputs/demo"), "where everything goes")
    checkpoint: str | None = option(None, "evaluate this checkpoint (a path or a hub id) instead of training one")
    policy: str = option("act", "the checkpoint's policy type with --checkpoint: act or smolvla")
    demonstrations: int = option(100, "scripted demonstrations to train on")
    image_size: int = option(64, "sim camera size, square, for the demonstrations and the evaluation alike")
    workers: int = option(0, "sims recording the demonstrations in parallel (0: one per core)")
    train_minutes: float = option(20.0, "training time budget, minutes")
    episodes: int = option(10, "evaluation episodes")
    max_episode_s: float = option(25.0, "maximum evaluation episode length, s")
    eval_seed: int = option(100_000, "seed of the first evaluation episode, far beyond the demonstrations' (0, 1, ...)")
    device: str = option("cpu", "device for training and evaluation")

    def __post_init__(self):
        if self.policy not in ("act", "smolvla"):
            raise ValueError(f"policy must be act or smolvla, got '{self.policy}'")


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def _make_demonstrations(config: DemoConfig, timings: dict) -> Path:
    from training.configs import SimDatasetConfig
    from training.sim_dataset import record_sim_dataset

    root = config.output / f"dataset_{config.image_size}px"
    started = time.monotonic()
    dataset = record_sim_dataset(root, SimDatasetConfig(repo_id=DEMO_REPO_ID, episodes=config.demonstrations,
                                                        image_width=config.image_size,
                                                        image_height=config.image_size, use_videos=False,
                                                        workers=config.workers))
    timings["demonstrations"] = time.monotonic() - started
    print(f"[demo] {dataset.meta.total_episodes} scripted demonstrations, {dataset.meta.total_frames} frames "
          f"in {root} ({_minutes(timings['demonstrations'])})", flush=True)
    return root


def _train(config: DemoConfig, dataset_root: Path, timings: dict) -> str:
    from training.report import summarize, write_report
    from training.configs import TrainRequest
    from training.train import run_training

    run_dir = config.output / "train"
    started = time.monotonic()
    run_training(TrainRequest(preset="act_small_cpu", dataset=DEMO_REPO_ID, dataset_root=dataset_root,
                              output_dir=run_dir, resize_with_pad=(config.image_size, config.image_size),
                              overrides={"policy.device": config.device, "log_freq": "10"},
                              time_budget_min=config.train_minutes))
    timings["training"] = time.monotonic() - started
    curves, _ = write_report([run_dir], config.output / "report")
    summary = summarize(run_dir)
    print(f"[demo] trained ACT ({summary.params / 1e6:.1f}M parameters) for {summary.steps[-1]} steps, "
          f"{summary.s_per_step:.2f} s/step, final loss {summary.final_loss:.3f} "
          f"({_minutes(timings['training'])}); curves: {curves}", flush=True)
    return str(run_dir / "checkpoints" / "last" / "pretrained_model")


def _evaluate(config: DemoConfig, checkpoint: str, timings: dict):
    from .graph import GraphArgs, eval_nodes
    from .in_process import run_graph

    args = GraphArgs(policy=config.policy, checkpoint=checkpoint, device=config.device, record=True,
                     episodes=config.episodes, max_episode_s=config.max_episode_s,
                     output_dir=str(config.output / "eval"), seed=str(config.eval_seed),
                     sim_width=config.image_size, sim_height=config.image_size)
    started = time.monotonic()
    nodes = run_graph(eval_nodes(args), until=lambda nodes: nodes["so101_eval_manager"].finished)
    timings["evaluation"] = time.monotonic() - started
    return nodes["so101_eval_manager"].run


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


def run_demo(config: DemoConfig) -> int:
    from .evaluation import results_table

    config.output.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    started = time.monotonic()
    checkpoint = config.checkpoint
    if checkpoint is None:
        dataset_root = _make_demonstrations(config, timings)
        checkpoint = _train(config, dataset_root, timings)
    else:
        print(f"[demo] evaluating the given checkpoint {checkpoint}; no training", flush=True)
    run = _evaluate(config, checkpoint, timings)
    replay = _replay_first_bag(config, checkpoint, run)
    timings["total"] = time.monotonic() - started
    summary = run.summary()
    (config.output / "demo_summary.json").write_text(json.dumps(
        {"config": {k: str(v) for k, v in asdict(config).items()}, "checkpoint": checkpoint,
         "timings_s": {k: round(v, 1) for k, v in timings.items()}, "evaluation": summary}, indent=2) + "\n")
    print("\n" + results_table(run))
    print("Measured: " + ", ".join(f"{name} {_minutes(seconds)}" for name, seconds in timings.items()))
    print(f"Results: {config.output / 'eval' / 'results.md'}; bags: {config.output / 'eval' / 'bags'}")
    if checkpoint != config.checkpoint:
        print(f"Training curves: {config.output / 'report' / 'training_curves.png'}; checkpoint: {checkpoint}")
    if replay is not None:
        print(f"Open-loop replay of the first bag: {replay.parent}")
    return 0
