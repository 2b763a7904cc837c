"""The feetech backend against emulated STS3215 servos: lerobot's real bus code on a pty."""

import numpy as np
import pytest

from feetech_emulator import FeetechEmulator
from so101_driver.backends import BackendError
from so101_driver.backends.base import HANDSHAKE_ATTEMPTS
from so101_driver.backends.feetech import FeetechBackend
from so101_driver.driver_core import DriverConfig, DriverCore
from so101_driver.joint_model import JOINT_NAMES, JointModel, save_calibration
from test_joint_model import REAL_CALIBRATION


@pytest.fixture(autouse=True)
def patient_replies(monkeypatch):
    """The emulator answers from a thread of this process, which the test's own thread, busy-waiting in scservo's
    read loop, can keep from running past scservo's 34 ms reply timeout on a busy machine (seen: all three
    handshakes failing beside a training run). A slower adapter's timeout, for this process only."""
    import scservo_sdk.port_handler as port_handler

    monkeypatch.setattr(port_handler, "LATENCY_TIMER", 100)


@pytest.fixture
def calibration_file(tmp_path):
    path = tmp_path / "calibration" / "lab_arm.json"
    save_calibration(REAL_CALIBRATION, path)
    return path


def mid_ticks(calibration=REAL_CALIBRATION):
    return {cal.id: (cal.range_min + cal.range_max) // 2 for cal in calibration.values()}


def calibrated_emulator(reply_delay: float = 0.0, calibration=REAL_CALIBRATION):
    """An arm whose motors hold `calibration` (offsets and limits), resting at the middle of each range."""
    emulator = FeetechEmulator(mid_ticks(calibration), reply_delay=reply_delay)
    for name, cal in calibration.items():
        servo = emulator.servos[cal.id]
        servo.set("Min_Position_Limit", cal.range_min)
        servo.set("Max_Position_Limit", cal.range_max)
        servo.set("Homing_Offset", abs(cal.homing_offset) | (0x800 if cal.homing_offset < 0 else 0))
    return emulator


def test_radians_reach_goal_position_as_calibrated_ticks(calibration_file):
    with calibrated_emulator() as emulator:
        backend = FeetechBackend(emulator.port, calibration_file)
        backend.connect()
        try:
            assert not any(servo.torque_enabled for servo in emulator.servos.values())  # until enabled
            backend.enable()
            assert all(servo.torque_enabled for servo in emulator.servos.values())
            start = backend.read_positions()
            np.testing.assert_allclose(start[:5], 0.0, atol=2 * np.pi / 4095)
            model = JointModel(REAL_CALIBRATION)
            target = np.array([0.3, -0.4, 0.5, -0.2, 1.0, model.to_radians([0, 0, 0, 0, 0, 40.0])[5]])
            backend.write_targets(target)
            # SYNC_WRITE has no reply; a read behind it on the same line proves it was taken.
            reached = backend.read_positions()
            expected = model.radians_to_ticks(target)
            for name, ticks in zip(JOINT_NAMES, expected):
                goal = emulator.servos[REAL_CALIBRATION[name].id].goal_position
                assert abs(goal - ticks) <= 1.0, (name, goal, ticks)
            np.testing.assert_allclose(reached, target, atol=2 * 2 * np.pi / 4095)
        finally:
            backend.disconnect()
        assert not any(servo.torque_enabled for servo in emulator.servos.values())
        backend.disconnect()  # twice is fine


def test_mismatched_motor_calibration_stops_with_instructions(calibration_file):
    with FeetechEmulator(mid_ticks()) as emulator:  # motors hold the factory range 0..4095
        backend = FeetechBackend(emulator.port, calibration_file)
        with pytest.raises(BackendError, match="lerobot-calibrate"):
            backend.connect()
        assert not backend.robot.bus.is_connected


CALIBRATION_REGISTERS = {"Homing_Offset", "Min_Position_Limit", "Max_Position_Limit"}


def test_write_calibration_writes_the_file_to_the_motors_with_torque_off(calibration_file):
    with FeetechEmulator(mid_ticks()) as emulator:
        backend = FeetechBackend(emulator.port, calibration_file, write_calibration=True)
        backend.connect()
        torque_after_connect = [servo.torque_enabled for servo in emulator.servos.values()]
        backend.disconnect()
        assert not any(torque_after_connect)
        for name, cal in REAL_CALIBRATION.items():
            servo = emulator.servos[cal.id]
            assert servo.get("Min_Position_Limit") == cal.range_min
            assert servo.get("Max_Position_Limit") == cal.range_max
            calibration_writes = [w for w in servo.writes if w.register in CALIBRATION_REGISTERS]
            assert len(calibration_writes) == 3, (name, servo.writes)
            # As lerobot-calibrate writes them: torque off and the EEPROM lock open.
            assert not any(w.torque_on or w.locked for w in calibration_writes), (name, servo.writes)
            # Torque comes back with the goal where the joint now reads, not at a stale goal.
            after = servo.writes[servo.writes.index(calibration_writes[-1]):]
            goal = next(w for w in after if w.register == "Goal_Position")
            assert goal.value == servo.get("Present_Position") and not goal.torque_on, (name, servo.writes)


def test_any_calibration_file_name_works(tmp_path):
    path = tmp_path / "lab arm (2026).calibration"
    save_calibration(REAL_CALIBRATION, path)
    with calibrated_emulator() as emulator:
        backend = FeetechBackend(emulator.port, path)
        backend.connect()
        try:
            np.testing.assert_allclose(backend.read_positions()[:5], 0.0, atol=2 * np.pi / 4095)
        finally:
            backend.disconnect()


@pytest.mark.parametrize("content, expected", [(None, "No LeRobot calibration file"), ("{}", "lacks motors"),
                                               ("not json", "not a LeRobot calibration JSON")])
def test_a_missing_or_broken_calibration_file_is_one_clear_error(tmp_path, content, expected):
    path = tmp_path / "my_arm.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(BackendError, match=expected) as error:
        FeetechBackend("/dev/ttyACM0", path)
    assert str(path) in str(error.value)


def test_missing_port_is_a_clear_error(calibration_file, tmp_path):
    backend = FeetechBackend(str(tmp_path / "ttyACM9"), calibration_file)
    with pytest.raises(BackendError, match="Could not connect"):
        backend.connect()


def test_a_silent_servo_gives_a_bus_error_and_a_hold(calibration_file):
    with calibrated_emulator() as emulator:
        backend = FeetechBackend(emulator.port, calibration_file, read_retries=1)
        core = DriverCore(backend, backend.joint_model, DriverConfig())
        core.start()
        try:
            core.tick(0.0)
            backend.read_positions()  # the tick's SYNC_WRITE has been taken
            emulator.servos[3].muted = True
            goals_before = {i: s.goal_position for i, s in emulator.servos.items()}
            writes_before = {i: len(s.writes) for i, s in emulator.servos.items()}
            result = core.tick(1 / 30)
            assert result.events == ["bus_error"] and result.target is None
            assert core.stats.bus_errors == 1
            assert {i: s.goal_position for i, s in emulator.servos.items()} == goals_before
            assert {i: len(s.writes) for i, s in emulator.servos.items()} == writes_before
            emulator.servos[3].muted = False
            assert core.tick(2 / 30).target is not None
        finally:
            core.stop()


def test_torque_goes_off_on_every_answering_servo_even_if_one_is_silent(calibration_file):
    with calibrated_emulator() as emulator:
        backend = FeetechBackend(emulator.port, calibration_file)
        backend.connect()
        backend.enable()
        emulator.servos[2].muted = True
        backend.disconnect()
        assert [s.torque_enabled for i, s in sorted(emulator.servos.items())] == [
            False, True, False, False, False, False
        ]


def test_torque_goes_off_after_a_transfer_cut_short(calibration_file):
    """A read interrupted mid-transfer leaves scservo's port marked busy; disconnect must still reach every servo."""
    with calibrated_emulator() as emulator:
        backend = FeetechBackend(emulator.port, calibration_file)
        backend.connect()
        backend.enable()
        backend.robot.bus.port_handler.is_using = True  # what an exception inside txRxPacket leaves behind
        backend.disconnect()
        assert not any(servo.torque_enabled for servo in emulator.servos.values())


def test_a_ctrl_c_inside_lerobots_configure_leaves_torque_off(calibration_file):
    """lerobot's configure() ends by turning torque on; a signal landing there must not leave it on."""
    with calibrated_emulator() as emulator:
        backend = FeetechBackend(emulator.port, calibration_file)
        configure = backend.robot.configure

        def configure_then_ctrl_c():
            configure()
            assert all(servo.torque_enabled for servo in emulator.servos.values())  # what lerobot leaves
            raise KeyboardInterrupt

        backend.robot.configure = configure_then_ctrl_c
        with pytest.raises(KeyboardInterrupt):
            backend.connect()
        assert not any(servo.torque_enabled for servo in emulator.servos.values())
        assert not backend.robot.bus.is_connected


def test_a_ping_reply_lost_at_connect_is_asked_again_and_a_missing_motor_still_stops_it(calibration_file):
    """lerobot pings each motor once at connect: a reply lost on the line failed the whole connect."""
    with calibrated_emulator() as emulator:
        emulator.servos[1].misses_pings = HANDSHAKE_ATTEMPTS - 1
        backend = FeetechBackend(emulator.port, calibration_file)
        backend.connect()
        try:
            assert emulator.servos[1].misses_pings == 0 and backend.read_positions().shape == (6,)
        finally:
            backend.disconnect()
        # The firmware check's reply lost (or late, on a busy machine): lerobot says "Could not connect on port".
        emulator.servos[4].misses_reads = {"Firmware_Major_Version": 1}
        backend = FeetechBackend(emulator.port, calibration_file)
        backend.connect()
        backend.disconnect()
        assert emulator.servos[4].misses_reads == {"Firmware_Major_Version": 0}
        emulator.servos[3].muted = True  # gone for good: every attempt misses it
        with pytest.raises(BackendError, match=r"Missing motor IDs:\s+- 3"):
            FeetechBackend(emulator.port, calibration_file).connect()


def test_an_unplugged_port_gives_the_arm_up_and_only_activation_brings_it_back_holding_where_it_is(calibration_file):
    """The USB cable pulled mid-chunk, then put back: lerobot's bus meets a vanished tty (termios and pyserial
    errors, then "Port is in use"); before, the first of them escaped the tick and killed the driver."""
    with calibrated_emulator() as emulator:
        backend = FeetechBackend(emulator.port, calibration_file, read_retries=1)
        core = DriverCore(backend, backend.joint_model, DriverConfig())
        core.start()
        try:
            start = core.tick(0.0).positions
            points = [start + [0.0, 0.003 * k, 0.0, 0.0, 0.0, 0.0] for k in range(30)]
            core.submit_chunk(JOINT_NAMES, 0.0, np.arange(30) / 30, points, now=0.0)
            core.tick(1 / 30)
            emulator.unplug()
            assert core.tick(2 / 30).events == ["fault"]
            assert emulator.port in core.fault and "plug the arm's USB cable back in" in core.fault
            assert [core.tick(k / 30).events for k in range(3, 6)] == [[], [], []]  # nothing tried, nothing sent
            core.deactivate()  # torque off where it can: nowhere; no error escapes
            with pytest.raises(BackendError, match="Could not connect"):
                core.activate()  # the cable is still out
            emulator.replug()
            writes = {i: len(s.writes) for i, s in emulator.servos.items()}
            core.tick(6 / 30)
            assert {i: len(s.writes) for i, s in emulator.servos.items()} == writes  # not before activation
            lift = emulator.servos[REAL_CALIBRATION["shoulder_lift"].id]
            lift.set("Present_Position", lift.get("Present_Position") - 60)  # pushed while it was out
            measured = core.activate()
            assert all(s.torque_enabled for s in emulator.servos.values()) and core.fault is None
            # The servos kept their power and their torque: lerobot's configure(), which turns torque off to
            # write its settings, is not run again; the arm would drop.
            assert not any(w.register == "Torque_Enable" and w.value == 0
                           for i, s in emulator.servos.items() for w in s.writes[writes[i]:])
            for k in range(7, 12):  # the chunk's later points are forgotten: it holds the measured pose
                np.testing.assert_allclose(core.tick(k / 30).target, measured)
            assert lift.goal_position == lift.get("Present_Position")
        finally:
            core.stop()
        assert not any(s.torque_enabled for s in emulator.servos.values())


def test_a_reading_spoilt_on_the_line_at_activation_never_becomes_the_goal(calibration_file):
    """Torque goes on holding Present_Position as the goal; one reply 300 ticks off whose checksum passed would have
    jumped the arm there. Readings that never agree leave torque off, with what to check."""
    with calibrated_emulator() as emulator:
        backend = FeetechBackend(emulator.port, calibration_file)
        backend.connect()
        try:
            shoulder = emulator.servos[2]
            resting = shoulder.get("Present_Position")
            shoulder.spoils_reads = {"Present_Position": [resting + 300]}
            backend.enable()
            assert shoulder.spoils_reads == {"Present_Position": []}  # the spoilt reading was read
            assert shoulder.goal_position == resting and shoulder.torque_enabled
            assert all(not (w.register == "Goal_Position" and w.value == resting + 300) for w in shoulder.writes)
            backend.disable()
            shoulder.spoils_reads = {"Present_Position": [resting + 300 * (k % 2) for k in range(8)]}
            with pytest.raises(BackendError, match=rf"readings of Present_Position in a row disagreed.*\b{resting}\b.*"
                                                   rf"\b{resting + 300}\b.*cable and power"):
                backend.enable()
            assert not any(servo.torque_enabled for servo in emulator.servos.values())
            assert shoulder.goal_position == resting
            # Servos still holding (torque kept through an unplug, the reconnect skips configure): torque goes off.
            shoulder.spoils_reads = {}
            backend.enable()
            shoulder.spoils_reads = {"Present_Position": [resting + 300 * (k % 2) for k in range(8)]}
            with pytest.raises(BackendError, match="disagreed"):
                backend.enable()
            assert not any(servo.torque_enabled for servo in emulator.servos.values())
        finally:
            backend.disconnect()
