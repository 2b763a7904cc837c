"""`so101 sim --expert-episodes`: the scripted expert through the ROS graph, end to end."""

import json

import numpy as np
from PIL import Image

from ros_harness import NodeProcess, isolated_ros_env, next_domain_id
from so101_bringup.expert_demo import EpisodeResult, plan_chunk, results_table


def test_plan_chunks_hold_the_last_point():
    plan = np.arange(10.0)[:, None].repeat(6, axis=1)
    np.testing.assert_array_equal(plan_chunk(plan, 7, 5)[:, 0], [7, 8, 9, 9, 9])


def test_results_table():
    table = results_table([EpisodeResult(0, 1, True, 7.2, 9), EpisodeResult(1, 2, False, 7.4, 9)])
    assert "| 1 | 2 | no | 7.4 | 9 |" in table and "Success: 1/2" in table


def test_expert_episodes_through_ros_succeed_and_are_reported(tmp_path):
    output = tmp_path / "demo"
    process = NodeProcess("so101", ["sim", "--expert-episodes", "2", "--output", str(output)],
                          isolated_ros_env(next_domain_id()), tmp_path / "so101.log")
    try:
        assert process.wait(timeout=240) == 0, process.output
    finally:
        process.stop()
    results = json.loads((output / "results.json").read_text())
    assert [r["seed"] for r in results] == [0, 1]  # --seed 0 (the default) is the first episode's
    assert all(r["success"] for r in results), process.output
    assert all(r["chunks"] >= 5 for r in results)
    assert "Success: 2/2" in process.output
    snapshot = np.asarray(Image.open(output / "episode0_cameras.png"))
    assert snapshot.shape == (448, 224 * 6, 3)
