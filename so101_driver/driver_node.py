"""`driver_node`: the SO-101 (real or simulated) on ROS 2.

Publishes /joint_states (radians) every control tick and, in sim, both camera topics; executes
/so101/action_chunk (JointTrajectory; an empty one drops every chunk and holds the last target, as
ros_controllers' trajectory controller does) and /so101/joint_command (JointState) through one safety path;
serves /so101/reset and /so101/episode_status (sim); reports on /diagnostics. Torque goes off when
the node stops, whatever stops it.

Lifecycle (a managed node, as ros2_control's hardware components are): configure opens the arm and
checks its calibration (torque stays off), activate turns torque on holding where the arm is and
starts the control tick (the first command starts from the measured position), deactivate holds
for a last tick and turns torque off, cleanup and shutdown release the bus. With `autostart` (the
default) the node configures and activates itself, so `ros2 run` starts a running driver; with
autostart:=false it waits for `ros2 lifecycle set /so101_driver configure` (then activate).

Time: the real arm runs on the wall clock. The sim driver owns time: each tick advances the sim by
one control period and publishes /clock, and every message of the tick is stamped with that sim
time, so the rest of the graph runs with use_sim_time. On the wall clock (the real arm, or the sim
with lockstep off) the tick runs on a thread of its own at the control rate, never queued behind
a callback; in lockstep (sim) the next tick is taken as soon as every participant has consumed
the last one (so101_driver.lockstep).
"""

from __future__ import annotations

import json
import sys
import threading
import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PoseArray
from rclpy.clock import Clock, ClockType
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rosgraph_msgs.msg import Clock as ClockMsg
from sensor_msgs.msg import Image, JointState, TimeReference
from std_msgs.msg import String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from .arm_description import ARM_TOPIC, describe
from .backends import BackendError
from .control_loop import FixedRateLoop, TickTimer
from .driver_core import DriverConfig, DriverCore, DriverStats
from .environment_state import ENVIRONMENT_STATE_TOPIC
from .episode_seeds import MAX_SEED, EpisodeSeeds
from .joint_model import JOINT_NAMES, ArmUnits, JointModel, calibration_path_for_id
from .lockstep import READY_TOPIC, LockstepBarrier, parse_participants
from .lockstep_ros import READY_LISTENER_QOS, stamp_ns
from .node_runner import declare_parameters, run_node
from .ros_messages import (
    LATCHED_QOS,
    color_image_msg,
    diagnostic_status,
    duration_to_sec,
    joint_state_msg,
    object_poses_msg,
    sec_to_time,
    time_to_sec,
)
from .sim.scene import CAMERA_NAMES
from .sim.task_variants import (DEFAULT_OVERHEAD_VIEW, DEFAULT_VARIANT, OVERHEAD_VIEWS, VARIANTS, overhead_view,
                                task_variant)

LOCKSTEP_NUDGE_S = 1.0  # wall s without progress before the last tick is published again
LOCKSTEP_START_NOTE_S = 5.0  # wall s before the driver says whom the first tick waits for

