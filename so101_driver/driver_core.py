"""The driver's control loop without ROS: commands in, one safety path, targets out to a backend."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from .backends import ArmDisconnected, Backend, BackendError, agreed_reading
from .joint_model import JOINT_NAMES, JointModel
from .safety import ClampReport, CommandRejected, SafetyFilter, Watchdog
from .trajectory import MergeMode, TrajectoryExecutor

# Two readings in a row at activation must agree this well (2.9 degrees) to be held: see agreed_reading.
ACTIVATION_AGREEMENT_RAD = 0.05


@dataclass
class DriverConfig:
    control_rate_hz: float = 30.0
    # Largest change of a joint target in one tick, radians (one value, or one per joint).
    max_relative_target: float | list[float] = 0.1
    # Largest distance, radians, between the last target sent and where the joint then is (one
    # value, or one per joint); beyond it the driver stops following and holds where the arm is.
    following_error_limit: float | list[float] = 0.35
    watchdog_timeout: float = 0.5
    # Seconds the arm may leave reads unanswered (a servo browning out) before the driver gives up:
    # until then it holds (the servos keep their last goal), after it torque goes off.
    arm_silence_limit: float = 1.0
    merge_mode: MergeMode | str = MergeMode.REPLACE
    crossfade_ticks: int = 5
    ensemble_coeff: float = 0.01

    def __post_init__(self):
        if self.control_rate_hz <= 0:
            raise ValueError(f"control_rate_hz must be positive, got {self.control_rate_hz}.")
        if self.arm_silence_limit <= 0:
            raise ValueError(f"arm_silence_limit must be positive, got {self.arm_silence_limit}.")
        limit = np.asarray(self.following_error_limit, dtype=np.float64)
        if limit.shape not in ((), (6,)) or not np.all(limit > 0):
            raise ValueError(f"following_error_limit takes one positive value or six, got {self.following_error_limit}.")
        try:
            self.merge_mode = MergeMode(self.merge_mode)
        except ValueError:
            raise ValueError(
                f"merge_mode must be one of {[m.value for m in MergeMode]}, got {self.merge_mode!r}."
            ) from None


@dataclass
class DriverStats:
    """Counters published on /diagnostics."""

    ticks: int = 0
    chunks_accepted: int = 0
    positions_accepted: int = 0
    cancels: int = 0  # empty chunks: every chunk dropped, the last target held
    commands_rejected: int = 0
    last_rejection: str = ""
    points_skipped: int = 0
    starved_ticks: int = 0  # ticks with no chunk to follow, once commands have begun this episode
    longest_starvation: int = 0  # the longest run of starved ticks
    limit_clamps: int = 0
    step_clamps: int = 0
    watchdog_trips: int = 0
    following_error_trips: int = 0
    last_following_error: str = ""
    missed_ticks: int = 0  # wall-clock deadlines the control loop missed (it counts them)
    bus_errors: int = 0
    last_bus_error: str = ""
    faults: int = 0  # the arm lost (port gone, or silent past arm_silence_limit): the driver stopped driving
    last_fault: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class TickResult:
    positions: np.ndarray | None  # measured, radians; None when the arm did not answer
    target: np.ndarray | None  # what was sent, radians; None when nothing was sent
    following_chunk: bool  # a chunk or position command covered this tick
    clamps: ClampReport | None = None
    events: list[str] = field(default_factory=list)


class DriverCore:
    """Runs one SO-101 backend: executes chunks on its own clock, through one safety path."""

    def __init__(self, backend: Backend, joint_model: JointModel, config: DriverConfig | None = None,
                 logger: logging.Logger | None = None):
        self.backend = backend
        self.joint_model = joint_model
        self.config = config or DriverConfig()
        self.log = logger or logging.getLogger("so101_driver")
        lower, upper = joint_model.limits
        self.safety = SafetyFilter(lower, upper, self.config.max_relative_target)
        self.executor = TrajectoryExecutor(
            self.config.merge_mode, self.config.crossfade_ticks, self.config.ensemble_coeff
        )
        self.watchdog = Watchdog(self.config.watchdog_timeout)
        self.following_error_limit = np.broadcast_to(
            np.asarray(self.config.following_error_limit, dtype=np.float64), (len(lower),))
        self.stats = DriverStats()
        self._last_target: np.ndarray | None = None
        self._commands_began = False
        self._starved_run = 0
        self._holding_after_following_error = False
        self.fault: str | None = None  # why the arm was given up; nothing is sent until activate()
        self._answered_at: float | None = None  # the last read the arm answered (since activation)
        self._silent = False  # the last read went unanswered

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> np.ndarray:
        """Connect, then activate: what a driver without a lifecycle does at start-up."""
        self.connect()
        return self.activate()

    def connect(self) -> None:
        """Open the arm and check it; torque stays off (the lifecycle's configure)."""
        self.backend.connect()

    def activate(self) -> np.ndarray:
        """Torque on, holding where the arm is; the first command starts from there (activate).

        When it fails (a servo that does not answer), torque goes off again: an arm that is not
        active is never left holding. A fault is cleared here, and only here: the arm comes back
        holding where it was measured now, with no old command left to jump to.
        """
        try:
            self.backend.enable()
            # The pose held from here on: a reading spoilt on the line must not become it.
            positions = agreed_reading(self.backend.read_positions, ACTIVATION_AGREEMENT_RAD, "the joint positions")
        except BaseException:
            self.backend.disable()
            raise
        self.fault = None
        self._answered_at, self._silent = None, False
        self.new_episode(positions)
        return positions

    def deactivate(self) -> None:
        """Forget every command, hold where the arm is for a last tick, then torque off (deactivate).

        After a fault the arm is not asked again: torque goes off on whatever still answers.
        """
        try:
            if self.fault is None:
                positions = self.backend.read_positions()
                # Through the step clamp, as every goal: a reading spoilt on the line (seen in the soak, 1%
                # of replies corrupted) must not move the goal further than a tick's step before torque off.
                hold = positions if self._last_target is None else self.safety.clamp(
                    positions, self._last_target, positions)[0]
                self.hold_here(hold)
                self.backend.write_targets(hold)
        except BackendError as error:
            self.log.error(f"could not hold before torque off: {error}")
        finally:
            self.backend.disable()

    def new_episode(self, positions: np.ndarray) -> None:
        """Hold these positions and wait for the episode's first command (start-up, reset)."""
        self.hold_here(positions)
        self._holding_after_following_error = False
        self._commands_began = False
        self._starved_run = 0

    def hold_here(self, positions: np.ndarray) -> None:
        """Forget every command and hold these positions (a new episode, a following error)."""
        self._last_target = np.array(positions, dtype=np.float64)
        self.executor.hold(self._last_target)
        self.watchdog.disarm()

    def _hold_last_target(self) -> None:
        """Commands stopped: keep what was last sent (a grasp keeps its grip) and wait for the next one."""
        self.executor.hold(self._last_target)
        self.watchdog.disarm()

    def stop(self) -> None:
        """Turn torque off and release the arm. Safe to call more than once, in any state."""
        self.backend.disconnect()

    # -- commands ----------------------------------------------------------------------------------
    def cancel(self) -> None:
        """Drop every chunk and hold the last target (an empty JointTrajectory, as ros_controllers' JTC
        takes one on its topic): a paused policy stops the arm where it is going now."""
        self._hold_last_target()
        self._commands_began = False  # waiting for the next command is a pause, not starvation
        self._starved_run = 0
        self.stats.cancels += 1

    def submit_chunk(self, names: Sequence[str], stamp: float, times_from_start: Sequence[float],
                     points: Sequence[Sequence[float]], now: float) -> bool:
        """A JointTrajectory chunk in radians; False (and a log line) when it was not accepted."""
        try:
            trajectory = self.safety.check_trajectory(names, stamp, times_from_start, points)
        except CommandRejected as error:
            return self._reject(f"action chunk rejected: {error}")
        skipped = self.executor.submit(trajectory, now)
        self.stats.points_skipped += skipped
        if skipped == len(trajectory.times):
            return self._reject(
                f"action chunk rejected: all {skipped} points were due before it arrived "
                f"(stamp {stamp:.3f}, last point {trajectory.end:.3f}, now {now:.3f})"
            )
        self.stats.chunks_accepted += 1
        self._command_taken(until=trajectory.end)
        return True

    def submit_position(self, names: Sequence[str], positions: Sequence[float], now: float) -> bool:
        """One position target in radians (teleop); it is held until the next command."""
        try:
            target = self.safety.check_positions(names, positions)
        except CommandRejected as error:
            return self._reject(f"joint command rejected: {error}")
        self.executor.hold(target, commanded=True)
        self.stats.positions_accepted += 1
        self._command_taken(until=now)
        return True

    def _command_taken(self, until: float) -> None:
        """A command covers the arm up to `until`: the watchdog is fed, a following-error hold ends."""
        self._commands_began = True
        self._holding_after_following_error = False
        self.watchdog.feed(until)

    def _reject(self, message: str) -> bool:
        self.stats.commands_rejected += 1
        self.stats.last_rejection = message
        self.log.warning(message)
        return False

    # -- control tick ------------------------------------------------------------------------------
    def tick(self, now: float) -> TickResult:
        """One control period: read, follow the commands through the safety path, write.

        A failed read sends nothing: the servos keep their last goal, which is the hold. Past
        `arm_silence_limit`, or at once when the port is gone, the tick reports a "fault" event and
        sends nothing from then on; the owner turns torque off (deactivate) and only activate() clears it.
        """
        self.stats.ticks += 1
        events: list[str] = []
        if self.fault is not None:
            return TickResult(None, None, following_chunk=False)
        try:
            positions = self.backend.read_positions()
        except ArmDisconnected as error:
            return self._port_gone(error)
        except BackendError as error:
            self.stats.bus_errors += 1
            self.stats.last_bus_error = str(error)
            if not self._silent:
                self._silent = True
                self._answered_at = now if self._answered_at is None else self._answered_at
                self.log.warning(f"the arm did not answer, holding the last target: {error}")
            silent_for = now - self._answered_at
            if silent_for >= self.config.arm_silence_limit:
                return self._give_up(f"the arm did not answer for {silent_for:.1f} s ({error}): check the servos' "
                                     "power supply and cables (torque goes off on every servo that answers)",
                                     str(error))
            return TickResult(None, None, following_chunk=False, events=["bus_error"])
        if self._silent:
            self.log.info(f"the arm answers again after {now - self._answered_at:.2f} s")
            self._silent = False
        self._answered_at = now
        if self._last_target is None:
            self.new_episode(positions)

        following_error = np.abs(positions - self._last_target)
        if np.any(following_error > self.following_error_limit) and not self._holding_after_following_error:
            # Pushed away from its goal (a collision, a hand): stop following and stop fighting.
            over = following_error > self.following_error_limit
            message = ", ".join(f"{name} {error:.2f} rad" for name, error in
                                zip(np.asarray(JOINT_NAMES)[over], following_error[over]))
            self.stats.following_error_trips += 1
            self.stats.last_following_error = message
            events.append("following_error")
            self.log.warning(f"following error past its limit ({message}): holding where the arm is")
            # The goal walks there a step a tick from the last one sent: a reading that jumped
            # (rather than an arm that moved) must not yank it.
            self.executor.hold(positions)
            self.watchdog.disarm()
            self._holding_after_following_error = True  # reported once, until the next command
        elif self.watchdog.expired(now):
            self.stats.watchdog_trips += 1
            events.append("watchdog")
            self.log.warning(
                f"no command for {self.watchdog.timeout:.2f} s after the last one ended: holding the last target"
            )
            self._hold_last_target()

        output = self.executor.sample(now)
        if not output.active and self._commands_began:
            self.stats.starved_ticks += 1
            self._starved_run += 1
            self.stats.longest_starvation = max(self.stats.longest_starvation, self._starved_run)
            events.append("starved")
        else:
            self._starved_run = 0
        target = output.target if output.target is not None else positions
        safe, clamps = self.safety.clamp(target, self._last_target, positions)
        self.stats.limit_clamps += int(clamps.limit_clamped.any())
        self.stats.step_clamps += int(clamps.step_clamped.any())
        if output.active and clamps.step_clamped.any():
            # The step limit is still walking towards the command: it is being carried out.
            self.watchdog.feed(now)
        try:
            self.backend.write_targets(safe)
        except ArmDisconnected as error:
            return self._port_gone(error)
        except BackendError as error:
            self.stats.bus_errors += 1
            self.stats.last_bus_error = str(error)
            self.log.error(f"arm write failed: {error}")
            events.append("bus_error")
            return TickResult(positions, None, output.active, clamps, events)
        self._last_target = safe
        return TickResult(positions, safe, output.active, clamps, events)

    def _port_gone(self, error: ArmDisconnected) -> TickResult:
        return self._give_up(f"{error}: plug the arm's USB cable back in (meanwhile the servos hold their last goal: "
                             "nothing can reach them to turn torque off)", str(error))

    def _give_up(self, fault: str, bus_error: str) -> TickResult:
        """Stop driving the arm until activate(): the one tick that reports the "fault" event."""
        self.fault = fault
        self.stats.faults += 1
        self.stats.last_fault = fault
        self.stats.bus_errors += 1
        self.stats.last_bus_error = bus_error
        return TickResult(None, None, following_chunk=False, events=["fault"])
