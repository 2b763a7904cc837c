"""The arm and its cameras alone: the MuJoCo sim (sim:=true), or the Feetech driver and two camera nodes.

    ros2 launch so101_bringup robot.launch.py sim:=false calibration_id:=my_arm wrist_device:=/dev/video0
"""

from so101_bringup.graph import ROBOT_ARGUMENTS, robot_nodes
from so101_bringup.launch_support import graph_launch_description


def generate_launch_description():
    return graph_launch_description(ROBOT_ARGUMENTS, robot_nodes)
