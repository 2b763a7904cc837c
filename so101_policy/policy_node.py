"""`policy_node`: ACT or SmolVLA chunked inference over ROS 2.

Subscribes the camera topics and /joint_states, runs the checkpoint in a worker thread when the
scheduler says so, and publishes each chunk as one JointTrajectory on /so101/action_chunk, stamped
with the observation's time and a point every 1/fps s, so the driver skips what latency made stale.
"""

from __future__ import annotations

import logging
import math
import sys
import threading
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PoseArray
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image, JointState
from rclpy.wait_for_message import wait_for_message
from std_msgs.msg import String
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory

from so101_driver.arm_description import ARM_TOPIC, FROM_DRIVER, check_same_arm, joint_model_from
from so101_driver.environment_state import ENVIRONMENT_STATE_TOPIC
from so101_driver.joint_model import JOINT_NAMES, UnitError, in_joint_order, joint_model_for
from so101_driver.lockstep import TickInputs
from so101_driver.lockstep_ros import TICK_INPUT_QOS, LockstepParticipant, stamp_ns
from so101_driver.node_runner import declare_parameters, run_node
from so101_driver.ros_messages import (
    LATCHED_QOS,
    diagnostic_status,
    environment_state_from_msg,
    joint_trajectory_msg,
    sec_to_time,
    time_to_sec,
)

from .backend_names import BACKEND_HELP
from .checkpoint import CheckpointError, error_summary, load_policy
from .compatibility import check_compatibility, check_value_ranges, normalization_stats, takes_environment_state
from .dataset_contract import check_training_data, training_data
from .images import ImageFormatError, compressed_to_rgb, image_to_rgb
from .inference_backends import describe_backend, inference_backend, processor_threads, with_backend
from .inference_thread import InferenceThread
from .lockstep_inference import InFlight, LockstepInference
from .observation import ENVIRONMENT_STATE, Observation, ObservationAssembler, StaleObservation
from .predictor import ChunkPredictor, FrameSizeError
from .scheduler import ChunkScheduler, InferenceMode, inference_mode
from .stale_data import StaleDataGuard

# Inference failures that are the data's or the checkpoint's fault: reported, and the node goes on.
INFERENCE_ERRORS = (FrameSizeError, UnitError, RuntimeError, ValueError)
DEFAULT_TASK = "Pick up the cube and place it in the bowl"
PARAMETERS = {
    "checkpoint": ("", "LeRobot checkpoint: a pretrained_model folder or a hub repo id"),
    "policy_type": ("", "act or smolvla; empty takes the checkpoint's"),
    "device": ("auto", "auto, cuda, mps or cpu"),
    "backend": ("torch", BACKEND_HELP),
    "cameras": ("wrist=/so101/wrist/image_raw,overhead=/so101/overhead/image_raw",
                "dataset camera name = topic, comma separated; a topic ending in /compressed is a CompressedImage; "
                "empty for a checkpoint without cameras"),
    "environment_state_topic": ("/" + ENVIRONMENT_STATE_TOPIC,
                                "sim: the object poses (PoseArray) that the sim driver publishes, for checkpoints "
                                "trained on observation.environment_state"),
    "exclude_cameras": ("", "camera names to leave out, comma separated (a wrist-only checkpoint: overhead)"),
    "task": (DEFAULT_TASK, "language instruction (SmolVLA)"),
    "fps": (30.0, "rate of the chunk's points, Hz: the dataset's fps", (1.0, 1000.0)),
    "mode": ("async", "sync, async, temporal_ensemble, or rtc (SmolVLA real-time chunking)"),
    "async_margin": (0.1, "async: s of slack on top of the p95 latency (observation to chunk) before the chunk runs out",
                     (0.0, 10.0)),
    "max_obs_age": (0.2, "s: older images or joint states mean no inference", (0.001, 60.0)),
    "max_obs_skew": (0.1, "s: largest gap between the stamps of one observation's parts", (0.0, 60.0)),
    "calibration": ("driver", "the arm's LeRobot calibration: driver (the one the driver publishes on "
                              "/so101/arm), or sim, a calibration id, a JSON path (checked against the driver's)"),
    "arm_units": ("degrees", "with a calibration given here: LeRobot units of the arm joints, degrees or range_m100_100"),
    "arm_timeout": (30.0, "calibration driver: s to wait at start-up for the driver's description of the arm",
                    (0.0, 3600.0)),
    "enabled": (True, "act from start-up; false waits for so101/policy/enable (the eval manager's start)"),
    "lockstep": (False, "sim: consume every tick of a lockstep sim driver, inference charged latency_ticks"),
    "latency_ticks": (3, "lockstep: control ticks each inference is charged (-1: the latency measured here)",
                      (-1, 1000)),
}


