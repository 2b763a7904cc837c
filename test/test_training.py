"""`so101 train`, `so101 dataset sim`, `so101 report`: presets, data, lerobot training, resume, reports."""

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from lerobot.datasets import LeRobotDataset
from lerobot.processor import PolicyProcessorPipeline
from PIL import Image

from so101_driver.joint_model import JointModel
from so101_policy.checkpoint import load_policy
from so101_policy.compatibility import check_compatibility
from so101_policy.inference_backends import with_backend
from so101_policy.observation import IMAGE_PREFIX, STATE_KEY, Observation
from so101_policy.predictor import ChunkPredictor
from so101_policy.resize_with_pad import ResizeWithPadStep, resize_with_pad
from training.dataset_source import DatasetSourceError, prepare_dataset
from training.presets import PresetError, parse_overrides, resolve
from training.report import comparison_table, summarize, write_report
from training.configs import SimDatasetConfig
from training.cpu_numerics import cpu_numeric_path, read_cpuinfo
from training.sim_dataset import SimDatasetError, record_sim_dataset

SO101 = str(Path(sys.executable).parent / "so101")
REPO_ID = "local/so101_sim_train_test"
TINY_ACT = ["--policy.dim_model=32", "--policy.n_heads=2", "--policy.dim_feedforward=64",
            "--policy.n_encoder_layers=1", "--policy.n_decoder_layers=1", "--policy.chunk_size=10",
            "--policy.n_action_steps=10", "--policy.use_vae=false", "--policy.pretrained_backbone_weights=null"]
FAST = ["--policy.device=cpu", "--batch_size=2", "--num_workers=0", "--log_freq=1"]


# -- presets ------------------------------------------------------------------------------------
def test_presets_reproduce_the_reference_runs():
    act = resolve("act_dual")
    assert act.settings["policy.type"] == "act" and act.settings["policy.chunk_size"] == "50"
    assert act.settings["policy.n_action_steps"] == "50"
    assert act.settings["policy.pretrained_backbone_weights"] == "ResNet18_Weights.IMAGENET1K_V1"
    assert (act.settings["policy.optimizer_lr"], act.settings["policy.optimizer_weight_decay"]) == ("1e-5", "1e-4")
    assert (act.settings["batch_size"], act.settings["steps"], act.settings["save_freq"]) == ("64", "20000", "1000")
    assert act.cameras == ("wrist", "overhead") and act.preset.resize_with_pad == (224, 224)
    dual, wrist = resolve("smolvla_dual"), resolve("smolvla_wrist")
    for run in (dual, wrist):
        assert run.settings["policy.path"] == "lerobot/smolvla_base"
        assert run.settings["policy.optimizer_lr"] == "1e-4" and run.settings["policy.optimizer_weight_decay"] == "1e-10"
        assert run.settings["policy.scheduler_warmup_steps"] == "1000"
        assert run.settings["policy.scheduler_decay_steps"] == "30000"
        assert (run.settings["batch_size"], run.settings["steps"], run.settings["save_freq"]) == ("64", "20000", "5000")
        assert run.preset.resize_with_pad is None  # SmolVLA pads inside the model
    assert dual.cameras == ("wrist", "overhead") and wrist.cameras == ("wrist",)


EPYC_AVX2 = """processor	: 0
vendor_id	: AuthenticAMD
model name	: AMD EPYC 7B13
flags		: fpu vme sse sse2 avx avx2 fma bmi2
processor	: 1
model name	: AMD EPYC 7B13
flags		: fpu vme sse sse2 avx avx2 fma bmi2
"""


def test_bf16_autocast_only_where_the_cpu_computes_bf16(tmp_path):
    (tmp_path / "cpuinfo").write_text(EPYC_AVX2)
    model, flags = read_cpuinfo(tmp_path / "cpuinfo")
    assert model == "AMD EPYC 7B13" and "avx2" in flags and "avx512f" not in flags
    epyc = cpu_numeric_path(model, flags)
    assert not epyc.bf16 and "no native bf16 (avx2" in epyc.reason
    run = resolve("act_small_cpu", cpu=epyc)
    assert run.settings["policy.use_amp"] == "false"
    assert run.numeric_path.startswith("float32 on AMD EPYC 7B13 (no native bf16")
    for native in ({"avx512f", "avx512_bf16"}, {"avx512f", "amx_bf16", "amx_tile"}):
        run = resolve("act_small_cpu", cpu=cpu_numeric_path("Intel Xeon", native))
        assert run.settings["policy.use_amp"] == "true" and run.numeric_path.startswith("bfloat16 autocast on Intel")
    xeon_avx512 = cpu_numeric_path("Intel Xeon", {"avx2", "avx512f"})
    assert not xeon_avx512.bf16 and "(avx512f;" in xeon_avx512.reason
    # Asked for, it is what the user said; on a GPU mixed precision stays; a preset in float32 stays so.
    forced = resolve("act_small_cpu", {"policy.use_amp": "true"}, cpu=epyc)
    assert forced.settings["policy.use_amp"] == "true" and "policy.use_amp=true as set" in forced.numeric_path
    gpu = resolve("act_small_cpu", {"policy.device": "cuda"}, cpu=epyc)
    assert gpu.settings["policy.use_amp"] == "true" and gpu.numeric_path is None
    state = resolve("act_state_cpu", has_environment_state=True, cpu=cpu_numeric_path("Intel Xeon", {"avx512_bf16"}))
    assert state.settings["policy.use_amp"] == "false" and state.numeric_path.startswith("float32")


