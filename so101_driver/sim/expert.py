"""A scripted pick-and-place expert for the simulated SO-101, in joint space.

Waypoints for the grasp point (between the jaw pads) are solved by damped least squares over the
five arm joints with MuJoCo's Jacobian: position, jaws pointing down, and the jaws closing across
two opposite faces of the cube (the pair nearest to tangential around the base). Joint limits are
enforced at every iteration, so where the wrist cannot point straight down the solver settles on
an angled approach. The waypoints are joined by minimum-jerk joint motions at the control rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from ..joint_model import JOINT_NAMES
from .scene import CUBE_HALF_SIZE
from .sim_arm import SimArm

ARM_DOF = 5
DOWN = np.array([0.0, 0.0, -1.0])


@dataclass(frozen=True)
class ExpertConfig:
    hover_height: float = 0.08  # grasp point above the table while travelling
    grasp_height: float = CUBE_HALF_SIZE * 0.9
    place_height: float = CUBE_HALF_SIZE + 0.008
    gripper_open: float = 0.85  # rad; the pads are 40 mm apart at 0.46
    gripper_closed: float = -0.05  # rad; below the cube's width, so the pads squeeze
    travel_speed: float = 0.18  # m/s of the grasp point
    max_joint_speed: float = 2.0  # rad/s at the peak of a minimum-jerk move
    min_segment: float = 0.5  # s
    gripper_time: float = 0.6  # s to open or close
    settle_time: float = 0.3  # s of stillness around grasp and release


@dataclass(frozen=True)
class _Segment:
    target: np.ndarray  # joint positions at the end of the segment
    duration: float


class GraspIK:
    """Damped-least-squares IK for the grasp point and the jaw axes of the SO-101."""

    def __init__(self, model: mujoco.MjModel, damping: float = 1e-3, iterations: int = 120):
        self.model = model
        self.data = mujoco.MjData(model)
        self.damping = damping
        self.iterations = iterations
        self.gripper_body = model.body("gripper").id
        self.dofs = np.array([model.joint(n).dofadr[0] for n in JOINT_NAMES[:ARM_DOF]])
        self.qpos = np.array([model.joint(n).qposadr[0] for n in JOINT_NAMES])
        self.lower = model.jnt_range[[model.joint(n).id for n in JOINT_NAMES[:ARM_DOF]], 0]
        self.upper = model.jnt_range[[model.joint(n).id for n in JOINT_NAMES[:ARM_DOF]], 1]
        self.grasp_offset, self.closing_axis = self._jaw_geometry()

    def _jaw_geometry(self) -> tuple[np.ndarray, np.ndarray]:
        """Grasp point and closing direction in the gripper frame, jaws at about the cube's width."""
        self.data.qpos[:] = 0.0
        self.data.qpos[self.qpos[-1]] = 0.3
        mujoco.mj_kinematics(self.model, self.data)
        rotation = self.data.xmat[self.gripper_body].reshape(3, 3)
        origin = self.data.xpos[self.gripper_body]
        fixed = rotation.T @ (self.data.geom("fixed_jaw_pad").xpos - origin)
        moving = rotation.T @ (self.data.geom("moving_jaw_pad").xpos - origin)
        closing = (fixed - moving) / np.linalg.norm(fixed - moving)
        return (fixed + moving) / 2.0, closing

    def frame(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Grasp point, approach axis (jaws' pointing direction) and closing axis in the world."""
        self.data.qpos[self.qpos] = q
        mujoco.mj_kinematics(self.model, self.data)
        rotation = self.data.xmat[self.gripper_body].reshape(3, 3)
        point = self.data.xpos[self.gripper_body] + rotation @ self.grasp_offset
        return point, -rotation[:, 2], rotation @ self.closing_axis

    def solve(self, seed: np.ndarray, point: np.ndarray, closing: np.ndarray,
              weights: tuple[float, float, float] = (1.0, 0.15, 0.05)) -> np.ndarray:
        """Joint positions (6, gripper copied from seed) reaching `point`, pointing down, closing along `closing`."""
        q = np.array(seed, dtype=np.float64)
        w_point, w_approach, w_closing = weights
        jacp = np.zeros((3, self.model.nv))
        jacr = np.zeros((3, self.model.nv))
        for _ in range(self.iterations):
            current, approach, closing_now = self.frame(q)
            mujoco.mj_comPos(self.model, self.data)
            mujoco.mj_jac(self.model, self.data, jacp, jacr, current, self.gripper_body)
            jp, jr = jacp[:, self.dofs], jacr[:, self.dofs]
            # d(axis)/dt = omega x axis = -[axis]x omega
            j_approach = -_skew(approach) @ jr
            j_closing = -_skew(closing_now) @ jr
            # The closing axis is wanted either way round: aim at the nearer of +/- closing.
            closing_goal = closing if closing_now @ closing >= 0 else -closing
            jacobian = np.vstack([w_point * jp, w_approach * j_approach, w_closing * j_closing])
            error = np.concatenate([
                w_point * (point - current),
                w_approach * (DOWN - approach),
                w_closing * (closing_goal - closing_now),
            ])
            step = jacobian.T @ np.linalg.solve(jacobian @ jacobian.T + self.damping * np.eye(9), error)
            q[:ARM_DOF] = np.clip(q[:ARM_DOF] + step, self.lower, self.upper)
            if np.linalg.norm(point - current) < 2e-4 and np.linalg.norm(step) < 1e-5:
                break
        return q



def _skew(v: np.ndarray) -> np.ndarray:
    return np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])


