"""The README's commands and snippets do what it says."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from ros_harness import isolated_ros_env
from test_driver_node import DRIVER_YAML, Graph

README = Path(__file__).parents[1] / "README.md"


def python_snippet_after(heading_text: str) -> str:
    text = README.read_text()
    start = text.index(heading_text)
    return re.search(r"```python\n(.*?)```", text[start:], re.S).group(1)


def test_move_by_hand_snippet_moves_the_sim_arm(tmp_path):
    snippet = python_snippet_after("Move it from Python")
    target = eval(re.search(r"position=(\[.*?\])", snippet).group(1))
    graph = Graph(tmp_path, "driver_node", {}, params_file=DRIVER_YAML)
    try:
        graph.wait_for_joint_states()
        run = subprocess.run([sys.executable, "-c", snippet], env=isolated_ros_env(graph.domain),
                             capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        graph.probe.spin_until(lambda: np.allclose(graph.latest_positions(), target, atol=0.02), 15,
                               "the arm to reach the README's target")
    finally:
        assert graph.close() == 0


def test_scripts_named_in_the_readme_exist():
    for script in re.findall(r"\./scripts/[\w.]+", README.read_text()):
        assert (README.parent / script).is_file(), script