def _can_make_a_mount_namespace() -> bool:
    return shutil.which("unshare") is not None and \
        subprocess.run(["unshare", "--mount", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _can_make_a_mount_namespace(),
                    reason="benchmarks/as_avx2_cpu.sh mounts a /proc/cpuinfo: it needs root with CAP_SYS_ADMIN")
@pytest.mark.skipif(not any(f.startswith(("avx512", "amx")) for f in read_cpuinfo()[1]),
                    reason="this CPU is AVX2-only already: nothing for benchmarks/as_avx2_cpu.sh to hide")
def test_as_avx2_cpu_runs_a_command_as_an_avx2_only_cpu_would_and_changes_nothing_outside():
    """How the README measured the demo on an AVX2-only CPU without one: the numeric path is chosen from the
    flags the command reads, and torch dispatches to AVX2 kernels."""
    script = Path(__file__).parents[1] / "benchmarks" / "as_avx2_cpu.sh"
    probe = ("import torch; from training.cpu_numerics import cpu_numeric_path, read_cpuinfo; "
             "print(cpu_numeric_path().bf16, torch.backends.cpu.get_cpu_capability(), "
             "sorted(f for f in read_cpuinfo()[1] if f.startswith(('avx512', 'amx'))), 'avx2' in read_cpuinfo()[1])")
    result = subprocess.run([str(script), sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[0] == "False AVX2 [] True", result.stdout
    assert any(f.startswith(("avx512", "amx")) for f in read_cpuinfo()[1])  # outside the command: untouched
    refused = subprocess.run([str(script)], capture_output=True, text=True, timeout=30)
    assert refused.returncode == 2 and "usage:" in refused.stderr


def test_the_state_preset_sees_the_sims_object_state_and_no_camera():
    run = resolve("act_state_cpu", has_environment_state=True)
    assert run.cameras == () and run.preset.environment_state
    assert '"ENV": "MEAN_STD"' in run.settings["policy.normalization_mapping"]
    with pytest.raises(PresetError, match="does not record: record one with `so101 dataset sim --environment-state`"):
        resolve("act_state_cpu", has_environment_state=False)
    assert not resolve("act_small_cpu", has_environment_state=True).preset.environment_state


def test_any_preset_value_is_overridden_in_lerobot_syntax():
    overrides = parse_overrides(["--steps=500", "--policy.optimizer_lr", "3e-5", "--policy.device=cuda"])
    run = resolve("act_dual", overrides)
    assert run.settings["steps"] == "500" and run.settings["policy.optimizer_lr"] == "3e-5"
    assert "--policy.device=cuda" in run.lerobot_args() and "--batch_size=64" in run.lerobot_args()
    with pytest.raises(PresetError, match="no value"):
        parse_overrides(["--steps"])
    with pytest.raises(PresetError, match="expected a lerobot-train setting"):
        parse_overrides(["steps=5"])
    with pytest.raises(PresetError, match="unknown preset 'act'; presets are"):
        resolve("act")


def test_so101_trains_options_are_the_train_requests_fields():
    """One source: an option per TrainRequest field (but lerobot's own --key=value overrides), its default."""
    import argparse
    from dataclasses import fields

    from so101_bringup.cli import build_parser
    from so101_bringup.options import from_options
    from training.configs import TrainRequest

    parser = build_parser()
    assert from_options(TrainRequest, parser.parse_args(["train", "act_dual"])) == TrainRequest("act_dual")
    chosen = parser.parse_args(["train", "smolvla_wrist", "--dataset-root", "data", "--exclude-cameras", "overhead",
                                "--resize-with-pad", "96x128", "--no-resume", "--time-budget", "2.5"])
    assert from_options(TrainRequest, chosen, overrides={"steps": "3"}) == TrainRequest(
        "smolvla_wrist", dataset_root=Path("data"), exclude_cameras=["overhead"], resize_with_pad=(96, 128),
        resume=False, time_budget_min=2.5, overrides={"steps": "3"})
    assert from_options(TrainRequest, parser.parse_args(["train", "act_dual", "--resize-with-pad", "none",
                                                          "--resume"])).resize_with_pad is None
    train = parser._subparsers._group_actions[0].choices["train"]
    dests = {action.dest for action in train._actions if action.dest != "help"}
    assert dests == {f.name for f in fields(TrainRequest)} - {"overrides"}
    with pytest.raises(argparse.ArgumentTypeError, match="expected HEIGHTxWIDTH"):
        next(a for a in train._actions if a.dest == "resize_with_pad").type("96by128")


def test_the_dataset_commands_options_are_their_configs_fields():
    """One source: `so101 dataset sim` is SimDatasetConfig (with the command's own defaults), `from-bags`
    BagDatasetConfig plus GraphArgs' calibration and arm units; --images stores use_videos=False."""
    from dataclasses import fields

    from so101_bringup.cli import build_parser
    from so101_bringup.options import from_options
    from training.configs import BagDatasetConfig

    parser = build_parser()
    sim = parser.parse_args(["dataset", "sim", "--width", "64", "--images"])
    assert from_options(SimDatasetConfig, sim) == SimDatasetConfig(episodes=20, workers=0, image_width=64,
                                                                   use_videos=False)
    bags = parser.parse_args(["dataset", "from-bags", "b1", "b2", "--root", "r", "--fps", "15"])
    assert from_options(BagDatasetConfig, bags) == BagDatasetConfig(fps=15)
    assert (bags.bags, bags.root, bags.calibration, bags.arm_units) == (["b1", "b2"], "r", "bag", "degrees")
    kinds = parser._subparsers._group_actions[0].choices["dataset"]._subparsers._group_actions[0].choices
    for kind, config, own in (("sim", SimDatasetConfig, {"root"}),
                              ("from-bags", BagDatasetConfig, {"bags", "root", "calibration", "arm_units"})):
        dests = {action.dest for action in kinds[kind]._actions if action.dest != "help"}
        assert dests == {f.name for f in fields(config) if "help" in f.metadata} | own, kind


def test_exclude_cameras():
    assert resolve("act_dual", exclude_cameras=("overhead",)).cameras == ("wrist",)
    assert resolve("smolvla_dual", exclude_cameras=("wrist",)).cameras == ("overhead",)
    with pytest.raises(PresetError, match=r"cannot exclude \['top'\]: the dataset's cameras are"):
        resolve("act_dual", exclude_cameras=("top",))
    with pytest.raises(PresetError, match="every camera is excluded"):
        resolve("smolvla_wrist", exclude_cameras=("wrist",))


# -- resize with pad ----------------------------------------------------------------------------
def test_resize_with_pad_keeps_the_aspect_ratio():
    image = torch.zeros(1, 3, 480, 640)
    image[:, 0, :, :320] = 1.0  # left half red
    out = resize_with_pad(image, 224, 224)
    assert out.shape == (1, 3, 224, 224)
    # 640x480 -> 224x168, padded 28 rows above and below
    assert out[0, :, :28].abs().max() == 0 and out[0, :, -28:].abs().max() == 0
    assert out[0, 0, 112, 10] > 0.99 and out[0, 0, 112, 200] < 0.01
    assert resize_with_pad(out, 224, 224) is out  # already the size: untouched


def test_resize_with_pad_step_survives_save_and_load(tmp_path):
    pipeline = PolicyProcessorPipeline(steps=[ResizeWithPadStep(height=96, width=128, cameras=["wrist"])],
                                       name="policy_preprocessor")
    pipeline.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "policy_preprocessor.json").read_text())
    assert config["steps"][0]["registry_name"] == "so101_resize_with_pad"
    loaded = PolicyProcessorPipeline.from_pretrained(tmp_path, config_filename="policy_preprocessor.json")
    step = loaded.steps[0]
    assert isinstance(step, ResizeWithPadStep) and (step.height, step.width, step.cameras) == (96, 128, ["wrist"])
    observation = {IMAGE_PREFIX + "wrist": torch.rand(3, 480, 640), IMAGE_PREFIX + "overhead": torch.rand(3, 480, 640)}
    out = step.observation(dict(observation))
    assert out[IMAGE_PREFIX + "wrist"].shape == (3, 96, 128)
    assert out[IMAGE_PREFIX + "overhead"].shape == (3, 480, 640)  # not in this step's cameras


# -- datasets -----------------------------------------------------------------------------------
def test_v21_dataset_is_detected_and_converted_once(tmp_path, caplog):
    from legacy_dataset import TASK, write_v21_dataset

    source_root = write_v21_dataset(tmp_path / "v21", episodes=2, frames_per_episode=12)
    # Its AV1 encoding once left this process SCHED_FIFO, and the load processes of later tests starved the rest.
    assert os.sched_getscheduler(0) == os.SCHED_OTHER
    with pytest.raises(Exception, match="v3.0"):  # lerobot itself refuses the old layout
        LeRobotDataset("someone/so101_v21", root=source_root)
    cache = tmp_path / "cache"
    with caplog.at_level("WARNING"):
        source = prepare_dataset("someone/so101_v21", source_root, cache_root=cache)
    assert "v2.1 format" in caplog.text and "converting it once" in caplog.text
    assert source.converted and source.root == cache / "someone/so101_v21"
    assert json.loads((source_root / "meta/info.json").read_text())["codebase_version"] == "v2.1"  # left as it was
    dataset = LeRobotDataset("someone/so101_v21", root=source.root)
    assert (dataset.num_episodes, dataset.num_frames) == (2, 24)
    item = dataset[13]  # episode 1, frame 1
    assert (int(item["episode_index"]), int(item["frame_index"]), item["task"]) == (1, 1, TASK)
    assert item["observation.images.wrist"].shape == (3, 48, 64)
    assert abs(float(item["observation.images.wrist"][1, 20, 5]) - 100 / 255) < 0.03  # AV1 round trip
    caplog.clear()
    with caplog.at_level("WARNING"):
        again = prepare_dataset("someone/so101_v21", source_root, cache_root=cache)
    assert again.root == source.root and "converting" not in caplog.text and "using its v3.0 conversion" in caplog.text


def test_dataset_errors_say_what_was_found(tmp_path):
    with pytest.raises(DatasetSourceError, match="not a LeRobotDataset: meta/info.json is missing"):
        prepare_dataset("x/y", tmp_path)
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta/info.json").write_text(json.dumps({"codebase_version": "v1.6"}))
    with pytest.raises(DatasetSourceError, match="format v1.6"):
        prepare_dataset("x/y", tmp_path)


@pytest.fixture(scope="module")
def sim_dataset(tmp_path_factory):
    """Recorded in two runs: the second resumes the first (seeds continue). The first is made to look as if
    recorded before the overhead camera's views had names: its settings do not say the view."""
    root = tmp_path_factory.mktemp("data") / "so101_sim"
    config = SimDatasetConfig(repo_id=REPO_ID, episodes=1, image_width=64, image_height=48, environment_state=True)
    record_sim_dataset(root, config)
    progress = json.loads((root / "meta/so101_sim.json").read_text())
    del progress["settings"]["overhead_view"]
    (root / "meta/so101_sim.json").write_text(json.dumps(progress))
    first = LeRobotDataset(REPO_ID, root=root)
    first_frames = first.num_frames
    command = [SO101, "dataset", "sim", "--root", str(root), "--repo-id", REPO_ID, "--episodes", "2",
               "--width", "64", "--height", "48", "--environment-state"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return root, first_frames


def test_sim_datasets_record_the_variant_and_the_sims_object_state(sim_dataset):
    from so101_driver.sim.sim_arm import SimArm

    root, _ = sim_dataset
    settings = json.loads((root / "meta/so101_sim.json").read_text())["settings"]
    assert settings["task_variant"] == "pick_place_10cm" and settings["overhead_view"] == "cell"
    dataset = LeRobotDataset(REPO_ID, root=root)
    feature = dataset.meta.features["observation.environment_state"]
    assert feature["shape"] == [10] or tuple(feature["shape"]) == (10,)
    assert feature["names"][:3] == ["cube.x", "cube.y", "cube.z"]
    arm = SimArm()
    try:
        arm.reset(seed=0)  # the first episode's scene, read from MuJoCo
        cube, target = arm.data.body("cube").xpos.copy(), arm.data.mocap_pos[0].copy()
    finally:
        arm.close()
    first = dataset[0]["observation.environment_state"].numpy()
    np.testing.assert_allclose(first[:3], cube, atol=1e-6)
    np.testing.assert_allclose(first[7:], target, atol=1e-6)


def test_cameras_the_policy_does_not_see_are_not_read(sim_dataset):
    from training.unseen_cameras import skip_unseen_cameras

    root, _ = sim_dataset
    windows = {"action": [k / 30 for k in range(5)]}
    reference = LeRobotDataset(REPO_ID, root=root, delta_timestamps=windows)
    wrist_only = LeRobotDataset(REPO_ID, root=root, delta_timestamps=windows)
    no_camera = LeRobotDataset(REPO_ID, root=root, delta_timestamps=windows)
    assert skip_unseen_cameras(wrist_only, ("wrist",)) == ["observation.images.overhead"]
    assert sorted(skip_unseen_cameras(no_camera, ())) == ["observation.images.overhead", "observation.images.wrist"]
    for index in (0, len(reference) // 2, len(reference) - 1):
        expected = reference[index]
        for dataset, unseen in ((wrist_only, {"observation.images.overhead"}),
                                (no_camera, {"observation.images.overhead", "observation.images.wrist"})):
            item = dataset[index]
            assert set(item) == set(expected) - unseen, index
            for key, value in item.items():
                assert value == expected[key] if isinstance(value, str) else torch.equal(value, expected[key]), key


def test_two_runs_in_one_process_may_differ_in_mixed_precision(sim_dataset, tmp_path):
    """The demo trains the state ACT in float32, then the vision ACT in bf16 where the CPU computes it, in one
    process: accelerate refused the second ("AcceleratorState has already been initialized")."""
    from training.configs import TrainRequest
    from training.presets import parse_overrides
    from training.train import run_training

    root, _ = sim_dataset
    for amp in ("false", "true"):
        run = run_training(TrainRequest(preset="act_dual", dataset=REPO_ID, dataset_root=root,
                                        output_dir=tmp_path / f"amp_{amp}", resize_with_pad=(32, 32),
                                        exclude_cameras=("overhead",),
                                        overrides=parse_overrides([*TINY_ACT, *FAST, "--steps=1", "--save_freq=1",
                                                                   f"--policy.use_amp={amp}"])))
        assert (run / "checkpoints/last/pretrained_model/model.safetensors").is_file()
        assert json.loads((run / "checkpoints/last/pretrained_model/train_config.json").read_text())[
            "policy"]["use_amp"] == (amp == "true")


def test_sim_dataset_resumes_with_the_next_seeds(sim_dataset):
    root, first_frames = sim_dataset
    dataset = LeRobotDataset(REPO_ID, root=root)
    assert dataset.num_episodes == 2 and dataset.num_frames > first_frames
    assert json.loads((root / "meta/so101_sim.json").read_text())["next_seed"] >= 2
    assert dataset[len(dataset) - 1]["observation.images.overhead"].shape == (3, 48, 64)
    with pytest.raises(SimDatasetError, match="recorded with"):
        record_sim_dataset(root, SimDatasetConfig(repo_id=REPO_ID, episodes=3, image_width=32, image_height=32))


def test_parallel_sims_record_the_same_dataset_as_one(tmp_path):
    datasets = []
    for workers in (1, 2):
        root = tmp_path / f"workers_{workers}"
        record_sim_dataset(root, SimDatasetConfig(repo_id=REPO_ID, episodes=2, image_width=32, image_height=32,
                                                  use_videos=False, workers=workers, environment_state=True))
        datasets.append(LeRobotDataset(REPO_ID, root=root))
    serial, parallel = datasets
    assert serial.num_episodes == parallel.num_episodes == 2 and serial.num_frames == parallel.num_frames
    for index in (0, serial.num_frames // 2, serial.num_frames - 1):
        for key in ("observation.state", "action", "observation.images.wrist", "observation.images.overhead",
                    "observation.environment_state"):
            assert torch.equal(serial[index][key], parallel[index][key]), (index, key)
    # Stored as PNG frames, cameras a policy does not see are columns the reader no longer formats.
    from training.unseen_cameras import skip_unseen_cameras

    no_camera = LeRobotDataset(REPO_ID, root=tmp_path / "workers_1")
    skip_unseen_cameras(no_camera, ())
    item = no_camera[serial.num_frames - 1]
    assert not any(key.startswith(IMAGE_PREFIX) for key in item)
    last = serial[serial.num_frames - 1]
    assert torch.equal(item["observation.environment_state"], last["observation.environment_state"])


def test_cached_action_windows_are_what_lerobots_dataset_reads(sim_dataset):
    from training.delta_query_cache import cache_delta_columns

    root, _ = sim_dataset
    windows = {"action": [k / 30 for k in range(30)], "observation.state": [-1 / 30, 0.0]}
    original = LeRobotDataset(REPO_ID, root=root, delta_timestamps=windows, episodes=[1])
    cached = LeRobotDataset(REPO_ID, root=root, delta_timestamps=windows, episodes=[1])
    assert cache_delta_columns(cached) == ["action", "observation.state"]
    for index in [*range(0, len(original), 17), len(original) - 1]:  # padded windows at the episode's end too
        expected, found = original[index], cached[index]
        assert expected.keys() == found.keys()
        for key, value in expected.items():
            if isinstance(value, torch.Tensor):
                assert value.dtype == found[key].dtype and torch.equal(value, found[key]), (index, key)
            else:
                assert value == found[key], (index, key)


# -- decoded-frame cache ------------------------------------------------------------------------
CAMERA_KEYS = ("observation.images.wrist", "observation.images.overhead")


def test_cached_frames_are_lerobots_decoded_frames_at_the_training_size(sim_dataset, tmp_path):
    from training.frame_cache import serve_cached_frames

    root, _ = sim_dataset
    windows = {"action": [k / 30 for k in range(10)]}
    original = LeRobotDataset(REPO_ID, root=root, delta_timestamps=windows, return_uint8=True)
    resized = LeRobotDataset(REPO_ID, root=root, delta_timestamps=windows, return_uint8=True)
    native = LeRobotDataset(REPO_ID, root=root, delta_timestamps=windows)  # float frames, as without the train loop
    info = serve_cached_frames(resized, (32, 40), workers=2)
    assert info.built_s is not None and info.frames == original.num_frames and info.size == [32, 40]
    assert serve_cached_frames(native, None, workers=1).size is None
    for index in range(len(original)):
        expected, found, same_size = original[index], resized[index], native[index]
        assert expected.keys() == found.keys()
        for key in CAMERA_KEYS:
            assert found[key].dtype == torch.uint8 and found[key].shape == (3, 32, 40)
            # lerobot's frame, resized as the checkpoint's step resizes it: the cache rounds it to a grey level.
            reference = resize_with_pad(expected[key].float() / 255, 32, 40)
            assert (found[key].float() / 255 - reference).abs().max() <= 0.5 / 255 + 1e-6, (index, key)
            assert torch.equal(same_size[key], expected[key].float() / 255), (index, key)
        assert torch.equal(found["action"], expected["action"]) and found["index"] == expected["index"]

    # Found again by the next run. A run on other episodes builds a cache of its own, indexed within
    # them, and leaves the one in use as it was (a reader that found it still reads the right frames).
    again = LeRobotDataset(REPO_ID, root=root, return_uint8=True)
    assert serve_cached_frames(again, (32, 40)).built_s is None
    subset = LeRobotDataset(REPO_ID, root=root, episodes=[1], return_uint8=True)
    subset_info = serve_cached_frames(subset, (32, 40), workers=1)
    assert subset_info.built_s is not None and subset_info.path != info.path
    assert subset_info.frames == len(subset) < len(original)
    for dataset, index, expected in ((subset, len(subset) - 1, original[len(original) - 1]), (again, 0, original[0])):
        assert dataset[index]["index"] == expected["index"]
        for key in CAMERA_KEYS:
            reference = resize_with_pad(expected[key].float() / 255, 32, 40)
            assert (dataset[index][key].float() / 255 - reference).abs().max() <= 0.5 / 255 + 1e-6, (index, key)

    # DataLoader workers open the cache themselves (no memory map is pickled) and read the same frames.
    loader = torch.utils.data.DataLoader(again, batch_size=8, num_workers=2, shuffle=False)
    batch = next(iter(loader))
    for key in CAMERA_KEYS:
        assert torch.equal(batch[key], torch.stack([again[i][key] for i in range(8)]))


def test_a_damaged_interrupted_or_impossible_frame_cache_is_not_used(sim_dataset, monkeypatch):
    import errno

    import training.frame_cache as frame_cache

    root, _ = sim_dataset
    dataset = LeRobotDataset(REPO_ID, root=root, return_uint8=True)
    caches = root / frame_cache.CACHE_FOLDER
    caches.mkdir(exist_ok=True)
    abandoned = caches / "16x16-0123456789ab.partial-4194303"  # a build killed before it finished
    abandoned.mkdir()

    # A cache with a camera's file cut short is rebuilt, not read.
    built = frame_cache.build_frame_cache(dataset, (16, 16), workers=1)
    assert not abandoned.exists()
    wrist = Path(built.path) / "observation.images.wrist.u8"
    expected = wrist.read_bytes()
    wrist.write_bytes(expected[: len(expected) // 2])
    assert frame_cache.build_frame_cache(dataset, (16, 16), workers=1).built_s is not None
    assert wrist.read_bytes() == expected

    def interrupted(job):
        raise KeyboardInterrupt

    monkeypatch.setattr(frame_cache, "_build_episode", interrupted)
    with pytest.raises(KeyboardInterrupt):
        frame_cache.build_frame_cache(dataset, (8, 8), workers=1)
    assert list(caches.glob("8x8*")) == []

    def disk_full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(frame_cache.FrameCacheError, match="read as a StreamingLeRobotDataset .* drop one"):
        frame_cache.serve_cached_frames(type("StreamingLeRobotDataset", (), {})(), (8, 8))

    monkeypatch.setattr(frame_cache.os, "posix_fallocate", disk_full)
    with pytest.raises(frame_cache.FrameCacheError, match=r"at 8x8 needs \d+ MB and .* free \(No space left on "
                                                          r"device\): free space, choose a smaller"):
        frame_cache.build_frame_cache(dataset, (8, 8), workers=1)
    assert list(caches.glob("8x8*")) == []


# -- training through lerobot -------------------------------------------------------------------
def so101_train(*arguments: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run([SO101, "train", *arguments], capture_output=True, text=True, timeout=900, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def without_ros(folder: Path) -> dict[str, str]:
    """An environment in which `import rclpy` fails: a training machine without ROS (the GPU machine)."""
    (folder / "rclpy").mkdir(parents=True)
    (folder / "rclpy" / "__init__.py").write_text("raise ImportError('ROS 2 is not installed on this machine')\n")
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")])))


@pytest.fixture(scope="module")
def act_run(sim_dataset, tmp_path_factory):
    """Trained where ROS is not installed: before, `so101 train` imported rclpy on its way to lerobot. With the
    auxiliary object-state target, which the dataset records and the policy must not see."""
    root, _ = sim_dataset
    run = tmp_path_factory.mktemp("runs") / "act_wrist"
    so101_train("act_dual", "--dataset", REPO_ID, "--dataset-root", str(root), "--output-dir", str(run),
                "--exclude-cameras", "overhead", "--resize-with-pad", "32x40", "--frame-cache",
                "--aux-object-state", "0.5", *TINY_ACT, *FAST,
                "--steps=2", "--save_freq=2", env=without_ros(tmp_path_factory.mktemp("no_ros")))
    return run


def test_act_training_writes_checkpoint_metrics_and_run_info(act_run):
    checkpoint = act_run / "checkpoints/last/pretrained_model"
    config = json.loads((checkpoint / "config.json").read_text())
    assert set(config["input_features"]) == {"observation.state", "observation.images.wrist"}
    assert config["input_features"]["observation.images.wrist"]["shape"] == [3, 32, 40]
    steps = json.loads((checkpoint / "policy_preprocessor.json").read_text())["steps"]
    names = [step["registry_name"] for step in steps]
    assert names.index("so101_resize_with_pad") < names.index("normalizer_processor")
    records = [json.loads(line) for line in (act_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2]
    for key in ("loss", "grad_norm", "lr", "update_s", "dataloading_s", "l1_loss", "aux_state_mse"):
        assert all(np.isfinite(r[key]) for r in records), key
    # lerobot's loss is ACT's own plus the weighted object-state error.
    assert all(r["loss"] == pytest.approx(r["l1_loss"] + 0.5 * r["aux_state_mse"], rel=1e-3) for r in records)
    assert records[0]["lr"] == pytest.approx(1e-5)
    info = json.loads((act_run / "run_info.json").read_text())
    assert info["cameras"] == ["wrist"] and info["resize_with_pad"] == [32, 40] and info["total_params"] > 0
    assert info["aux_object_state"] == 0.5
    # The checkpoint is lerobot's ACT: every tensor of model.safetensors is the policy's, loaded strictly.
    from lerobot.policies.act.modeling_act import ACTPolicy
    from safetensors import safe_open

    with safe_open(str(checkpoint / "model.safetensors"), "pt") as saved:
        assert set(saved.keys()) == set(ACTPolicy.from_pretrained(checkpoint).state_dict())
    assert (act_run / "checkpoints/last/training_state/so101_auxiliary_state_head.safetensors").is_file()
    assert info["frame_cache"]["size"] == [32, 40] and Path(info["frame_cache"]["path"]).is_dir()


def test_resize_with_pad_is_applied_at_inference_from_the_checkpoint(act_run):
    loaded = load_policy(act_run / "checkpoints/last/pretrained_model", "cpu")
    check_compatibility(loaded.config, ("wrist",))
    predictor = ChunkPredictor(loaded, JointModel.for_sim(), task="")
    assert predictor.resizes_images
    # The onnxruntime backend is handed the resized frames too, and gives the eager chunk.
    onnx = ChunkPredictor(with_backend(load_policy(act_run / "checkpoints/last/pretrained_model", "cpu"),
                                       "onnxruntime"), JointModel.for_sim(), task="")
    rng = np.random.default_rng(0)
    for height, width in ((48, 64), (480, 640), (224, 224)):
        values = {STATE_KEY: np.zeros(6, np.float32),
                  IMAGE_PREFIX + "wrist": rng.integers(0, 256, (height, width, 3), dtype=np.uint8)}
        chunk, _ = predictor.predict(Observation(stamp=0.0, values=values))
        assert chunk.shape == (10, 6) and np.all(np.isfinite(chunk))
        np.testing.assert_allclose(onnx.predict(Observation(stamp=0.0, values=values))[0], chunk, rtol=0, atol=1e-3)


def test_running_again_resumes_from_the_last_checkpoint_where_the_run_is_now(act_run):
    # A run copied elsewhere (from another machine, or to keep the original): before, its next
    # checkpoints went to the directory named in the saved config, the original run's.
    moved = Path(shutil.copytree(act_run, act_run.parent / "act_wrist_moved", symlinks=True))
    result = so101_train("act_dual", "--output-dir", str(moved), "--steps=3")
    assert "Resuming" in result.stdout and "auxiliary object-state head resumed from" in result.stdout
    records = [json.loads(line) for line in (moved / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3]
    assert (moved / "checkpoints/000003").is_dir() and (moved / "checkpoints/last").resolve().name == "000003"
    assert not (act_run / "checkpoints/000003").exists()
    # Resumed without --frame-cache: its summary no longer names the cache the first run read.
    assert json.loads((moved / "run_info.json").read_text())["frame_cache"] is None
    # Not resumed when told not to; resumed with another weight for the auxiliary target: refused, not ignored.
    with ThreadPoolExecutor(max_workers=2) as pool:  # two refusals, mostly imports: one on each core
        no_resume, other_weight = pool.map(
            lambda extra: subprocess.run([SO101, "train", "act_dual", "--output-dir", str(moved), *extra],
                                         capture_output=True, text=True, timeout=300),
            [["--no-resume"], ["--aux-object-state", "2"]])
    assert no_resume.returncode != 0 and "exists" in no_resume.stderr
    assert other_weight.returncode == 1 and "trains with --aux-object-state 0.5, not 2" in other_weight.stderr


def test_a_weight_that_is_no_loss_weight_is_refused_before_the_dataset_is_looked_for(tmp_path):
    for weight in ("-1", "nan"):
        failed = subprocess.run([SO101, "train", "act_small_cpu", "--aux-object-state", weight, "--dataset-root",
                                 str(tmp_path / "nowhere"), "--output-dir", str(tmp_path / "run")],
                                capture_output=True, text=True, timeout=300)
        assert failed.returncode == 2, failed.stderr
        assert failed.stderr.strip().splitlines() == [
            f"so101 train: error: --aux-object-state is a loss weight, 0 (off) or more and finite; got {weight}"]
        assert not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def smolvla_run(sim_dataset, tmp_path_factory):
    from tiny_policies import tiny_smolvla_checkpoint, tiny_vlm

    root, _ = sim_dataset
    base = tmp_path_factory.mktemp("smolvla_base")
    # Stands in for lerobot/smolvla_base (no hub here): fine-tuned through the same --policy.path.
    pretrained = tiny_smolvla_checkpoint(base / "pretrained_model", tiny_vlm(base / "vlm"))
    run = tmp_path_factory.mktemp("runs") / "smolvla_wrist"
    so101_train("smolvla_wrist", "--dataset", REPO_ID, "--dataset-root", str(root), "--output-dir", str(run),
                f"--policy.path={pretrained}", *FAST, "--steps=2", "--save_freq=2")
    return run


def test_smolvla_wrist_fine_tunes_with_the_wrist_camera_only(smolvla_run):
    checkpoint = smolvla_run / "checkpoints/last/pretrained_model"
    config = json.loads((checkpoint / "config.json").read_text())
    assert config["type"] == "smolvla"
    assert set(config["input_features"]) == {"observation.state", "observation.images.wrist"}
    records = [json.loads(line) for line in (smolvla_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2] and records[0]["lr"] < 1e-4  # warming up
    loaded = load_policy(checkpoint, "cpu", expected_type="smolvla")
    check_compatibility(loaded.config, ("wrist",))


def test_report_on_two_runs(act_run, smolvla_run, tmp_path):
    curves, table = write_report([act_run, smolvla_run], tmp_path / "report")
    with Image.open(curves) as image:
        assert image.size[0] > 400 and image.size[1] > 300
        pixels = np.asarray(image.convert("RGB"))
    assert (pixels.std(axis=(0, 1)) > 10).all()  # a drawn plot, not a blank canvas
    text = table.read_text()
    assert "| act_wrist | act | wrist |" in text and "| smolvla_wrist | smolvla | wrist |" in text
    assert "reference (act_dual)" in text and "reference (smolvla_wrist)" in text
    summary = summarize(act_run)
    last_logged = json.loads((act_run / "metrics.jsonl").read_text().splitlines()[-1])["step"]
    assert summary.steps[-1] == last_logged and summary.s_per_step > 0 and summary.params > 1e6
    assert "final loss" in comparison_table([summary])


def test_a_time_budget_shows_minutes_of_the_budget_not_steps_of_the_horizon():
    import io

    from training.lerobot_hooks import budget_progress_bar

    now = [0.0]
    progress = budget_progress_bar(600.0, clock=lambda: now[0])(total=20_000, desc="Training", unit="step",
                                                                 file=io.StringIO())
    assert progress.total == 10.0
    now[0] = 90.0
    progress.update(1)
    now[0] = 120.0
    progress.update(1)
    assert progress.n == pytest.approx(2.0) and progress.steps == 2
    assert "2.0/10.0 min" in str(progress) and "step 2, 60.00 s/step" in str(progress)
    progress.close()
