"""The suite's minutes of issue 24's soak, 75 s of each (benchmarks/bench_soak.py runs the hour): nodes as
separate processes, their memory, open files and threads sampled from /proc after a warm-up.

What a few minutes can catch: a leak per tick or per episode (a frame, a bag, a file, a thread), a
goal outside the limits or past the step clamp. Slow leaks need the hour."""

from __future__ import annotations

from soak import driver_on_a_noisy_bus, lockstep_evaluation_with_recording
from tiny_policies import tiny_act_checkpoint

SOAK_S = 75.0
WARM_UP_S = 20.0
# A 64x64 frame a tick held on to would add about 40 MB over the run; a file or a thread per episode, dozens.
RSS_GROWTH_MB = 5.0
SPARE_FDS = 3  # a bag that happens to be open at one sample and not at another
SPARE_THREADS = 2


def assert_no_leak(resources: dict) -> None:
    for node, figures in resources.items():
        assert figures["rss_mb_end"] - figures["rss_mb_start"] < RSS_GROWTH_MB, (node, figures)
        assert figures["fds_end"] <= figures["fds_start"] + SPARE_FDS, (node, figures)
        assert figures["threads_end"] <= figures["threads_start"] + SPARE_THREADS, (node, figures)


def test_the_driver_on_a_bus_that_spoils_one_reply_in_a_hundred_leaks_nothing_and_keeps_every_goal_safe(tmp_path):
    report = driver_on_a_noisy_bus(SOAK_S, tmp_path, corrupt_replies=0.01, warm_up_s=WARM_UP_S)
    assert report.exit_codes == {"so101_driver": 0}, report.logs
    counters = report.counters
    assert counters["replies_corrupted"] > 0 and counters["goals_checked"] > 1000, counters
    assert report.violations == [], report.violations[:10]
    # The sweep runs past the limits and jumps: both clamps were exercised, never bypassed.
    assert int(counters["limit_clamps"]) > 0 and int(counters["step_clamps"]) > 0, counters
    assert int(counters["faults"]) == 0, report.logs
    assert_no_leak(report.resources)


def test_lockstep_evaluation_with_recording_leaks_nothing_in_any_node(tmp_path):
    checkpoint = tiny_act_checkpoint(tmp_path / "act", image_shape=(3, 64, 64), chunk_size=20)
    report = lockstep_evaluation_with_recording(SOAK_S, tmp_path, checkpoint, warm_up_s=WARM_UP_S)
    assert set(report.exit_codes.values()) == {0}, (report.exit_codes, report.logs)
    assert report.counters["episodes_recorded"] >= 2, report.logs
    assert set(report.resources) >= {"so101_driver", "so101_policy", "so101_eval_manager", "so101_recorder"}
    assert_no_leak(report.resources)
