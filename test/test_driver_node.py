"""driver_node as a real ROS 2 process: topics, units, chunk execution, safety, services, shutdown."""

from __future__ import annotations

import json
import math
import signal
from pathlib import Path

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from ros_harness import NodeProcess, RosProbe, isolated_ros_env, next_domain_id
from so101_driver.joint_model import JOINT_NAMES, JointModel, save_calibration
from so101_driver.ros_messages import joint_trajectory_msg, time_to_sec
from so101_driver.sim.sim_arm import HOME_POSITION
from test_feetech_backend import calibrated_emulator
from test_joint_model import REAL_CALIBRATION

STARTUP_TIMEOUT = 60.0
DRIVER_YAML = Path(__file__).parents[1] / "config" / "driver.yaml"


class Graph:
    """A node process plus a probe that records what it publishes."""

    def __init__(self, tmp_path, executable, params, params_file=None):
        self.domain = next_domain_id()
        args = ["--ros-args", *(["--params-file", str(params_file)] if params_file else []),
                *[a for key, value in params.items() for a in ("-p", f"{key}:={value}")]]
        self.process = NodeProcess(executable, args, isolated_ros_env(self.domain), tmp_path / f"{executable}.log")
        self.probe = RosProbe(self.domain)
        node = self.probe.node
        self.joint_states: list[JointState] = []
        self.images: dict[str, list[Image]] = {"wrist": [], "overhead": []}
        self.diagnostics: list[DiagnosticArray] = []
        self.joint_targets: list[JointState] = []
        node.create_subscription(JointState, "/joint_states", self.joint_states.append, 50)
        node.create_subscription(JointState, "/so101/joint_targets", self.joint_targets.append, 50)
        node.create_subscription(DiagnosticArray, "/diagnostics", self.diagnostics.append, 10)
        for camera, frames in self.images.items():
            node.create_subscription(Image, f"/so101/{camera}/image_raw", frames.append, qos_profile_sensor_data)
        self.chunk_pub = node.create_publisher(JointTrajectory, "/so101/action_chunk", 10)
        self.command_pub = node.create_publisher(JointState, "/so101/joint_command", 10)

    def wait_for_joint_states(self, count=3):
        try:
            self.probe.spin_until(lambda: len(self.joint_states) >= count, STARTUP_TIMEOUT, "/joint_states")
        except TimeoutError as error:
            self.process.dump_stacks()  # where a driver that never came up is stuck
            raise TimeoutError(f"{error} (driver exit status {self.process.process.poll()}, log:\n"
                               f"{self.process.output})") from None

    def latest_positions(self) -> np.ndarray:
        msg = self.joint_states[-1]
        return np.array([msg.position[list(msg.name).index(n)] for n in JOINT_NAMES])

    def publish_chunk(self, points, stamp=None, names=JOINT_NAMES, period=1 / 30):
        stamp = time_to_sec(stamp or self.joint_states[-1].header.stamp)
        self.chunk_pub.publish(joint_trajectory_msg(stamp, names, np.asarray(points), period))

    def close(self):
        self.probe.close()
        return self.process.stop()


@pytest.fixture
def sim_graph(tmp_path):
    # The shipped parameter file, as users pass it, with the seed overridden.
    graph = Graph(tmp_path, "driver_node", {"seed": 7}, params_file=DRIVER_YAML)
    yield graph
    assert graph.close() == 0, graph.process.output


def test_sim_driver_publishes_joints_in_radians_and_both_cameras(sim_graph):
    sim_graph.wait_for_joint_states()
    sim_graph.probe.spin_until(lambda: all(len(f) >= 3 for f in sim_graph.images.values()), 20, "camera frames")
    msg = sim_graph.joint_states[-1]
    assert list(msg.name) == list(JOINT_NAMES)
    np.testing.assert_allclose(sim_graph.latest_positions(), HOME_POSITION, atol=0.02)
    for camera, frames in sim_graph.images.items():
        frame = frames[-1]
        assert (frame.width, frame.height, frame.encoding) == (224, 224, "rgb8"), camera
        pixels = np.frombuffer(bytes(frame.data), np.uint8).reshape(224, 224, 3)
        assert pixels.std() > 10, f"{camera} frame is blank"
    # Frames are stamped with the tick that read the joints they show.
    joint_stamps = {(m.header.stamp.sec, m.header.stamp.nanosec) for m in sim_graph.joint_states}
    frame = sim_graph.images["wrist"][-1]
    assert (frame.header.stamp.sec, frame.header.stamp.nanosec) in joint_stamps