PARAMETERS = {
    "backend": ("sim", "sim (MuJoCo) or feetech (the real arm)"),
    "autostart": (True, "configure and activate at start-up; false: wait for the lifecycle transitions"),
    "port": ("/dev/ttyACM0", "feetech: serial port of the arm's bus adapter"),
    "calibration_id": ("", "feetech: id given to lerobot-calibrate; the file is found in lerobot's cache"),
    "calibration_file": ("", "feetech: path to a LeRobot calibration JSON (overrides calibration_id)"),
    "write_calibration": (False, "feetech: write the calibration file to the motors when they differ"),
    "arm_units": ("degrees", "LeRobot units of the arm joints: degrees or range_m100_100"),
    "control_rate": (30.0, "control ticks per second", (1.0, 200.0)),
    "camera_width": (224, "sim: camera image width", (16, 4096)),
    "camera_height": (224, "sim: camera image height", (16, 4096)),
    "task_variant": (DEFAULT_VARIANT, f"sim: the task's randomisation, one of {sorted(VARIANTS)}"),
    "overhead_view": (DEFAULT_OVERHEAD_VIEW, f"sim: what the overhead camera frames, one of {list(OVERHEAD_VIEWS)} "
                                             "(workspace: the task variant's cubes and targets)"),
    "seed": (0, "sim: seed of the first episode (the scene at start-up and the first reset), each reset "
                "taking the next; or a list, one seed per episode", (0, MAX_SEED)),
    "watchdog_timeout": (0.5, "seconds without a command, past the last one's end, before holding", (0.01, 10.0)),
    "arm_silence_limit": (1.0, "seconds the arm may leave reads unanswered (holding) before torque goes off and the "
                               "driver leaves active", (0.05, 60.0)),
    "merge_mode": ("replace", "how a new chunk meets the old one: replace, crossfade, temporal_ensemble"),
    "crossfade_ticks": (5, "crossfade: ticks over which the new chunk fades in", (1, 300)),
    "ensemble_coeff": (0.01, "temporal_ensemble: weight exp(-coeff * i), i = 0 for the oldest chunk", (-10.0, 10.0)),
    "diagnostics_period": (1.0, "seconds between /diagnostics messages", (0.05, 3600.0)),
    "max_relative_target": (0.1, "largest distance of a target from the measured position, radians: one value or six"),
    "following_error_limit": (0.35, "largest distance of the measured position from the last target, radians "
                                    "(one value or six); beyond it the driver holds where the arm is"),
    "lockstep": (False, "sim: take the next tick only when every lockstep participant has consumed the last one"),
    "lockstep_participants": ("so101_policy", "lockstep: the nodes each tick waits for, comma separated"),
    "lockstep_timeout": (30.0, "lockstep: wall s of silence before a participant is reported and not waited for",
                         (0.1, 3600.0)),
}


