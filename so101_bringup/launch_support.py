"""The one mapping from graph.NodeSpec to launch_ros Nodes that every launch file uses.

Imported by the launch files only (launch and launch_ros come with a ROS 2 install); what each
graph holds is decided in graph.py.
"""

from __future__ import annotations

from collections.abc import Callable

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, OpaqueFunction, RegisterEventHandler
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from .graph import ARGUMENT_HELP, GraphArgs, NodeSpec, config_dir, graph_args_from_strings, launch_defaults


def launch_node(spec: NodeSpec) -> Node:
    parameters = ([str(config_dir() / spec.config)] if spec.config else []) + [spec.overrides]
    return Node(package=spec.package, executable=spec.executable, name=spec.name, parameters=parameters,
                output="screen", emulate_tty=True)


def graph_launch_description(names: tuple[str, ...], build: Callable[[GraphArgs], list[NodeSpec]],
                             shutdown_after: str | None = None) -> LaunchDescription:
    """Declare `names` as launch arguments; the nodes `build` makes of them; end with `shutdown_after`."""

    def nodes(context):
        args = graph_args_from_strings({name: LaunchConfiguration(name).perform(context) for name in names})
        actions = []
        for spec in build(args):
            node = launch_node(spec)
            actions.append(node)
            if spec.name == shutdown_after:
                actions.append(RegisterEventHandler(OnProcessExit(target_action=node,
                                                                  on_exit=[EmitEvent(event=Shutdown())])))
        return actions

    defaults = launch_defaults(names)
    return LaunchDescription([
        *(DeclareLaunchArgument(name, default_value=defaults[name], description=ARGUMENT_HELP[name])
          for name in names),
        OpaqueFunction(function=nodes),
    ])
