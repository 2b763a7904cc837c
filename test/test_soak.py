"""The suite's three minutes of issue 24's soak (benchmarks/bench_soak.py runs the hour): both soaks side by
side, each node a separate process, their memory, open files and threads sampled from /proc after a warm-up.

Side by side, the two soaks also load the machine for each other: the driver's 30 Hz loop and the emulated
bus share the two cores with a whole evaluation graph.

What three minutes can catch: a leak per tick or per episode (a frame, a bag, a file, a thread), a goal
outside the limits or past the step clamp. Slow leaks need the hour."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from soak import driver_on_a_noisy_bus, lockstep_evaluation_with_recording
from tiny_policies import tiny_act_checkpoint

SOAK_S = 180.0
WARM_UP_S = 20.0
# A 64x64 frame a tick held on to would add about 90 MB over the run; a file or a thread per episode, dozens.
RSS_GROWTH_MB = 5.0
SPARE_FDS = 3  # a bag that happens to be open at one sample and not at another
SPARE_THREADS = 2


@pytest.fixture(scope="module")
def soaks_side_by_side(tmp_path_factory):
    """The evaluation soak in a thread of its own (it only starts processes and reads /proc), the driver's here."""
    root = tmp_path_factory.mktemp("soak")
    checkpoint = tiny_act_checkpoint(root / "act", image_shape=(3, 64, 64), chunk_size=20)
    (root / "eval").mkdir()
    (root / "driver").mkdir()
    with ThreadPoolExecutor(max_workers=1) as pool:
        evaluation = pool.submit(lockstep_evaluation_with_recording, SOAK_S, root / "eval", checkpoint,
                                 warm_up_s=WARM_UP_S)
        driver = driver_on_a_noisy_bus(SOAK_S, root / "driver", corrupt_replies=0.01, warm_up_s=WARM_UP_S)
        return {"driver": driver, "evaluation": evaluation.result()}


def assert_no_leak(resources: dict) -> None:
    for node, figures in resources.items():
        assert figures["rss_mb_end"] - figures["rss_mb_start"] < RSS_GROWTH_MB, (node, figures)
        assert figures["fds_end"] <= figures["fds_start"] + SPARE_FDS, (node, figures)
        assert figures["threads_end"] <= figures["threads_start"] + SPARE_THREADS, (node, figures)


def test_the_driver_on_a_bus_that_spoils_one_reply_in_a_hundred_leaks_nothing_and_keeps_every_goal_safe(
        soaks_side_by_side):
    report = soaks_side_by_side["driver"]
    assert report.exit_codes == {"so101_driver": 0}, report.logs
    counters = report.counters
    assert counters["replies_corrupted"] > 0 and counters["goals_checked"] > 1000, counters
    assert report.violations == [], report.violations[:10]
    # The sweep runs past the limits and jumps: both clamps were exercised, never bypassed.
    assert int(counters["limit_clamps"]) > 0 and int(counters["step_clamps"]) > 0, counters
    assert int(counters["faults"]) == 0, report.logs
    assert_no_leak(report.resources)


def test_lockstep_evaluation_with_recording_leaks_nothing_in_any_node(soaks_side_by_side):
    report = soaks_side_by_side["evaluation"]
    assert set(report.exit_codes.values()) == {0}, (report.exit_codes, report.logs)
    assert report.counters["episodes_recorded"] >= 5, report.logs
    assert set(report.resources) >= {"so101_driver", "so101_policy", "so101_eval_manager", "so101_recorder"}
    assert_no_leak(report.resources)


def test_the_goal_audit_flags_a_goal_past_the_registers_the_limits_or_a_step():
    """The soak's zero violations mean something only if the audit can see one: hand-made goals on one servo."""
    import math

    from feetech_emulator import REGISTERS, EmulatedServo
    from soak import GoalAudit
    from so101_driver.joint_model import JOINT_NAMES, JointModel
    from test_joint_model import REAL_CALIBRATION

    joint_model = JointModel(REAL_CALIBRATION)
    servo_ids = [REAL_CALIBRATION[name].id for name in JOINT_NAMES]
    lower, upper = sorted(joint_model.radians_to_ticks(limit)[0] for limit in joint_model.limits)
    middle = int((lower + upper) / 2)

    def violations(goals, registers=(1000, 3000), torque=1):
        audit = GoalAudit(joint_model, servo_ids, max_relative_target=0.1)  # 65.2 ticks a step
        servo = EmulatedServo(servo_ids[0])
        servo.set("Min_Position_Limit", registers[0])
        servo.set("Max_Position_Limit", registers[1])
        servo.set("Torque_Enable", torque)
        for goal in goals:
            audit(servo, goal)
        assert math.isclose(audit.step_ticks, 0.1 * 4096 / (2 * math.pi))
        return audit.goals, audit.violations

    assert lower < 1000 < middle < 3000 < upper, (lower, upper)  # the registers are the tighter here
    assert violations([middle, middle + 65]) == (2, [])
    goals, found = violations([middle, middle + 65, middle + 135])
    assert goals == 3 and len(found) == 1 and "70 ticks from" in found[0], found
    goals, found = violations([3001])
    assert len(found) == 1 and "outside its registers' limits [1000, 3000]" in found[0], found
    goals, found = violations([int(upper) + 50], registers=(0, 4095))  # the joint model's limits are the tighter
    assert len(found) == 1 and f"outside [{lower:.0f}, {upper:.0f}]" in found[0], found
    assert violations([0, 4095], torque=0) == (0, [])  # torque off: no goal of the driver's
    # A goal written under torque off moves the servo when torque goes on (the emulator tells the audit then).
    audit = GoalAudit(joint_model, servo_ids, max_relative_target=0.1)
    servo = EmulatedServo(servo_ids[0], position=middle)
    servo.set("Max_Position_Limit", 4095)
    servo.on_goal = audit
    address, length = REGISTERS["Goal_Position"]
    servo.write(address, (middle + 300).to_bytes(length, "little"))
    assert audit.goals == 0
    servo.write(REGISTERS["Torque_Enable"][0], bytes([1]))
    assert audit.goals == 1 and audit.violations == [f"servo {servo.id}: goal {middle + 300} 300 ticks from {middle}"]


def test_the_soak_counts_every_bag_and_keeps_only_the_newest(tmp_path):
    """An hour of 224x224 bags would fill the disk; the count must still be of every episode, in episode order."""
    from soak import KEEP_BAGS, _remove_finished_bags

    names = [f"episode_{index:03d}" for index in (997, 998, 999, 1000)]
    for name in names:
        (tmp_path / name).mkdir()
        (tmp_path / name / "bag.mcap").write_bytes(b"x")
    recorded = set()
    _remove_finished_bags(tmp_path, recorded)
    assert recorded == set(names)
    assert {p.name for p in tmp_path.iterdir()} == set(names[-KEEP_BAGS:]) == set(names[1:])
    _remove_finished_bags(tmp_path, recorded)  # nothing new: nothing more removed, nothing counted twice
    assert len(recorded) == 4 and len(list(tmp_path.iterdir())) == KEEP_BAGS