class DriverNode(LifecycleNode):
    def __init__(self, **node_options):
        super().__init__("so101_driver", **node_options)
        p = declare_parameters(self, PARAMETERS,
                               dynamic=frozenset({"max_relative_target", "following_error_limit", "seed"}))
        self.params = p
        self.backend_name = p["backend"]
        # Checked now, so that a bad setting stops the node at start-up, before any transition.
        self.config = DriverConfig(
            control_rate_hz=p["control_rate"],
            max_relative_target=_per_joint("max_relative_target", p["max_relative_target"]),
            following_error_limit=_per_joint("following_error_limit", p["following_error_limit"]),
            watchdog_timeout=p["watchdog_timeout"],
            arm_silence_limit=p["arm_silence_limit"],
            merge_mode=p["merge_mode"],
            crossfade_ticks=p["crossfade_ticks"],
            ensemble_coeff=p["ensemble_coeff"],
        )
        self.arm_units = ArmUnits(p["arm_units"])
        self.seeds = EpisodeSeeds.parse(p["seed"])
        self.task_variant = task_variant(p["task_variant"])
        overhead_view(p["overhead_view"], self.task_variant)  # an unknown view stops here, at start-up
        if p["lockstep"] and not self.is_sim:
            raise ValueError("lockstep:=true needs backend:=sim: the real arm runs on the wall clock.")
        self.backend = None
        self.core: DriverCore | None = None
        # The core is shared by the control tick and the callbacks (commands, services, diagnostics).
        self._lock = threading.Lock()
        self._active = False
        self._transition_error: Exception | None = None
        self._autostarting = False
        self._sim_ticks = 0  # sim time = ticks / control rate, monotonic across episodes
        self._tick_timer = TickTimer()
        self._last_tick: list[tuple[object, object]] = []  # (publisher, message): lockstep re-publishes it
        self._loop: FixedRateLoop | None = None
        self.barrier: LockstepBarrier | None = None
        self._setup_ros_interfaces(p)
        if p["autostart"]:
            self.bring_up()
        else:
            self.get_logger().info("unconfigured, torque off: waiting for configure and activate (a lifecycle "
                                   "manager, or ros2 lifecycle set /so101_driver configure)")

    def bring_up(self) -> None:
        """Configure, then activate (autostart, or `so101` managing the transitions in its own process);
        a failure raises its error with the arm released."""
        self._autostarting = True
        try:
            for transition in (self.trigger_configure, self.trigger_activate):
                if transition() != TransitionCallbackReturn.SUCCESS:
                    raise self._transition_error or BackendError("the driver could not start")
        except BaseException:
            # A failed first read or a Ctrl-C during start-up: torque goes off before the error
            # leaves, since no close() will run for a node never built.
            self.close()
            raise
        finally:
            self._autostarting = False

    def _setup_ros_interfaces(self, p: dict) -> None:
        """Topics, services and timers, there in every state; commands move the arm only while active."""
        self._reported = DriverStats()
        self.joint_state_pub = self.create_publisher(JointState, "joint_states", 10)
        # What was sent to the servos each tick, after the safety path: a dataset's "action".
        self.joint_targets_pub = self.create_publisher(JointState, "so101/joint_targets", 10)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, "diagnostics", 10)
        # What the arm is (calibration, units): policy, recorder and replay take it from here.
        self.arm_pub = self.create_publisher(String, ARM_TOPIC, LATCHED_QOS)
        self.camera_pubs = {}
        if self.is_sim:
            self.clock_pub = self.create_publisher(ClockMsg, "/clock", 10)
            # REP-2003: sensor drivers publish with the system default (reliable) QoS; consumers
            # that prefer the newest frame subscribe best-effort.
            self.camera_pubs = {camera: self.create_publisher(Image, f"so101/{camera}/image_raw", 10)
                                for camera in CAMERA_NAMES}
            # The privileged object state, for checkpoints trained on observation.environment_state.
            self.environment_state_pub = self.create_publisher(PoseArray, ENVIRONMENT_STATE_TOPIC, 10)
            self.create_service(Trigger, "so101/reset", self._on_reset)
            self.create_service(Trigger, "so101/episode_status", self._on_episode_status)
        self.create_subscription(JointTrajectory, "so101/action_chunk", self._on_chunk, 10)
        self.create_subscription(JointState, "so101/joint_command", self._on_joint_command, 10)
        self.create_timer(p["diagnostics_period"], self._publish_diagnostics)
        # The control tick runs on a thread of its own: a fault it meets is handled on the executor's.
        self._fault_guard = self.create_guard_condition(self._on_fault)
        if p["lockstep"]:
            self._nudged_tick = -1
            self._ready_heard: dict[str, tuple[int, int]] = {}  # participant: (consumed tick, chunk stamp)
            self.create_subscription(TimeReference, READY_TOPIC, self._on_ready, READY_LISTENER_QOS)
            self.create_timer(0.1, self._watch_lockstep, clock=Clock(clock_type=ClockType.STEADY_TIME))

    # -- lifecycle ------------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        return self._transition("configure", self._configure)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        return self._transition("activate", self._activate)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        return self._transition("deactivate", self._deactivate)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        return self._transition("cleanup", self._release)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        return self._transition("shutdown", self.close)

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.close()  # whatever failed, the arm is left with torque off and the bus released
        return TransitionCallbackReturn.SUCCESS

    def _transition(self, name: str, action) -> TransitionCallbackReturn:
        try:
            action()
        except Exception as error:  # noqa: BLE001 - rclpy would swallow it; the transition fails, said why
            self._transition_error = error
            if not self._autostarting:  # autostart raises it: the process ends with it as its one line
                user_error = isinstance(error, (BackendError, ValueError, OSError))
                self.get_logger().error(f"{name} failed: {error if user_error else repr(error)}")
            return TransitionCallbackReturn.FAILURE
        return TransitionCallbackReturn.SUCCESS

    def _configure(self) -> None:
        backend, joint_model = self._make_backend(self.params)
        core = DriverCore(backend, joint_model, self.config, logger=self.get_logger())
        core.connect()  # a backend whose connect fails has let go of the bus itself
        self.backend, self.core = backend, core
        source = "sim" if self.is_sim else str(backend.calibration_file)
        self.arm_pub.publish(String(data=describe(joint_model, source)))
        self.get_logger().info(f"configured: backend={self.backend_name}, torque off until activated")

    def _activate(self) -> None:
        with self._lock:
            self.core.activate()
            self._active = True
        if self.params["lockstep"]:
            self.barrier = LockstepBarrier(parse_participants(self.params["lockstep_participants"]),
                                           self.params["lockstep_timeout"])
            self.barrier.begin(time.monotonic())
            for participant, (consumed_ns, chunk_ns) in self._ready_heard.items():
                self.barrier.on_ready(participant, consumed_ns, chunk_ns)
            self._start_wait_logged = False
            timing = f"lockstep with {', '.join(self.barrier.participants)}"
        else:
            self._loop = FixedRateLoop(self.config.control_rate_hz, self._control_tick,
                                       on_missed=self._on_missed_ticks, on_error=self._on_control_error)
            self._loop.start()
            timing = f"{self.config.control_rate_hz:g} Hz on the wall clock"
        sim_setup = f", task variant {self.task_variant.name}, overhead view {self.params['overhead_view']}"
        self.get_logger().info(
            f"SO-101 driver up: backend={self.backend_name}, {timing}"
            f"{sim_setup if self.is_sim else ''}"
            f"{', publishing /clock (sim time)' if self.is_sim else ''}, merge_mode={self.config.merge_mode.value}"
        )

    def _deactivate(self) -> None:
        """Stop the tick, hold where the arm is, torque off."""
        if self._loop is not None:
            self._loop.stop()
            self._loop = None
        self.barrier = None
        with self._lock:
            if self._active:
                self._active = False
                self.core.deactivate()

    def _release(self) -> None:
        with self._lock:
            if self.core is not None:
                self.core.stop()
            self.backend = self.core = None  # unconfigured: services and diagnostics say so

    def close(self) -> None:
        """Stop the control tick, torque off, release the bus, in whatever state. Safe to call more than once."""
        try:
            self._deactivate()
        finally:
            self._release()

    @property
    def is_sim(self) -> bool:
        return self.backend_name == "sim"

    def _make_backend(self, p: dict):
        arm_units = self.arm_units
        if p["backend"] == "sim":
            from .backends.sim import SimBackend
            from .sim.scene import SceneConfig
            from .sim.sim_arm import SimArm

            arm = SimArm(SceneConfig(image_width=p["camera_width"], image_height=p["camera_height"],
                                     control_period=1.0 / p["control_rate"]), self.task_variant,
                         p["overhead_view"])
            return SimBackend(arm, self.seeds), JointModel.for_sim(arm_units)
        if p["backend"] == "feetech":
            from .backends.feetech import FeetechBackend

            if p["calibration_file"]:
                calibration_file = p["calibration_file"]
            elif p["calibration_id"]:
                calibration_file = calibration_path_for_id(p["calibration_id"])
            else:
                raise BackendError(
                    "The feetech backend needs the arm's LeRobot calibration: set calibration_id:=<id> "
                    "(as given to lerobot-calibrate) or calibration_file:=<path to the JSON>."
                )
            backend = FeetechBackend(p["port"], calibration_file, arm_units,
                                     write_calibration=p["write_calibration"])
            return backend, backend.joint_model
        raise BackendError(f"Unknown backend '{p['backend']}'; use sim or feetech.")

    def _now(self) -> float:
        """The sim's time (the last tick's) in sim; the node's clock on the real arm."""
        if self.is_sim:
            return self._sim_ticks / self.config.control_rate_hz
        return time_to_sec(self.get_clock().now().to_msg())

    # -- control --------------------------------------------------------------------------------
    def _control_tick(self) -> None:
        with self._lock:
            if self.is_sim:
                self._sim_ticks += 1
            now = self._now()
            stamp = sec_to_time(now)
            messages = [(self.clock_pub, ClockMsg(clock=stamp))] if self.is_sim else []
            # Frames show the arm in the state the tick reads, so images and joints share one stamp.
            frames = {camera: self.backend.render(camera) for camera in self.camera_pubs}
            objects = self.backend.environment_state() if self.is_sim else None
            result = self.core.tick(now)
            if "fault" in result.events:
                self._fault_guard.trigger()
            if result.positions is not None:
                velocities = self.backend.read_velocities() if self.is_sim else None
                messages.append((self.joint_state_pub,
                                 joint_state_msg(stamp, JOINT_NAMES, result.positions, velocities)))
            if result.target is not None:
                messages.append((self.joint_targets_pub, joint_state_msg(stamp, JOINT_NAMES, result.target)))
            for camera, frame in frames.items():
                messages.append((self.camera_pubs[camera], color_image_msg(stamp, frame, f"so101_{camera}_camera")))
            if objects is not None:  # as the frames show them
                messages.append((self.environment_state_pub, object_poses_msg(stamp, objects)))
            for publisher, message in messages:
                publisher.publish(message)
            self._last_tick = messages
            self._tick_timer.tick(time.monotonic())

    def _on_missed_ticks(self, count: int) -> None:
        with self._lock:
            self.core.stats.missed_ticks += count

    def _refuse_while_inactive(self, what: str) -> bool:
        """True (and a log line) when the driver is not active: commands move the arm only when it is."""
        if self._active:
            return False
        self.get_logger().warning(f"{what} ignored: the driver is not active "
                                  "(ros2 lifecycle set /so101_driver activate)", throttle_duration_sec=5.0)
        return True

    def _on_control_error(self, error: BaseException) -> None:
        # The control loop is gone: stop the node, whose close() turns torque off.
        if self.context.ok():
            self.get_logger().fatal(f"control tick failed, stopping the driver: {error!r}")
            self.context.try_shutdown()

    def _on_fault(self) -> None:
        """The arm was given up (its port gone, or silent too long): leave active, torque off, one line."""
        fault = self.core.fault if self.core is not None else None
        if not self._active or fault is None:  # already handled, or activated again since
            return
        if self.trigger_deactivate() != TransitionCallbackReturn.SUCCESS:
            self.get_logger().fatal(f"{fault}; leaving active failed ({self._transition_error}): stopping the driver")
            self.context.try_shutdown()  # close() turns torque off where it can
            return
        self.get_logger().error(f"{fault}. The driver is inactive and sends nothing until activated (ros2 lifecycle "
                                "set /so101_driver activate); it then holds where the arm is, with no command left "
                                "from before.")
        self._publish_diagnostics()

    def _on_chunk(self, msg: JointTrajectory) -> None:
        if self._refuse_while_inactive("action chunk"):
            return
        if not msg.points:  # JTC's topic convention: an empty trajectory cancels what is queued
            with self._lock:
                self.core.cancel()
            self.get_logger().info("empty action chunk: chunks dropped, holding the last target")
            return
        with self._lock:
            self.core.submit_chunk(
                msg.joint_names,
                time_to_sec(msg.header.stamp),
                [duration_to_sec(point.time_from_start) for point in msg.points],
                [list(point.positions) for point in msg.points],
                now=self._now(),
            )
        if self.barrier is not None:
            self.barrier.on_chunk(stamp_ns(msg.header.stamp))
            self._advance_lockstep()

    def _on_joint_command(self, msg: JointState) -> None:
        if self._refuse_while_inactive("joint command"):
            return
        with self._lock:
            self.core.submit_position(msg.name, list(msg.position), now=self._now())

    # -- lockstep (sim) -------------------------------------------------------------------------
    def _on_ready(self, msg: TimeReference) -> None:
        # Kept while inactive too: a participant that announced itself before activation (its latched
        # message arrives once) is counted by the barrier activation makes.
        self._ready_heard[msg.source] = (stamp_ns(msg.header.stamp), stamp_ns(msg.time_ref))
        if self.barrier is None:
            return
        self.barrier.on_ready(msg.source, *self._ready_heard[msg.source])
        self._advance_lockstep()

    def _advance_lockstep(self) -> None:
        if self.barrier is not None and self.barrier.may_advance():
            self._control_tick()
            self.barrier.tick_published(self._sim_tick_ns(), time.monotonic())

    def _sim_tick_ns(self) -> int:
        return stamp_ns(sec_to_time(self._now()))

    def _watch_lockstep(self) -> None:
        if self.barrier is None:
            return
        now = time.monotonic()
        if not self.barrier.started and self.barrier.may_advance():
            self._advance_lockstep()  # every participant announced itself before activation
            return
        silent = self.barrier.leave_behind_silent(now)
        if silent:
            self.get_logger().error(
                f"lockstep: {', '.join(silent)} consumed nothing for {self.barrier.timeout:g} s (wall); the sim goes "
                "on without them until they answer again"
            )
            self._advance_lockstep()
        elif not self.barrier.started:
            if not self._start_wait_logged and self.barrier.waited(now) > LOCKSTEP_START_NOTE_S:
                self._start_wait_logged = True
                self.get_logger().info(f"lockstep: the first tick waits for {', '.join(self.barrier.pending())} "
                                       "to start")
        elif self._sim_ticks and self.barrier.waited(now) > LOCKSTEP_NUDGE_S and self._nudged_tick != self._sim_ticks:
            # A message of this tick lost on the way (a subscriber that matched late), or a participant
            # still computing (a slow inference): publish it again; a tick already consumed is a repeat.
            self._nudged_tick = self._sim_ticks
            self.get_logger().info(f"lockstep: waiting for {', '.join(self.barrier.pending())}; "
                                   "publishing the last tick again")
            for publisher, message in self._last_tick:
                publisher.publish(message)

    # -- episodes (sim) -------------------------------------------------------------------------
    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        if not self._active:
            response.success, response.message = False, "the driver is not active"
            return response
        with self._lock:
            status = self.backend.reset()
            self.core.new_episode(self.backend.read_positions())
        response.success = True
        response.message = json.dumps(status.as_dict())
        self.get_logger().info(f"New sim episode, seed {status.seed}")
        return response

    def _on_episode_status(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        """success = the episode's task succeeded; message = the task status as JSON."""
        if self.core is None:
            response.success, response.message = False, "the driver is not configured"
            return response
        with self._lock:
            status = self.backend.status
            response.success = bool(status.success)
            response.message = json.dumps(status.as_dict())
        return response

    # -- diagnostics ----------------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        with self._lock:
            if self.core is None:
                return
            stats = DriverStats(**self.core.stats.as_dict())
            periods = self._tick_timer.stats()
            active = self._active
            fault = self.core.fault
        before = self._reported
        if fault is not None:
            level, message = DiagnosticStatus.ERROR, f"inactive, the arm given up: {fault}"
        elif not active:
            level, message = DiagnosticStatus.WARN, "inactive: torque off"
        elif stats.bus_errors > before.bus_errors:
            level, message = DiagnosticStatus.ERROR, f"bus errors: {stats.last_bus_error}"
        elif stats.commands_rejected > before.commands_rejected:
            level, message = DiagnosticStatus.WARN, stats.last_rejection
        elif stats.following_error_trips > before.following_error_trips:
            level, message = DiagnosticStatus.WARN, f"following error: {stats.last_following_error}; holding"
        elif stats.watchdog_trips > before.watchdog_trips:
            level, message = DiagnosticStatus.WARN, "watchdog: holding the last target, no commands"
        else:
            level, message = DiagnosticStatus.OK, "running"
        self._reported = stats
        values = stats.as_dict()
        if periods is not None:  # wall-clock periods between ticks: the control loop's jitter
            values.update(tick_period_p50_ms=periods.p50_ms, tick_period_p95_ms=periods.p95_ms,
                          tick_period_max_ms=periods.max_ms)
        array = DiagnosticArray()
        array.header.stamp = sec_to_time(self._now())
        array.status = [diagnostic_status("so101_driver: control", f"so101_{self.backend_name}", level, message,
                                          values)]
        self.diagnostics_pub.publish(array)


def _per_joint(name: str, value) -> float | list[float]:
    """A parameter given as one number for every joint, or one per joint."""
    if isinstance(value, (int, float)):
        return float(value)
    values = [float(v) for v in value]
    if len(values) != len(JOINT_NAMES):
        raise ValueError(f"{name} takes one value or {len(JOINT_NAMES)} ({list(JOINT_NAMES)}), got {values}.")
    return values


USER_ERRORS = (BackendError, ValueError)


def main(args=None) -> int:
    return run_node(DriverNode, "so101_driver", USER_ERRORS, args)


if __name__ == "__main__":
    sys.exit(main())