def test_a_chunk_moves_the_sim_arm_and_stale_points_are_skipped(sim_graph):
    sim_graph.wait_for_joint_states()
    start = sim_graph.latest_positions()
    goal = start.copy()
    goal[0] += 0.4
    points = [start + (goal - start) * min(1.0, k / 30) for k in range(60)]
    # Stamped 0.5 s in the past: the first 15 points are already due and must be skipped.
    stamp = sim_graph.joint_states[-1].header.stamp
    stamp.sec -= 1
    stamp.nanosec += 500_000_000
    if stamp.nanosec >= 1_000_000_000:
        stamp.sec, stamp.nanosec = stamp.sec + 1, stamp.nanosec - 1_000_000_000
    sim_graph.publish_chunk(points, stamp=stamp)
    sim_graph.probe.spin_until(lambda: abs(sim_graph.latest_positions()[0] - goal[0]) < 0.01, 10,
                               "the arm to reach the chunk's end")
    sim_graph.probe.spin_until(
        lambda: _stat(sim_graph, "points_skipped") >= 14, 5, "a diagnostic counting skipped points"
    )
    assert _stat(sim_graph, "chunks_accepted") == 1
    # What the servos were sent, tick by tick, is published for recording (a dataset's action).
    target = sim_graph.joint_targets[-1]
    assert list(target.name) == list(JOINT_NAMES)
    assert abs(target.position[0] - goal[0]) < 1e-3


def test_bad_commands_are_rejected_with_a_diagnostic_and_no_motion(sim_graph):
    sim_graph.wait_for_joint_states()
    before = sim_graph.latest_positions()
    bad = [before + 0.3] * 10
    bad[4] = np.full(6, math.nan)
    sim_graph.publish_chunk(bad)
    sim_graph.publish_chunk([before + 0.3] * 3, names=[*JOINT_NAMES[:5], "elbow"])
    wrong = JointState(name=list(JOINT_NAMES), position=[0.1] * 5)
    sim_graph.command_pub.publish(wrong)
    sim_graph.probe.spin_until(lambda: _stat(sim_graph, "commands_rejected") >= 3, 10, "three rejections")
    status = sim_graph.diagnostics[-1].status[0]
    assert status.level in (DiagnosticStatus.WARN, DiagnosticStatus.OK)
    assert any(d.status[0].level == DiagnosticStatus.WARN and "rejected" in d.status[0].message
               for d in sim_graph.diagnostics)
    np.testing.assert_allclose(sim_graph.latest_positions(), before, atol=0.01)
    assert "rejected" in sim_graph.process.output


def test_joint_command_is_step_clamped_and_limit_clamped(sim_graph):
    sim_graph.wait_for_joint_states()
    target = HOME_POSITION.copy()
    target[0] = 5.0  # far beyond the shoulder_pan limit
    sim_graph.command_pub.publish(JointState(name=list(JOINT_NAMES), position=target.tolist()))
    sim_graph.probe.spin_for(0.5)
    upper = JointModel.for_sim().limits[1][0]
    # Targets move 0.1 rad a tick at most; the measured joint follows with a little overshoot.
    pans = [m.position[0] for m in sim_graph.joint_states[-10:]]
    assert max(np.diff(pans)) < 0.13
    sim_graph.probe.spin_until(lambda: sim_graph.latest_positions()[0] > upper - 0.02, 10, "the pan limit")
    sim_graph.probe.spin_for(0.5)
    assert sim_graph.latest_positions()[0] < upper + 0.01


