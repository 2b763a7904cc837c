"""The simulated SO-101 and its pick-and-place task: physics, cameras, seeded resets, success."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import mujoco
import numpy as np

from ..environment_state import environment_state
from ..joint_model import JOINT_NAMES
from .scene import CAMERA_NAMES, CUBE_HALF_SIZE, TARGET_RADIUS, SceneConfig, build_scene, physics_substeps
from .task_variants import DEFAULT_OVERHEAD_VIEW, DEFAULT_VARIANT, TaskVariant, overhead_view, task_variant

# Arm raised above the workspace, jaws half open: where every episode starts.
HOME_POSITION = np.array([0.0, -1.2, 1.1, 1.0, 0.0, 0.6])
LIFT_HEIGHT = 0.02  # above its resting height, for the cube to count as lifted
REST_SPEED = 0.02  # m/s
ARM_GRIPPER_BODIES = ("gripper", "moving_jaw_so101_v1")


@dataclass
class TaskStatus:
    cube_position: np.ndarray
    target_position: np.ndarray
    lifted: bool = False
    released: bool = False
    at_rest: bool = False
    in_target: bool = False
    success: bool = False
    steps: int = 0
    seed: int | None = None
    variant: str = DEFAULT_VARIANT
    overhead_view: str = DEFAULT_OVERHEAD_VIEW  # what the sim's overhead camera frames: the results record it

    def as_dict(self) -> dict:
        return {
            "success": bool(self.success), "lifted": bool(self.lifted), "released": bool(self.released),
            "at_rest": bool(self.at_rest), "in_target": bool(self.in_target), "steps": self.steps, "seed": self.seed,
            "variant": self.variant, "overhead_view": self.overhead_view,
            "cube_position": [round(float(v), 4) for v in self.cube_position],
            "target_position": [round(float(v), 4) for v in self.target_position],
        }


@dataclass
class SimArm:
    """MuJoCo SO-101 stepping one control period at a time. Joint arrays follow JOINT_NAMES."""

    config: SceneConfig = field(default_factory=SceneConfig)
    variant: TaskVariant = field(default_factory=lambda: task_variant(DEFAULT_VARIANT))
    overhead_view: str = DEFAULT_OVERHEAD_VIEW  # cell or workspace (task_variants.OVERHEAD_VIEWS)

    def __post_init__(self):
        look_at, fovy = overhead_view(self.overhead_view, self.variant)
        self.config = replace(self.config, overhead_look_at=look_at, overhead_fovy=fovy)
        self.model = build_scene(self.config)
        self.data = mujoco.MjData(self.model)
        self.substeps = physics_substeps(self.model, self.config.control_period)
        self._qpos = np.array([self.model.joint(n).qposadr[0] for n in JOINT_NAMES])
        self._qvel = np.array([self.model.joint(n).dofadr[0] for n in JOINT_NAMES])
        self._actuators = np.array([self.model.actuator(n).id for n in JOINT_NAMES])
        self._ctrl_range = self.model.actuator_ctrlrange[self._actuators]
        cube_joint = self.model.joint("cube")
        self._cube_qpos = cube_joint.qposadr[0]
        self._cube_qvel = cube_joint.dofadr[0]
        self._cube_body = self.model.body("cube").id
        self._target_mocap = self.model.body("target").mocapid[0]
        self._gripper_bodies = {self.model.body(n).id for n in ARM_GRIPPER_BODIES}
        self._renderer: mujoco.Renderer | None = None
        self.status = TaskStatus(np.zeros(3), np.zeros(3))
        self.reset(seed=0)

    # -- episode --------------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> TaskStatus:
        """Arm at home, cube and target at seeded random places; returns the new task status."""
        rng = np.random.default_rng(seed)
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[self._qpos] = HOME_POSITION
        self.data.ctrl[self._actuators] = HOME_POSITION
        cube_xy, yaw, target_xy = self.variant.sample(rng)
        self.data.qpos[self._cube_qpos:self._cube_qpos + 7] = [
            *cube_xy, CUBE_HALF_SIZE, np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)
        ]
        self.data.mocap_pos[self._target_mocap] = [*target_xy, 0.0]
        mujoco.mj_forward(self.model, self.data)
        self.status = TaskStatus(self.cube_position, self.target_position, seed=seed, variant=self.variant.name,
                                 overhead_view=self.overhead_view)
        return self.status

    # -- control --------------------------------------------------------------------------------
    @property
    def time(self) -> float:
        return float(self.data.time)

    @property
    def joint_positions(self) -> np.ndarray:
        return self.data.qpos[self._qpos].copy()

    @property
    def joint_velocities(self) -> np.ndarray:
        return self.data.qvel[self._qvel].copy()

    def step(self, targets: np.ndarray) -> TaskStatus:
        """Hold these joint targets (radians) for one control period."""
        self.data.ctrl[self._actuators] = np.clip(targets, self._ctrl_range[:, 0], self._ctrl_range[:, 1])
        mujoco.mj_step(self.model, self.data, nstep=self.substeps)
        return self._update_status()

    # -- task -----------------------------------------------------------------------------------
    @property
    def cube_position(self) -> np.ndarray:
        return self.data.xpos[self._cube_body].copy()

    @property
    def cube_quaternion(self) -> np.ndarray:
        """The cube's orientation (w, x, y, z) in the world."""
        return self.data.xquat[self._cube_body].copy()

    @property
    def target_position(self) -> np.ndarray:
        return self.data.mocap_pos[self._target_mocap].copy()

    @property
    def environment_state(self) -> np.ndarray:
        """The privileged object state (so101_driver.environment_state) as it is now."""
        return environment_state(self.cube_position, self.cube_quaternion, self.target_position)

    def cube_touches_gripper(self) -> bool:
        for contact in self.data.contact[: self.data.ncon]:
            bodies = {self.model.geom_bodyid[contact.geom1], self.model.geom_bodyid[contact.geom2]}
            if self._cube_body in bodies and bodies & self._gripper_bodies:
                return True
        return False

    def _update_status(self) -> TaskStatus:
        s = self.status
        s.steps += 1
        s.cube_position = self.cube_position
        s.lifted = s.lifted or s.cube_position[2] > CUBE_HALF_SIZE + LIFT_HEIGHT
        s.released = s.lifted and not self.cube_touches_gripper()
        speed = np.linalg.norm(self.data.qvel[self._cube_qvel:self._cube_qvel + 3])
        s.at_rest = speed < REST_SPEED and s.cube_position[2] < CUBE_HALF_SIZE + 0.005
        s.in_target = np.linalg.norm(s.cube_position[:2] - s.target_position[:2]) < TARGET_RADIUS
        s.success = s.success or (s.lifted and s.released and s.at_rest and s.in_target)
        return s

    # -- cameras --------------------------------------------------------------------------------
    def render(self, camera: str) -> np.ndarray:
        """An RGB frame (height, width, 3) uint8 from 'wrist' or 'overhead'."""
        if camera not in CAMERA_NAMES:
            raise ValueError(f"Unknown sim camera '{camera}'; the sim has {list(CAMERA_NAMES)}.")
        if self._renderer is None:
            self._renderer = mujoco.Renderer(self.model, self.config.image_height, self.config.image_width)
        self._renderer.update_scene(self.data, camera=camera)
        return self._renderer.render()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
