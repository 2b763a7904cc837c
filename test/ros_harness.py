"""Real rclpy nodes in separate processes, isolated per test, never left running, never waited on forever."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import rclpy
from rclpy.executors import SingleThreadedExecutor

VENV_BIN = Path(sys.executable).parent
_domains = itertools.count((os.getpid() * 7) % 80 + 20)


def isolated_ros_env(domain_id: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        ROS_DOMAIN_ID=str(domain_id),
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        ROS_LOCALHOST_ONLY="1",
        MUJOCO_GL=env.get("MUJOCO_GL", "egl"),
        PYTHONUNBUFFERED="1",
    )
    return env


class NodeProcess:
    """A console script of the project, run as a user would run it."""

    def __init__(self, executable: str, args: list[str], env: dict[str, str], log_path: Path):
        self.log_path = log_path
        self._log = open(log_path, "w")
        self.process = subprocess.Popen(
            [str(VENV_BIN / executable), *args], env=env, stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )

    @property
    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text()

    def signal(self, signum: int) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signum)

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout=timeout)

    def dump_stacks(self) -> None:
        """Every thread's Python stack into the log (run_node's SIGUSR1), before the process is killed.

        A process still importing has no handler yet: the signal ends it, and its exit status says so."""
        if self.process.poll() is not None:
            return
        size = self.log_path.stat().st_size
        os.kill(self.process.pid, signal.SIGUSR1)
        deadline = time.monotonic() + 5
        while self.log_path.stat().st_size == size and self.process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)

    def stop(self, timeout: float = 15.0) -> int:
        if self.process.poll() is None:
            self.signal(signal.SIGINT)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.dump_stacks()
                self.signal(signal.SIGKILL)
                self.process.wait(timeout=5)
        self._log.close()
        return self.process.returncode


class RosProbe:
    """An rclpy node in the test process, on the test's own domain and context."""

    def __init__(self, domain_id: int):
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node("test_probe", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def spin_until(self, predicate, timeout: float, what):
        """`what` names the condition; a callable is asked at the timeout (a node's log as it is then)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.05)
            result = predicate()
            if result:
                return result
        raise TimeoutError(f"Timed out after {timeout:.0f} s waiting for {what() if callable(what) else what}")

    def spin_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.05)

    def call(self, client, request, timeout: float = 10.0, resend_every: float | None = None):
        """`resend_every` (s), for a request that may be repeated: a service just discovered may drop the
        first reply, before its reply writer has matched this client (a DDS discovery race)."""
        self.spin_until(lambda: client.service_is_ready(), timeout, f"service {client.srv_name}")
        deadline = time.monotonic() + timeout
        while True:
            future = client.call_async(request)
            wait = timeout if resend_every is None else min(resend_every, deadline - time.monotonic())
            try:
                self.spin_until(future.done, max(wait, 0.05), f"a reply from {client.srv_name}")
                return future.result()
            except TimeoutError:
                if resend_every is None or time.monotonic() >= deadline:
                    raise

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


def next_domain_id() -> int:
    return next(_domains) % 100 + 1


class TerminalSession:
    """A `so101` command as typed in a terminal: its own process group, lines on stdin, output as it comes."""

    def __init__(self, command: list[str], env: dict[str, str]):
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)
        self.log = ""

    def read_until(self, text: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log:
            assert time.monotonic() < deadline and self.process.poll() is None, f"no '{text}' in:\n{self.log}"
            self.log += self.process.stdout.readline()

    def type_line(self, line: str = "") -> None:
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def ctrl_c(self, timeout: float = 30.0) -> int:
        """A terminal's Ctrl-C (SIGINT to the whole group), then the one `ros2 launch` sends on; the exit code."""
        os.killpg(self.process.pid, signal.SIGINT)
        self.process.send_signal(signal.SIGINT)
        output, _ = self.process.communicate(timeout=timeout)
        self.log += output
        return self.process.returncode

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class GraphProcesses:
    """A graph's nodes as `ros2 launch` starts them: one process each, named, with its config YAML's parameters
    then the graph's overrides (graph.node_parameters) in a params file. Nodes of other packages are left out."""

    def __init__(self, specs, env: dict[str, str], log_dir: Path):
        import yaml

        from so101_bringup.graph import node_parameters
        from so101_bringup.in_process import NODE_CLASSES

        self.nodes: dict[str, NodeProcess] = {}
        for spec in specs:
            if spec.executable not in NODE_CLASSES:
                continue
            params = log_dir / f"{spec.name}.params.yaml"
            params.write_text(yaml.safe_dump({spec.name: {"ros__parameters": node_parameters(spec)}}))
            self.nodes[spec.name] = NodeProcess(spec.executable, ["--ros-args", "-r", f"__node:={spec.name}",
                                                                  "--params-file", str(params)],
                                                env, log_dir / f"{spec.name}.log")

    def logs(self) -> dict[str, str]:
        return {name: node.output for name, node in self.nodes.items()}

    def stop(self) -> dict[str, int]:
        """SIGINT to every node at once, as launch shuts a graph down; then each one's exit status."""
        for node in self.nodes.values():
            node.signal(signal.SIGINT)
        return {name: node.stop() for name, node in self.nodes.items()}
