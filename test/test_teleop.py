"""Leader-arm teleoperation: the leader's joints reach the follower as lerobot's own teleop sends them."""

from __future__ import annotations

import numpy as np
from lerobot.motors import MotorCalibration

from ros_harness import NodeProcess, isolated_ros_env, next_domain_id
from so101_driver.joint_model import JOINT_NAMES, ArmUnits, save_calibration
from test_driver_node import STARTUP_TIMEOUT, real_arm_driver
from test_feetech_backend import calibrated_emulator
from test_joint_model import REAL_CALIBRATION, lerobot_bus

# A leader calibrated apart from the follower: other offsets and ranges, so nothing maps by accident.
LEADER_CALIBRATION = {
    "shoulder_pan": MotorCalibration(id=1, drive_mode=0, homing_offset=-900, range_min=700, range_max=3400),
    "shoulder_lift": MotorCalibration(id=2, drive_mode=0, homing_offset=420, range_min=900, range_max=3100),
    "elbow_flex": MotorCalibration(id=3, drive_mode=0, homing_offset=-1500, range_min=850, range_max=3150),
    "wrist_flex": MotorCalibration(id=4, drive_mode=0, homing_offset=1200, range_min=950, range_max=3250),
    "wrist_roll": MotorCalibration(id=5, drive_mode=0, homing_offset=-700, range_min=0, range_max=4095),
    "gripper": MotorCalibration(id=6, drive_mode=0, homing_offset=900, range_min=2000, range_max=3300),
}


def follower_goal_for(leader_ticks: dict[str, int]) -> dict[str, int]:
    """lerobot's teleop, by lerobot's own buses: the leader's ticks in degrees, sent to the follower as ticks."""
    leader = lerobot_bus(LEADER_CALIBRATION, ArmUnits.DEGREES)
    follower = lerobot_bus(REAL_CALIBRATION, ArmUnits.DEGREES)
    values = leader._normalize({LEADER_CALIBRATION[n].id: t for n, t in leader_ticks.items()})
    ticks = follower._unnormalize({REAL_CALIBRATION[n].id: values[LEADER_CALIBRATION[n].id] for n in leader_ticks})
    return {name: ticks[REAL_CALIBRATION[name].id] for name in leader_ticks}


def test_the_leader_arm_drives_the_follower_through_the_driver(tmp_path):
    leader_file = tmp_path / "leaders" / "my_leader.json"
    save_calibration(LEADER_CALIBRATION, leader_file)
    with calibrated_emulator() as follower, calibrated_emulator(calibration=LEADER_CALIBRATION) as leader:
        driver = real_arm_driver(tmp_path, follower)
        teleop = NodeProcess("teleop_node", ["--ros-args", "-p", f"port:={leader.port}",
                                             "-p", f"calibration_file:={leader_file}"],
                             isolated_ros_env(driver.domain), tmp_path / "teleop.log")
        try:
            driver.wait_for_joint_states()
            # The operator moves the leader by hand: its servos read new positions, each inside its range.
            moved = {"shoulder_pan": 2500, "shoulder_lift": 1700, "elbow_flex": 2600, "wrist_flex": 1500,
                     "wrist_roll": 3000, "gripper": 2900}
            for name, ticks in moved.items():
                leader.servos[LEADER_CALIBRATION[name].id].set("Present_Position", ticks)
            expected = follower_goal_for(moved)

            def follower_goal() -> dict[str, int]:
                return {n: follower.servos[REAL_CALIBRATION[n].id].get("Goal_Position") for n in JOINT_NAMES}

            def arrived() -> bool:
                assert teleop.process.poll() is None, teleop.output
                return all(abs(follower_goal()[n] - expected[n]) <= 2 for n in JOINT_NAMES)

            # The driver's step clamp walks the goal there a step a tick.
            try:
                driver.probe.spin_until(arrived, STARTUP_TIMEOUT, "the follower's goal to reach the leader's pose")
            except TimeoutError as error:
                raise AssertionError(f"{error}: {follower_goal()} against {expected}\n{teleop.output}") from None
            assert not any(servo.torque_enabled for servo in leader.servos.values())  # moved by hand
        finally:
            assert teleop.stop() == 0, teleop.output
            driver.close()
        assert "Traceback" not in teleop.output


