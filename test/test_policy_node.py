"""policy_node as a real ROS 2 process: observations in, chunks out; stale data and bad checkpoints."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import numpy as np
import pytest
import torch
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from ros_harness import NodeProcess, RosProbe, isolated_ros_env, next_domain_id
from so101_driver.joint_model import JOINT_NAMES, in_joint_order
from so101_driver.ros_messages import color_image_msg, duration_to_sec, joint_state_msg, sec_to_time, time_to_sec
from test_inference_backends import cpu_computes_in_bf16
from tiny_policies import tiny_act_checkpoint, tiny_smolvla_checkpoint, tiny_vlm

STARTUP = 90.0


def start(executable, params, domain, tmp_path, env: dict[str, str] | None = None):
    args = ["--ros-args", *[a for key, value in params.items() for a in ("-p", f"{key}:={value}")]]
    return NodeProcess(executable, args, {**isolated_ros_env(domain), **(env or {})},
                       tmp_path / f"{executable}.log")


@pytest.fixture
def recorder(tmp_path):
    domain = next_domain_id()
    probe = RosProbe(domain)
    record = {"chunks": [], "joint_states": [], "diagnostics": []}
    probe.node.create_subscription(JointTrajectory, "/so101/action_chunk", record["chunks"].append, 10)
    probe.node.create_subscription(JointState, "/joint_states", record["joint_states"].append, 100)
    probe.node.create_subscription(DiagnosticArray, "/diagnostics", record["diagnostics"].append, 20)
    processes = []
    yield domain, probe, record, processes
    probe.close()
    for process in processes:
        assert process.stop() == 0, process.output


# One exported backend through ROS, the fastest this CPU runs: the node's path is the same for the three
# (test_inference_backends checks each one's chunks against eager torch).
EXPORTED = "openvino_bf16" if cpu_computes_in_bf16() else "onnxruntime"


@pytest.mark.parametrize("backend", ["torch", EXPORTED])
def test_sim_observations_become_stamped_chunks_in_radians(tmp_path, recorder, backend):
    domain, probe, record, processes = recorder
    checkpoint = tiny_act_checkpoint(tmp_path / "act", image_shape=(3, 224, 224), chunk_size=20)
    processes.append(start("driver_node", {"backend": "sim"}, domain, tmp_path))
    # The sim driver owns time (/clock): the policy runs on it, as every node of a sim graph does.
    policy = start("policy_node", {"checkpoint": checkpoint, "device": "cpu", "mode": "async", "use_sim_time": "true",
                                   "backend": backend}, domain, tmp_path)
    processes.append(policy)
    probe.spin_until(lambda: len(record["chunks"]) >= 4, STARTUP, lambda: f"chunks (policy log:\n{policy.output})")
    # The probe may discover the driver after the policy did: compare only chunks computed from
    # joint states the probe has seen too.
    record["chunks"].clear()
    probe.spin_until(lambda: len(record["chunks"]) >= 2, 30, lambda: f"more chunks (policy log:\n{policy.output})")
    seen_stamps = {time_to_sec(m.header.stamp) for m in record["joint_states"]}
    chunk = record["chunks"][-1]
    assert list(chunk.joint_names) == list(JOINT_NAMES)
    assert len(chunk.points) == 20
    np.testing.assert_allclose([duration_to_sec(p.time_from_start) for p in chunk.points], np.arange(20) / 30.0,
                               atol=1e-6)
    # Stamped with the time of the joint state it was computed from.
    assert time_to_sec(chunk.header.stamp) in seen_stamps
    positions = np.array([p.positions for p in chunk.points])
    assert np.all(np.isfinite(positions)) and np.abs(positions).max() < np.pi  # radians, not degrees
    probe.spin_until(lambda: any(d.status[0].name == "so101_driver: control" and
                                 int({kv.key: kv.value for kv in d.status[0].values}["chunks_accepted"]) > 0
                                 for d in record["diagnostics"]), 10, "the driver to accept chunks")
    def policy_values():
        statuses = [d.status[0] for d in record["diagnostics"] if d.status[0].name == "so101_policy: inference"]
        return {kv.key: kv.value for kv in statuses[-1].values} if statuses else {}

    probe.spin_until(lambda: int(policy_values().get("chunks_published", 0)) > 0, 10, "policy diagnostics")
    assert float(policy_values()["latency_p95_ms"]) > 0
    assert int(policy_values()["points_stale_at_publish"]) >= int(policy_values()["chunks_published"])

    reset = probe.node.create_client(Trigger, "/so101/policy/reset")
    assert probe.call(reset, Trigger.Request()).success
    assert f"({backend.split('_')[0]}" in policy.output  # the start-up line names the runtime
    assert "first chunk computed at start-up in " in policy.output
    if backend != "torch":
        assert len(list((checkpoint / "onnx").glob("act_*.onnx"))) == 1


def test_pausing_the_policy_stops_the_arm_where_it_is_going(tmp_path, recorder):
    """A paused policy cancels the chunk the driver is still executing (an empty JointTrajectory), so
    the arm holds its last target instead of playing the rest of the chunk."""
    from std_srvs.srv import SetBool

    domain, probe, record, processes = recorder
    targets = []
    probe.node.create_subscription(JointState, "/so101/joint_targets", targets.append, 100)
    checkpoint = tiny_act_checkpoint(tmp_path / "act", image_shape=(3, 224, 224), chunk_size=50)
    processes.append(start("driver_node", {"backend": "sim"}, domain, tmp_path))
    policy = start("policy_node", {"checkpoint": checkpoint, "device": "cpu", "mode": "async", "use_sim_time": "true"},
                   domain, tmp_path)
    processes.append(policy)
    probe.spin_until(lambda: len([c for c in record["chunks"] if c.points]) >= 2, STARTUP,
                     lambda: f"chunks (policy log:\n{policy.output})")
    enable = probe.node.create_client(SetBool, "/so101/policy/enable")
    assert probe.call(enable, SetBool.Request(data=False)).success
    probe.spin_until(lambda: any(not c.points for c in record["chunks"]), 10, "the policy's empty chunk")

    def driver_values():
        statuses = [d.status[0] for d in record["diagnostics"] if d.status[0].name == "so101_driver: control"]
        return {kv.key: kv.value for kv in statuses[-1].values} if statuses else {}

    probe.spin_until(lambda: int(driver_values().get("cancels", 0)) >= 1, 10, "the driver to take the cancel")
    targets.clear()
    probe.spin_until(lambda: len(targets) >= 20, 10, "the driver's targets while paused")
    held = np.array([t.position for t in targets])
    # 50-point chunks last 1.7 s: without the cancel the driver would still be walking through one.
    np.testing.assert_array_equal(held, np.repeat(held[:1], len(held), axis=0))


def test_a_stale_camera_gives_no_chunk_and_a_diagnostic(tmp_path, recorder):
    domain, probe, record, processes = recorder
    # A wrist-only checkpoint, run with the overhead camera excluded.
    checkpoint = tiny_act_checkpoint(tmp_path / "act", cameras=("wrist",), image_shape=(3, 64, 64))
    # No driver here: the calibration is named, and acted on once no driver has spoken for arm_timeout.
    policy = start("policy_node", {"checkpoint": checkpoint, "device": "cpu", "exclude_cameras": "overhead",
                                   "calibration": "sim", "arm_timeout": 0.5}, domain, tmp_path)
    processes.append(policy)
    joints = probe.node.create_publisher(JointState, "/joint_states", 10)
    wrist = probe.node.create_publisher(Image, "/so101/wrist/image_raw", qos_profile_sensor_data)
    frame = np.full((64, 64, 3), 90, np.uint8)

    def publish(image_age):
        now = time_to_sec(probe.node.get_clock().now().to_msg())
        joints.publish(joint_state_msg(sec_to_time(now), JOINT_NAMES, np.zeros(6)))
        wrist.publish(color_image_msg(sec_to_time(now - image_age), frame, "wrist"))

    def stale_warning():
        return any(d.status[0].level == DiagnosticStatus.WARN and "stale data" in d.status[0].message
                   for d in record["diagnostics"])

    probe.spin_until(lambda: wrist.get_subscription_count() > 0, STARTUP, lambda: f"the policy node ({policy.output})")
    for _ in range(60):  # 2 s of data whose camera frames are a second old
        publish(image_age=1.0)
        probe.spin_for(1 / 30)
    probe.spin_until(stale_warning, 10, lambda: f"a stale-data diagnostic (log:\n{policy.output})")
    assert record["chunks"] == []
    for _ in range(30):  # fresh frames: now it must infer
        publish(image_age=0.0)
        probe.spin_for(1 / 30)
    probe.spin_until(lambda: record["chunks"], 20, "a chunk from fresh data")


def wrist_only_policy(tmp_path, recorder, max_obs_age: float):
    """A wrist-only tiny ACT (chunk 50) on the sim calibration, with no driver, and stand-ins for the driver's
    joint states and the wrist camera: (policy process, joints publisher, wrist publisher, a frame)."""
    domain, probe, _, processes = recorder
    checkpoint = tiny_act_checkpoint(tmp_path / "act", cameras=("wrist",), image_shape=(3, 64, 64), chunk_size=50)
    policy = start("policy_node", {"checkpoint": checkpoint, "device": "cpu", "exclude_cameras": "overhead",
                                   "calibration": "sim", "arm_timeout": 0.5, "max_obs_age": max_obs_age},
                   domain, tmp_path)
    processes.append(policy)
    joints = probe.node.create_publisher(JointState, "/joint_states", 10)
    wrist = probe.node.create_publisher(Image, "/so101/wrist/image_raw", qos_profile_sensor_data)
    probe.spin_until(lambda: wrist.get_subscription_count() > 0, STARTUP, lambda: f"the policy node ({policy.output})")
    return policy, joints, wrist, np.full((64, 64, 3), 90, np.uint8)


def test_a_stalled_camera_or_joint_stream_makes_the_arm_hold_and_fresh_data_resumes_it(tmp_path, recorder):
    """A stand-in wrist camera at 30 Hz stalls, comes back; the joint states stop, come back; the camera goes
    for good. The chunks already sent were planned from data now stale: the policy cancels them (the driver
    holds, as test_pausing_the_policy shows) and publishes nothing until fresh data comes."""
    _, probe, record, _ = recorder
    # Stale after 0.5 s: a busy machine's late frames are not taken for a stall.
    policy, joints, wrist, frame = wrist_only_policy(tmp_path, recorder, max_obs_age=0.5)

    def one_period(camera: bool, joints_alive: bool = True) -> None:
        """The driver's joint states at 30 Hz, and the camera's frames, each while it is alive."""
        stamp = sec_to_time(time_to_sec(probe.node.get_clock().now().to_msg()))
        if joints_alive:
            joints.publish(joint_state_msg(stamp, JOINT_NAMES, np.zeros(6)))
        if camera:
            wrist.publish(color_image_msg(stamp, frame, "wrist"))
        probe.spin_for(1 / 30)

    def run_until(condition, what: str, camera: bool = True, joints_alive: bool = True) -> None:
        probe.spin_until(lambda: (one_period(camera, joints_alive), condition())[1], 30,
                         lambda: f"{what} (log:\n{policy.output})")

    def chunks(since: int) -> tuple[list, list]:
        new = record["chunks"][since:]
        return [c for c in new if c.points], [c for c in new if not c.points]

    run_until(lambda: chunks(0)[0], "chunks")
    # The camera stalls, then the joint states stop while frames come, then the camera is gone for good.
    for stall, camera, joints_alive in (("camera stalls", False, True), ("joint states stop", True, False),
                                        ("camera is gone", False, True)):
        stalled_at = len(record["chunks"])
        run_until(lambda: chunks(stalled_at)[1], f"the cancel when the {stall}", camera, joints_alive)
        cancelled_at = len(record["chunks"])
        for _ in range(30):  # a second more of the same: nothing may follow the cancel
            one_period(camera, joints_alive)
        assert len(record["chunks"]) == cancelled_at, policy.output
        if stall != "camera is gone":
            run_until(lambda: chunks(cancelled_at)[0], f"chunks from fresh data after the {stall}")
    # One warning a stall, however long it lasts: not one a check.
    assert policy.output.count("no inference: stale data") == 3, policy.output


def test_the_latency_async_plans_with_is_the_observations_age_when_its_chunk_goes_out(tmp_path, recorder):
    """Frames that reach the node 150 ms after they were taken (a slow USB camera, a busy machine): the tiny
    model computes in milliseconds, but each chunk goes out 150 ms after its observation, and async must start
    the next one that much earlier. Before, the estimate was the compute alone and chunks came late."""
    _, probe, record, _ = recorder
    # Stale only after 1 s: the 150 ms are the point, a busy machine's delays on top must not stop inference.
    policy, joints, wrist, frame = wrist_only_policy(tmp_path, recorder, max_obs_age=1.0)

    def latency_p50_ms() -> float:
        statuses = [d.status[0] for d in record["diagnostics"] if d.status[0].name == "so101_policy: inference"]
        values = {kv.key: kv.value for kv in statuses[-1].values} if statuses else {}
        return float(values.get("latency_p50_ms", 0.0)) if int(values.get("inferences", 0)) >= 3 else 0.0

    def publish_for(seconds: float) -> None:
        for _ in range(round(seconds * 30)):
            taken = sec_to_time(time_to_sec(probe.node.get_clock().now().to_msg()) - 0.15)
            joints.publish(joint_state_msg(taken, JOINT_NAMES, np.zeros(6)))
            wrist.publish(color_image_msg(taken, frame, "wrist"))
            probe.spin_for(1 / 30)

    probe.spin_until(lambda: (publish_for(0.5), latency_p50_ms())[1], 60, lambda: f"inferences (log:\n{policy.output})")
    assert latency_p50_ms() >= 150.0, policy.output


@pytest.fixture(scope="module")
def refused_at_start_up(tmp_path_factory):
    """Three checkpoints a policy node must refuse at start-up, their nodes started side by side (most of a
    refusal is the node's imports, one core's work): name -> (exit code, log)."""
    from safetensors.torch import load_file, save_file

    from test_policy_core import DEGREES_RANGE

    root = tmp_path_factory.mktemp("refused")
    # Its preprocessor's wrist statistics have 4 channels for a 3-channel camera: every check of the start-up
    # passes, and before the first chunk was computed at start-up the node came up and failed at every
    # observation, mid-episode.
    cannot_compute = tiny_act_checkpoint(root / "cannot_compute" / "act")
    for stats_file in cannot_compute.glob("policy_preprocessor_step_*_normalizer_processor.safetensors"):
        stats = load_file(stats_file)
        stats.update({f"observation.images.wrist.{name}": torch.full((4, 1, 1), 0.5) for name in ("mean", "std")})
        save_file(stats, stats_file)
    params = {
        "mismatched": {"checkpoint": tiny_act_checkpoint(root / "mismatched" / "act", state_dim=7)},
        "cannot_compute": {"checkpoint": cannot_compute, "calibration": "sim"},
        "other_units": {"checkpoint": tiny_act_checkpoint(root / "other_units" / "act", value_range=DEGREES_RANGE),
                        "calibration": "sim", "arm_units": "range_m100_100"},
    }
    nodes = {name: start("policy_node", {**values, "device": "cpu"}, next_domain_id(), root / name)
             for name, values in params.items()}
    codes = {}
    try:
        for name, node in nodes.items():
            try:
                codes[name] = node.wait(timeout=STARTUP)
            except subprocess.TimeoutExpired:
                codes[name] = None  # still running: its test says so, with its log
    finally:
        for node in nodes.values():
            node.stop()
    return {name: (codes[name], node.output) for name, node in nodes.items()}


def test_a_mismatched_checkpoint_stops_at_start_up(refused_at_start_up):
    code, output = refused_at_start_up["mismatched"]
    assert code == 1, output
    assert "does not fit this SO-101 graph" in output and "found (7,)" in output
    assert "Traceback" not in output


def test_a_checkpoint_that_cannot_compute_a_chunk_stops_at_start_up(refused_at_start_up):
    code, output = refused_at_start_up["cannot_compute"]
    assert code == 1, output
    assert ("the first chunk, computed at start-up on backend torch, failed: RuntimeError: The size of tensor a (3) "
            "must match the size of tensor b (4)") in output, output
    assert "Traceback" not in output


def test_training_data_in_other_units_stops_at_start_up(refused_at_start_up):
    code, output = refused_at_start_up["other_units"]
    assert code == 1, output
    assert "does not fit this arm in range_m100_100" in output and "wrist_roll.pos" in output
    assert "Traceback" not in output


def test_a_policy_given_another_arms_calibration_refuses_to_act(tmp_path, recorder):
    """The sim driver describes its arm on /so101/arm; a policy told it is a real arm's must not act."""
    from std_srvs.srv import SetBool

    from so101_driver.joint_model import save_calibration
    from test_joint_model import REAL_CALIBRATION

    domain, probe, record, processes = recorder
    calibration = tmp_path / "lab_arm.json"
    save_calibration(REAL_CALIBRATION, calibration)
    checkpoint = tiny_act_checkpoint(tmp_path / "act", image_shape=(3, 224, 224), chunk_size=20)
    processes.append(start("driver_node", {"backend": "sim"}, domain, tmp_path))
    policy = start("policy_node", {"checkpoint": checkpoint, "device": "cpu", "use_sim_time": "true",
                                   "calibration": str(calibration)}, domain, tmp_path)
    processes.append(policy)
    probe.spin_until(lambda: "is not the arm's" in policy.output, STARTUP, lambda: f"the refusal (log:\n{policy.output})")
    assert f"The calibration given here ({calibration}) is not the arm's (sim)" in policy.output
    enable = probe.node.create_client(SetBool, "/so101/policy/enable")
    reply = probe.call(enable, SetBool.Request(data=True))
    assert not reply.success and "is not the arm's" in reply.message
    probe.spin_until(lambda: len(record["joint_states"]) >= 30, 30, "the driver's ticks")
    assert all(not chunk.points for chunk in record["chunks"])  # at most its cancel: nothing to follow


