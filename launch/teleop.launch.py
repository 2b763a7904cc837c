"""The arm (or the sim) driven by the SO-101 leader arm: the robot's nodes and teleop_node.

    ros2 launch so101_bringup teleop.launch.py sim:=false calibration_id:=my_arm leader_port:=/dev/ttyACM1 \
        leader_calibration_id:=my_leader

To record what the leader does, record.launch.py with teleop:=true (or `so101 record --teleop`).
"""

from so101_bringup.graph import TELEOP_ARGUMENTS, teleop_nodes
from so101_bringup.launch_support import graph_launch_description


def generate_launch_description():
    return graph_launch_description(TELEOP_ARGUMENTS, teleop_nodes)