def test_so101_record_teleop_makes_a_dataset_in_the_leaders_degrees(tmp_path):
    """The leader drives the sim through `so101 record --teleop`; the bag becomes a LeRobotDataset whose
    actions are the leader's pose in degrees, as lerobot's own record loop would store it."""
    import subprocess
    import sys
    from pathlib import Path

    from lerobot.datasets import LeRobotDataset
    from sensor_msgs.msg import JointState

    from ros_harness import RosProbe, TerminalSession, next_domain_id

    so101 = str(Path(sys.executable).parent / "so101")
    calibration_root = tmp_path / "calibration"
    save_calibration(LEADER_CALIBRATION, calibration_root / "teleoperators" / "so_leader" / "my_leader.json")
    # A pose inside the sim's limits, in degrees (gripper 0..100), as the leader's own calibration reads it.
    pose = {"shoulder_pan": 20.0, "shoulder_lift": -30.0, "elbow_flex": 25.0, "wrist_flex": 40.0, "wrist_roll": -15.0,
            "gripper": 35.0}
    leader_bus = lerobot_bus(LEADER_CALIBRATION, ArmUnits.DEGREES)
    ticks = leader_bus._unnormalize({LEADER_CALIBRATION[n].id: v for n, v in pose.items()})
    read_back = leader_bus._normalize(ticks)  # what the leader reports for those whole ticks
    expected = np.array([read_back[LEADER_CALIBRATION[n].id] for n in JOINT_NAMES])
    domain = next_domain_id()
    env = dict(isolated_ros_env(domain), MUJOCO_GL="egl", PYTHONUNBUFFERED="1",
               HF_LEROBOT_CALIBRATION=str(calibration_root))
    with calibrated_emulator(calibration=LEADER_CALIBRATION) as leader:
        for servo_id, tick in ticks.items():
            leader.servos[servo_id].set("Present_Position", tick)
        terminal = TerminalSession([so101, "record", "--teleop", "--leader-port", leader.port,
                                    "--leader-calibration-id", "my_leader", "--sim-width", "64", "--sim-height", "64",
                                    "--output-dir", str(tmp_path / "record")], env)
        probe = RosProbe(domain)
        states: list = []
        probe.node.create_subscription(JointState, "/joint_states", states.append, 50)
        try:
            terminal.read_until("leader arm on", timeout=90)  # teleop_node is streaming
            terminal.read_until("recording")
            probe.spin_until(lambda: states, 60, "/joint_states")
            terminal.type_line()
            terminal.read_until("start episode=0")
            seen = len(states)
            probe.spin_until(lambda: len(states) >= seen + 45, 60, "1.5 s of teleoperation")
            terminal.type_line("s")
            terminal.read_until("(success)")
            exit_code = terminal.ctrl_c()
        finally:
            probe.close()
            terminal.kill()
    assert exit_code == 0 and "Traceback" not in terminal.log, terminal.log
    bag = tmp_path / "record" / "bags" / "episode_000"
    convert = subprocess.run([so101, "dataset", "from-bags", str(bag), "--root", str(tmp_path / "dataset"),
                              "--repo-id", "local/teleop", "--images"], capture_output=True, text=True, timeout=300)
    assert convert.returncode == 0, convert.stdout + convert.stderr
    dataset = LeRobotDataset("local/teleop", root=tmp_path / "dataset")
    last = dataset[len(dataset) - 1]
    np.testing.assert_allclose(last["action"].numpy(), expected, atol=0.05)  # degrees; gripper 0..100
    np.testing.assert_allclose(last["observation.state"].numpy()[:5], expected[:5], atol=1.0)  # the arm got there


def test_a_leader_without_calibration_is_told_the_leaders_calibration_command(tmp_path):
    teleop = NodeProcess("teleop_node", ["--ros-args", "-p", "port:=/dev/null",
                                         "-p", f"calibration_file:={tmp_path / 'no_leader.json'}"],
                         isolated_ros_env(next_domain_id()), tmp_path / "teleop.log")
    try:
        assert teleop.wait(timeout=STARTUP_TIMEOUT) == 1, teleop.output
    finally:
        teleop.stop()
    last_line = teleop.output.strip().splitlines()[-1]
    assert "lerobot-calibrate --teleop.type=so101_leader" in last_line and "so101_follower" not in last_line, \
        teleop.output
    assert "Traceback" not in teleop.output
