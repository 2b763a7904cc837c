"""The one mapping from graph.NodeSpec to launch_ros Nodes that every launch file uses.

Imported by the launch files only (launch and launch_ros come with a ROS 2 install); what each
graph holds is decided in graph.py.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from .graph import ARGUMENT_HELP, GraphArgs, NodeSpec, config_dir, graph_args_from_strings, launch_defaults
from .graph_exit import check_node_exit


def launch_node(spec: NodeSpec) -> Node:
    """Every node of a graph is required: when one exits, whatever the reason (the eval manager's
    last episode, a policy node refusing its checkpoint), the launch shuts the others down cleanly;
    and where that exit is a failure (graph_exit), `ros2 launch` exits 1."""
    parameters = ([str(config_dir() / spec.config)] if spec.config else []) + [spec.overrides]
    return Node(package=spec.package, executable=spec.executable, name=spec.name, parameters=parameters,
                output="screen", emulate_tty=True, on_exit=partial(_on_node_exit, spec.name))


def _on_node_exit(name: str, event, context) -> Shutdown:
    # A GraphFailed raised here escapes launch's event loop: launch logs its line, shuts down, returns 1.
    check_node_exit(name, event.returncode, graph_stopping=context.is_shutdown)
    return Shutdown(reason=f"{name} exited")


def graph_launch_description(names: tuple[str, ...], build: Callable[[GraphArgs], list[NodeSpec]],
                             defaults: dict | None = None) -> LaunchDescription:
    """Declare `names` as launch arguments and launch the nodes `build` makes of them.

    `defaults`: the graph's own defaults where they differ from GraphArgs' (as its `so101` command has them).
    """

    def nodes(context):
        args = graph_args_from_strings({name: LaunchConfiguration(name).perform(context) for name in names})
        return [launch_node(spec) for spec in build(args)]

    declared = launch_defaults(names, defaults)
    return LaunchDescription([
        *(DeclareLaunchArgument(name, default_value=declared[name], description=ARGUMENT_HELP[name])
          for name in names),
        OpaqueFunction(function=nodes),
    ])
