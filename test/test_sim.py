"""The MuJoCo SO-101: model, cameras, seeded task, success rule and the scripted expert."""

import numpy as np
import pytest

from so101_driver.backends.sim import SimBackend
from so101_driver.episode_seeds import EpisodeSeeds
from so101_driver.joint_model import JOINT_NAMES, NOMINAL_LIMITS_RAD
from so101_driver.sim.expert import ScriptedExpert, run_expert_episode
from so101_driver.sim.scene import CUBE_HALF_SIZE, SceneConfig
from so101_driver.sim.sim_arm import HOME_POSITION, SimArm
from so101_driver.sim.task_variants import TARGET_DISTANCE
from so101_driver.sim.visual_meshes import cluster_vertices, read_stl


@pytest.fixture(scope="module")
def arm():
    arm = SimArm()
    yield arm
    arm.close()


def test_model_joint_ranges_are_the_joint_model_nominal_limits(arm):
    for name in JOINT_NAMES:
        np.testing.assert_allclose(arm.model.joint(name).range, NOMINAL_LIMITS_RAD[name])


def test_visual_meshes_are_decimated_and_collision_meshes_exact(arm):
    visual = [arm.model.mesh(i) for i in range(arm.model.nmesh) if arm.model.mesh(i).name.endswith("_visual")]
    exact = [arm.model.mesh(i) for i in range(arm.model.nmesh) if not arm.model.mesh(i).name.endswith("_visual")]
    visual_faces = sum(arm.model.mesh_facenum[m.id] for m in visual)
    exact_faces = sum(arm.model.mesh_facenum[m.id] for m in exact)
    assert len(visual) == 13 and exact_faces > 300_000
    assert visual_faces < exact_faces / 10


def test_vertex_clustering_keeps_the_shape(tmp_path):
    from so101_driver.sim.scene import ARM_MJCF

    vertices, faces = read_stl(ARM_MJCF.parent / "assets" / "upper_arm_so101_v1.stl")
    merged, kept = cluster_vertices(vertices, faces, 0.002)
    assert len(kept) < len(faces) / 5
    np.testing.assert_allclose(merged.min(axis=0), vertices.min(axis=0), atol=0.002)
    np.testing.assert_allclose(merged.max(axis=0), vertices.max(axis=0), atol=0.002)


def test_both_cameras_render_the_scene(arm):
    arm.reset(seed=1)
    wrist, overhead = arm.render("wrist"), arm.render("overhead")
    assert wrist.shape == overhead.shape == (224, 224, 3)
    red = lambda image: np.sum((image[..., 0] > 150) & (image[..., 1] < 80) & (image[..., 2] < 80))  # noqa: E731
    assert red(overhead) > 10, "the overhead camera should see the red cube"
    with pytest.raises(ValueError, match="wrist"):
        arm.render("front")


def test_large_images_on_request():
    arm = SimArm(SceneConfig(image_width=640, image_height=480))
    assert arm.render("overhead").shape == (480, 640, 3)
    arm.close()


def test_resets_are_seeded_and_the_target_is_10_cm_from_the_cube(arm):
    layouts = []
    for seed in (3, 4, 3):
        status = arm.reset(seed=seed)
        assert np.linalg.norm(status.cube_position[:2] - status.target_position[:2]) == pytest.approx(TARGET_DISTANCE)
        assert status.cube_position[2] == pytest.approx(CUBE_HALF_SIZE)
        np.testing.assert_allclose(arm.joint_positions, HOME_POSITION)
        layouts.append(np.concatenate([status.cube_position, status.target_position]))
    np.testing.assert_array_equal(layouts[0], layouts[2])
    assert not np.allclose(layouts[0], layouts[1])


def test_the_first_episode_gets_the_first_seed_however_the_backend_started(arm):
    """The scene at start-up is the first episode's, and the first reset lays that seed out again."""
    backend = SimBackend(arm, EpisodeSeeds((7, 3)))
    backend.connect()
    assert arm.status.seed == 7
    arm.step(HOME_POSITION + 0.2)  # the arm moved before the first episode
    assert [backend.reset().seed for _ in range(3)] == [7, 3, 4]
    np.testing.assert_allclose(arm.joint_positions, HOME_POSITION)


def test_gravity_feed_forward_holds_the_commanded_pose(arm):
    arm.reset(seed=0)
    pose = np.array([0.3, -0.5, 0.9, 0.6, 0.2, 0.4])
    for _ in range(60):
        arm.step(pose)
    # Position servos alone would sag by tens of milliradians under the arm's weight.
    np.testing.assert_allclose(arm.joint_positions, pose, atol=5e-3)


