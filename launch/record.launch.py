"""The arm, its cameras and the recorder: a bag per episode (start/end on /so101/episode_marker).

    ros2 launch so101_bringup record.launch.py output_dir:=outputs/teleop
"""

from so101_bringup.graph import record_nodes
from so101_bringup.launch_support import graph_launch_description

ARGUMENTS = ("sim", "seed", "sim_width", "sim_height", "port", "calibration_id", "wrist_device", "overhead_device",
             "camera_width", "camera_height", "output_dir", "policy", "checkpoint")


def generate_launch_description():
    return graph_launch_description(ARGUMENTS, record_nodes)
