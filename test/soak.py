"""Hours without a leak: the two soaks of issue 24, at any length (the suite runs minutes, the benchmark an hour).

- `driver_on_a_noisy_bus`: driver_node (its own process) on the emulated Feetech bus at 30 Hz, a
  fraction of the servos' replies spoilt on the line, following chunks that sweep past the joint
  limits and jump further than a tick's step. Every Goal_Position the servos take is checked against
  the calibrated limits and the step clamp as it is written.
- `lockstep_evaluation_with_recording`: the eval graph as `ros2 launch` runs it (one process per node),
  episodes back to back with the recorder on. Bags of finished episodes are removed as it goes (the
  newest KEEP_BAGS stay): at 224x224 a 25 s episode's bag is 217 MB, and lockstep runs faster than
  the wall clock, so an hour would fill the disk (300 episodes, 65 GB, measured on a 2-core Xeon).

Both sample each node's memory (RSS), open files and threads from /proc while they run.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ros_harness import GraphProcesses, NodeProcess, RosProbe, isolated_ros_env, next_domain_id

SAMPLE_EVERY_S = 2.0
KEEP_BAGS = 3  # the one being written, and the two before it in case the recorder is still closing one


@dataclass(frozen=True)
class Sample:
    t: float  # s since the soak began
    rss_mb: float
    fds: int
    threads: int


def sample_process(pid: int, t: float) -> Sample:
    status = Path(f"/proc/{pid}/status").read_text()
    values = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return Sample(t, int(values["VmRSS"].split()[0]) / 1024, len(os.listdir(f"/proc/{pid}/fd")),
                  int(values["Threads"]))


@dataclass
class ResourceTrace:
    """One process's samples; growth is read after the warm-up (imports, first allocations, pools filling)."""

    samples: list[Sample] = field(default_factory=list)

    def after(self, warm_up_s: float) -> list[Sample]:
        return [s for s in self.samples if s.t >= warm_up_s] or self.samples[-1:]

    def summary(self, warm_up_s: float) -> dict:
        steady = self.after(warm_up_s)
        t = np.array([s.t for s in steady])
        rss = np.array([s.rss_mb for s in steady])
        slope = float(np.polyfit(t, rss, 1)[0] * 60) if len(steady) >= 3 and np.ptp(t) > 0 else 0.0
        # Medians of the first and the last few samples: an allocator's pools move between single samples.
        edge = max(1, min(3, len(steady) // 3))
        return {
            "rss_mb_start": round(float(np.median(rss[:edge])), 1),
            "rss_mb_end": round(float(np.median(rss[-edge:])), 1),
            "rss_mb_per_min": round(slope, 3),
            "fds_start": steady[0].fds, "fds_end": steady[-1].fds, "fds_max": max(s.fds for s in steady),
            "threads_start": steady[0].threads, "threads_end": steady[-1].threads,
            "threads_max": max(s.threads for s in steady),
        }


class ResourceSampler:
    def __init__(self, processes: dict[str, NodeProcess]):
        self.processes = processes
        self.traces = {name: ResourceTrace() for name in processes}
        self.start = time.monotonic()
        self._next = self.start

    def maybe_sample(self) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + SAMPLE_EVERY_S
        for name, process in self.processes.items():
            if process.process.poll() is None:
                self.traces[name].samples.append(sample_process(process.process.pid, now - self.start))

    def summary(self, warm_up_s: float) -> dict:
        return {name: trace.summary(warm_up_s) for name, trace in self.traces.items() if trace.samples}


class GoalAudit:
    """Every Goal_Position a servo takes while torque is on: within the servo's own Min/Max_Position_Limit
    registers (what lerobot-calibrate wrote, read from the servo: no project code in the way), within the joint
    model's limits (the driver's contract, which can be tighter), and at most one step (max_relative_target,
        in ticks by hand: 4096 a turn) from where the servo was: its goal before, or, when torque goes on, the
    position it rested at (a goal written under torque off moves nothing until then)."""

    def __init__(self, joint_model, servo_ids: list[int], max_relative_target: float):
        lower, upper = (joint_model.radians_to_ticks(limit) for limit in joint_model.limits)
        self.lower, self.upper = np.minimum(lower, upper), np.maximum(lower, upper)
        self.joint_of = {servo_id: index for index, servo_id in enumerate(servo_ids)}
        self.step_ticks = max_relative_target * 4096 / (2 * math.pi)
        self.last: dict[int, int] = {}
        self.goals = 0
        self.violations: list[str] = []

    def __call__(self, servo, goal: int) -> None:
        if not servo.torque_enabled:
            self.last[servo.id] = servo.present_position  # limp: torque on moves it from here
            return
        joint = self.joint_of[servo.id]
        self.goals += 1
        registers = servo.get("Min_Position_Limit"), servo.get("Max_Position_Limit")
        if not registers[0] <= goal <= registers[1]:
            self.violations.append(f"servo {servo.id}: goal {goal} outside its registers' limits {list(registers)}")
        if not self.lower[joint] - 1 <= goal <= self.upper[joint] + 1:
            self.violations.append(f"servo {servo.id}: goal {goal} outside [{self.lower[joint]:.0f}, "
                                   f"{self.upper[joint]:.0f}]")
        previous = self.last.get(servo.id)
        if previous is not None and abs(goal - previous) > self.step_ticks + 1:
            self.violations.append(f"servo {servo.id}: goal {goal} {abs(goal - previous)} ticks from {previous}")
        self.last[servo.id] = goal


@dataclass
class SoakReport:
    seconds: float
    traces: dict[str, ResourceTrace]
    resources: dict  # node: ResourceTrace.summary
    counters: dict  # what the run counts: goals checked, ticks, missed ticks, bus errors, episodes, ...
    violations: list[str]
    exit_codes: dict[str, int]
    logs: dict[str, str]

    def as_dict(self) -> dict:
        return {"seconds": self.seconds, "resources": self.resources, "counters": self.counters,
                "violations": self.violations[:20], "exit_codes": self.exit_codes}


def _driver_values(diagnostics: list) -> dict:
    statuses = [d.status[0] for d in diagnostics if d.status and d.status[0].name == "so101_driver: control"]
    return {kv.key: kv.value for kv in statuses[-1].values} if statuses else {}


def driver_on_a_noisy_bus(seconds: float, workdir: Path, corrupt_replies: float = 0.01,
                          warm_up_s: float = 20.0) -> SoakReport:
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import JointState
    from trajectory_msgs.msg import JointTrajectory

    from so101_driver.joint_model import JOINT_NAMES, JointModel, save_calibration
    from so101_driver.ros_messages import joint_trajectory_msg, time_to_sec
    from test_feetech_backend import calibrated_emulator
    from test_joint_model import REAL_CALIBRATION

    joint_model = JointModel(REAL_CALIBRATION)
    calibration = workdir / "lab_arm.json"
    save_calibration(REAL_CALIBRATION, calibration)
    max_step = 0.1
    lower, upper = joint_model.limits
    middle, half_range = (lower + upper) / 2, (upper - lower) / 2
    with calibrated_emulator() as emulator:
        audit = GoalAudit(joint_model, [REAL_CALIBRATION[name].id for name in JOINT_NAMES], max_step)
        for servo in emulator.servos.values():
            servo.record_writes = False
            servo.on_goal = audit
        domain = next_domain_id()
        driver = NodeProcess("driver_node", ["--ros-args", "-p", "backend:=feetech", "-p", f"port:={emulator.port}",
                                             "-p", f"calibration_file:={calibration}", "-p", "control_rate:=30.0",
                                             "-p", f"max_relative_target:={max_step}"],
                             isolated_ros_env(domain), workdir / "driver_node.log")
        probe = RosProbe(domain)
        latest, diagnostics = {}, []
        probe.node.create_subscription(JointState, "/joint_states", lambda m: latest.update(joint_state=m), 10)
        probe.node.create_subscription(DiagnosticArray, "/diagnostics", diagnostics.append, 10)
        chunks = probe.node.create_publisher(JointTrajectory, "/so101/action_chunk", 10)
        sampler = ResourceSampler({"so101_driver": driver})
        try:
            probe.spin_until(lambda: latest, 120, lambda: f"the driver's joint states (its log:\n{driver.output})")
            emulator.corrupt_replies = corrupt_replies  # from here on: configure's writes are not retried
            sampler.start = time.monotonic()  # start-up is not the soak
            period, chunk_index = 0.5, 0
            while (elapsed := time.monotonic() - sampler.start) < seconds:
                # A sweep that runs 10% past every limit, and every tenth chunk a jump of five steps.
                phase = 2 * math.pi * elapsed / 8.0
                goal = middle + 1.1 * half_range * np.sin(phase + np.arange(6))
                if chunk_index % 10 == 9:
                    goal = goal + 5 * max_step
                stamp = time_to_sec(latest["joint_state"].header.stamp)
                points = np.linspace(goal - 0.05, goal, 30)
                chunks.publish(joint_trajectory_msg(stamp, JOINT_NAMES, points, 1 / 30))
                chunk_index += 1
                deadline = time.monotonic() + period
                while time.monotonic() < deadline:
                    probe.executor.spin_once(timeout_sec=0.05)
                    sampler.maybe_sample()
            counters = {"chunks_sent": chunk_index, "goals_checked": audit.goals,
                        "replies_corrupted": emulator.corrupted, **_driver_values(diagnostics)}
        finally:
            probe.close()
            exit_code = driver.stop()
    return SoakReport(seconds, sampler.traces, sampler.summary(warm_up_s), counters, audit.violations,
                      {"so101_driver": exit_code}, {"so101_driver": driver.output})


def lockstep_evaluation_with_recording(seconds: float, workdir: Path, checkpoint: Path, image_size: int = 64,
                                       max_episode_s: float = 5.0, warm_up_s: float = 30.0) -> SoakReport:
    from so101_bringup.graph import GraphArgs, eval_nodes

    output = workdir / "eval"
    specs = eval_nodes(GraphArgs(policy="act", checkpoint=str(checkpoint), episodes=100_000,
                                 max_episode_s=max_episode_s, seed="7", sim_width=image_size,
                                 sim_height=image_size, device="cpu", output_dir=str(output), record=True))
    graph = GraphProcesses(specs, isolated_ros_env(next_domain_id()), workdir)
    sampler = ResourceSampler(graph.nodes)
    bags, recorded = output / "bags", set()
    first_bag = bags / "episode_000"
    try:
        # The clock starts at the first episode: start-up (imports, the checkpoint) is not the soak.
        while not first_bag.exists() and time.monotonic() - sampler.start < 300:
            if any(node.process.poll() is not None for node in graph.nodes.values()):
                break
            time.sleep(0.2)  # polling the condition, with the deadline above
        sampler.start = time.monotonic()
        while time.monotonic() - sampler.start < seconds:
            if any(node.process.poll() is not None for node in graph.nodes.values()):
                break  # a node ended: the exit codes say which
            sampler.maybe_sample()
            _remove_finished_bags(bags, recorded)
            time.sleep(0.2)  # a sampling period, not a wait for a condition
    finally:
        exit_codes = graph.stop()
    _remove_finished_bags(bags, recorded)
    counters = {"episodes_recorded": len(recorded)}
    return SoakReport(seconds, sampler.traces, sampler.summary(warm_up_s), counters, [], exit_codes, graph.logs())



def _remove_finished_bags(bags: Path, recorded: set[str]) -> None:
    """Counts every episode's bag into `recorded`, and removes all but the newest KEEP_BAGS."""
    episodes = sorted(bags.glob("episode_*"), key=lambda bag: int(bag.name.rpartition("_")[2]))
    recorded.update(bag.name for bag in episodes)
    for finished in episodes[:-KEEP_BAGS]:
        shutil.rmtree(finished, ignore_errors=True)
