"""The sim driver and policy_node as separate processes on the wall clock, with a probe reading both nodes'
diagnostics: the set-up the continuity benchmarks share (bench_policy's sync/async, bench_async's backends)."""

from __future__ import annotations

from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray

from ros_harness import NodeProcess, RosProbe, isolated_ros_env, next_domain_id

DRIVER = "so101_driver: control"
POLICY = "so101_policy: inference"


def ros_parameters(values: dict) -> list[str]:
    arguments = ["--ros-args"]
    for name, value in values.items():
        arguments += ["-p", f"{name}:={value}"]
    return arguments


class WallClockGraph:
    """The driver (sim backend, its watchdog at the longest it takes, for a slow first chunk) and the policy on
    sim time."""

    def __init__(self, checkpoint: Path, workdir: Path, label: str, policy: dict, driver: dict | None = None):
        domain = next_domain_id()
        env = isolated_ros_env(domain)
        self.driver = NodeProcess("driver_node", ros_parameters({"backend": "sim", "watchdog_timeout": 10.0,
                                                                 **(driver or {})}),
                                  env, workdir / f"driver_{label}.log")
        self.policy = NodeProcess("policy_node", ros_parameters({"checkpoint": checkpoint, "use_sim_time": "true",
                                                                 **policy}),
                                  env, workdir / f"policy_{label}.log")
        try:
            self.probe = RosProbe(domain)
        except BaseException:
            self.policy.stop()
            self.driver.stop()
            raise
        self.diagnostics: dict[str, dict] = {}
        self.probe.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 20)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            self.diagnostics[status.name] = {kv.key: kv.value for kv in status.values}

    def logs(self) -> str:
        return f"driver log:\n{self.driver.output}\npolicy log:\n{self.policy.output}"

    def running(self) -> bool:
        """True while both nodes run; a node that exited (a parameter refused, a checkpoint it cannot load)
        ends the benchmark at once with its log, not after a wait for chunks that cannot come."""
        for node in (self.driver, self.policy):
            if node.process.poll() is not None:
                name = Path(node.process.args[0]).name
                raise RuntimeError(f"{name} exited with {node.process.returncode} ({self.logs()})")
        return True

    def driver_counters(self) -> dict:
        if DRIVER not in self.diagnostics:
            raise RuntimeError(f"no /diagnostics from the driver yet ({self.logs()})")
        return dict(self.diagnostics[DRIVER])

    def policy_values(self) -> dict:
        return dict(self.diagnostics.get(POLICY, {}))

    def close(self) -> None:
        self.probe.close()
        self.policy.stop()
        self.driver.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def counted_between(start: dict, end: dict, keys) -> dict:
    return {key: int(end[key]) - int(start[key]) for key in keys}
