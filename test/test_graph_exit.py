"""How graphs end: quiet stops at any moment of a node's start-up, and exit codes that tell failure from a stop."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from ros_harness import NodeProcess, isolated_ros_env, next_domain_id
from so101_bringup.graph_exit import node_exit_failure


def wait_for_mapped_library(process: NodeProcess, library: str, timeout: float) -> bool:
    """True once the process has `library` mapped (it is importing it); False if it exits or time runs out."""
    maps = Path(f"/proc/{process.process.pid}/maps")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.process.poll() is None:
        try:
            if library in maps.read_text():
                return True
        except (FileNotFoundError, ProcessLookupError):
            return False
        time.sleep(0.005)
    return False


@pytest.mark.parametrize("executable", ["policy_node", "driver_node", "teleop_node"])
def test_a_node_stopped_while_it_imports_torch_exits_0_without_a_traceback(executable, tmp_path):
    """ros2 launch interrupts the other nodes of a graph that failed at start-up while they import torch;
    each used to print a KeyboardInterrupt traceback below the failing node's one line."""
    node = NodeProcess(executable, [], isolated_ros_env(next_domain_id()), tmp_path / "node.log")
    try:
        assert wait_for_mapped_library(node, "libtorch_cpu", timeout=120), node.output
        node.signal(signal.SIGINT)  # to the process group, as a terminal's Ctrl-C
        returncode = node.wait(timeout=60)
    finally:
        node.stop()
    assert "Traceback" not in node.output and "KeyboardInterrupt" not in node.output, node.output
    assert returncode == 0, node.output


def test_exits_that_fail_a_graph_are_told_apart_from_normal_ends():
    # The work done, or any exit once the graph is stopping (Ctrl-C, another node's failure).
    assert node_exit_failure("so101_eval_manager", 0, graph_stopping=False) is None
    assert all(node_exit_failure("so101_driver", code, graph_stopping=True) is None for code in (0, 1, -2, -9, None))
    # A node that fails while the graph runs: its exit status, or the signal that killed it, by name.
    assert node_exit_failure("so101_policy", 1, graph_stopping=False).startswith("so101_policy exited with code 1;")
    assert node_exit_failure("so101_driver", -9, graph_stopping=False).startswith("so101_driver killed by SIGKILL;")
    assert "killed by signal 77" in node_exit_failure("so101_driver", -77, graph_stopping=False)
    assert "without an exit status" in node_exit_failure("so101_recorder", None, graph_stopping=False)