def test_reset_and_episode_status_services(sim_graph):
    sim_graph.wait_for_joint_states()
    reset = sim_graph.probe.node.create_client(Trigger, "/so101/reset")
    status = sim_graph.probe.node.create_client(Trigger, "/so101/episode_status")
    initial = json.loads(sim_graph.probe.call(status, Trigger.Request()).message)
    first = json.loads(sim_graph.probe.call(reset, Trigger.Request()).message)
    second = json.loads(sim_graph.probe.call(reset, Trigger.Request()).message)
    # The driver starts in the scene of its seed parameter, and the first reset lays that seed out
    # again (the first episode gets the seed asked for); each later reset takes the next.
    assert (initial["seed"], first["seed"], second["seed"]) == (7, 7, 8)
    assert first["cube_position"] != second["cube_position"]
    distance = np.linalg.norm(np.subtract(second["cube_position"][:2], second["target_position"][:2]))
    assert distance == pytest.approx(0.10, abs=1e-3)
    reply = sim_graph.probe.call(status, Trigger.Request())
    assert reply.success is False and json.loads(reply.message)["lifted"] is False


def real_arm_driver(tmp_path, emulator, **params) -> Graph:
    """driver_node on the Feetech backend, against the emulated arm, with the lab arm's calibration file."""
    calibration = tmp_path / "lab_arm.json"
    save_calibration(REAL_CALIBRATION, calibration)
    return Graph(tmp_path, "driver_node",
                 {"backend": "feetech", "port": emulator.port, "calibration_file": str(calibration), **params})


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_real_arm_driver_commands_ticks_and_turns_torque_off(tmp_path, stop_signal):
    with calibrated_emulator() as emulator:
        graph = real_arm_driver(tmp_path, emulator)
        try:
            graph.wait_for_joint_states()
            assert all(s.torque_enabled for s in emulator.servos.values())
            target = graph.latest_positions()
            target[1] += 0.05  # within one tick's step
            graph.command_pub.publish(JointState(name=list(JOINT_NAMES), position=target.tolist()))
            expected = JointModel(REAL_CALIBRATION).radians_to_ticks(target)
            lift = emulator.servos[REAL_CALIBRATION["shoulder_lift"].id]
            graph.probe.spin_until(lambda: abs(lift.goal_position - expected[1]) <= 1.0, 10,
                                   "Goal_Position of shoulder_lift")
            graph.process.signal(stop_signal)
            assert graph.process.wait(timeout=15) == 0, graph.process.output
            assert not any(s.torque_enabled for s in emulator.servos.values())
        finally:
            graph.close()


def test_lifecycle_transitions_drive_torque_and_control(tmp_path):
    """autostart:=false: nothing happens until configure (bus open, torque off), then activate (torque, ticks)."""
    from lifecycle_msgs.msg import State, Transition
    from lifecycle_msgs.srv import ChangeState, GetState

    with calibrated_emulator() as emulator:
        graph = real_arm_driver(tmp_path, emulator, autostart="false")
        node = graph.probe.node
        change = node.create_client(ChangeState, "/so101_driver/change_state")
        get = node.create_client(GetState, "/so101_driver/get_state")

        def transition(transition_id: int) -> None:
            reply = graph.probe.call(change, ChangeState.Request(transition=Transition(id=transition_id)))
            assert reply.success, (transition_id, graph.process.output)

        def state() -> int:
            return graph.probe.call(get, GetState.Request(), timeout=30.0, resend_every=3.0).current_state.id

        def torque() -> list[bool]:
            return [s.torque_enabled for s in emulator.servos.values()]

        try:
            assert state() == State.PRIMARY_STATE_UNCONFIGURED
            assert not any(s.writes for s in emulator.servos.values())  # the bus is not even opened
            transition(Transition.TRANSITION_CONFIGURE)
            assert state() == State.PRIMARY_STATE_INACTIVE and not any(torque())
            graph.probe.spin_for(0.3)
            assert not graph.joint_states  # no control tick while inactive
            transition(Transition.TRANSITION_ACTIVATE)
            assert all(torque())
            graph.wait_for_joint_states()
            transition(Transition.TRANSITION_DEACTIVATE)
            assert state() == State.PRIMARY_STATE_INACTIVE and not any(torque())
            transition(Transition.TRANSITION_ACTIVATE)
            assert all(torque())
            transition(Transition.TRANSITION_DEACTIVATE)
            transition(Transition.TRANSITION_CLEANUP)
            assert state() == State.PRIMARY_STATE_UNCONFIGURED and not any(torque())
            transition(Transition.TRANSITION_CONFIGURE)  # the bus was released: it opens again
            transition(Transition.TRANSITION_ACTIVATE)
            assert all(torque())
            transition(Transition.TRANSITION_ACTIVE_SHUTDOWN)
            assert state() == State.PRIMARY_STATE_FINALIZED and not any(torque())
        finally:
            assert graph.close() == 0, graph.process.output