@pytest.mark.parametrize("backend", ["torch", "openvino_bf16"])
def test_a_wrist_only_smolvla_runs_on_the_sim_with_real_time_chunking(tmp_path, recorder, backend):
    if backend == "openvino_bf16" and not cpu_computes_in_bf16():
        pytest.skip("this CPU does not compute in bf16 (no AVX512_BF16 or AMX)")
    domain, probe, record, processes = recorder
    checkpoint = tiny_smolvla_checkpoint(tmp_path / "smolvla", tiny_vlm(tmp_path / "vlm"), cameras=("wrist",))
    processes.append(start("driver_node", {"backend": "sim"}, domain, tmp_path))
    policy = start("policy_node", {"checkpoint": checkpoint, "policy_type": "smolvla", "device": "cpu",
                                   "exclude_cameras": "overhead", "task": "Pick up the cube", "mode": "rtc",
                                   "use_sim_time": "true", "backend": backend},
                   domain, tmp_path)
    processes.append(policy)
    probe.spin_until(lambda: len(record["chunks"]) >= 3, STARTUP, lambda: f"SmolVLA chunks (log:\n{policy.output})")
    assert len(record["chunks"][-1].points) == 10
    assert "smolvla" in policy.output and "mode rtc" in policy.output
    if backend == "openvino_bf16":  # the image encoder on OpenVINO, the rest of lerobot's SmolVLA in torch bf16
        assert "(openvino, CPU bf16 image encoder" in policy.output and "the rest on torch, bf16)" in policy.output
        assert len(list((checkpoint / "onnx").glob("smolvla_image_encoder_*.onnx"))) == 1
    else:
        assert "(torch, eager)" in policy.output
    assert "'wrist'" in policy.output and "'overhead'" not in policy.output
    assert "inference failed" not in policy.output


