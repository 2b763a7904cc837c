"""Evaluate a policy: the arm (or the sim), its cameras, the policy node, the eval manager, the recorder.

    ros2 launch so101_bringup eval.launch.py policy:=act [checkpoint:=<path or hub id>] \
        [sim:=false calibration_id:=my_arm]

Without a checkpoint it takes the newest one trained here for that policy. The launch ends when the
eval manager has run its episodes; results go to output_dir. `so101 eval` takes the same options.
"""

from so101_bringup.graph import EVAL_ARGUMENTS, eval_nodes
from so101_bringup.launch_support import graph_launch_description


def generate_launch_description():
    return graph_launch_description(EVAL_ARGUMENTS, eval_nodes)
