"""Sim time and lockstep evaluation, through `so101 eval` as users run it.

The sim driver owns time (/clock, every message stamped with the tick's sim time), every node of
the graph runs on it, and a lockstep evaluation gives the same trajectory, outcome and episode
length on an idle machine and under a competing CPU-heavy load.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ros_harness import next_domain_id
from sim_eval import so101_eval
from so101_bringup import bag_format
from so101_bringup.graph import GraphArgs, eval_nodes, node_parameters, record_nodes, replay_nodes

PERIOD_NS = 1e9 / 30


def test_every_node_of_a_sim_graph_runs_on_sim_time_and_the_real_arm_on_the_wall_clock():
    sim = eval_nodes(GraphArgs(checkpoint="ckpt", record=True))
    assert all(node_parameters(spec).get("use_sim_time") is True for spec in sim)
    assert all(node_parameters(spec).get("use_sim_time") is True for spec in record_nodes(GraphArgs()))
    assert all(node_parameters(spec).get("use_sim_time") is True
               for spec in replay_nodes(GraphArgs(checkpoint="ckpt", bag="b", sim=False, calibration_id="a")))
    real = eval_nodes(GraphArgs(checkpoint="ckpt", sim=False, calibration_id="arm"))
    assert not any(node_parameters(spec).get("use_sim_time") for spec in real)


def test_sim_evaluation_is_lockstep_unless_realtime():
    def by_name(args):
        return {spec.name: node_parameters(spec) for spec in eval_nodes(args)}

    lockstep = by_name(GraphArgs(checkpoint="ckpt", record=True, latency_ticks=5))
    assert lockstep["so101_driver"]["lockstep"] is True
    assert lockstep["so101_driver"]["lockstep_participants"] == "so101_policy,so101_eval_manager,so101_recorder"
    assert lockstep["so101_policy"]["lockstep"] is True and lockstep["so101_policy"]["latency_ticks"] == 5
    assert lockstep["so101_eval_manager"]["lockstep"] is True and lockstep["so101_recorder"]["lockstep"] is True
    realtime = by_name(GraphArgs(checkpoint="ckpt", realtime=True))
    assert realtime["so101_driver"]["lockstep"] is False and not realtime["so101_policy"].get("lockstep")
    real_arm = by_name(GraphArgs(checkpoint="ckpt", sim=False, calibration_id="arm"))
    assert real_arm["so101_driver"].get("lockstep") in (None, False)


def _bag_messages(bag: Path) -> dict[str, list[tuple[int, object]]]:
    """topic -> [(log time ns, message)] in recorded order."""
    from rosbags.highlevel import AnyReader

    messages: dict[str, list] = {}
    with AnyReader([bag], default_typestore=bag_format.typestore()) as reader:
        for connection, timestamp, raw in reader.messages():
            messages.setdefault(connection.topic, []).append((timestamp, reader.deserialize(raw, connection.msgtype)))
    return messages


@pytest.fixture(scope="module")
def idle_and_loaded(tiny_eval, tmp_path_factory):
    """The same evaluation run idle, then with four busy processes competing for the two cores."""
    idle_dir, _, checkpoint = tiny_eval
    loaded_dir = tmp_path_factory.mktemp("lockstep") / "loaded"
    so101_eval(checkpoint, loaded_dir, hog=4)
    return {"idle": idle_dir, "loaded": loaded_dir}, _results(idle_dir), _results(loaded_dir)


def _results(output: Path) -> dict:
    return json.loads((output / "results.json").read_text())


def test_lockstep_outcome_and_trajectory_are_the_same_under_a_cpu_hog(idle_and_loaded):
    runs, idle, loaded = idle_and_loaded
    summary = [(e["seed"], e["outcome"], e["duration_s"], e["chunks"]) for e in idle["episodes"]]
    assert summary == [(e["seed"], e["outcome"], e["duration_s"], e["chunks"]) for e in loaded["episodes"]]
    for episode in ("episode_000", "episode_001"):
        a = _bag_messages(runs["idle"] / "bags" / episode)
        b = _bag_messages(runs["loaded"] / "bags" / episode)
        for topic in (bag_format.JOINT_STATES, bag_format.JOINT_TARGETS):
            first = np.array([m.position for _, m in a[topic]])
            second = np.array([m.position for _, m in b[topic]])
            assert first.shape == second.shape and len(first) >= 55, (episode, topic, first.shape, second.shape)
            np.testing.assert_array_equal(first, second, err_msg=f"{episode} {topic}")
        chunks = [np.array([p.positions for p in m.points]) for _, m in a[bag_format.ACTION_CHUNK]]
        assert len(chunks) >= 2
        for mine, theirs in zip(chunks, (np.array([p.positions for p in m.points])
                                         for _, m in b[bag_format.ACTION_CHUNK]), strict=True):
            np.testing.assert_array_equal(mine, theirs)


def test_a_sim_graph_stamps_everything_in_sim_time(idle_and_loaded):
    runs, idle, _ = idle_and_loaded
    assert all(e["duration_s"] == pytest.approx(2.0, abs=1 / 30) for e in idle["episodes"])
    messages = _bag_messages(runs["idle"] / "bags" / "episode_000")
    ticks = [bag_format.stamp_ns(m.header) for _, m in messages[bag_format.JOINT_STATES]]
    # Sim time: the n-th control tick is at n / 30 s from the driver's start, one tick apart,
    # nothing like the wall clock (which is past 1.7e9 s).
    indices = np.array(ticks) / PERIOD_NS
    np.testing.assert_allclose(indices, np.round(indices), atol=1e-6)
    assert np.all(np.diff(np.round(indices)) == 1) and ticks[-1] < 600e9
    for topic in (*bag_format.CAMERA_TOPICS.values(), bag_format.JOINT_TARGETS):
        assert [bag_format.stamp_ns(m.header) for _, m in messages[topic]] == ticks, topic
    # A chunk is stamped with the tick of the observation it came from.
    assert {bag_format.stamp_ns(m.header) for _, m in messages[bag_format.ACTION_CHUNK]} <= set(ticks)
    # The bag's own timestamps (the recorder's clock) are sim time too; the start marker goes out on
    # the tick of the reset, before the first observation of the new episode.
    log_times = [t for topic in messages.values() for t, _ in topic]
    assert min(log_times) >= ticks[0] - 1.5 * PERIOD_NS and max(log_times) <= ticks[-1] + 2 * PERIOD_NS


def test_on_the_wall_clock_the_driver_tick_is_not_held_up_by_a_slow_callback():
    """`so101 eval --realtime` composes its nodes in one executor: a callback that takes 0.2 s (a
    slow image conversion, a bag write) must not hold up the driver's 30 Hz tick."""
    import time

    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import JointState

    from so101_driver.driver_node import DriverNode

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=next_domain_id())
    driver = slow = None
    try:
        driver = DriverNode(context=context, parameter_overrides=[
            Parameter("camera_width", value=32), Parameter("camera_height", value=32)])
        slow = rclpy.create_node("slow_subscriber", context=context)
        callbacks = []

        def busy(msg):
            callbacks.append(msg)
            until = time.monotonic() + 0.2
            while time.monotonic() < until:  # holds the executor (and the GIL, in turns)
                pass

        slow.create_subscription(JointState, "joint_states", busy, 10)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(driver)
        executor.add_node(slow)
        while len(callbacks) < 3:
            executor.spin_once(timeout_sec=1.0)
        ticks_before, callbacks_before = driver.core.stats.ticks, len(callbacks)
        while len(callbacks) < callbacks_before + 6:
            executor.spin_once(timeout_sec=1.0)
        ticks = driver.core.stats.ticks - ticks_before
        # Six slow callbacks take at least 1.2 s, in which a 30 Hz tick runs about 36 times; a tick
        # queued behind them in the executor would have run about 6 times.
        assert ticks >= 3 * 6, f"{ticks} ticks during 6 slow callbacks"
    finally:
        for node in (slow, driver):
            if node is not None:
                if node is driver:
                    node.close()
                node.destroy_node()
        rclpy.try_shutdown(context=context)
