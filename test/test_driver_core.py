"""The driver loop without ROS, on an in-memory arm that reaches each target in one tick."""

import numpy as np
import pytest

from so101_driver.backends import BackendError
from so101_driver.driver_core import DriverConfig, DriverCore
from so101_driver.joint_model import JOINT_NAMES, JointModel

NAMES = list(JOINT_NAMES)
DT = 1.0 / 30.0


class InstantArm:
    """Reaches every target at once; can be told to stop answering."""

    def __init__(self, start=None):
        self.positions = np.zeros(6) if start is None else np.array(start, dtype=float)
        self.writes = []
        self.failing = False
        self.blocked = False  # an obstacle: targets are taken but the joints do not move
        self.torque = False

    def connect(self):
        self.connected = True

    def enable(self):
        self.torque = True

    def disable(self):
        self.torque = False

    def read_positions(self):
        if self.failing:
            raise BackendError("servo 3 did not answer")
        return self.positions.copy()

    def write_targets(self, targets):
        self.writes.append(targets.copy())
        if not self.blocked:
            self.positions = targets.copy()

    def disconnect(self):
        self.torque = self.connected = False


def make_driver(**config):
    arm = InstantArm()
    core = DriverCore(arm, JointModel.for_sim(), DriverConfig(**config))
    core.start()
    return arm, core


def ramp_points(n, step):
    return [[k * step] * 6 for k in range(n)]


def test_start_holds_where_the_arm_is():
    arm, core = make_driver()
    result = core.tick(0.0)
    np.testing.assert_array_equal(result.target, np.zeros(6))
    assert arm.torque and not result.following_chunk


def test_a_chunk_is_followed_point_by_point():
    arm, core = make_driver()
    assert core.submit_chunk(NAMES, 1.0, np.arange(10) * DT, ramp_points(10, 0.01), now=1.0)
    targets = [core.tick(1.0 + k * DT).target[0] for k in range(10)]
    np.testing.assert_allclose(targets, np.arange(10) * 0.01)
    assert core.stats.chunks_accepted == 1


def test_a_cancel_drops_the_chunk_and_holds_the_last_target_without_starving():
    arm, core = make_driver()
    core.submit_chunk(NAMES, 1.0, np.arange(10) * DT, ramp_points(10, 0.01), now=1.0)
    for k in range(4):
        core.tick(1.0 + k * DT)
    core.cancel()
    results = [core.tick(1.0 + k * DT) for k in range(4, 10)]
    np.testing.assert_allclose([r.target[0] for r in results], [0.03] * 6)  # not 0.04 .. 0.09
    assert not any(r.following_chunk or r.events for r in results)  # a pause: no starvation, no watchdog
    assert core.stats.cancels == 1


def test_latency_skips_stale_points():
    arm, core = make_driver()
    core.submit_chunk(NAMES, 1.0, np.arange(10) * DT, ramp_points(10, 0.01), now=1.0 + 3 * DT)
    assert core.stats.points_skipped == 4
    assert core.tick(1.0 + 3 * DT).target[0] == pytest.approx(0.03)


def test_rejected_commands_never_move_the_arm():
    arm, core = make_driver()
    core.tick(0.0)
    bad = ramp_points(3, 0.01)
    bad[1][2] = float("nan")
    assert not core.submit_chunk(NAMES, 0.0, [0.0, DT, 2 * DT], bad, now=0.0)
    assert not core.submit_position(NAMES[:5], [0.3] * 5, now=0.0)
    assert not core.submit_chunk(NAMES, 0.0, [0.0, DT], ramp_points(2, 0.1), now=5.0)  # all stale
    for k in range(5):
        np.testing.assert_array_equal(core.tick(k * DT).target, np.zeros(6))
    assert core.stats.commands_rejected == 3
    assert "due before it arrived" in core.stats.last_rejection


def test_large_jumps_are_limited_per_tick_and_by_joint_limits():
    arm, core = make_driver(max_relative_target=0.05)
    core.submit_position(NAMES, [10.0, 0, 0, 0, 0, 0], now=0.0)
    first = core.tick(0.0).target
    assert first[0] == pytest.approx(0.05)
    for k in range(1, 100):
        last = core.tick(k * DT).target
    assert last[0] == pytest.approx(core.safety.upper[0])
    assert core.stats.limit_clamps > 0 and core.stats.step_clamps > 0


def test_watchdog_holds_the_last_target_when_commands_stop():
    arm, core = make_driver(watchdog_timeout=0.5)
    core.submit_chunk(NAMES, 0.0, [0.0, DT], ramp_points(2, 0.05), now=0.0)
    core.tick(0.0)
    core.tick(DT)
    events = [core.tick(k * DT).events for k in range(2, 30)]
    assert ["watchdog", "starved"] in events and core.stats.watchdog_trips == 1
    np.testing.assert_allclose(arm.writes[-1], 0.05)  # where the chunk ended, not pulled anywhere
    assert core.tick(2.0).events == ["starved"]  # tripped once; holding, and waiting for commands


