"""The arm, its cameras and the recorder: a bag per episode (start/end on /so101/episode_marker).

    ros2 launch so101_bringup record.launch.py output_dir:=outputs/teleop
"""

from so101_bringup.graph import RECORD_ARGUMENTS, RECORD_DEFAULTS, record_nodes
from so101_bringup.launch_support import graph_launch_description


def generate_launch_description():
    return graph_launch_description(RECORD_ARGUMENTS, record_nodes, defaults=RECORD_DEFAULTS)
