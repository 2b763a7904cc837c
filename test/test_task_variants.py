"""The sim's task variants and its privileged object state, read back from MuJoCo's own data."""

import math

import mujoco
import numpy as np
import pytest

from so101_driver.environment_state import ENVIRONMENT_STATE_NAMES, environment_state, split_environment_state
from so101_driver.ros_messages import environment_state_from_msg, object_poses_msg, sec_to_time
from so101_driver.sim.scene import SceneConfig
from so101_driver.sim.sim_arm import SimArm
from so101_driver.sim.task_variants import DEFAULT_VARIANT, VARIANTS, task_variant


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def arm(request):
    arm = SimArm(variant=task_variant(request.param))
    yield arm
    arm.close()


def layout(arm: SimArm) -> tuple[np.ndarray, float, np.ndarray]:
    """Cube (x, y), cube yaw and target (x, y) as MuJoCo holds them after a reset."""
    cube = arm.data.body("cube")
    w, x, y, z = cube.xquat
    yaw = math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
    return cube.xpos[:2].copy(), yaw, arm.data.mocap_pos[arm.model.body("target").mocapid[0], :2].copy()


def test_pick_place_10cm_is_the_constrained_workspace_the_readme_states():
    arm = SimArm()  # the default
    try:
        assert DEFAULT_VARIANT == "pick_place_10cm" and arm.reset(seed=0).variant == "pick_place_10cm"
        for seed in range(200):
            arm.reset(seed=seed)
            cube, yaw, target = layout(arm)
            # The README's words: radius 0.19-0.23 m, bearing +-0.1 rad, yaw +-15 deg, target 10 cm to the
            # left (+y) within +-0.15 rad of direction.
            assert 0.19 - 1e-9 <= np.hypot(*cube) <= 0.23 + 1e-9, seed
            assert abs(math.atan2(cube[1], cube[0])) <= 0.1 + 1e-9, seed
            assert abs(math.degrees(yaw)) <= 15.0 + 1e-6, seed
            offset = target - cube
            assert np.hypot(*offset) == pytest.approx(0.10, abs=1e-9)
            assert abs(math.atan2(offset[1], offset[0]) - math.pi / 2) <= 0.15 + 1e-9, seed
    finally:
        arm.close()


def test_wide_spreads_wider_than_pick_place_10cm():
    spans = {}
    for name in ("wide", "pick_place_10cm"):
        arm = SimArm(variant=task_variant(name))
        layouts = []
        try:
            for seed in range(100):
                arm.reset(seed=seed)
                layouts.append(layout(arm))
        finally:
            arm.close()
        cubes = np.array([cube for cube, _, _ in layouts])
        yaws = np.degrees([yaw for _, yaw, _ in layouts])
        directions = np.array([math.atan2(*(target - cube)[::-1]) for cube, _, target in layouts])
        spans[name] = (np.ptp(cubes[:, 1]), np.ptp(yaws), np.ptp(directions))
    wide, narrow = spans["wide"], spans["pick_place_10cm"]
    assert wide[0] > 2 * narrow[0] and wide[1] > 2 * narrow[1] and wide[2] > 4 * narrow[2]
    assert wide[1] > 60  # yaw over most of +-45 degrees


def test_an_unknown_variant_is_refused_with_the_names():
    with pytest.raises(ValueError, match=r"task_variant must be one of \['pick_place_10cm', 'wide'\], got 'narrow'"):
        task_variant("narrow")


def test_the_environment_state_is_mujocos_cube_and_target(arm):
    status = arm.reset(seed=11)
    assert status.variant == arm.variant.name and status.as_dict()["variant"] == arm.variant.name
    for _ in range(5):
        arm.step(arm.joint_positions)
    state = arm.environment_state
    assert state.shape == (len(ENVIRONMENT_STATE_NAMES),) and state.dtype == np.float32
    cube = arm.data.body("cube")
    named = dict(zip(ENVIRONMENT_STATE_NAMES, state))
    np.testing.assert_allclose([named["cube.x"], named["cube.y"], named["cube.z"]], cube.xpos, atol=1e-6)
    quaternion = cube.xquat * np.sign(cube.xquat[0])
    np.testing.assert_allclose([named[f"cube.q{axis}"] for axis in "wxyz"], quaternion, atol=1e-6)
    target = arm.data.mocap_pos[arm.model.body("target").mocapid[0]]
    np.testing.assert_allclose([named["target.x"], named["target.y"], named["target.z"]], target, atol=1e-6)
    # A rotation matrix rebuilt from the state is MuJoCo's own.
    matrix = np.zeros(9)
    mujoco.mju_quat2Mat(matrix, split_environment_state(state)[1].astype(np.float64))
    np.testing.assert_allclose(matrix, cube.xmat, atol=1e-5)


def test_a_quaternion_and_its_negative_give_one_state():
    turned = np.array([-0.96, 0.0, 0.0, 0.28])
    np.testing.assert_array_equal(environment_state([0.2, 0, 0.01], turned, [0.2, 0.1, 0]),
                                  environment_state([0.2, 0, 0.01], -turned, [0.2, 0.1, 0]))
    assert environment_state([0, 0, 0], turned, [0, 0, 0])[3] > 0


def test_object_poses_carry_the_state_through_a_message_and_back(arm):
    arm.reset(seed=3)
    state = arm.environment_state
    msg = object_poses_msg(sec_to_time(1.5), state)
    assert msg.header.frame_id == "world" and len(msg.poses) == 2
    assert (msg.poses[0].position.x, msg.poses[1].position.y) == pytest.approx((state[0], state[8]))
    np.testing.assert_allclose(environment_state_from_msg(msg), state, atol=1e-7)
    msg.poses = msg.poses[:1]
    with pytest.raises(ValueError, match="2 poses; got 1"):
        environment_state_from_msg(msg)


def red_cube_pixels(frame: np.ndarray) -> np.ndarray:
    """Where the red cube shows in an RGB frame (nothing else in the scene is red)."""
    r, g, b = (frame[..., i].astype(int) for i in range(3))
    return (r > 120) & (g < 70) & (b < 70)


def test_the_workspace_view_frames_every_cube_with_about_twice_the_pixels_per_cm():
    cell, framed = (SimArm(SceneConfig(image_width=64, image_height=64), overhead_view=view)
                    for view in ("cell", "workspace"))
    try:
        ratios = []
        for seed in range(100_000, 100_020):
            masks = []
            for arm in (cell, framed):
                arm.reset(seed=seed)
                masks.append(red_cube_pixels(arm.render("overhead")))
            cube_in_cell, cube_framed = masks
            # Whole in the frame: the cube clear of the image's edges.
            assert cube_framed.any() and not (cube_framed[0].any() or cube_framed[-1].any() or
                                              cube_framed[:, 0].any() or cube_framed[:, -1].any()), seed
            ratios.append(cube_framed.sum() / cube_in_cell.sum())
        # The same camera position with the field of view narrowed from 55 to 28 degrees: tan(27.5 deg) /
        # tan(14 deg) = 2.09 times the pixels per cm, 4.4 times the cube's area.
        assert 3.0 < np.median(ratios) < 6.0, ratios
    finally:
        cell.close()
        framed.close()


def test_an_unknown_overhead_view_is_refused_with_the_names():
    with pytest.raises(ValueError, match=r"overhead_view must be one of \['cell', 'workspace'\], got 'top'"):
        SimArm(overhead_view="top")
