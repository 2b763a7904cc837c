"""The scripted expert driving the simulated arm through the ROS graph, as a policy would.

Each episode: /so101/reset, then the expert's plan goes out on /so101/action_chunk in chunks of
`chunk_size` points, a new chunk every `chunk_stride` ticks, stamped with the plan time they start
at; the driver executes them on its own clock. /so101/episode_status says whether the cube ended
in the target. The expert reads the cube's pose from the simulation (it is privileged, as
scripted demonstrators are); everything else goes through the topics and services users see.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from so101_driver.joint_model import JOINT_NAMES
from so101_driver.ros_messages import joint_trajectory_msg, time_to_sec
from so101_driver.sim.expert import ScriptedExpert
from so101_driver.sim.scene import CAMERA_NAMES
from so101_driver.sim.sim_arm import SimArm

SETTLE_TIME = 0.5  # s after the plan's end before the outcome is read
SNAPSHOTS = 6


@dataclass
class EpisodeResult:
    episode: int
    seed: int
    success: bool
    duration_s: float
    chunks: int


def plan_chunk(plan: np.ndarray, start_tick: int, chunk_size: int) -> np.ndarray:
    """Rows start_tick .. start_tick + chunk_size of the plan, its last row repeated past its end."""
    indices = np.minimum(np.arange(start_tick, start_tick + chunk_size), len(plan) - 1)
    return plan[indices]


def results_table(results: list[EpisodeResult]) -> str:
    lines = ["| episode | seed | success | duration (s) | chunks |", "|---|---|---|---|---|"]
    lines += [f"| {r.episode} | {r.seed} | {'yes' if r.success else 'no'} | {r.duration_s:.1f} | {r.chunks} |"
              for r in results]
    successes = sum(r.success for r in results)
    lines.append(f"\nSuccess: {successes}/{len(results)}")
    return "\n".join(lines)


class ExpertDemoNode(Node):
    def __init__(self, arm: SimArm, episodes: int, output_dir: Path | None = None, chunk_size: int = 50,
                 chunk_stride: int = 25, fps: float = 30.0, **node_options):
        super().__init__("so101_expert_demo", **node_options)
        self.arm = arm
        self.episodes = episodes
        self.output_dir = output_dir
        self.chunk_size = chunk_size
        self.chunk_stride = chunk_stride
        self.period = 1.0 / fps
        self.results: list[EpisodeResult] = []
        self.done = False

        self.chunk_pub = self.create_publisher(JointTrajectory, "so101/action_chunk", 10)
        self.reset_client = self.create_client(Trigger, "so101/reset")
        self.status_client = self.create_client(Trigger, "so101/episode_status")
        self.latest_frames: dict[str, np.ndarray] = {}
        for camera in CAMERA_NAMES:
            self.create_subscription(Image, f"so101/{camera}/image_raw",
                                     lambda msg, c=camera: self._on_image(c, msg), qos_profile_sensor_data)
        self.snapshots: list[np.ndarray] = []

        self._state = "idle"
        self._plan: np.ndarray | None = None
        self._start = 0.0
        self._next_chunk_tick = 0
        self._chunks = 0
        self._seed = 0
        self.create_timer(self.period, self._on_timer)

    def _now(self) -> float:
        return time_to_sec(self.get_clock().now().to_msg())

    def _on_image(self, camera: str, msg: Image) -> None:
        self.latest_frames[camera] = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.width, 3)

    def _on_timer(self) -> None:
        if self._state == "idle" and self.reset_client.service_is_ready():
            self._state = "resetting"
            self.reset_client.call_async(Trigger.Request()).add_done_callback(self._on_reset)
        elif self._state == "running":
            self._run_episode()

    def _on_reset(self, future) -> None:
        self._seed = json.loads(future.result().message)["seed"]
        self._plan = ScriptedExpert(self.arm).plan
        self._start = self._now() + self.period  # first point one tick ahead: it is still due on arrival
        self._next_chunk_tick = 0
        self._chunks = 0
        self._state = "running"
        self._run_episode()

    def _run_episode(self) -> None:
        tick = max(0, math.floor((self._now() - self._start) / self.period))
        if tick >= self._next_chunk_tick and tick < len(self._plan):
            chunk = plan_chunk(self._plan, tick, self.chunk_size)
            self.chunk_pub.publish(joint_trajectory_msg(self._start + tick * self.period, JOINT_NAMES, chunk, self.period))
            self._chunks += 1
            self._next_chunk_tick = tick + self.chunk_stride
        self._take_snapshot(tick)
        if self._now() > self._start + len(self._plan) * self.period + SETTLE_TIME:
            self._state = "judging"
            self.status_client.call_async(Trigger.Request()).add_done_callback(self._on_status)

    def _take_snapshot(self, tick: int) -> None:
        if self.results or len(self.latest_frames) < len(CAMERA_NAMES):
            return  # the first episode only
        due = len(self.snapshots) * (len(self._plan) - 1) // (SNAPSHOTS - 1)
        if len(self.snapshots) < SNAPSHOTS and tick >= due:
            self.snapshots.append(np.concatenate([self.latest_frames[c] for c in CAMERA_NAMES], axis=0))

    def _on_status(self, future) -> None:
        result = EpisodeResult(
            episode=len(self.results), seed=self._seed, success=bool(future.result().success),
            duration_s=self._now() - self._start, chunks=self._chunks,
        )
        self.results.append(result)
        self.get_logger().info(f"episode {result.episode} (seed {result.seed}): "
                               f"{'success' if result.success else 'failure'}")
        if len(self.results) >= self.episodes:
            self._finish()
        else:
            self._state = "idle"

    def _finish(self) -> None:
        self.done = True
        if self.output_dir is None:
            return
        self.output_dir.mkdir(parents=True, exist_ok=True)
        (self.output_dir / "results.json").write_text(json.dumps([asdict(r) for r in self.results], indent=2))
        (self.output_dir / "results.md").write_text(results_table(self.results) + "\n")
        if self.snapshots:
            from PIL import Image as PILImage

            PILImage.fromarray(np.concatenate(self.snapshots, axis=1)).save(self.output_dir / "episode0_cameras.png")
