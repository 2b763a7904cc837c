"""The README's main command: demonstrations, a time-bounded ACT, evaluation over ROS, replay (scaled down)."""

import json
import subprocess
import sys
from pathlib import Path

from ros_harness import isolated_ros_env, next_domain_id

SO101 = str(Path(sys.executable).parent / "so101")


def test_demo_trains_evaluates_and_reports(tmp_path):
    output = tmp_path / "demo"
    command = [SO101, "demo", "--demonstrations", "2", "--state-train-minutes", "0.05", "--state-episodes", "2",
               "--train-minutes", "0.1", "--episodes", "2", "--max-episode-s", "3", "--image-size", "64",
               "--output", str(output)]
    env = dict(isolated_ros_env(next_domain_id()), MUJOCO_GL="egl")
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "Time budget of 0.05 min reached" in result.stdout and "Time budget of 0.1 min reached" in result.stdout
    summary = json.loads((output / "demo_summary.json").read_text())
    assert set(summary["timings_s"]) == {"demonstrations", "state_training", "state_evaluation", "vision_training",
                                         "vision_evaluation", "total"}
    assert summary["runs"]["state"]["evaluation"]["episodes"] == summary["runs"]["vision"]["evaluation"]["episodes"] == 2
    state = json.loads((output / "eval_state" / "results.json").read_text())
    assert state["settings"]["cameras"] == "none" and state["settings"]["task_variant"] == "pick_place_10cm"
    assert all(episode["chunks"] > 0 for episode in state["episodes"])  # the object state reached the policy
    state_inputs = json.loads((output / "train_state/checkpoints/last/pretrained_model/config.json").read_text())
    assert set(state_inputs["input_features"]) == {"observation.state", "observation.environment_state"}
    vision_inputs = json.loads((output / "train/checkpoints/last/pretrained_model/config.json").read_text())
    assert "observation.environment_state" not in vision_inputs["input_features"]
    # The object state is the vision ACT's training target only, and the state ACT's input only.
    assert json.loads((output / "train" / "run_info.json").read_text())["aux_object_state"] == 0.5
    assert json.loads((output / "train_state" / "run_info.json").read_text())["aux_object_state"] == 0
    vision_metrics = [json.loads(line) for line in (output / "train" / "metrics.jsonl").read_text().splitlines()]
    assert any("aux_state_mse" in row for row in vision_metrics)
    assert "x object state" in result.stdout and "the object state was only a training target" in result.stdout
    assert (output / "report_train" / "training_curves.png").is_file()
    assert len(list((output / "eval" / "bags").iterdir())) == 2
    assert (output / "replay" / "replay.json").is_file()
    assert "| state ACT (object state, no camera) | act | none |" in result.stdout
    assert "| vision ACT (64x64 cameras) | act | overhead,wrist |" in result.stdout
    assert "The state ACT sees where the cube and the target are" in result.stdout and "Measured:" in result.stdout

    # A given checkpoint is evaluated without training.
    checkpoint = summary["runs"]["vision"]["checkpoint"]
    again = subprocess.run([SO101, "demo", "--checkpoint", checkpoint, "--episodes", "1", "--max-episode-s", "2",
                            "--image-size", "64", "--output", str(tmp_path / "given")],
                           capture_output=True, text=True, timeout=600, env=env)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "no training" in again.stdout and not (tmp_path / "given" / "train").exists()


def test_the_demos_options_are_its_configs_fields():
    """One source: an option per DemoConfig field, with its default, and no option the config lacks."""
    from dataclasses import fields

    import pytest

    from so101_bringup.cli import UsageError, build_parser
    from so101_bringup.commands.demo import run as run_demo_command
    from so101_bringup.demo import DemoConfig
    from so101_bringup.options import from_options

    parser = build_parser()
    options = parser.parse_args(["demo"])
    assert from_options(DemoConfig, options) == DemoConfig()
    chosen = parser.parse_args(["demo", "--train-minutes", "5", "--eval-seed", "7", "--output", "elsewhere"])
    assert from_options(DemoConfig, chosen) == DemoConfig(train_minutes=5.0, eval_seed=7, output=Path("elsewhere"))
    demo_parser = parser._subparsers._group_actions[0].choices["demo"]
    dests = {a.dest for a in demo_parser._actions if a.option_strings and a.dest != "help"}
    assert dests == {f.name for f in fields(DemoConfig)}
    with pytest.raises(UsageError, match="policy must be act or smolvla, got 'pi0'"):
        run_demo_command(parser.parse_args(["demo", "--policy", "pi0"]))


def test_a_run_directory_the_demo_cannot_go_on_training_is_refused_in_one_line_before_any_work(tmp_path):
    """An older demo's vision run (no auxiliary target), or one on other demonstrations: refused at the start, not
    after the demonstrations and the state ACT's minutes; training's own refusals become one line too."""
    import pytest

    from so101_bringup.commands.common import UsageError
    from so101_bringup.demo import STATE_PRESET, VISION_PRESET, DemoConfig, _train, dataset_root, run_demo
    from training.train import LAST_CONFIG, RunInfo

    config = DemoConfig(output=tmp_path)
    run_dir = tmp_path / "train"
    (run_dir / LAST_CONFIG).parent.mkdir(parents=True)
    (run_dir / LAST_CONFIG).write_text("{}")
    older = RunInfo(preset=VISION_PRESET, policy_type="act", dataset="local/so101_demo",
                    dataset_root=str(dataset_root(config)), dataset_converted=False, cameras=["overhead", "wrist"],
                    resize_with_pad=[64, 64], settings={}, aux_object_state=0.0)
    older.save(run_dir)
    with pytest.raises(UsageError) as refused:
        run_demo(config)
    assert str(refused.value) == (f"{run_dir} trains with --aux-object-state 0, not 0.5 (an older demo's?): pass "
                                  "--aux-object-state 0 to train it further, or another --output")
    assert not dataset_root(config).exists()  # refused before recording anything
    older.dataset_root = str(tmp_path / "elsewhere")
    older.save(run_dir)
    with pytest.raises(UsageError, match=r"trains on .*elsewhere, not on .*dataset_pick_place_10cm_workspace_64px"):
        run_demo(DemoConfig(output=tmp_path, aux_object_state=0.0))

    # A run directory an interrupted demo left without a checkpoint: training's own refusal, as one line.
    (tmp_path / "train_state").mkdir()
    with pytest.raises(UsageError, match="holds no checkpoint to resume from.*the demo trains in"):
        _train(config, STATE_PRESET, dataset_root(config), tmp_path / "train_state", 1.0, {}, "state_training")


def test_the_demo_records_the_object_state_and_takes_only_finite_weights():
    """The state ACT's input and the vision ACT's auxiliary target: recorded whichever of them trains."""
    import pytest

    from so101_bringup.demo import DemoConfig, dataset_settings

    assert dataset_settings(DemoConfig(state_train_minutes=0.0)).environment_state
    assert dataset_settings(DemoConfig(aux_object_state=0.0)).environment_state
    for weight in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="aux-object-state is a loss weight, 0 .off. or more and finite; got"):
            DemoConfig(aux_object_state=weight)
