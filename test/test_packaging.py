"""The package builds as ROS users build it (colcon, ament_python) and installs as pip users install it."""

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parents[1]
VENV_BIN = Path(sys.executable).parent
EXECUTABLES = ("driver_node", "camera_node", "teleop_node", "policy_node", "eval_manager", "recorder", "bag_player",
               "so101")


def copy_package(destination: Path) -> Path:
    ignore = shutil.ignore_patterns(".venv", ".git", "build", "install", "log", "*.egg-info", "__pycache__",
                                    "outputs", ".pytest_cache")
    return Path(shutil.copytree(REPO, destination, ignore=ignore))


@pytest.fixture(scope="module")
def colcon_workspace(tmp_path_factory):
    workspace = tmp_path_factory.mktemp("ws")
    copy_package(workspace / "src" / "so101")
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"}
    listed = subprocess.run([VENV_BIN / "colcon", "list"], cwd=workspace, env=env, capture_output=True,
                            text=True, timeout=120, check=True)
    build = subprocess.run([VENV_BIN / "colcon", "build"], cwd=workspace, env=env, capture_output=True,
                           text=True, timeout=300)
    assert build.returncode == 0, build.stdout + build.stderr
    return workspace, listed.stdout


def test_colcon_sees_an_ament_python_package(colcon_workspace):
    _, listed = colcon_workspace
    # A package.xml that catkin_pkg rejects would silently list as (python) without the ament hooks.
    assert listed.split() == ["so101_bringup", "src/so101", "(ros.ament_python)"]


def test_colcon_install_layout_is_what_ros2_run_and_launch_need(colcon_workspace):
    workspace, _ = colcon_workspace
    prefix = workspace / "install" / "so101_bringup"
    for name in EXECUTABLES:
        assert os.access(prefix / "lib" / "so101_bringup" / name, os.X_OK), name
    share = prefix / "share" / "so101_bringup"
    assert (share / "package.xml").is_file()
    for config in ("driver", "policy", "eval", "cameras"):
        assert (share / "config" / f"{config}.yaml").is_file(), config
    assert (share / "config" / "so101.rviz").is_file()
    for launch in ("eval", "robot", "record", "replay", "teleop"):
        assert (share / "launch" / f"{launch}.launch.py").is_file(), launch
    assert (prefix / "share" / "ament_index" / "resource_index" / "packages" / "so101_bringup").is_file()
    found = subprocess.run(
        [sys.executable, "-c", "from ament_index_python.packages import get_package_share_directory as g;"
                               "print(g('so101_bringup'))"],
        env={**os.environ, "AMENT_PREFIX_PATH": str(prefix)}, capture_output=True, text=True, timeout=60,
    )
    assert found.returncode == 0, found.stderr
    assert Path(found.stdout.strip()) == share


def test_colcon_installed_executable_runs_the_installed_code(colcon_workspace):
    workspace, _ = colcon_workspace
    prefix = workspace / "install" / "so101_bringup"
    # What `source install/setup.bash` puts on the path.
    env = {**os.environ, "PYTHONPATH": str(prefix / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
                                                          / "site-packages")}
    result = subprocess.run([prefix / "lib" / "so101_bringup" / "so101", "sim", "--help"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "--merge-mode" in result.stdout
    where = subprocess.run([sys.executable, "-c", "import so101_driver; print(so101_driver.__file__)"], env=env,
                           cwd=workspace,
                           capture_output=True, text=True, timeout=60)
    assert Path(where.stdout.strip()).is_relative_to(prefix), where.stdout + where.stderr


def test_pip_install_puts_the_executables_on_the_venv_path():
    for name in EXECUTABLES:
        assert os.access(VENV_BIN / name, os.X_OK), f"{name} is not in {VENV_BIN}: run pip install -e ."


# What costs a good part of a second or more to import: a command's --help must not wait for them.
HEAVY_LIBRARIES = {"torch", "lerobot", "mujoco", "rclpy", "cv2", "datasets", "onnxruntime", "openvino", "numpy",
                   "matplotlib", "rosbags", "transformers", "huggingface_hub", "PIL", "pandas", "pyarrow"}


def _command_paths(parser, path=()):
    """Every command and sub-command of the parser, as the words a user types."""
    yield path
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _command_paths(sub, (*path, name))


def test_every_so101_help_answers_without_importing_torch_lerobot_mujoco_or_ros():
    from so101_bringup.cli import build_parser

    commands = list(_command_paths(build_parser()))
    assert ("dataset", "from-bags") in commands and ("eval", "compare") in commands
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}  # every import, one stderr line each
    for command in commands:
        result = subprocess.run([VENV_BIN / "so101", *command, "--help"], env=env, capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 0 and result.stdout.startswith("usage: so101"), result.stdout + result.stderr
        imported = {line.rsplit("|", 1)[1].strip().split(".")[0] for line in result.stderr.splitlines()
                    if line.startswith("import time:") and "|" in line and "imported package" not in line}
        assert "so101_bringup" in imported, result.stderr[-2000:]
        assert not imported & HEAVY_LIBRARIES, f"{' '.join(['so101', *command])} --help imports " \
                                               f"{sorted(imported & HEAVY_LIBRARIES)}"
