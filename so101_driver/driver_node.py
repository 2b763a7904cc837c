"""`driver_node`: the SO-101 (real or simulated) on ROS 2.

Publishes /joint_states (radians) every control tick and, in sim, both camera topics; executes
/so101/action_chunk (JointTrajectory) and /so101/joint_command (JointState) through one safety path;
serves /so101/reset and /so101/episode_status (sim); reports on /diagnostics. Torque goes off when
the node stops, whatever stops it.
"""

from __future__ import annotations

import json
import sys

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from .backends import BackendError
from .driver_core import DriverConfig, DriverCore, DriverStats
from .joint_model import JOINT_NAMES, ArmUnits, JointModel, calibration_path_for_id
from .node_runner import declare_parameters, run_node
from .ros_messages import (
    diagnostic_status,
    duration_to_sec,
    joint_state_msg,
    color_image_msg,
    sec_to_time,
    time_to_sec,
)
from .sim.scene import CAMERA_NAMES

PARAMETERS = {
    "backend": ("sim", "sim (MuJoCo) or feetech (the real arm)"),
    "port": ("/dev/ttyACM0", "feetech: serial port of the arm's bus adapter"),
    "calibration_id": ("", "feetech: id given to lerobot-calibrate; the file is found in lerobot's cache"),
    "calibration_file": ("", "feetech: path to a LeRobot calibration JSON (overrides calibration_id)"),
    "write_calibration": (False, "feetech: write the calibration file to the motors when they differ"),
    "arm_units": ("degrees", "LeRobot units of the arm joints: degrees or range_m100_100"),
    "control_rate": (30.0, "control ticks per second"),
    "camera_width": (224, "sim: camera image width"),
    "camera_height": (224, "sim: camera image height"),
    "seed": (0, "sim: seed of the first episode; each reset takes the next"),
    "watchdog_timeout": (0.5, "seconds without a command, past the last one's end, before holding"),
    "merge_mode": ("replace", "how a new chunk meets the old one: replace, crossfade, temporal_ensemble"),
    "crossfade_ticks": (5, "crossfade: ticks over which the new chunk fades in"),
    "ensemble_coeff": (0.01, "temporal_ensemble: weight exp(-coeff * i), i = 0 for the oldest chunk"),
    "diagnostics_period": (1.0, "seconds between /diagnostics messages"),
    "max_relative_target": (0.1, "largest target change per tick, radians: one value or six"),
}


