"""The URDF that RViz and Foxglove draw moves as the MuJoCo arm the sim runs, joint by joint."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urlparse

import mujoco
import numpy as np
import pytest

from so101_driver.joint_model import JOINT_NAMES
from so101_driver.robot_description import Kinematics, quaternion_xyzw, robot_description
from so101_driver.sim.scene import SceneConfig, build_scene

# URDF link -> MuJoCo body of the sim's scene; gripper_frame_link is the MJCF's gripperframe site.
LINK_BODIES = {"shoulder_link": "shoulder", "upper_arm_link": "upper_arm", "lower_arm_link": "lower_arm",
               "wrist_link": "wrist", "gripper_link": "gripper", "moving_jaw_so101_v1_link": "moving_jaw_so101_v1"}


def mujoco_poses(model, data, angles: dict[str, float]) -> dict[str, np.ndarray]:
    """The sim's bodies (and the gripper frame site) in its arm base's frame."""
    for name, angle in angles.items():
        data.joint(name).qpos[0] = angle
    mujoco.mj_kinematics(model, data)

    def world(position, matrix):
        transform = np.eye(4)
        transform[:3, :3], transform[:3, 3] = np.reshape(matrix, (3, 3)), position
        return transform

    base = np.linalg.inv(world(data.body("base").xpos, data.body("base").xmat))
    poses = {link: base @ world(data.body(body).xpos, data.body(body).xmat) for link, body in LINK_BODIES.items()}
    poses["gripper_frame_link"] = base @ world(data.site("gripperframe").xpos, data.site("gripperframe").xmat)
    return poses


def test_urdf_and_sim_agree_within_a_millimetre_at_random_joint_angles():
    urdf = robot_description()
    limits = {joint.get("name"): (float(joint.find("limit").get("lower")), float(joint.find("limit").get("upper")))
              for joint in ET.fromstring(urdf).findall("joint") if joint.get("type") == "revolute"}
    assert sorted(limits) == sorted(JOINT_NAMES)  # /joint_states names drive the URDF as they are
    kinematics = Kinematics(urdf)  # the transforms bags carry on /tf
    model = build_scene(SceneConfig(image_width=16, image_height=16))
    data = mujoco.MjData(model)
    rng = np.random.default_rng(0)
    worst_mm, worst_deg = 0.0, 0.0
    for _ in range(25):
        angles = {name: rng.uniform(*limits[name]) for name in JOINT_NAMES}
        expected, found = mujoco_poses(model, data, angles), kinematics.link_poses(angles)
        for link, pose in expected.items():
            worst_mm = max(worst_mm, 1000 * np.linalg.norm(found[link][:3, 3] - pose[:3, 3]))
            if link == "gripper_frame_link":
                continue  # the two exports turn the tool frame's axes 90 deg apart; where it is, they agree on
            cosine = (np.trace(found[link][:3, :3].T @ pose[:3, :3]) - 1) / 2
            worst_deg = max(worst_deg, np.degrees(np.arccos(np.clip(cosine, -1, 1))))
    assert worst_mm < 1.0 and worst_deg < 0.1, (worst_mm, worst_deg)


def test_meshes_are_found_wherever_the_package_is_installed():
    meshes = [mesh.get("filename") for mesh in ET.fromstring(robot_description()).iter("mesh")]
    assert meshes and all(name.startswith("file:///") for name in meshes)
    assert all(Path(urlparse(name).path).is_file() for name in meshes)


def test_each_joint_has_the_sims_range():
    model = build_scene(SceneConfig(image_width=16, image_height=16))
    for joint in ET.fromstring(robot_description()).findall("joint"):
        if joint.get("type") == "revolute":
            low, high = model.joint(joint.get("name")).range
            limit = joint.find("limit")
            assert (float(limit.get("lower")), float(limit.get("upper"))) == pytest.approx((low, high), abs=1e-4)


def test_the_robot_graphs_publish_the_urdf_where_robot_state_publisher_is_installed(monkeypatch, capsys):
    from so101_bringup import graph
    from so101_bringup.graph import GraphArgs, node_parameters, robot_nodes

    monkeypatch.setattr(graph, "package_installed", lambda package: package == "robot_state_publisher")
    publisher = next(s for s in robot_nodes(GraphArgs()) if s.package == "robot_state_publisher")
    parameters = node_parameters(publisher)
    assert parameters["robot_description"] == robot_description()
    assert parameters["use_sim_time"] is True  # the sim's /joint_states carry sim time
    assert [s.name for s in robot_nodes(GraphArgs(robot_description=False))] == ["so101_driver",
                                                                                  "so101_lifecycle_manager"]

    monkeypatch.setattr(graph, "package_installed", lambda package: False)
    assert [s.name for s in robot_nodes(GraphArgs())] == ["so101_driver", "so101_lifecycle_manager"]
    assert "robot_state_publisher is not installed" in capsys.readouterr().err


def test_the_rviz_config_shows_the_topics_the_graph_publishes():
    import yaml

    from so101_bringup.bag_format import CAMERA_TOPICS

    config = yaml.safe_load((Path(__file__).parents[1] / "config" / "so101.rviz").read_text())
    manager = config["Visualization Manager"]
    topics = {display["Topic"]["Value"] for display in manager["Displays"] if "Topic" in display}
    assert topics == set(CAMERA_TOPICS.values())
    model = next(d for d in manager["Displays"] if d["Class"] == "rviz_default_plugins/RobotModel")
    assert model["Description Topic"]["Value"] == "/robot_description"
    root = next(j.find("parent").get("link") for j in ET.fromstring(robot_description()).findall("joint")
                if j.get("name") == "shoulder_pan")
    assert manager["Global Options"]["Fixed Frame"] == root


def test_quaternions_are_xyzw_as_geometry_msgs_has_them():
    turn = 0.7  # about z: (0, 0, sin(turn / 2), cos(turn / 2)) by hand
    rotation = np.array([[np.cos(turn), -np.sin(turn), 0], [np.sin(turn), np.cos(turn), 0], [0, 0, 1]])
    np.testing.assert_allclose(quaternion_xyzw(rotation), (0, 0, np.sin(turn / 2), np.cos(turn / 2)), atol=1e-12)
