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
        self.torque = True

    def read_positions(self):
        if self.failing:
            raise BackendError("servo 3 did not answer")
        return self.positions.copy()

    def write_targets(self, targets):
        self.writes.append(targets.copy())
        if not self.blocked:
            self.positions = targets.copy()

    def disconnect(self):
        self.torque = False


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


def test_watchdog_holds_where_the_arm_is_when_commands_stop():
    arm, core = make_driver(watchdog_timeout=0.5, max_relative_target=1.0)
    arm.positions[:] = 0.2
    arm.blocked = True
    core.submit_position(NAMES, [0.4] * 6, now=0.0)
    core.tick(0.0)
    assert not core.tick(0.4).events
    result = core.tick(0.6)
    assert result.events == ["watchdog", "starved"]
    np.testing.assert_allclose(result.target, 0.2)
    assert core.stats.watchdog_trips == 1
    assert core.tick(2.0).events == ["starved"]  # tripped once; holding, and waiting for commands


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


def test_stop_turns_torque_off():
    arm, core = make_driver()
    core.stop()
    assert not arm.torque


def test_config_errors_name_the_choices():
    with pytest.raises(ValueError, match="replace"):
        DriverConfig(merge_mode="blend")