def test_torque_off_lets_the_arm_fall(arm):
    backend = SimBackend(arm)
    backend.connect()
    backend.enable()
    pose = np.array([0.0, 0.3, 0.0, 0.0, 0.0, 0.4])  # upper arm forward: gravity pulls it down
    for _ in range(30):
        backend.write_targets(pose)
    held = backend.read_positions()
    backend.disable()
    for _ in range(30):
        backend.write_targets(pose)
    assert np.abs(backend.read_positions() - held).max() > 0.1
    backend.enable()


def test_pushing_the_cube_into_the_target_is_not_a_success(arm):
    status = arm.reset(seed=2)
    arm.data.qpos[arm._cube_qpos:arm._cube_qpos + 2] = status.target_position[:2]
    for _ in range(20):
        status = arm.step(HOME_POSITION)
    assert status.in_target and status.at_rest and not status.lifted and not status.success


def test_scripted_expert_succeeds_on_seeded_episodes(arm):
    outcomes = [run_expert_episode(arm, seed) for seed in range(100, 110)]
    assert sum(outcomes) >= 9, outcomes
    status = arm.status.as_dict()
    assert status["lifted"] and status["released"]


def test_expert_actions_are_within_joint_limits_and_smooth(arm):
    arm.reset(seed=11)
    plan = ScriptedExpert(arm).plan
    low = np.array([NOMINAL_LIMITS_RAD[n][0] for n in JOINT_NAMES])
    high = np.array([NOMINAL_LIMITS_RAD[n][1] for n in JOINT_NAMES])
    assert np.all(plan >= low - 1e-9) and np.all(plan <= high + 1e-9)
    assert np.abs(np.diff(plan, axis=0)).max() < 0.08  # within the driver's default step limit


def test_expert_actions_in_lerobot_units_look_like_a_real_recording(arm):
    from so101_driver.joint_model import JointModel

    arm.reset(seed=12)
    plan = ScriptedExpert(arm).plan
    model = JointModel.for_sim()
    recorded = np.stack([model.to_lerobot(row) for row in plan])
    # Degrees for the arm (the hub dataset's units), 0..100 for the gripper, 0 = closed.
    assert np.abs(recorded[:, :5]).max() < 180 and np.abs(recorded[:, :5]).max() > 20
    assert recorded[:, 5].min() >= 0.0 and recorded[:, 5].max() <= 100.0
    assert recorded[:, 5].max() - recorded[:, 5].min() > 40  # it opens and closes
    np.testing.assert_allclose(np.stack([model.to_radians(row) for row in recorded]), plan, atol=1e-9)


def test_the_experts_grasp_turns_continuously_with_the_cubes_yaw(arm):
    """Demonstrations a policy can imitate: nearly the same scene, nearly the same grasp. Across the
    task's yaw range the wrist roll at the grasp follows the cube's yaw without a 90 degree jump."""
    import mujoco

    arm.reset(seed=3)
    cube = arm.model.joint("cube").qposadr[0]
    rolls = []
    yaws = np.radians(np.linspace(-44, 44, 23))
    for yaw in yaws:
        arm.data.qpos[cube + 3:cube + 7] = [np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]
        mujoco.mj_forward(arm.model, arm.data)
        plan = ScriptedExpert(arm).plan
        closed = np.flatnonzero(plan[:, -1] < 0.0)[0]  # the first tick of the closed gripper
        rolls.append(plan[closed, JOINT_NAMES.index("wrist_roll")])
    steps = np.abs(np.diff(rolls))
    assert steps.max() < np.radians(10), np.degrees(steps)  # 4 degrees of yaw apart
    assert abs(rolls[-1] - rolls[0]) == pytest.approx(np.radians(88), abs=np.radians(15))


def test_so101_sims_options_are_its_configs_fields():
    from dataclasses import fields

    from so101_bringup.cli import build_parser
    from so101_bringup.commands.sim import SimConfig
    from so101_bringup.options import from_options

    parser = build_parser()
    assert from_options(SimConfig, parser.parse_args(["sim"])) == SimConfig()
    chosen = parser.parse_args(["sim", "--seed", "7", "--merge-mode", "crossfade", "--expert-episodes", "3"])
    assert from_options(SimConfig, chosen) == SimConfig(seed=7, merge_mode="crossfade", expert_episodes=3)
    sim = parser._subparsers._group_actions[0].choices["sim"]
    assert {a.dest for a in sim._actions if a.dest != "help"} == {f.name for f in fields(SimConfig)} | {"ros_args"}