class DriverNode(Node):
    def __init__(self, **node_options):
        super().__init__("so101_driver", **node_options)
        p = declare_parameters(self, PARAMETERS, dynamic=frozenset({"max_relative_target"}))
        self.backend_name = p["backend"]
        self.backend, joint_model = self._make_backend(p)
        config = DriverConfig(
            control_rate_hz=p["control_rate"],
            max_relative_target=_max_relative_target(p["max_relative_target"]),
            watchdog_timeout=p["watchdog_timeout"],
            merge_mode=p["merge_mode"],
            crossfade_ticks=p["crossfade_ticks"],
            ensemble_coeff=p["ensemble_coeff"],
        )
        self.core = DriverCore(self.backend, joint_model, config, logger=self.get_logger())
        self.core.start()
        try:
            self._setup_ros_interfaces(p, config)
        except Exception:
            self.core.stop()
            raise

    def _setup_ros_interfaces(self, p: dict, config: DriverConfig) -> None:
        self._reported = DriverStats()

        self.joint_state_pub = self.create_publisher(JointState, "joint_states", 10)
        # What was sent to the servos each tick, after the safety path: a dataset's "action".
        self.joint_targets_pub = self.create_publisher(JointState, "so101/joint_targets", 10)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, "diagnostics", 10)
        self.camera_pubs = {}
        if self.is_sim:
            self.camera_pubs = {
                camera: self.create_publisher(Image, f"so101/{camera}/image_raw", qos_profile_sensor_data)
                for camera in CAMERA_NAMES
            }
            self.create_service(Trigger, "so101/reset", self._on_reset)
            self.create_service(Trigger, "so101/episode_status", self._on_episode_status)
        self.create_subscription(JointTrajectory, "so101/action_chunk", self._on_chunk, 10)
        self.create_subscription(JointState, "so101/joint_command", self._on_joint_command, 10)
        self.create_timer(1.0 / config.control_rate_hz, self._on_tick)
        self.create_timer(p["diagnostics_period"], self._publish_diagnostics)
        self.get_logger().info(
            f"SO-101 driver up: backend={self.backend_name}, {config.control_rate_hz:g} Hz, "
            f"merge_mode={config.merge_mode.value}"
        )

    @property
    def is_sim(self) -> bool:
        return self.backend_name == "sim"

    def _make_backend(self, p: dict):
        arm_units = ArmUnits(p["arm_units"])
        if p["backend"] == "sim":
            from .backends.sim import SimBackend
            from .sim.scene import SceneConfig
            from .sim.sim_arm import SimArm

            arm = SimArm(SceneConfig(image_width=p["camera_width"], image_height=p["camera_height"],
                                     control_period=1.0 / p["control_rate"]))
            return SimBackend(arm, seed=p["seed"]), JointModel.for_sim(arm_units)
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
        return time_to_sec(self.get_clock().now().to_msg())

    # -- control --------------------------------------------------------------------------------
    def _on_tick(self) -> None:
        now = self._now()
        stamp = sec_to_time(now)
        # Frames show the arm in the state the tick reads, so images and joints share one stamp.
        frames = {camera: self.backend.render(camera) for camera in self.camera_pubs}
        result = self.core.tick(now)
        if result.positions is not None:
            velocities = self.backend.read_velocities() if self.is_sim else None
            self.joint_state_pub.publish(joint_state_msg(stamp, JOINT_NAMES, result.positions, velocities))
        if result.target is not None:
            self.joint_targets_pub.publish(joint_state_msg(stamp, JOINT_NAMES, result.target))
        for camera, frame in frames.items():
            self.camera_pubs[camera].publish(color_image_msg(stamp, frame, f"so101_{camera}_camera"))

    def _on_chunk(self, msg: JointTrajectory) -> None:
        self.core.submit_chunk(
            msg.joint_names,
            time_to_sec(msg.header.stamp),
            [duration_to_sec(point.time_from_start) for point in msg.points],
            [list(point.positions) for point in msg.points],
            now=self._now(),
        )

    def _on_joint_command(self, msg: JointState) -> None:
        self.core.submit_position(msg.name, list(msg.position), now=self._now())

    # -- episodes (sim) -------------------------------------------------------------------------
    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        status = self.backend.reset()
        self.core.new_episode(self.backend.read_positions())
        response.success = True
        response.message = json.dumps(status.as_dict())
        self.get_logger().info(f"New sim episode, seed {status.seed}")
        return response

    def _on_episode_status(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        """success = the episode's task succeeded; message = the task status as JSON."""
        status = self.backend.status
        response.success = bool(status.success)
        response.message = json.dumps(status.as_dict())
        return response

    # -- diagnostics ----------------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        stats, before = self.core.stats, self._reported
        if stats.bus_errors > before.bus_errors:
            level, message = DiagnosticStatus.ERROR, f"bus errors: {stats.last_bus_error}"
        elif stats.commands_rejected > before.commands_rejected:
            level, message = DiagnosticStatus.WARN, stats.last_rejection
        elif stats.watchdog_trips > before.watchdog_trips:
            level, message = DiagnosticStatus.WARN, "watchdog: holding position, no commands"
        else:
            level, message = DiagnosticStatus.OK, "running"
        self._reported = DriverStats(**stats.as_dict())
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        array.status = [diagnostic_status("so101_driver: control", f"so101_{self.backend_name}", level, message,
                                          stats.as_dict())]
        self.diagnostics_pub.publish(array)

    def close(self) -> None:
        """Torque off. Safe to call more than once."""
        self.core.stop()


def _max_relative_target(value) -> float | list[float]:
    if isinstance(value, (int, float)):
        return float(value)
    values = [float(v) for v in value]
    if len(values) != len(JOINT_NAMES):
        raise ValueError(
            f"max_relative_target takes one value or {len(JOINT_NAMES)} ({list(JOINT_NAMES)}), got {values}."
        )
    return values


def main(args=None) -> int:
    return run_node(DriverNode, "so101_driver", (BackendError, ValueError), args)


if __name__ == "__main__":
    sys.exit(main())
