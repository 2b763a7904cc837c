"""How every so101 node process runs: spin until stopped, always release the hardware."""

from __future__ import annotations

import sys
from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node

from .stop_signals import stop_once


def declare_parameters(node: Node, parameters: dict[str, tuple[object, str]],
                       dynamic: frozenset[str] = frozenset()) -> dict[str, object]:
    """Declare {name: (default, description)} on the node and return their values.

    Names in `dynamic` take any type (one number or a list, say). Every one is read-only: the nodes
    read their parameters once, at start-up, so `ros2 param set` is refused rather than accepted
    and ignored.
    """
    for name, (default, description) in parameters.items():
        node.declare_parameter(name, default, ParameterDescriptor(description=description, read_only=True,
                                                                  dynamic_typing=name in dynamic))
    return {name: node.get_parameter(name).value for name in parameters}


def release(node: Node) -> None:
    """Run the node's `close()`, where it holds something to let go of (torque, a camera, a bag)."""
    close = getattr(node, "close", None)
    if close is not None:
        close()


def run_node(make_node: Callable[[], Node], name: str, user_errors: tuple[type[Exception], ...], args=None,
             until: Callable[[Node], bool] | None = None) -> int:
    """Spin the node `make_node` builds; 1 with a one-line message when start-up fails on `user_errors`.

    `until`: spin only until it says the node's work is done (the eval manager's last episode).

    The node's `close()` runs however the spin ends (Ctrl-C, SIGTERM, an exception in a callback),
    which is where drivers turn torque off and cameras let go of their device; signals that
    arrive during it are ignored (stop_signals).
    """
    with stop_once(name, process_ends=True) as stop:
        rclpy.init(args=args)
        node = None
        exit_code = 0
        try:
            node = make_node()
            if until is None:
                rclpy.spin(node)
            else:
                while rclpy.ok() and not until(node):
                    rclpy.spin_once(node, timeout_sec=0.1)
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        except user_errors as error:
            # Problems the user can fix (a wrong port, a missing calibration): one message, no traceback.
            print(f"[{name}] {error}", file=sys.stderr)
            exit_code = 1
        except Exception:
            # A signal can shut the context down between rclpy.spin's ok() check and its wait
            # (RCLError "the given context is not valid"): that is a stop, not a failure.
            if node is None or node.context.ok():
                raise
        finally:
            if stop is not None:
                stop.now_stopping()
            if node is not None:
                release(node)
                node.destroy_node()
            rclpy.try_shutdown()
    return exit_code
