"""Lockstep without ROS: the driver's barrier, a participant's tick inputs, the latency charged in ticks."""

from concurrent.futures import Future

import pytest

from so101_driver.lockstep import LockstepBarrier, TickInputs, parse_participants
from so101_policy.lockstep_inference import MEASURED, LockstepInference, check_latency_ticks
from so101_policy.observation import Observation

TICK = 33_333_333  # ns


def test_the_first_tick_waits_until_every_participant_has_announced_itself():
    barrier = LockstepBarrier(("policy", "manager"))
    assert barrier.pending() == ["policy", "manager"]
    barrier.on_ready("policy", 0, 0)
    barrier.on_ready("someone_else", 0, 0)  # not waited for, not in the way
    assert not barrier.may_advance()
    barrier.on_ready("manager", 0, 0)
    assert barrier.may_advance()


def test_silence_counts_only_once_every_participant_has_started():
    """A policy node that takes minutes to start (a full-size model compiled on a CPU) is waited for."""
    barrier = LockstepBarrier(("policy", "manager"), timeout=5.0)
    barrier.begin(wall_now=0.0)
    barrier.on_ready("manager", 0, 0)
    assert barrier.leave_behind_silent(600.0) == [] and barrier.pending() == ["policy"] and not barrier.started
    barrier.on_ready("policy", 0, 0)
    assert barrier.may_advance()
    barrier.tick_published(TICK, wall_now=600.0)
    assert barrier.started and barrier.leave_behind_silent(606.0) == ["policy", "manager"]


def test_a_tick_waits_for_every_consumer_and_for_the_chunks_they_announced():
    barrier = LockstepBarrier(("policy", "manager"))
    barrier.on_ready("policy", 0, 0)
    barrier.on_ready("manager", 0, 0)
    barrier.tick_published(TICK, wall_now=0.0)
    barrier.on_ready("manager", TICK, 0)
    assert barrier.pending() == ["policy"]
    barrier.on_ready("policy", TICK, chunk_ns=TICK)  # published a chunk stamped with this tick...
    assert barrier.pending() == ["policy"]  # ...which the driver has not received yet
    barrier.on_chunk(TICK)
    assert barrier.may_advance()
    barrier.tick_published(2 * TICK, wall_now=0.1)
    assert barrier.pending() == ["policy", "manager"]


def test_a_silent_participant_is_left_behind_after_the_timeout_until_it_answers_again():
    barrier = LockstepBarrier(("policy", "manager"), timeout=5.0)
    barrier.on_ready("policy", 0, 0)
    barrier.on_ready("manager", 0, 0)
    barrier.tick_published(TICK, wall_now=100.0)
    barrier.on_ready("manager", TICK, 0)
    assert barrier.leave_behind_silent(104.0) == []
    assert barrier.leave_behind_silent(105.5) == ["policy"]
    assert barrier.may_advance()
    barrier.tick_published(2 * TICK, wall_now=105.5)
    barrier.on_ready("manager", 2 * TICK, 0)
    assert barrier.may_advance()  # still left behind
    barrier.on_ready("policy", TICK, 0)  # it speaks again: waited for from the next tick on
    assert barrier.pending() == ["policy"]


def test_participants_and_timeouts_are_checked():
    assert parse_participants(" so101_policy, so101_eval_manager ,") == ("so101_policy", "so101_eval_manager")
    with pytest.raises(ValueError, match="twice"):
        parse_participants("a,a")
    with pytest.raises(ValueError, match="at least one participant"):
        LockstepBarrier(())
    with pytest.raises(ValueError, match="positive"):
        LockstepBarrier(("a",), timeout=0)


def test_a_tick_is_complete_when_every_input_carries_its_stamp_and_repeats_are_recognised():
    inputs = TickInputs.of(["joint_states", "wrist", "overhead"])
    assert inputs.update("wrist", TICK) is None
    assert inputs.update("joint_states", TICK) is None
    assert inputs.update("overhead", TICK) == TICK
    assert inputs.update("overhead", TICK) is None and inputs.is_repeat(TICK)  # published again
    assert inputs.update("joint_states", 2 * TICK) is None and not inputs.is_repeat(2 * TICK)
    # A frame lost on the way: the tick completes when the driver publishes it again.
    assert inputs.update("wrist", 2 * TICK) is None
    assert inputs.update("joint_states", 2 * TICK) is None
    assert inputs.update("overhead", 2 * TICK) == 2 * TICK
    with pytest.raises(KeyError):
        inputs.update("gripper_camera", TICK)


def _done(chunk="chunk", latency=0.0) -> Future:
    future = Future()
    future.set_result((chunk, latency))
    return future


OBSERVATION = Observation(stamp=1.0, values={})


@pytest.mark.parametrize("latency_ticks", [1, 3])
def test_a_chunk_is_due_before_the_driver_takes_the_tick_its_latency_reaches(latency_ticks):
    # Started on tick j, charged L ticks: the driver must have it before tick j + L, so it goes out
    # while tick j + L - 1 is consumed.
    inference = LockstepInference(latency_ticks, tick_period=1 / 30)
    inference.consume_tick(TICK)  # tick j
    inference.start(lambda observation: _done(), OBSERVATION, episode=0)
    for tick in range(2, latency_ticks + 1):
        assert inference.take_due() is None
        inference.consume_tick(tick * TICK)
    due = inference.take_due()
    assert due is not None and due.charged_ticks == latency_ticks
    assert inference.charged_seconds(due) == pytest.approx(latency_ticks / 30, rel=1e-6)
    assert inference.in_flight is None


def test_measured_latency_is_charged_in_whole_ticks():
    inference = LockstepInference(MEASURED, tick_period=1 / 30)
    inference.consume_tick(TICK)
    inference.start(lambda observation: _done(latency=0.2), OBSERVATION, episode=0)  # 6 ticks of 1/30 s
    assert inference.in_flight.charged_ticks == 6
    inference.start(lambda observation: _done(latency=0.001), OBSERVATION, episode=0)
    assert inference.in_flight.charged_ticks == 1  # never less than one: it acts from the next tick on


def test_latency_ticks_are_checked():
    assert check_latency_ticks(MEASURED) == MEASURED
    with pytest.raises(ValueError, match="at least 1"):
        check_latency_ticks(0)