def test_a_terminals_ctrl_c_during_the_start_up_compilation_stops_the_node_at_once(tmp_path, recorder):
    """torch.compile compiles in the start-up's first chunk, on the inference thread, for up to minutes.
    Before, Ctrl-C ended the start-up but the interpreter then waited at exit for the compilation it no
    longer needed: 45 s here for a tiny ACT with Inductor's caches off, with Inductor's errors at shutdown."""
    domain, _, _, _ = recorder
    checkpoint = tiny_act_checkpoint(tmp_path / "act")
    policy = start("policy_node", {"checkpoint": checkpoint, "device": "cpu", "calibration": "sim",
                                   "backend": "torch_compile"}, domain, tmp_path,
                   env={"TORCHINDUCTOR_FORCE_DISABLE_CACHES": "1"})  # a compilation as long as a user's first
    try:
        deadline = time.monotonic() + STARTUP
        while "computing the first chunks at start-up on backend torch_compile" not in policy.output:
            assert policy.process.poll() is None and time.monotonic() < deadline, policy.output
            time.sleep(0.05)
        os.killpg(policy.process.pid, signal.SIGINT)  # the terminal's Ctrl-C, then the one ros2 launch sends
        policy.process.send_signal(signal.SIGINT)
        assert policy.wait(timeout=15) == 0, policy.output
    finally:
        policy.stop()
    assert "first chunk computed" not in policy.output
    assert "Traceback" not in policy.output and "interpreter shutdown" not in policy.output, policy.output


