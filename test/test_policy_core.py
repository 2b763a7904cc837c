"""The policy node's ROS-free core: images, observations, scheduling, checkpoints, prediction."""

import json
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from so101_driver.joint_model import JointModel, UnitError
from so101_policy.checkpoint import CheckpointError, load_policy, resolve_device
from so101_policy.compatibility import check_compatibility, check_value_ranges, normalization_stats
from so101_policy.images import ImageFormatError, compressed_to_rgb, image_to_rgb
from so101_policy.observation import IMAGE_PREFIX, STATE_KEY, Observation, ObservationAssembler, StaleObservation
from so101_driver.joint_model import joint_model_for
from so101_policy.policy_node import parse_cameras
from so101_policy.predictor import ChunkPredictor, FrameSizeError
from so101_policy.scheduler import ChunkScheduler, InferenceMode
from tiny_policies import tiny_act_checkpoint

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (4, 5, 3), dtype=np.uint8)


def image_msg(encoding, array, pad=0):
    rows = array.reshape(array.shape[0], -1)
    padded = np.concatenate([rows, np.zeros((rows.shape[0], pad), np.uint8)], axis=1)
    return SimpleNamespace(encoding=encoding, height=array.shape[0], width=array.shape[1],
                           step=padded.shape[1], data=padded.tobytes())


# -- images -------------------------------------------------------------------------------------
def test_rgb8_bgr8_mono8_and_padded_rows():
    np.testing.assert_array_equal(image_to_rgb(image_msg("rgb8", RGB)), RGB)
    np.testing.assert_array_equal(image_to_rgb(image_msg("bgr8", RGB[..., ::-1].copy())), RGB)
    np.testing.assert_array_equal(image_to_rgb(image_msg("rgb8", RGB, pad=3)), RGB)
    gray = RGB[..., 0].copy()
    np.testing.assert_array_equal(image_to_rgb(image_msg("mono8", gray[..., None])), np.repeat(gray[..., None], 3, 2))
    assert image_to_rgb(image_msg("rgb8", RGB)).flags.writeable


def test_real_sensor_msgs_image_round_trip():
    from sensor_msgs.msg import Image

    from so101_driver.ros_messages import color_image_msg, sec_to_time

    msg = color_image_msg(sec_to_time(1.5), RGB, "cam", encoding="bgr8")
    assert isinstance(msg, Image)
    np.testing.assert_array_equal(image_to_rgb(msg), RGB[..., ::-1])


def test_unsupported_or_short_images_are_explained():
    with pytest.raises(ImageFormatError, match="16UC1"):
        image_to_rgb(SimpleNamespace(encoding="16UC1", height=1, width=1, step=2, data=b"\0\0"))
    short = image_msg("rgb8", RGB)
    short.data = short.data[:-1]
    with pytest.raises(ImageFormatError, match="bytes"):
        image_to_rgb(short)