def test_a_grasp_is_held_until_the_next_command():
    """A gripper closed on a cube cannot reach its commanded position; it must keep squeezing."""
    arm, core = make_driver(watchdog_timeout=0.5, max_relative_target=0.1)
    arm.positions[5] = 0.3
    core.new_episode(arm.positions)
    arm.blocked = True  # the jaws are on the cube
    core.submit_position(NAMES, [0, 0, 0, 0, 0, -0.1], now=0.0)
    targets = [core.tick(k * DT).target[5] for k in range(60)]  # 2 s, four watchdog timeouts
    assert targets == [pytest.approx(0.2)] * 60  # a step into the cube, never let go, never further
    assert core.stats.following_error_trips == 0


def test_an_arm_pushed_off_its_target_is_held_where_it_is():
    arm, core = make_driver(following_error_limit=0.35)
    core.submit_chunk(NAMES, 0.0, [0.0, 10.0], [[0.0] * 6, [0.0] * 6], now=0.0)
    core.tick(0.0)
    arm.blocked = True
    arm.positions[1] = 0.5  # a hand (or a collision) moves the shoulder away
    result = core.tick(DT)
    assert "following_error" in result.events and core.stats.following_error_trips == 1
    assert "shoulder_lift 0.50 rad" in core.stats.last_following_error
    assert not result.following_chunk
    # Stops fighting: the goal walks to where the arm is, a step a tick (a jumped reading cannot yank it).
    targets = [result.target[1]] + [core.tick(k * DT).target[1] for k in range(2, 7)]
    np.testing.assert_allclose(targets, [0.1, 0.2, 0.3, 0.4, 0.5, 0.5])
    assert core.stats.following_error_trips == 1  # reported once


def test_a_joint_resting_outside_its_limits_does_not_move_at_start_up():
    lower, upper = JointModel.for_sim().limits
    start = np.zeros(6)
    start[4] = upper[4] + 0.3
    arm = InstantArm(start)
    core = DriverCore(arm, JointModel.for_sim(), DriverConfig(watchdog_timeout=0.5))
    core.start()
    for k in range(30):
        np.testing.assert_array_equal(core.tick(k * DT).target, start)
    core.submit_position(NAMES, [0.0] * 6, now=1.0)
    assert core.tick(1.0).target[4] == pytest.approx(start[4] - 0.1)  # commanded back, one step at a time


def test_ticks_without_a_chunk_are_starved_until_the_next_episode():
    arm, core = make_driver(watchdog_timeout=0.5)
    assert not core.tick(0.0).events  # no command yet this episode: waiting is not starving
    core.submit_chunk(NAMES, DT, [0.0, DT], ramp_points(2, 0.01), now=DT)
    events = [core.tick(k * DT).events for k in range(1, 31)]
    assert core.stats.starved_ticks == sum("starved" in e for e in events) == 28
    assert any("watchdog" in e for e in events)
    assert core.stats.longest_starvation == 28
    core.submit_chunk(NAMES, 31 * DT, [0.0, DT], ramp_points(2, 0.01), now=31 * DT)
    core.tick(31 * DT)
    core.new_episode(arm.positions)
    assert not core.tick(33 * DT).events
    assert core.stats.longest_starvation == 28


def test_read_errors_are_reported_and_nothing_is_sent():
    arm, core = make_driver()
    core.tick(0.0)
    arm.failing = True
    writes = len(arm.writes)
    result = core.tick(DT)
    assert result.positions is None and result.target is None and result.events == ["bus_error"]
    assert len(arm.writes) == writes
    assert core.stats.bus_errors == 1 and "servo 3" in core.stats.last_bus_error
    arm.failing = False
    assert core.tick(2 * DT).target is not None


def test_a_servo_silent_for_a_moment_is_held_through_then_followed_again():
    arm, core = make_driver()  # arm_silence_limit 1.0 s
    core.submit_chunk(NAMES, 0.0, np.arange(30) * DT, ramp_points(30, 0.01), now=0.0)
    core.tick(0.0)
    arm.failing = True
    writes = len(arm.writes)
    results = [core.tick(k * DT) for k in range(1, 7)]  # 0.2 s without an answer
    assert [r.events for r in results] == [["bus_error"]] * 6 and len(arm.writes) == writes
    arm.failing = False
    result = core.tick(7 * DT)
    assert core.fault is None and result.following_chunk
    np.testing.assert_allclose(result.target, 0.07)  # the chunk goes on where the clock says it is
    assert core.stats.faults == 0 and core.stats.bus_errors == 6