@pytest.mark.parametrize("second_signal_after", [0.0, 0.02, 0.2])
def test_a_terminals_ctrl_c_mid_read_turns_torque_off_and_exits_once(tmp_path, second_signal_after):
    """Ctrl-C as a terminal under ros2 launch sends it: SIGINT to the process group, then one more to the node.

    Every reply is held back 8 ms, so the control tick spends a good part of each period inside a read.
    """
    with calibrated_emulator(reply_delay=0.008) as emulator:
        graph = real_arm_driver(tmp_path, emulator)
        try:
            graph.wait_for_joint_states(count=10)
            graph.process.signal(signal.SIGINT)
            if second_signal_after:
                graph.probe.spin_for(second_signal_after)
            graph.process.process.send_signal(signal.SIGINT)
            assert graph.process.wait(timeout=15) == 0, graph.process.output
            assert "Traceback" not in graph.process.output, graph.process.output
            assert not any(s.torque_enabled for s in emulator.servos.values()), graph.process.output
        finally:
            graph.close()


def test_a_joint_resting_outside_its_limits_is_not_moved_and_a_blocked_one_is_not_pushed(tmp_path):
    """wrist_roll's calibrated range (0-4095) is wider than the model's limits; the elbow meets an obstacle."""
    model = JointModel(REAL_CALIBRATION)
    upper_tick = model.radians_to_ticks(model.limits[1])[4]
    with calibrated_emulator() as emulator:
        roll = emulator.servos[REAL_CALIBRATION["wrist_roll"].id]
        outside = int(upper_tick) + 120
        roll.set("Present_Position", outside)
        roll.set("Goal_Position", outside)
        elbow = emulator.servos[REAL_CALIBRATION["elbow_flex"].id]
        graph = real_arm_driver(tmp_path, emulator)
        try:
            graph.wait_for_joint_states(count=30)  # a second of holding, and one watchdog timeout
            assert roll.goal_position == outside and roll.get("Present_Position") == outside
            elbow.blocked = True
            start = elbow.get("Present_Position")
            target = graph.latest_positions()
            target[2] += 1.0  # far into the obstacle
            graph.command_pub.publish(JointState(name=list(JOINT_NAMES), position=target.tolist()))
            graph.probe.spin_until(lambda: elbow.goal_position != start, 10, "the elbow's Goal_Position")
            graph.wait_for_joint_states(count=len(graph.joint_states) + 30)
            # The goal stays a step (0.1 rad, 65 ticks) from where the blocked joint is, for good.
            assert 0 < abs(elbow.goal_position - start) <= 0.1 * 4096 / (2 * np.pi) + 1
            assert roll.goal_position == outside
        finally:
            graph.close()


def test_a_servo_that_dies_at_the_first_read_stops_the_driver_with_torque_off(tmp_path):
    with calibrated_emulator() as emulator:
        elbow = emulator.servos[REAL_CALIBRATION["elbow_flex"].id]
        elbow.dies_at_read = "Present_Position"
        graph = real_arm_driver(tmp_path, emulator)
        try:
            assert graph.process.wait(timeout=STARTUP_TIMEOUT) == 1, graph.process.output
            answering = [s for s in emulator.servos.values() if s is not elbow]
            assert not any(s.torque_enabled for s in answering), graph.process.output
            # One line for the failed read, one naming the servo that cannot be turned off.
            assert "Traceback" not in graph.process.output
            assert "Could not disable torque on 'elbow_flex'" in graph.process.output
        finally:
            graph.close()


