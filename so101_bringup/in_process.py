"""A graph's nodes composed in one process and one executor: `so101 eval` for users without ros2 launch.

Every node gets what its launch file would give it: the config YAML's parameters for its name,
then the overrides (graph.node_parameters). Every node is closed however the run ends, so the
driver turns torque off.
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Callable

from so101_driver.entry_points import NODE_CLASSES
from so101_driver.node_runner import ParameterError, release
from so101_driver.stop_signals import stop_once

from .commands.common import GraphFailed
from .graph import NodeSpec, node_parameters



def bring_up(manager: NodeSpec, nodes: dict, specs: list[NodeSpec]) -> None:
    """What the lifecycle manager does under launch, done here before the next nodes are built (they
    wait for what the driver publishes once configured): configure and activate each node it names."""
    from .lifecycle_manager import parse_node_names

    spec_of = {spec.name: spec for spec in specs}
    for name in parse_node_names(node_parameters(manager)["node_names"]):
        try:
            nodes[name].bring_up()
        except user_errors(spec_of[name]) as error:
            raise GraphFailed(f"[{name}] {error}") from error


def _module(spec: NodeSpec):
    return importlib.import_module(NODE_CLASSES[spec.executable].split(":")[0])


def user_errors(spec: NodeSpec) -> tuple[type[Exception], ...]:
    """What the node's own process reports in one line (its USER_ERRORS, a bad parameter)."""
    return (ParameterError, *_module(spec).USER_ERRORS)


def make_node(spec: NodeSpec):
    from rclpy.parameter import Parameter

    node_class = getattr(_module(spec), NODE_CLASSES[spec.executable].split(":")[1])
    overrides = [Parameter(name, value=value) for name, value in node_parameters(spec).items()]
    if spec.executable == "camera_node":
        return node_class(spec.name, parameter_overrides=overrides)
    return node_class(parameter_overrides=overrides)


class GraphNodes(dict):
    """A graph's nodes by name (closed once the run is over), and whether the user stopped the run."""

    stopped_by_user: bool = False


def run_graph(specs: list[NodeSpec], until: Callable[[dict], bool],
              on_started: Callable[[dict], None] = lambda nodes: None,
              ros_args: list[str] | None = None) -> GraphNodes:
    """Build the nodes in order, spin them until `until(nodes)` or a stop signal (Ctrl-C); returns the nodes.

    A node that fails on a problem the user can fix (a wrong checkpoint, a bad parameter) raises
    GraphFailed with its one line, after every node built so far is closed.
    """
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    with stop_once("so101", process_ends=False) as stop:
        rclpy.init(args=ros_args)
        nodes = GraphNodes()
        try:
            executor = SingleThreadedExecutor()
            for spec in specs:
                if spec.executable == "lifecycle_manager":
                    bring_up(spec, nodes, specs)
                    continue
                if spec.executable not in NODE_CLASSES:  # not a node of this package (robot_state_publisher)
                    print(f"[so101] {spec.name} runs under ros2 launch only (a {spec.package} executable); "
                          "not started here", file=sys.stderr)
                    continue
                try:
                    nodes[spec.name] = make_node(spec)
                except user_errors(spec) as error:
                    raise GraphFailed(f"[{spec.name}] {error}") from error
                executor.add_node(nodes[spec.name])
            on_started(nodes)
            every_user_error = tuple({kind for spec in specs if spec.executable in NODE_CLASSES
                                      for kind in user_errors(spec)})
            while rclpy.ok() and not until(nodes):
                try:
                    executor.spin_once(timeout_sec=0.05)
                except every_user_error as error:  # a callback's (a camera's frame size, say)
                    raise GraphFailed(str(error)) from error
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        except Exception:
            # Ctrl-C shuts the context down under a callback that is publishing: a stop, not a failure.
            if rclpy.ok():
                raise
        finally:
            # A stop signal reaches rclpy's handler (which shuts the context down, ending the spin) before
            # ours, whose note of it may come only during the clean-up: either says the user stopped the run.
            shut_down_by_a_signal = not rclpy.ok()
            if stop is not None:
                stop.now_stopping()
            for node in reversed(list(nodes.values())):
                release(node)
                node.destroy_node()
            rclpy.try_shutdown()
        nodes.stopped_by_user = shut_down_by_a_signal or (stop is not None and bool(stop.received))
    return nodes


def operator_keyboard(manager, prompt: Callable[[str], None] = print) -> threading.Thread:
    """Real arm: Enter starts an episode, y marks a success, n a failure (read on a side thread)."""
    from .evaluation import Outcome

    def read() -> None:
        prompt("Operator: place the cube, then press Enter to start an episode; y + Enter = success, "
               "n + Enter = failure.")
        for line in sys.stdin:
            answer = line.strip().lower()
            if answer == "y":
                prompt(manager.request_verdict(Outcome.SUCCESS))
            elif answer == "n":
                prompt(manager.request_verdict(Outcome.FAILURE))
            else:
                prompt(manager.request_start())

    thread = threading.Thread(target=read, name="so101_operator", daemon=True)
    thread.start()
    return thread