def test_an_arm_silent_past_its_limit_is_given_up_until_activated_again():
    arm, core = make_driver(arm_silence_limit=1.0)
    core.submit_chunk(NAMES, 0.0, np.arange(90) * DT, ramp_points(90, 0.005), now=0.0)
    core.tick(0.0)
    arm.failing = True
    events = [core.tick(k * DT).events for k in range(1, 61)]  # 2 s
    # Reported once, a second after the last answer (t = 0): tick 30 or, rounded, 31.
    assert events.count(["fault"]) == 1 and events.index(["fault"]) in (29, 30)
    assert "did not answer for 1.0 s" in core.fault and core.stats.faults == 1
    writes = len(arm.writes)
    arm.failing = False  # it answers again: the driver still sends nothing until activated
    assert core.tick(61 * DT).target is None and len(arm.writes) == writes
    reads = []
    arm.read_positions = lambda: reads.append(1) or arm.positions.copy()
    core.deactivate()
    assert not arm.torque and not reads  # torque off, without asking the arm for a last hold
    arm.positions[:] = 0.25  # moved while torque was off
    core.activate()
    assert core.fault is None
    for k in range(62, 70):  # the old chunk is forgotten: it holds where the arm was measured
        np.testing.assert_allclose(core.tick(k * DT).target, 0.25)


def test_lifecycle_connect_leaves_torque_off_activate_holds_deactivate_holds_then_releases():
    arm = InstantArm(np.full(6, 0.2))
    core = DriverCore(arm, JointModel.for_sim(), DriverConfig())
    core.connect()
    assert arm.connected and not arm.torque
    arm.positions[:] = 0.3  # moved by hand while torque was off
    core.activate()
    assert arm.torque
    np.testing.assert_allclose(core.tick(0.0).target, 0.3)  # starts from the measured position
    core.submit_position(NAMES, [0.35] * 6, now=DT)
    core.tick(DT)
    core.deactivate()
    assert not arm.torque and arm.connected
    np.testing.assert_allclose(arm.writes[-1], 0.35)  # a last hold where the arm is, then torque off
    core.stop()
    assert not arm.connected


def test_the_last_hold_before_torque_off_is_a_step_from_the_last_goal_whatever_the_reading_says():
    """A reading spoilt on the line (the soak's corrupted replies) came back 0.2 rad from where the arm was; the
    hold before torque off wrote it unclamped, a jump of two steps."""
    arm, core = make_driver(max_relative_target=0.1)
    core.submit_position(NAMES, [0.05] * 6, now=0.0)
    core.tick(0.0)
    arm.positions[:] = 0.25  # what the next read says
    core.deactivate()
    np.testing.assert_allclose(arm.writes[-1], 0.15)  # the last goal, 0.05, plus one step
    assert not arm.torque


def test_activation_holds_a_reading_the_next_one_confirms():
    """The pose held at activation was one reading: one spoilt on the line became the hold, and the first tick
    wrote it (a jump). It is held once two readings in a row agree; readings that never do leave torque off."""
    arm = InstantArm(start=[0.3] * 6)
    spoilt = [arm.positions + [0, 0.4, 0, 0, 0, 0]]
    arm.read_positions = lambda: spoilt.pop() if spoilt else arm.positions.copy()
    core = DriverCore(arm, JointModel.for_sim(), DriverConfig())
    core.connect()
    np.testing.assert_allclose(core.activate(), 0.3)
    assert not spoilt  # it was read
    np.testing.assert_allclose(core.tick(0.0).target, 0.3)
    core.deactivate()
    flicker = iter([np.full(6, 0.3 + 0.4 * (k % 2)) for k in range(8)])
    arm.read_positions = lambda: next(flicker)
    with pytest.raises(BackendError, match="readings of the joint positions in a row disagreed"):
        core.activate()
    assert not arm.torque


def test_a_failed_activation_leaves_torque_off():
    arm = InstantArm()
    core = DriverCore(arm, JointModel.for_sim(), DriverConfig())
    core.connect()
    arm.failing = True  # torque goes on, then the first read fails
    with pytest.raises(BackendError):
        core.activate()
    assert not arm.torque


def test_stop_turns_torque_off():
    arm, core = make_driver()
    core.stop()
    assert not arm.torque


def test_config_errors_name_the_choices():
    with pytest.raises(ValueError, match="replace"):
        DriverConfig(merge_mode="blend")
    with pytest.raises(ValueError, match="following_error_limit takes one positive value or six"):
        DriverConfig(following_error_limit=[0.3, 0.3])