def test_parameters_that_cannot_change_while_running_refuse_a_set(sim_graph):
    """`ros2 param set /so101_driver max_relative_target 0.5` must not succeed and change nothing."""
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import GetParameters, SetParameters

    node = sim_graph.probe.node
    set_client = node.create_client(SetParameters, "/so101_driver/set_parameters")
    get_client = node.create_client(GetParameters, "/so101_driver/get_parameters")
    sim_graph.wait_for_joint_states()
    for name, value in (("max_relative_target", ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=0.5)),
                        ("watchdog_timeout", ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=5.0))):
        reply = sim_graph.probe.call(set_client, SetParameters.Request(parameters=[Parameter(name=name, value=value)]))
        assert not reply.results[0].successful and "read-only" in reply.results[0].reason, reply
    values = sim_graph.probe.call(get_client, GetParameters.Request(names=["max_relative_target", "watchdog_timeout"]))
    assert [v.double_value for v in values.values] == [0.1, 0.5]


@pytest.mark.parametrize("calibration, message", [({}, "calibration_id:="),
                                                  ({"calibration_file": "/nonexistent/my_arm.json"},
                                                   "No LeRobot calibration file at /nonexistent/my_arm.json")])
def test_real_arm_driver_without_calibration_stops_with_a_message(tmp_path, calibration, message):
    graph = Graph(tmp_path, "driver_node", {"backend": "feetech", "port": "/dev/null", **calibration})
    try:
        assert graph.process.wait(timeout=STARTUP_TIMEOUT) == 1
        assert message in graph.process.output
        assert "Traceback" not in graph.process.output and len(graph.process.output.splitlines()) == 1
    finally:
        graph.close()


def test_a_parameter_outside_its_range_stops_the_driver_before_it_connects(tmp_path):
    with calibrated_emulator() as emulator:
        graph = real_arm_driver(tmp_path, emulator, watchdog_timeout=-1.0)
        try:
            assert graph.process.wait(timeout=STARTUP_TIMEOUT) == 1, graph.process.output
            assert graph.process.output.strip() == (
                "[so101_driver] watchdog_timeout must be within [0.01, 10.0] (seconds without a command, "
                "past the last one's end, before holding), got -1.0.")
            assert not any(servo.writes for servo in emulator.servos.values()), "nothing may be written to the bus"
        finally:
            graph.close()


def _stat(graph: Graph, key: str) -> int:
    if not graph.diagnostics:
        return 0
    values = {kv.key: kv.value for kv in graph.diagnostics[-1].status[0].values}
    return int(values[key])


def test_shipped_parameter_file_names_every_driver_parameter():
    import yaml

    from so101_driver.driver_node import PARAMETERS

    shipped = yaml.safe_load(DRIVER_YAML.read_text())["so101_driver"]["ros__parameters"]
    assert set(shipped) == {*PARAMETERS, "max_relative_target"}
    assert all(shipped[name] == default for name, (default, *_) in PARAMETERS.items())


def _lifecycle(graph: Graph):
    """get_state() and activate() as `ros2 lifecycle get/set /so101_driver` call them."""
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState, GetState

    change = graph.probe.node.create_client(ChangeState, "/so101_driver/change_state")
    get = graph.probe.node.create_client(GetState, "/so101_driver/get_state")

    def get_state() -> str:
        return graph.probe.call(get, GetState.Request(), timeout=30.0, resend_every=3.0).current_state.label

    def activate() -> bool:
        request = ChangeState.Request(transition=Transition(id=Transition.TRANSITION_ACTIVATE))
        return graph.probe.call(change, request, timeout=30.0).success

    return get_state, activate


