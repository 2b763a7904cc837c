"""The nodes' executables: each imports its node only where a stop signal can no longer end in a traceback.

A graph whose node fails at start-up is stopped by `ros2 launch` with SIGINT to the others, which are
often still importing torch or lerobot (seconds); Python would print a KeyboardInterrupt traceback for
each, below the failing node's one line. Until the node's own signal handling is in place (node_runner),
a stop signal ends the process quietly: nothing ran yet, so nothing needs releasing. Nothing heavy is
imported here.
"""

from __future__ import annotations

import importlib
import sys

# Each executable's node class, "module:Class"; the module's main() runs it (so101 eval builds the class).
NODE_CLASSES = {
    "driver_node": "so101_driver.driver_node:DriverNode",
    "camera_node": "so101_driver.camera_node:CameraNode",
    "teleop_node": "so101_driver.teleop_node:TeleopNode",
    "policy_node": "so101_policy.policy_node:PolicyNode",
    "eval_manager": "so101_bringup.eval_manager:EvalManager",
    "recorder": "so101_bringup.recorder:Recorder",
    "bag_player": "so101_bringup.bag_player:BagPlayer",
    "lifecycle_manager": "so101_bringup.lifecycle_manager:LifecycleManager",
}


def run(executable: str) -> int:
    """Import the node's module and run its main(); a Ctrl-C before main() handles signals exits 0, silently."""
    try:
        main = importlib.import_module(NODE_CLASSES[executable].split(":")[0]).main
        return main()
    except KeyboardInterrupt:
        # Only reaches here before node_runner's handlers are in place (or after they are restored):
        # inside, a stop signal is handled, not raised.
        return 0


def _entry(executable: str):
    def main() -> None:
        sys.exit(run(executable))

    main.__name__ = executable
    return main


driver_node = _entry("driver_node")
camera_node = _entry("camera_node")
teleop_node = _entry("teleop_node")
policy_node = _entry("policy_node")
eval_manager = _entry("eval_manager")
recorder = _entry("recorder")
bag_player = _entry("bag_player")
lifecycle_manager = _entry("lifecycle_manager")
