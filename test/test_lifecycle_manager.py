"""The lifecycle manager brings the driver up as the launch files run it: separate processes, the emulated arm."""

from __future__ import annotations

import pytest
from lifecycle_msgs.msg import State

from ros_harness import NodeProcess, isolated_ros_env
from so101_bringup.lifecycle_manager import LifecycleError, Next, next_transition, parse_node_names
from test_driver_node import Graph, real_arm_driver
from test_feetech_backend import calibrated_emulator

STARTUP = 60.0


def manager(tmp_path, graph: Graph, **params) -> NodeProcess:
    args = ["--ros-args", *[a for key, value in params.items() for a in ("-p", f"{key}:={value}")]]
    return NodeProcess("lifecycle_manager", args, isolated_ros_env(graph.domain), tmp_path / "manager.log")


def test_the_way_to_active_from_each_state():
    assert next_transition("d", State.PRIMARY_STATE_UNCONFIGURED, "unconfigured") == (1, "configure")
    assert next_transition("d", State.PRIMARY_STATE_INACTIVE, "inactive") == (3, "activate")
    assert next_transition("d", State.PRIMARY_STATE_ACTIVE, "active") is Next.ACTIVE
    assert next_transition("d", State.TRANSITION_STATE_CONFIGURING, "configuring") is Next.WAIT
    with pytest.raises(LifecycleError, match="d is finalized: it cannot be brought to active"):
        next_transition("d", State.PRIMARY_STATE_FINALIZED, "finalized")
    assert parse_node_names(" so101_driver, arm2 ") == ["so101_driver", "arm2"]
    with pytest.raises(LifecycleError, match="node_names is empty"):
        parse_node_names(" , ")


def test_the_manager_configures_and_activates_a_driver_that_waits_for_it(tmp_path):
    with calibrated_emulator() as emulator:
        graph = real_arm_driver(tmp_path, emulator, autostart="false")
        graph.probe.spin_for(0.5)
        assert not graph.joint_states and not any(s.torque_enabled for s in emulator.servos.values())
        lifecycle = manager(tmp_path, graph)
        try:
            graph.wait_for_joint_states()
            assert all(s.torque_enabled for s in emulator.servos.values())
            graph.probe.spin_until(lambda: "so101_driver is active" in lifecycle.output, 10, lifecycle.output)
            assert lifecycle.process.poll() is None  # it stays up: under launch its end would end the graph
        finally:
            # Both, whatever happened: a driver left running would answer a later test's manager.
            codes = lifecycle.stop(), graph.close()
        assert codes == (0, 0), lifecycle.output + graph.process.output
        assert not any(s.torque_enabled for s in emulator.servos.values())


def test_a_configure_that_fails_ends_the_manager_in_one_line_naming_the_node(tmp_path):
    graph = Graph(tmp_path, "driver_node", {"backend": "feetech", "port": str(tmp_path / "no_such_port"),
                                            "calibration_file": str(tmp_path / "none.json"), "autostart": "false"})
    lifecycle = manager(tmp_path, graph)
    try:
        assert lifecycle.wait(timeout=STARTUP) == 1, lifecycle.output
        assert "[so101_lifecycle_manager] configure of so101_driver failed (its log says why)" in lifecycle.output
        assert "Traceback" not in lifecycle.output
        assert "configure failed" in graph.process.output  # the driver's own line says what is wrong
    finally:
        lifecycle.stop()
        closed = graph.close()
    assert closed == 0, graph.process.output


def test_a_node_that_never_appears_ends_the_manager_in_one_line(tmp_path):
    graph = Graph(tmp_path, "driver_node", {"backend": "sim"})  # some other graph on this domain
    lifecycle = manager(tmp_path, graph, node_names="so101_driver_left", transition_timeout=1.0)
    try:
        assert lifecycle.wait(timeout=STARTUP) == 1, lifecycle.output
        assert "so101_driver_left offered no lifecycle services within 1 s" in lifecycle.output
        assert "Traceback" not in lifecycle.output
    finally:
        lifecycle.stop()
        graph.close()


def test_so101_drives_the_same_transitions_and_a_failing_configure_is_one_line(tmp_path):
    """`so101` builds the graph in one process: it configures and activates the driver itself, where launch
    has the lifecycle manager do it; a driver that cannot configure stops the command before the next node."""
    import subprocess
    import sys
    from pathlib import Path

    from ros_harness import next_domain_id

    so101 = str(Path(sys.executable).parent / "so101")
    result = subprocess.run([so101, "record", "--real", "--calibration-id", "nobody_arm", "--port",
                             str(tmp_path / "no_port"), "--output-dir", str(tmp_path / "out")],
                            env=isolated_ros_env(next_domain_id()), capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert "so101 record: [so101_driver] No LeRobot calibration file at" in result.stderr
    assert "Traceback" not in result.stderr and "so101_wrist_camera" not in result.stderr