@pytest.mark.parametrize("extension, fmt", [(".png", "png"), (".jpg", "rgb8; jpeg compressed bgr8")])
def test_compressed_images(extension, fmt):
    image = np.zeros((32, 48, 3), np.uint8)
    image[:, :24] = (200, 30, 10)  # RGB red-ish left half
    ok, encoded = cv2.imencode(extension, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    decoded = compressed_to_rgb(SimpleNamespace(format=fmt, data=encoded.tobytes()))
    assert decoded.shape == (32, 48, 3)
    # JPEG rings at the colour edge; the picture and its channel order must survive.
    assert np.abs(decoded.astype(int) - image.astype(int)).mean() < 3
    np.testing.assert_allclose(decoded[16, 8], (200, 30, 10), atol=8)
    with pytest.raises(ImageFormatError, match="jpeg or png"):
        compressed_to_rgb(SimpleNamespace(format="tiff", data=encoded.tobytes()))


def test_identical_to_cv_bridge_where_it_is_installed():
    cv_bridge = pytest.importorskip("cv_bridge", reason="cv_bridge cannot be installed here (no ROS install)")
    bridge = cv_bridge.CvBridge()
    msg = bridge.cv2_to_imgmsg(RGB[..., ::-1].copy(), encoding="bgr8")
    np.testing.assert_array_equal(image_to_rgb(msg), bridge.imgmsg_to_cv2(msg, desired_encoding="rgb8"))


# -- observations -------------------------------------------------------------------------------
def assembler():
    return ObservationAssembler(("wrist", "overhead"), JointModel.for_sim(), max_age=0.2, max_skew=0.1)


def test_observation_needs_every_part_fresh_and_in_sync():
    obs = assembler()
    assert "no joint state" in obs.assemble(10.0).reason
    obs.update_joints(10.0, np.zeros(6))
    assert "overhead" in obs.assemble(10.0).reason
    obs.update_image("wrist", 10.0, RGB)
    obs.update_image("overhead", 9.95, RGB)
    ready = obs.assemble(10.05)
    assert isinstance(ready, Observation) and ready.stamp == 10.0
    stale = obs.assemble(10.3)
    assert isinstance(stale, StaleObservation) and "overhead 0.35 s" in stale.reason
    obs.update_image("wrist", 10.3, RGB)
    obs.update_image("overhead", 10.3, RGB)
    obs.update_joints(10.15, np.zeros(6))
    assert "apart" in obs.assemble(10.3).reason


def test_observation_state_is_in_lerobot_units():
    obs = assembler()
    radians = np.array([0.1, -0.2, 0.3, 0.4, -0.5, 0.3])
    obs.update_joints(1.0, radians)
    obs.update_image("wrist", 1.0, RGB)
    obs.update_image("overhead", 1.0, RGB)
    values = obs.assemble(1.0).values
    np.testing.assert_allclose(values[STATE_KEY], JointModel.for_sim().to_lerobot(radians), rtol=1e-6)
    assert values[STATE_KEY].dtype == np.float32
    assert set(values) == {STATE_KEY, IMAGE_PREFIX + "wrist", IMAGE_PREFIX + "overhead"}


# -- scheduling ---------------------------------------------------------------------------------
def test_sync_waits_for_the_chunk_to_run_out():
    scheduler = ChunkScheduler(InferenceMode.SYNC, fps=30)
    assert scheduler.should_infer(0.0, busy=False)
    scheduler.chunk_published(0.0, points=30)
    assert not scheduler.should_infer(0.99, busy=False)
    assert scheduler.should_infer(1.0, busy=False)
    assert not scheduler.should_infer(1.0, busy=True)


def test_async_starts_when_the_rest_falls_below_latency_plus_margin():
    scheduler = ChunkScheduler(InferenceMode.ASYNC, fps=30, margin=0.05)
    scheduler.record_latency(0.2)
    scheduler.chunk_published(0.0, points=30)
    assert not scheduler.should_infer(0.7, busy=False)  # 0.30 s left > 0.25 s
    assert scheduler.should_infer(0.76, busy=False)  # 0.24 s left
    assert ChunkScheduler(InferenceMode.ASYNC, fps=30).margin == pytest.approx(0.1)
    assert scheduler.latency_percentile(95) == pytest.approx(0.2)


def test_temporal_ensemble_infers_whenever_free():
    scheduler = ChunkScheduler(InferenceMode.TEMPORAL_ENSEMBLE, fps=30)
    scheduler.chunk_published(0.0, points=30)
    assert scheduler.should_infer(0.01, busy=False) and not scheduler.should_infer(0.01, busy=True)
    with pytest.raises(ValueError, match="sync"):
        ChunkScheduler("fast", fps=30)


# -- parameters ---------------------------------------------------------------------------------
def test_camera_mapping_and_exclusion():
    spec = "wrist=/so101/wrist/image_raw, overhead=/so101/overhead/image_raw/compressed"
    assert parse_cameras(spec, "") == {"wrist": "/so101/wrist/image_raw",
                                       "overhead": "/so101/overhead/image_raw/compressed"}
    assert parse_cameras(spec, "overhead") == {"wrist": "/so101/wrist/image_raw"}
    with pytest.raises(ValueError, match="name=/topic"):
        parse_cameras("wrist", "")
    with pytest.raises(ValueError, match="not among the cameras"):
        parse_cameras(spec, "side")


def test_calibration_parameter(tmp_path):
    from so101_driver.joint_model import save_calibration
    from test_joint_model import REAL_CALIBRATION

    assert joint_model_for("sim", "degrees").calibration == JointModel.for_sim().calibration
    save_calibration(REAL_CALIBRATION, tmp_path / "arm.json")
    assert joint_model_for(str(tmp_path / "arm.json"), "degrees").calibration == REAL_CALIBRATION
    with pytest.raises(FileNotFoundError, match="lerobot-calibrate"):
        joint_model_for("no_such_arm_id", "degrees")


# -- checkpoints --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def act_dir(tmp_path_factory):
    return tiny_act_checkpoint(tmp_path_factory.mktemp("act") / "pretrained_model")


def test_loads_a_saved_act_checkpoint_with_its_processors(act_dir):
    loaded = load_policy(act_dir, "cpu")
    assert loaded.type == "act" and loaded.device == torch.device("cpu")
    assert loaded.config.pretrained_backbone_weights is None
    assert not loaded.policy.training
    check_compatibility(loaded.config, ("overhead", "wrist"))


def test_checkpoint_errors_say_what_to_do(act_dir, tmp_path):
    with pytest.raises(CheckpointError, match="no config.json"):
        load_policy(tmp_path, "cpu")
    with pytest.raises(CheckpointError, match="policy_type:=act"):
        load_policy(act_dir, "cpu", expected_type="smolvla")
    # A mistyped path is said to be one, not taken for a malformed hub id.
    with pytest.raises(CheckpointError, match=r"No checkpoint at /nonexistent/pretrained_model: there is no such "
                                              r"folder, and it is not a hub repo id"):
        load_policy("/nonexistent/pretrained_model", "cpu")
    with pytest.raises(CheckpointError, match="auto"):
        resolve_device("tpu")
    old = tmp_path / "old"
    old.mkdir()
    for name in ("config.json", "model.safetensors"):
        (old / name).write_bytes((act_dir / name).read_bytes())
    with pytest.raises(CheckpointError, match="migrate_policy_normalization --pretrained-path"):
        load_policy(old, "cpu")
    # Hand-edited configs, a value of the wrong type (draccus cannot decode it) or none at all (lerobot's
    # checks cannot compare it): one line naming the field, not a traceback.
    edited = tmp_path / "edited"
    edited.mkdir()
    config = json.loads((act_dir / "config.json").read_text())
    for value in ("fifty", None):
        (edited / "config.json").write_text(json.dumps({**config, "chunk_size": value}))
        with pytest.raises(CheckpointError, match=r"Could not read the policy config of .*edited") as error:
            load_policy(edited, "cpu")
        assert "\n" not in str(error.value) and ("chunk_size" in str(error.value) or value is None), error.value


def test_weights_that_do_not_fit_the_config_stop_the_load(act_dir, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for path in act_dir.iterdir():
        (broken / path.name).write_bytes(path.read_bytes())
    config = json.loads((broken / "config.json").read_text())
    config["dim_model"] = 48
    (broken / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="do not load"):
        load_policy(broken, "cpu")


def test_mismatched_checkpoint_lists_expected_and_found(tmp_path):
    loaded = load_policy(tiny_act_checkpoint(tmp_path / "seven", cameras=("wrist",), state_dim=7), "cpu")
    with pytest.raises(CheckpointError) as error:
        check_compatibility(loaded.config, ("wrist", "overhead"))
    message = str(error.value)
    assert "trained on ['wrist']" in message and "['overhead', 'wrist']" in message
    assert "found (7,)" in message and "shoulder_pan.pos" in message


def test_frames_of_another_size_are_refused_when_nothing_resizes_them(act_dir):
    predictor = ChunkPredictor(load_policy(act_dir, "cpu"), JointModel.for_sim(), task="")
    values = {STATE_KEY: np.zeros(6, np.float32), IMAGE_PREFIX + "wrist": np.zeros((224, 224, 3), np.uint8),
              IMAGE_PREFIX + "overhead": np.zeros((64, 64, 3), np.uint8)}
    with pytest.raises(FrameSizeError, match="camera 'wrist' sends 224x224 frames; .* trained on 64x64"):
        predictor.predict(Observation(stamp=0.0, values=values))


def test_frames_are_checked_against_the_training_datas_size_even_when_the_pipeline_resizes(smolvla_dir):
    """SmolVLA resizes any frame; a camera at another resolution than the dataset's is still refused."""
    loaded = load_policy(smolvla_dir, "cpu")
    trained_on = {"wrist": (480, 640), "overhead": (480, 640), "side": (120, 160)}
    predictor = ChunkPredictor(loaded, JointModel.for_sim(), task="", training_frame_sizes=trained_on)
    assert predictor.frame_sizes == {"wrist": (480, 640), "overhead": (480, 640)}  # the checkpoint's cameras only
    predictor.check_frame_size("wrist", np.zeros((480, 640, 3), np.uint8))
    with pytest.raises(FrameSizeError, match=r"camera 'overhead' sends 1280x720 frames; the checkpoint was "
                                             r"trained on 640x480 \(its training data\)"):
        predictor.check_frame_size("overhead", np.zeros((720, 1280, 3), np.uint8))
    # Without the dataset's metadata a resizing pipeline takes any size.
    ChunkPredictor(loaded, JointModel.for_sim(), task="").check_frame_size("overhead", np.zeros((720, 1280, 3), np.uint8))


# -- SmolVLA ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def smolvla_dir(tmp_path_factory):
    from tiny_policies import tiny_smolvla_checkpoint, tiny_vlm

    root = tmp_path_factory.mktemp("smolvla")
    return tiny_smolvla_checkpoint(root / "pretrained_model", tiny_vlm(root / "vlm"))


def test_smolvla_loads_and_predicts_any_frame_size_with_the_task(smolvla_dir):
    loaded = load_policy(smolvla_dir, "cpu", expected_type="smolvla")
    check_compatibility(loaded.config, ("wrist", "overhead"))
    model = JointModel.for_sim()
    predictor = ChunkPredictor(loaded, model, task="Pick up the cube and place it in the bowl")
    assert predictor.resizes_images  # SmolVLA resizes with padding inside the model
    values = {STATE_KEY: np.zeros(6, np.float32), IMAGE_PREFIX + "wrist": np.zeros((224, 224, 3), np.uint8),
              IMAGE_PREFIX + "overhead": np.zeros((48, 80, 3), np.uint8)}
    chunk, _ = predictor.predict(Observation(stamp=0.0, values=values))
    assert chunk.shape == (10, 6) and np.all(np.isfinite(chunk))
    assert np.abs(chunk).max() < np.pi  # radians


def test_real_time_chunking_is_for_smolvla_only(act_dir):
    with pytest.raises(CheckpointError, match="mode:=rtc"):
        load_policy(act_dir, "cpu", real_time_chunking=True)


def test_real_time_chunking_passes_the_delay_and_the_unexecuted_rest(smolvla_dir):
    loaded = load_policy(smolvla_dir, "cpu", real_time_chunking=True)
    predictor = ChunkPredictor(loaded, JointModel.for_sim(), task="Pick up the cube and place it in the bowl")
    assert predictor.real_time_chunking
    calls = []
    original = loaded.policy.predict_action_chunk

    def spy(batch, **kwargs):
        actions = original(batch, **kwargs)
        calls.append((kwargs, actions.clone()))
        return actions

    loaded.policy.predict_action_chunk = spy
    values = {STATE_KEY: np.zeros(6, np.float32), IMAGE_PREFIX + "wrist": np.zeros((64, 64, 3), np.uint8),
              IMAGE_PREFIX + "overhead": np.zeros((64, 64, 3), np.uint8)}
    predictor.predict(Observation(stamp=10.0, values=values), expected_latency=0.1, fps=30)
    predictor.predict(Observation(stamp=10.1, values=values), expected_latency=0.1, fps=30)
    first, second = calls
    assert first[0] == {"inference_delay": 0, "prev_chunk_left_over": None}
    assert second[0]["inference_delay"] == 3
    # The new observation is 3 steps into the old chunk: its rest, in the policy's normalized space.
    torch.testing.assert_close(second[0]["prev_chunk_left_over"], first[1][:, 3:])
    predictor.reset()
    predictor.predict(Observation(stamp=20.0, values=values), expected_latency=0.1, fps=30)
    assert calls[2][0]["prev_chunk_left_over"] is None


# A real arm's data in degrees: wrist_roll calibrated over a whole turn reaches +-170 degrees.
DEGREES_RANGE = ([-100.0, -95.0, -90.0, -95.0, -170.0, 0.0], [100.0, 95.0, 90.0, 95.0, 170.0, 100.0])


def test_training_data_in_degrees_fits_an_arm_in_degrees_and_not_one_in_range_m100_100(tmp_path):
    checkpoint = tiny_act_checkpoint(tmp_path / "act", value_range=DEGREES_RANGE)
    stats = normalization_stats(load_policy(checkpoint, "cpu", "act"))
    assert "fit the arm's limits in degrees" in check_value_ranges(stats, JointModel.for_sim("degrees"))
    # By hand: read as range_m100_100, 170 is 1.7 half-spans of the sim's wrist_roll (2.79 rad), 4.75 rad,
    # past its upper limit 2.84 rad plus 15% of its 5.59 rad span (3.68 rad). 100 is one half-span: no
    # more than the limit, so the other joints pass.
    with pytest.raises(UnitError) as refused:
        check_value_ranges(stats, JointModel.for_sim("range_m100_100"))
    message = str(refused.value)
    assert "wrist_roll.pos spans -170..170" in message and "in range_m100_100" in message
    assert "shoulder_pan" not in message and message.count("wrist_roll.pos") == 2  # state and action


def test_a_checkpoint_without_min_and_max_says_its_ranges_were_not_checked(tmp_path):
    stats = normalization_stats(load_policy(tiny_act_checkpoint(tmp_path / "act"), "cpu", "act"))
    assert "not checked" in check_value_ranges(stats, JointModel.for_sim("range_m100_100"))


def test_a_stall_is_warned_once_while_its_ages_grow_and_again_after_fresh_data():
    import logging

    from so101_policy.stale_data import StaleDataGuard

    guard = StaleDataGuard(InferenceMode.ASYNC, lockstep=False)
    reasons = [f"stale data (max_obs_age 0.50 s): wrist {age:.2f} s" for age in (0.6, 0.8, 1.0)]
    notices = [guard.notice(reason, cause="stale: wrist") for reason in reasons]
    assert notices == [(logging.WARNING, f"no inference: {reasons[0]}"), None, None]
    assert guard.notice("stale data: wrist 1.1 s, joint_states 0.7 s", cause="stale: wrist, joint_states")
    guard.fresh()
    assert guard.notice(reasons[2], cause="stale: wrist") == (logging.WARNING, f"no inference: {reasons[2]}")


def test_inputs_that_have_sent_nothing_yet_are_waited_for_at_info_once():
    """Every normal start on the wall clock (the policy up before the driver's first joint state) printed a WARN."""
    import logging

    from so101_policy.stale_data import StaleDataGuard

    assembler = ObservationAssembler(("wrist",), JointModel.for_sim())
    guard = StaleDataGuard(InferenceMode.ASYNC, lockstep=False)
    lines = []
    for now in (0.0, 0.2, 0.4):
        stale = assembler.assemble(now)
        lines.append(guard.notice(stale.reason, stale.cause, stale.waiting))
    assert lines == [(logging.INFO, "waiting to act: no joint state received yet"), None, None]
    assembler.update_joints(0.5, np.zeros(6))
    stale = assembler.assemble(0.5)
    assert guard.notice(stale.reason, stale.cause, stale.waiting) == (
        logging.INFO, "waiting to act: no image received yet from ['wrist']")
    assembler.update_image("wrist", 0.5, np.zeros((8, 8, 3), np.uint8))
    stale = assembler.assemble(1.0)  # both sent, then stopped: a stall
    assert not stale.waiting and guard.notice(stale.reason, stale.cause, stale.waiting)[0] == logging.WARNING


def test_stale_data_cancels_the_sent_chunks_only_where_the_mode_replans_on_the_wall_clock():
    from so101_policy.stale_data import StaleDataGuard

    on_the_wall_clock = {mode.value: StaleDataGuard(mode, lockstep=False).cancels(driving=True)
                         for mode in InferenceMode}
    assert on_the_wall_clock == {"sync": False, "async": True, "rtc": True, "temporal_ensemble": True}
    assert not any(StaleDataGuard(mode, lockstep=True).cancels(driving=True) for mode in InferenceMode)
    assert not StaleDataGuard(InferenceMode.ASYNC, lockstep=False).cancels(driving=False)  # nothing sent to cancel
