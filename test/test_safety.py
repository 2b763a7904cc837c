"""The safety path: validation, limit and step clamps, and the watchdog."""

import math

import numpy as np
import pytest

from so101_driver.joint_model import JOINT_NAMES, JointModel
from so101_driver.safety import CommandRejected, SafetyFilter, Watchdog

NAMES = list(JOINT_NAMES)


@pytest.fixture
def safety():
    lower, upper = JointModel.for_sim().limits
    return SafetyFilter(lower, upper, max_step=[0.1, 0.1, 0.1, 0.1, 0.2, 0.3])


def test_positions_are_reordered_to_joint_names(safety):
    shuffled = NAMES[::-1]
    values = np.arange(6.0) / 10
    np.testing.assert_allclose(safety.check_positions(shuffled, values), values[::-1])


@pytest.mark.parametrize(
    "names, positions, message",
    [
        (NAMES[:5], [0.0] * 5, "missing joints \\['gripper'\\]"),
        (NAMES[:5] + ["elbow"], [0.0] * 6, "unknown joints \\['elbow'\\]"),
        (NAMES + ["gripper"], [0.0] * 7, "repeated joints"),
        (NAMES, [0.0] * 5, "6 joint names but 5 positions"),
        (NAMES, [0.0] * 5 + [math.nan], "non-finite"),
        (NAMES, [0.0] * 5 + [math.inf], "non-finite"),
    ],
)
def test_bad_position_commands_are_rejected(safety, names, positions, message):
    with pytest.raises(CommandRejected, match=message):
        safety.check_positions(names, positions)


def test_trajectory_becomes_absolute_and_ordered(safety):
    points = [[float(i)] * 5 + [float(-i)] for i in range(3)]
    trajectory = safety.check_trajectory(NAMES[::-1], 100.0, [0.0, 0.1, 0.2], points)
    np.testing.assert_allclose(trajectory.times, [100.0, 100.1, 100.2])
    np.testing.assert_allclose(trajectory.positions[2], [-2.0, 2, 2, 2, 2, 2])


@pytest.mark.parametrize(
    "times, points, message",
    [
        ([], [], "no points"),
        ([0.0, 0.1], [[0.0] * 6], "1 points but 2 times"),
        ([0.0, 0.1], [[0.0] * 6, [0.0] * 5], "point 1 has 5 positions"),
        ([0.0, 0.0], [[0.0] * 6, [0.0] * 6], "not strictly increasing"),
        ([0.1, 0.0], [[0.0] * 6, [0.0] * 6], "not strictly increasing"),
        ([-0.1, 0.0], [[0.0] * 6, [0.0] * 6], "negative"),
        ([0.0, 0.1], [[0.0] * 6, [0.0] * 5 + [math.nan]], "non-finite values \\(points \\[1\\]"),
    ],
)
def test_bad_trajectories_are_rejected(safety, times, points, message):
    with pytest.raises(CommandRejected, match=message):
        safety.check_trajectory(NAMES, 0.0, times, points)


def test_clamp_to_limits_then_per_joint_step(safety):
    previous = np.zeros(6)  # an arm that reaches every target: measured = the previous target
    far = np.array([10.0, -10.0, 0.05, 0.0, 1.0, 1.0])
    safe, report = safety.clamp(far, previous, previous)
    np.testing.assert_allclose(safe, [0.1, -0.1, 0.05, 0.0, 0.2, 0.3])
    assert report.limit_clamped.tolist() == [True, True, False, False, False, False]
    assert report.step_clamped.tolist() == [True, True, False, False, True, True]
    # Walking towards a far target never passes the joint limit.
    for _ in range(100):
        previous, _ = safety.clamp(far, previous, previous)
    np.testing.assert_allclose(previous[:2], [safety.upper[0], safety.lower[1]])


def test_a_blocked_joints_target_stays_a_step_from_where_it_is(safety):
    measured, target = np.zeros(6), np.zeros(6)
    for _ in range(50):  # the arm never moves; the goal must not run away from it
        target, _ = safety.clamp(np.full(6, 1.0), target, measured)
    np.testing.assert_allclose(target, [0.1, 0.1, 0.1, 0.1, 0.2, 0.3])


def test_a_reading_that_jumps_moves_the_goal_one_step_at_most(safety):
    previous = np.zeros(6)
    jumped = np.full(6, 1.0)  # one bad read, or an arm knocked far within a tick
    safe, _ = safety.clamp(jumped, previous, jumped)
    np.testing.assert_allclose(safe, safety.max_step)


def test_a_joint_outside_its_limits_is_neither_pulled_in_nor_pushed_out(safety):
    measured = np.zeros(6)
    measured[4] = safety.upper[4] + 0.2  # wrist_roll resting past the model's limit
    held, report = safety.clamp(measured, measured, measured)
    np.testing.assert_array_equal(held, measured)  # no command: no motion
    assert not report.any
    further, _ = safety.clamp(measured + 0.05, measured, measured)
    assert further[4] == measured[4]
    back, _ = safety.clamp(np.zeros(6), measured, measured)
    assert back[4] == pytest.approx(measured[4] - 0.2)  # towards the range, one step at a time


def test_in_range_small_steps_pass_untouched(safety):
    target = np.full(6, 0.05)
    safe, report = safety.clamp(target, np.zeros(6), np.zeros(6))
    np.testing.assert_array_equal(safe, target)
    assert not report.any


def test_invalid_safety_settings_are_refused():
    with pytest.raises(ValueError, match="max_relative_target"):
        SafetyFilter(np.zeros(6), np.ones(6), 0.0)
    with pytest.raises(ValueError, match="limits"):
        SafetyFilter(np.ones(6), np.ones(6), 0.1)
    with pytest.raises(ValueError, match="watchdog_timeout"):
        Watchdog(0.0)


def test_watchdog_trips_after_timeout_past_the_commanded_end():
    watchdog = Watchdog(0.5)
    assert not watchdog.expired(100.0)  # never fed: nothing to guard
    watchdog.feed(until=2.0)
    assert not watchdog.expired(2.5)
    assert watchdog.expired(2.51)
    watchdog.disarm()
    assert not watchdog.expired(10.0)
