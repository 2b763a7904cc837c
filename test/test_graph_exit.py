"""How graphs end: quiet stops at any moment of a node's start-up, and exit codes that tell failure from a stop."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from ros_harness import GraphProcesses, NodeProcess, isolated_ros_env, next_domain_id
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


def test_a_normal_evaluation_as_ros2_launch_runs_it_logs_no_error_and_no_warning(tmp_path):
    """Each node its own process, as under ros2 launch, the policy node's start-up (imports, checkpoint, first
    chunks) longer than the driver's lockstep timeout: a normal run must not teach users to ignore ERRORs."""
    from dataclasses import replace

    from so101_bringup.graph import GraphArgs, eval_nodes
    from tiny_policies import tiny_act_checkpoint

    checkpoint = tiny_act_checkpoint(tmp_path / "act", image_shape=(3, 64, 64), chunk_size=20)
    specs = eval_nodes(GraphArgs(policy="act", checkpoint=str(checkpoint), episodes=2, max_episode_s=2.0, seed="7",
                                 sim_width=64, sim_height=64, device="cpu", output_dir=str(tmp_path / "run"),
                                 record=True))
    # The policy node takes seconds to start here, minutes for a full-size model compiled on a CPU.
    specs = [replace(spec, overrides={**spec.overrides, "lockstep_timeout": 1.0}) if spec.name == "so101_driver"
             else spec for spec in specs]
    graph = GraphProcesses(specs, isolated_ros_env(next_domain_id()), tmp_path)
    try:
        assert graph.nodes["so101_eval_manager"].wait(timeout=300) == 0, graph.logs()
    finally:
        graph.stop()
    # The tiny checkpoint was not trained by lerobot, so it names no training data: a warning a user should read.
    noisy = [f"{name}: {line}" for name, log in graph.logs().items() for line in log.splitlines()
             if ("[ERROR]" in line or "[WARN]" in line or "Traceback" in line or "Failed to publish" in line)
             and "has no train_config.json naming its dataset" not in line]
    assert not noisy, "\n".join(noisy)
    assert json.loads((tmp_path / "run" / "results.json").read_text())["summary"]["episodes"] == 2


def test_a_ctrl_c_while_a_bag_is_open_closes_it_without_a_rosout_error(tmp_path):
    """rclpy's own handler shuts the context down at the signal; what the recorder says while it closes the bag
    used to come with "Failed to publish log message to rosout: publisher's context is invalid"."""
    from std_msgs.msg import String

    from ros_harness import RosProbe

    domain = next_domain_id()
    recorder = NodeProcess("recorder", ["--ros-args", "-r", "__node:=so101_recorder",
                                        "-p", f"output_dir:={tmp_path / 'bags'}"],
                           isolated_ros_env(domain), tmp_path / "recorder.log")
    probe = RosProbe(domain)
    try:
        markers = probe.node.create_publisher(String, "/so101/episode_marker", 10)
        probe.spin_until(lambda: markers.get_subscription_count() > 0, 60, "the recorder's subscription")
        markers.publish(String(data="start episode=0 seed=1"))
        probe.spin_until(lambda: (tmp_path / "bags" / "episode_000").exists(), 30, "the episode's bag")
        recorder.signal(signal.SIGINT)
        assert recorder.wait(timeout=30) == 0, recorder.output
    finally:
        probe.close()
        recorder.stop()
    assert "episode_000 (interrupted)" in recorder.output and "Failed to publish" not in recorder.output, \
        recorder.output


def test_so101_eval_stopped_by_ctrl_c_exits_0_with_the_episodes_that_finished(tmp_path):
    import sys

    from ros_harness import TerminalSession
    from tiny_policies import tiny_act_checkpoint

    checkpoint = tiny_act_checkpoint(tmp_path / "act", image_shape=(3, 64, 64), chunk_size=20)
    so101 = str(Path(sys.executable).parent / "so101")
    terminal = TerminalSession([so101, "eval", "--checkpoint", str(checkpoint), "--episodes", "50", "--max-episode-s",
                                "1", "--sim-width", "64", "--sim-height", "64", "--device", "cpu",
                                "--output-dir", str(tmp_path / "run")], isolated_ros_env(next_domain_id()))
    try:
        terminal.read_until("episode 1 started", timeout=180)
        exit_code = terminal.ctrl_c()
    finally:
        terminal.kill()
    assert exit_code == 0 and "Traceback" not in terminal.log, terminal.log
    assert "Success rate 0/" in terminal.log  # the table of the episodes that finished (a 1 s timeout each)
    assert json.loads((tmp_path / "run" / "results.json").read_text())["summary"]["episodes"] >= 1


def test_a_ctrl_c_after_a_command_finished_does_not_turn_its_exit_into_a_death_by_sigint(tmp_path):
    """A second Ctrl-C (a user's, or the one a launcher sends on) that comes late, on a busy machine, after the
    command's own work and its stop handling are over: it ended the process by SIGINT with a traceback (seen once
    as `so101 record` exiting -2 under load)."""
    import os
    import subprocess
    import sys

    from so101_bringup.evaluation import EpisodeResult, EvalRun, Outcome

    results = tmp_path / "eval"
    EvalRun("eval", {"policy": "act", "cameras": "wrist", "backend": "torch"},
            [EpisodeResult(index=0, outcome=Outcome.SUCCESS, duration_s=5.0, seed=1, chunks=3, latency_p50_ms=100.0,
                           latency_p95_ms=100.0, bag=None)]).save(results)
    # The console script's own entry, with a SIGINT as it heads for the interpreter's exit; and main() as a
    # library call, which must leave the process's SIGINT handler as it found it.
    script = ("import os, signal, sys\nfrom so101_bringup import cli\nexit_for_real = sys.exit\n"
              "sys.exit = lambda code: (os.kill(os.getpid(), signal.SIGINT), exit_for_real(code))\n"
              "handler = signal.getsignal(signal.SIGINT)\ncli.main(sys.argv[1:])\n"
              "assert signal.getsignal(signal.SIGINT) is handler, 'main() changed the SIGINT handler'\n"
              "cli.program()\n")
    run = subprocess.run([sys.executable, "-c", script, "eval", "compare", str(results)], capture_output=True,
                         text=True, timeout=120, env=dict(os.environ), cwd=tmp_path)
    assert run.returncode == 0 and "Traceback" not in run.stderr, (run.returncode, run.stdout, run.stderr)
    assert "| eval | act |" in run.stdout