def _driver_fault(graph: Graph) -> DiagnosticStatus | None:
    """The driver's last diagnostic, where it says the arm was given up (bus errors alone are ERRORs too)."""
    statuses = [d.status[0] for d in graph.diagnostics if d.status[0].name == "so101_driver: control"]
    last = statuses[-1] if statuses else None
    return last if last and last.level == DiagnosticStatus.ERROR and "given up" in last.message else None


def test_a_usb_cable_pulled_mid_motion_leaves_active_at_once_and_only_activation_brings_the_arm_back(tmp_path):
    # Diagnostics once a minute: the ERROR must come from the fault itself, not from the period.
    with calibrated_emulator() as emulator:
        graph = real_arm_driver(tmp_path, emulator, diagnostics_period=60.0)
        get_state, activate = _lifecycle(graph)
        try:
            graph.wait_for_joint_states(count=10)
            start = graph.latest_positions()
            points = [start + [0.0, 0.004 * k, 0.0, 0.0, 0.0, 0.0] for k in range(90)]  # 3 s of motion
            graph.publish_chunk(points)
            lift = emulator.servos[REAL_CALIBRATION["shoulder_lift"].id]
            moving_from = lift.goal_position
            graph.probe.spin_until(lambda: lift.goal_position != moving_from, 10, "the chunk to move the arm")
            emulator.unplug()
            graph.probe.spin_until(lambda: _driver_fault(graph) is not None, 5, "the fault's diagnostics ERROR")
            assert emulator.port in _driver_fault(graph).message
            assert get_state() == "inactive"
            assert graph.process.process.poll() is None  # still up, waiting to be activated
            emulator.replug()
            writes = {i: len(s.writes) for i, s in emulator.servos.items()}
            graph.probe.spin_for(0.5)
            assert {i: len(s.writes) for i, s in emulator.servos.items()} == writes  # nothing sent until activated
            lift.set("Present_Position", lift.get("Present_Position") - 80)  # moved by hand while it was out
            graph.joint_targets.clear()
            assert activate(), graph.process.output
            graph.probe.spin_until(lambda: len(graph.joint_targets) >= 15, 10, "targets after activation")
            measured = JointModel(REAL_CALIBRATION).radians_to_ticks(
                np.array(graph.joint_targets[0].position))[1]
            # It holds where the arm was measured; the chunk's remaining 2 s are not played.
            assert abs(measured - lift.get("Present_Position")) <= 1.0
            assert {tuple(t.position) for t in graph.joint_targets} == {tuple(graph.joint_targets[0].position)}
            assert all(s.torque_enabled for s in emulator.servos.values())
            errors = [line for line in graph.process.output.splitlines() if "[ERROR]" in line]
            assert len(errors) == 1 and "ros2 lifecycle set /so101_driver activate" in errors[0], errors
            assert "Traceback" not in graph.process.output
        finally:
            assert graph.close() == 0, graph.process.output


def test_a_servo_browning_out_is_held_through_a_moment_and_given_up_after_the_silence_limit(tmp_path):
    with calibrated_emulator() as emulator:
        graph = real_arm_driver(tmp_path, emulator)
        get_state, _ = _lifecycle(graph)
        elbow = emulator.servos[REAL_CALIBRATION["elbow_flex"].id]
        try:
            graph.wait_for_joint_states(count=10)
            elbow.muted = True
            seen = len(graph.joint_states)
            graph.probe.spin_for(0.2)
            elbow.muted = False
            graph.wait_for_joint_states(count=seen + 10)
            assert get_state() == "active" and "the arm answers again after" in graph.process.output
            elbow.muted = True  # browned out for good
            graph.probe.spin_until(lambda: _driver_fault(graph) is not None, 10, "the fault's diagnostics ERROR")
            assert get_state() == "inactive"
            answering = [s for s in emulator.servos.values() if s is not elbow]
            assert not any(s.torque_enabled for s in answering)
            errors = [line for line in graph.process.output.splitlines() if "[ERROR]" in line]
            # The servo that cannot be turned off is named, then the fault and what to do, last.
            assert "did not answer for" in errors[-1] and "power supply" in errors[-1], errors
            assert "Traceback" not in graph.process.output
        finally:
            assert graph.close() == 0, graph.process.output