def _min_jerk(s: np.ndarray) -> np.ndarray:
    return 10 * s**3 - 15 * s**4 + 6 * s**5


class ScriptedExpert:
    """Plans one pick-and-place for the arm's current episode; `action(k)` is the target at tick k."""

    def __init__(self, arm: SimArm, config: ExpertConfig | None = None):
        self.arm = arm
        self.config = config or ExpertConfig()
        self.ik = GraspIK(arm.model)
        self.period = arm.config.control_period
        self.plan = self._plan()

    def __len__(self) -> int:
        return len(self.plan)

    def action(self, tick: int) -> np.ndarray:
        """Joint targets in radians for control tick `tick` (held at the end of the plan)."""
        return self.plan[min(tick, len(self.plan) - 1)].copy()

    @staticmethod
    def _closing_direction(cube_yaw: float) -> np.ndarray:
        """Close across the faces whose normal is nearest the world x axis, in every episode.

        The cube's four side faces repeat every 90 degrees, so a choice of face pair is a jump of 90
        degrees of wrist roll somewhere. Chosen by the cube's own yaw, the jump sits at +/-45 degrees,
        the edge of the task's yaw range, and the grasp's roll is a continuous function of how the
        cube lies: a policy can learn it from demonstrations. (Chosen relative to the arm, e.g. the
        faces nearest tangential, the jump falls inside the range and demonstrations of nearly the
        same scene grasp 90 degrees apart, which a regressed policy averages into a grasp on the
        corners.)
        """
        yaw = (cube_yaw + np.pi / 4) % (np.pi / 2) - np.pi / 4
        return np.array([np.cos(yaw), np.sin(yaw), 0.0])

    def _plan(self) -> np.ndarray:
        c = self.config
        cube = self.arm.cube_position
        target = self.arm.target_position
        quat = self.arm.data.xquat[self.arm.model.body("cube").id]
        cube_yaw = 2.0 * np.arctan2(quat[3], quat[0])
        pick_closing = self._closing_direction(cube_yaw)
        place_closing = pick_closing  # the cube keeps its yaw on the way

        start = self.arm.joint_positions
        segments: list[_Segment] = []
        q = start.copy()

        def move_to(point, closing, gripper, duration=None):
            nonlocal q
            goal = self.ik.solve(q, point, closing)
            goal[-1] = gripper
            if duration is None:
                distance = np.linalg.norm(self.ik.frame(goal)[0] - self.ik.frame(q)[0])
                # A minimum-jerk move peaks at 1.875 times its mean speed.
                joint_time = 1.875 * np.abs(goal - q).max() / c.max_joint_speed
                duration = max(c.min_segment, distance / c.travel_speed, joint_time)
            segments.append(_Segment(goal, duration))
            q = goal

        def set_gripper(value, duration):
            nonlocal q
            goal = q.copy()
            goal[-1] = value
            segments.append(_Segment(goal, max(duration, 1.875 * abs(value - q[-1]) / c.max_joint_speed)))
            q = goal

        above_cube = np.array([cube[0], cube[1], c.hover_height])
        above_target = np.array([target[0], target[1], c.hover_height])
        set_gripper(c.gripper_open, c.gripper_time)
        move_to(above_cube, pick_closing, c.gripper_open)
        move_to(np.array([cube[0], cube[1], c.grasp_height]), pick_closing, c.gripper_open)
        set_gripper(q[-1], c.settle_time)
        set_gripper(c.gripper_closed, c.gripper_time)
        set_gripper(c.gripper_closed, c.settle_time)
        move_to(above_cube, pick_closing, c.gripper_closed)
        move_to(above_target, place_closing, c.gripper_closed)
        move_to(np.array([target[0], target[1], c.place_height]), place_closing, c.gripper_closed)
        set_gripper(c.gripper_closed, c.settle_time)
        set_gripper(c.gripper_open, c.gripper_time)
        move_to(above_target, place_closing, c.gripper_open)
        set_gripper(c.gripper_open, 1.0)
        return self._interpolate(start, segments)

    def _interpolate(self, start: np.ndarray, segments: list[_Segment]) -> np.ndarray:
        points = []
        previous = start
        for segment in segments:
            ticks = max(1, round(segment.duration / self.period))
            s = _min_jerk(np.arange(1, ticks + 1) / ticks)[:, None]
            points.append(previous + s * (segment.target - previous))
            previous = segment.target
        return np.concatenate(points)


def run_expert_episode(arm: SimArm, seed: int, config: ExpertConfig | None = None,
                       extra_ticks: int = 15) -> bool:
    """Reset to `seed`, execute the expert's plan, and say whether the episode succeeded."""
    arm.reset(seed=seed)
    expert = ScriptedExpert(arm, config)
    for tick in range(len(expert) + extra_ticks):
        arm.step(expert.action(tick))
    return bool(arm.status.success)