@dataclass
class PolicyStats:
    chunks_published: int = 0
    points_stale_at_publish: int = 0  # points already due when their chunk went out (the driver skips them)
    inferences: int = 0
    stale_observations: int = 0
    last_stale_reason: str = ""
    inference_errors: int = 0
    last_error: str = ""
    latency_p50_ms: float = 0.0
    latency_p95_ms: float = 0.0


def parse_cameras(spec: str, excluded: str) -> dict[str, str]:
    """'wrist=/a,overhead=/b' minus the excluded names, as {camera: topic}."""
    cameras = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, sep, topic = item.partition("=")
        if not sep or not name.strip() or not topic.strip():
            raise ValueError(f"cameras entries look like name=/topic; got {item!r} in {spec!r}.")
        cameras[name.strip()] = topic.strip()
    for name in filter(None, (part.strip() for part in excluded.split(","))):
        if name not in cameras:
            raise ValueError(f"exclude_cameras names '{name}', which is not among the cameras {list(cameras)}.")
        del cameras[name]
    return cameras


class PolicyNode(Node):
    def __init__(self, **node_options):
        super().__init__("so101_policy", **node_options)
        p = declare_parameters(self, PARAMETERS)
        if not p["checkpoint"]:
            raise CheckpointError("Set checkpoint:=<pretrained_model folder or hub repo id>.")
        self.cameras = parse_cameras(p["cameras"], p["exclude_cameras"])
        mode = inference_mode(p["mode"])
        backend = inference_backend(p["backend"])  # a wrong name stops before the checkpoint loads
        loaded = with_backend(load_policy(p["checkpoint"], p["device"], p["policy_type"] or None,
                                          real_time_chunking=mode is InferenceMode.RTC), backend)
        check_compatibility(loaded.config, tuple(self.cameras))
        if (threads := processor_threads(loaded)) is not None:
            torch.set_num_threads(threads)
        self.fps = float(p["fps"])
        data, why_not = training_data(p["checkpoint"])
        if data is None:
            self.get_logger().warning(f"joint names and fps of the training data not checked: {why_not}")
        else:
            check_training_data(data, self.fps)
            sizes = ", ".join(f"{camera} {w}x{h}" for camera, (h, w) in sorted(data.frame_sizes.items()))
            self.get_logger().info(f"trained on {data.repo_id} ({data.robot_type or 'robot type not given'}, "
                                   f"{data.fps:g} fps, {sizes or 'no cameras'}): joint names and order match "
                                   "the SO-101's; each camera must send its training frame size")
        self.joint_model, self._arm_source = self._joint_model(p)
        self.get_logger().info(check_value_ranges(normalization_stats(loaded), self.joint_model))
        self._wrong_arm: str | None = None
        # A calibration given here acts only once the driver's agrees, or when no driver has spoken
        # for arm_timeout (a graph without one).
        self._arm_confirmed = self._arm_source == FROM_DRIVER
        self.scheduler = ChunkScheduler(mode, self.fps, margin=p["async_margin"])
        self.predictor = ChunkPredictor(loaded, self.joint_model, p["task"],
                                        full_chunk=self.scheduler.mode is InferenceMode.TEMPORAL_ENSEMBLE,
                                        training_frame_sizes=data.frame_sizes if data else None)
        self.takes_environment_state = takes_environment_state(loaded.config)
        self.stale_guard = StaleDataGuard(self.scheduler.mode, lockstep=bool(p["lockstep"]))
        self.assembler = ObservationAssembler(tuple(self.cameras), self.joint_model, p["max_obs_age"],
                                              p["max_obs_skew"], environment_state=self.takes_environment_state)
        self.stats = PolicyStats()
        self._lock = threading.Lock()
        self._busy = False
        self._episode = 0
        self._enabled = bool(p["enabled"])
        self._driving = False  # a chunk sent is (or may still be) moving the arm
        self._fresh_cameras: set[str] = set()
        self._last_evaluation = 0.0
        self._worker = InferenceThread()
        warm_up_s = self._warm_up(backend.value)
        # From now on: the driver's description of the arm can only arrive once the node listens.
        self._arm_wait_until = time.monotonic() + p["arm_timeout"]
        self.lockstep: LockstepInference | None = None
        if p["lockstep"]:
            self.lockstep = LockstepInference(p["latency_ticks"], 1.0 / self.fps)
            self._tick_inputs = TickInputs.of(["joint_states", *self.cameras,
                                               *((ENVIRONMENT_STATE,) if self.takes_environment_state else ())])
            self._participant = LockstepParticipant(self)

        self.chunk_pub = self.create_publisher(JointTrajectory, "so101/action_chunk", 10)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, "diagnostics", 10)
        self.create_subscription(JointState, "joint_states", self._on_joint_state, 10)
        # Best effort takes the newest frame (REP-2003); lockstep must see every tick's frame.
        image_qos = TICK_INPUT_QOS if self.lockstep else qos_profile_sensor_data
        for camera, topic in self.cameras.items():
            if topic.endswith("/compressed"):
                self.create_subscription(CompressedImage, topic, lambda m, c=camera: self._on_image(c, m, True),
                                         image_qos)
            else:
                self.create_subscription(Image, topic, lambda m, c=camera: self._on_image(c, m, False), image_qos)
        if self.takes_environment_state:
            self.create_subscription(PoseArray, p["environment_state_topic"], self._on_environment_state,
                                     TICK_INPUT_QOS if self.lockstep else 10)
        if self._arm_source != FROM_DRIVER:  # given here: the driver's, when one speaks, must agree
            self.create_subscription(String, ARM_TOPIC, self._on_arm_description, LATCHED_QOS)
        self.create_service(Trigger, "so101/policy/reset", self._on_reset)
        self.create_service(SetBool, "so101/policy/enable", self._on_enable)
        # Inference is driven by the data: it is considered when every camera has a new frame.
        # The timer only notices when data stops coming, to say so on /diagnostics.
        self.create_timer(0.2, self._check_for_silence)
        self.create_timer(1.0, self._publish_diagnostics)
        self.get_logger().info(
            f"{loaded.type} from {loaded.source} on {loaded.device} ({describe_backend(loaded)}), "
            f"mode {self.scheduler.mode.value}, "
            f"cameras {self.cameras}"
            + (f", the sim's object state from {p['environment_state_topic']}" if self.takes_environment_state else "")
            + f", {self.predictor.actions_per_chunk} actions a chunk at {self.fps:g} Hz, "
            f"first chunk computed at start-up in {warm_up_s:.2f} s"
            + (f", lockstep ({p['latency_ticks']} ticks of latency charged)" if self.lockstep else "")
        )

    def _warm_up(self, backend: str) -> float:
        """The first chunk, now: what the backend builds at its first chunk (compiled graphs, a CUDA graph)
        is built before any episode, on the thread that computes every chunk, and a failure stops here."""
        # A compiled backend compiles now, for seconds to minutes: say so, or the node looks hung.
        self.get_logger().info(f"computing the first chunks at start-up on backend {backend}")
        try:
            return self._worker.call(self.predictor.warm_up)
        except Exception as error:  # noqa: BLE001 - whatever the backend raised, said in one line at start-up
            raise CheckpointError(f"the first chunk, computed at start-up on backend {backend}, failed: "
                                  f"{error_summary(error)}") from error

    def _now(self) -> float:
        return time_to_sec(self.get_clock().now().to_msg())

    # -- inputs ---------------------------------------------------------------------------------
    def _on_joint_state(self, msg: JointState) -> None:
        try:
            positions = in_joint_order(msg.name, msg.position)
        except ValueError as error:
            self._note_stale(f"/joint_states: {error}")
            return
        self.assembler.update_joints(time_to_sec(msg.header.stamp), positions)
        if self.lockstep:
            self._on_tick_input("joint_states", stamp_ns(msg.header.stamp))

    def _on_image(self, camera: str, msg, compressed: bool) -> None:
        try:
            rgb = compressed_to_rgb(msg) if compressed else image_to_rgb(msg)
        except ImageFormatError as error:
            self._note_stale(f"camera '{camera}': {error}")
            return
        # A frame size the checkpoint was not trained on stops the node before anything is inferred
        # from it (the first frame, at start-up).
        self.predictor.check_frame_size(camera, rgb)
        self.assembler.update_image(camera, time_to_sec(msg.header.stamp), rgb)
        if self.lockstep:
            self._on_tick_input(camera, stamp_ns(msg.header.stamp))
            return
        self._fresh_cameras.add(camera)
        if self._fresh_cameras.issuperset(self.cameras):
            self._fresh_cameras.clear()
            self._consider_inference()

    def _on_environment_state(self, msg: PoseArray) -> None:
        try:
            state = environment_state_from_msg(msg)
        except ValueError as error:
            self._note_stale(f"environment state: {error}")
            return
        self.assembler.update_environment_state(time_to_sec(msg.header.stamp), state)
        if self.lockstep:
            self._on_tick_input(ENVIRONMENT_STATE, stamp_ns(msg.header.stamp))
        elif not self.cameras:  # no frame to wait for: the poses drive inference (the stamps' skew is checked)
            self._consider_inference()

    def _note_stale(self, reason: str, cause: str | None = None, waiting: bool = False) -> None:
        notice = self.stale_guard.notice(reason, cause, waiting)
        if notice is not None:
            level, line = notice
            # One call site per severity: rclpy refuses a call site whose severity changes ("Logger severity
            # cannot be changed between calls"), which ended the node at its first stall after waiting.
            if level == logging.INFO:
                self.get_logger().info(line)
            else:
                self.get_logger().warning(line)
        self.stats.stale_observations += 1
        self.stats.last_stale_reason = reason

    # -- inference ------------------------------------------------------------------------------
    def _check_for_silence(self) -> None:
        now = self._now()
        if now - self._last_evaluation > 0.2:
            observation = self.assembler.assemble(now)
            if isinstance(observation, StaleObservation):
                self._note_stale(observation.reason, observation.cause, observation.waiting)
                self._stop_acting_on_stale_data()

    def _stop_acting_on_stale_data(self) -> None:
        """A camera (or the joint states) stopped: the chunks sent were planned to be replaced by ones from newer
        data that is not coming. The driver drops them and holds; fresh data brings the next chunk."""
        with self._lock:
            if not self.stale_guard.cancels(self._driving):
                return
            self._episode += 1  # a chunk being computed now is not published either
            self.scheduler.reset()  # the next fresh observation starts a chunk at once
            self.predictor.reset()  # RTC must not continue a plan the arm did not carry out
        self._cancel_sent_chunks()
        self.get_logger().info("chunks cancelled, the arm holds: no fresh observation; acting again when one comes")

    def _consider_inference(self) -> None:
        now = self._now()
        self._last_evaluation = now
        with self._lock:
            if not self._acting() or not self.scheduler.should_infer(now, self._busy):
                return
            observation = self.assembler.assemble(now)
            if not isinstance(observation, StaleObservation):
                self._busy = True
                episode = self._episode
        if isinstance(observation, StaleObservation):  # the joint states stopped while frames come
            self._note_stale(observation.reason, observation.cause, observation.waiting)
            self._stop_acting_on_stale_data()
            return
        self._worker.submit(self._infer, observation, episode)

    def _infer(self, observation: Observation, episode: int) -> None:
        try:
            chunk, latency = self.predictor.predict(observation, self.scheduler.latency_percentile(95), self.fps)
        except INFERENCE_ERRORS as error:
            self._note_inference_error(error)
            with self._lock:
                self._busy = False
            return
        with self._lock:
            self._busy = False
            self.stats.inferences += 1
            now = self._now()
            # What async must cover is the observation's age when its chunk goes out (frames in transit, the
            # wait for a free worker, the compute), not the compute alone.
            self.scheduler.record_latency(max(latency, now - observation.stamp))
            if episode != self._episode:
                return  # a reset came while this chunk was computed: it belongs to the old episode
            self._publish_chunk(observation, chunk, now)

    def _publish_chunk(self, observation: Observation, chunk, now: float) -> None:
        self.chunk_pub.publish(joint_trajectory_msg(observation.stamp, JOINT_NAMES, chunk, 1.0 / self.fps))
        self._driving = True
        self.stale_guard.fresh()
        self.scheduler.chunk_published(observation.stamp, len(chunk))
        self.stats.chunks_published += 1
        due = math.floor((now - observation.stamp) * self.fps + 1e-6) + 1
        self.stats.points_stale_at_publish += min(len(chunk), max(0, due))

    def _note_inference_error(self, error: BaseException) -> None:
        self.stats.inference_errors += 1
        if str(error) != self.stats.last_error:
            self.get_logger().error(f"inference failed: {error}")
        self.stats.last_error = str(error)

    # -- lockstep (sim) -------------------------------------------------------------------------
    def _on_tick_input(self, name: str, tick_ns: int) -> None:
        tick = self._tick_inputs.update(name, tick_ns)
        if tick is not None:
            self._consume_tick(tick)
        elif self._tick_inputs.is_repeat(tick_ns):
            self._participant.repeat()

    def _consume_tick(self, tick_ns: int) -> None:
        """Every input of this tick is in: publish what is due, maybe start an inference, then say so."""
        now = self._last_evaluation = tick_ns * 1e-9
        self.lockstep.consume_tick(tick_ns)
        chunk_ns = self._publish_due_chunk(now)
        with self._lock:
            starts = self._acting() and self.scheduler.should_infer(now, self.lockstep.in_flight is not None)
            observation = self.assembler.assemble(now) if starts else None
            if isinstance(observation, StaleObservation):
                self._note_stale(observation.reason, observation.cause, observation.waiting)
            elif observation is not None:
                self.lockstep.start(lambda o: self._worker.submit(self._compute, o), observation, self._episode)
        chunk_ns = self._publish_due_chunk(now) or chunk_ns  # one charged a single tick is due at once
        self._participant.consumed(tick_ns, chunk_ns)

    def _compute(self, observation: Observation):
        # RTC plans with the latency the previous inferences were charged (one tick before the first).
        expected = self.scheduler.latency_percentile(95) or self.lockstep.tick_period
        return self.predictor.predict(observation, expected, self.fps)

    def _publish_due_chunk(self, now: float) -> int | None:
        """Publish the chunk due before this tick is acknowledged; its stamp (ns), or None."""
        due: InFlight | None = self.lockstep.take_due()
        if due is None:
            return None
        error = due.future.exception()
        if error is not None:
            if not isinstance(error, INFERENCE_ERRORS):
                raise error
            self._note_inference_error(error)
            return None
        chunk, _ = due.future.result()
        with self._lock:
            self.stats.inferences += 1
            self.scheduler.record_latency(self.lockstep.charged_seconds(due))
            if due.episode != self._episode or not self._enabled:
                return None
            self._publish_chunk(due.observation, chunk, now)
        return stamp_ns(sec_to_time(due.observation.stamp))

    # -- episodes and diagnostics ---------------------------------------------------------------
    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        with self._lock:
            if self.lockstep:
                self.lockstep.drop()  # before the predictor resets: the inference under way uses it
            self._episode += 1
            self._driving = False  # the driver starts the episode holding
            self.scheduler.reset()
            self.assembler.clear()
            self.predictor.reset()
        response.success = True
        response.message = "policy state cleared"
        return response

    def _joint_model(self, p: dict):
        """The arm's joint model and where it came from: the driver's description, or the calibration given."""
        if p["calibration"] != FROM_DRIVER:
            return joint_model_for(p["calibration"], p["arm_units"]), p["calibration"]
        received, msg = wait_for_message(String, self, ARM_TOPIC, qos_profile=LATCHED_QOS,
                                         time_to_wait=p["arm_timeout"])
        if not received:
            raise UnitError(
                f"No driver described the arm on {ARM_TOPIC} within {p['arm_timeout']:g} s. Start the driver "
                "(it publishes its calibration and units there), or give calibration:=<sim | id | JSON path> "
                "and arm_units for a graph without one."
            )
        joint_model, source = joint_model_from(msg.data)
        self.get_logger().info(f"arm: {source}, arm joints in {joint_model.arm_units.value} (from the driver)")
        return joint_model, FROM_DRIVER

    def _acting(self) -> bool:
        """Enabled, and on the arm its units are for (called under the lock)."""
        if not self._enabled or self._wrong_arm:
            return False
        if not self._arm_confirmed and time.monotonic() > self._arm_wait_until:
            self._arm_confirmed = True
            self.get_logger().warning(f"no driver described the arm on {ARM_TOPIC}: acting on the calibration "
                                      f"given, {self._arm_source}")
        return self._arm_confirmed

    def _on_arm_description(self, msg: String) -> None:
        try:
            driver, source = joint_model_from(msg.data)
            check_same_arm(self.joint_model, self._arm_source, driver, source)
            with self._lock:
                self._arm_confirmed = True
        except UnitError as error:
            with self._lock:
                self._wrong_arm = str(error)  # _acting() says no from now on
                self._episode += 1  # and a chunk being computed is not published
            self._cancel_sent_chunks()
            self.get_logger().error(f"{error} The policy stays paused.")

    def _on_enable(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        if request.data and self._wrong_arm:
            response.success, response.message = False, self._wrong_arm
            return response
        with self._lock:
            pausing = self._enabled and not request.data
            if pausing:
                self._episode += 1  # a chunk being computed now is not published
                if self.lockstep:
                    self.lockstep.drop()
            self._enabled = bool(request.data)
        if pausing:
            self._cancel_sent_chunks()
        response.success = True
        response.message = "acting" if request.data else "paused: no inference until enabled"
        self.get_logger().info(f"policy {response.message}")
        return response

    def _cancel_sent_chunks(self) -> None:
        """Paused: the driver drops the chunks already sent (an empty trajectory) and holds where it is going."""
        self._driving = False
        self.chunk_pub.publish(joint_trajectory_msg(self._now(), JOINT_NAMES, np.empty((0, len(JOINT_NAMES))),
                                                    1.0 / self.fps))

    def _publish_diagnostics(self) -> None:
        self.stats.latency_p50_ms = round(self.scheduler.latency_percentile(50) * 1e3, 1)
        self.stats.latency_p95_ms = round(self.scheduler.latency_percentile(95) * 1e3, 1)
        level, message = DiagnosticStatus.OK, "running"
        if self.stats.inference_errors:
            level, message = DiagnosticStatus.ERROR, self.stats.last_error
        elif self.stats.chunks_published == 0 and self.stats.stale_observations:
            level, message = DiagnosticStatus.WARN, self.stats.last_stale_reason
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        array.status = [diagnostic_status("so101_policy: inference", self.predictor.loaded.type, level, message,
                                          asdict(self.stats))]
        self.diagnostics_pub.publish(array)

    def close(self) -> None:
        self._worker.shutdown()


USER_ERRORS = (CheckpointError, UnitError, ValueError, FileNotFoundError)


def main(args=None) -> int:
    return run_node(PolicyNode, "so101_policy", USER_ERRORS, args)


if __name__ == "__main__":
    sys.exit(main())