def test_the_sims_object_state_reaches_a_checkpoint_trained_on_it(tmp_path, recorder):
    """A checkpoint without cameras, trained on observation.environment_state, beside the sim driver: the object
    poses the driver publishes reach the model's batch. Each chunk is the one lerobot's own policy computes from
    the poses and joint states of its tick, and not the one it computes without the poses."""
    from geometry_msgs.msg import PoseArray
    from lerobot.policies.act.modeling_act import ACTPolicy
    from lerobot.policies.factory import make_pre_post_processors

    from so101_driver.joint_model import JointModel
    from so101_driver.ros_messages import environment_state_from_msg

    domain, probe, record, processes = recorder
    poses = {}
    probe.node.create_subscription(PoseArray, "/so101/sim/environment_state",
                                   lambda m: poses.__setitem__(time_to_sec(m.header.stamp), m), 100)
    checkpoint = tiny_act_checkpoint(tmp_path / "act", cameras=(), chunk_size=10, environment_state=True)
    processes.append(start("driver_node", {"backend": "sim", "seed": 5, "camera_width": 32, "camera_height": 32},
                           domain, tmp_path))
    policy = start("policy_node", {"checkpoint": checkpoint, "device": "cpu", "cameras": "''", "mode": "async",
                                   "use_sim_time": "true"}, domain, tmp_path)
    processes.append(policy)
    joints = {}

    def chunk_of_a_seen_tick():
        joints.update({time_to_sec(m.header.stamp): m for m in record["joint_states"]})
        # An empty trajectory is a cancel (the stale-data guard, on a loaded machine), not a prediction.
        seen = [c for c in record["chunks"]
                if c.points and time_to_sec(c.header.stamp) in poses.keys() & joints.keys()]
        return seen[-1] if seen else None

    chunk = probe.spin_until(chunk_of_a_seen_tick, STARTUP, lambda: f"a chunk of a tick the probe saw ({policy.output})")
    assert "the sim's object state from /so101/sim/environment_state" in policy.output
    stamp = time_to_sec(chunk.header.stamp)
    state = environment_state_from_msg(poses[stamp])
    radians = np.array(in_joint_order(joints[stamp].name, joints[stamp].position))

    lerobot_policy = ACTPolicy.from_pretrained(checkpoint).eval()
    preprocessor, postprocessor = make_pre_post_processors(lerobot_policy.config, pretrained_path=str(checkpoint))
    joint_model = JointModel.for_sim()

    def lerobot_chunk(objects_state):
        batch = {"observation.state": torch.tensor(joint_model.to_lerobot(radians), dtype=torch.float32)[None],
                 "observation.environment_state": torch.tensor(objects_state)[None]}
        with torch.inference_mode():
            actions = postprocessor(lerobot_policy.predict_action_chunk(preprocessor(batch)))
        return joint_model.to_radians(actions[0].numpy().astype(np.float64))

    positions = np.array([p.positions for p in chunk.points])
    np.testing.assert_allclose(positions, lerobot_chunk(state), atol=1e-4)
    assert np.abs(positions - lerobot_chunk(np.zeros_like(state))).max() > 1e-3  # the poses are what made it
