"""How every so101 node process runs: spin until stopped, always release the hardware."""

from __future__ import annotations

import faulthandler
import io
import signal
import sys
import time
from collections.abc import Callable

import rclpy
import rclpy.logging
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions, get_current_signal_handlers_options

from .stop_signals import stop_once


# The spin wakes at least this often (s of wall time) to see whether a stop signal came. A signal
# that lands inside rclpy's code is left to rclpy's handler, whose thread shuts the context down a
# moment later; a wait that began in that moment is woken by nothing in a graph that has gone quiet
# (the sim driver stopped first: no /clock, no messages), and an unbounded spin then never returned:
# CI twice saw a policy_node ignore SIGINT, its stacks showing the main thread waiting in rclpy.spin.
SPIN_WAKE_S = 0.2
# Ending the spin at once on a stop means rclpy's thread may not have finished with the signal when
# rclpy.try_shutdown runs; before the spin waited for it, one test deadlocked there (CI, once).
RCLPY_STOP_TIMEOUT_S = 2.0


class ParameterError(ValueError):
    """A parameter given a value of the wrong type or outside its declared range."""


def declare_parameters(node: Node, parameters: dict[str, tuple],
                       dynamic: frozenset[str] = frozenset()) -> dict[str, object]:
    """Declare {name: (default, description[, (low, high)])} on the node and return their values.

    A (low, high) pair becomes the descriptor's range (inclusive, as `ros2 param describe` shows
    it), so a value outside it stops the node at start-up with one line. Names in `dynamic` take
    any type (one number or a list, say). Every one is read-only: the nodes read their parameters
    once, at start-up, so `ros2 param set` is refused rather than accepted and ignored.
    """
    for name, (default, description, *valid_range) in parameters.items():
        descriptor = ParameterDescriptor(description=description, read_only=True, dynamic_typing=name in dynamic)
        if valid_range:
            low, high = valid_range[0]
            if isinstance(default, float):
                descriptor.floating_point_range = [FloatingPointRange(from_value=float(low), to_value=float(high))]
            else:
                descriptor.integer_range = [IntegerRange(from_value=low, to_value=high)]
        try:
            node.declare_parameter(name, default, descriptor)
        except InvalidParameterValueException:
            # Only an override (-p, a params file) can be out of range; rclpy has no public getter for it.
            given = node._parameter_overrides[name].value
            raise ParameterError(f"{name} must be within [{low}, {high}] ({description}), got {given}.") from None
        except InvalidParameterTypeException:
            given = node._parameter_overrides[name].value
            raise ParameterError(f"{name} takes a {type(default).__name__} like {default!r} ({description}), "
                                 f"got {given!r}.") from None
    return {name: node.get_parameter(name).value for name in parameters}


def closing_logger(node: Node):
    """The logger for what a node says while it closes: once a stop signal has shut the context down
    (rclpy's own handler), its rosout publisher is gone and every line would add "Failed to publish log
    message to rosout"; a logger of another name writes to the console alone."""
    if node.context.ok():
        return node.get_logger()
    return rclpy.logging.get_logger(f"{node.get_name()}.closing")


def release(node: Node) -> None:
    """Run the node's `close()`, where it holds something to let go of (torque, a camera, a bag)."""
    close = getattr(node, "close", None)
    if close is not None:
        close()


def _stacks_on_sigusr1() -> None:
    """`kill -USR1 <pid>` prints every thread's Python stack to stderr: where a node that will not stop is stuck."""
    try:
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    except (AttributeError, ValueError, io.UnsupportedOperation):
        pass  # stderr is no file (a node run inside a test's captured output)


def _let_rclpy_finish_its_stop(context, stop) -> None:
    """Wait (bounded) for rclpy's own handling of a stop signal: its thread shuts the context down,
    and rclpy.try_shutdown joins that thread while holding the GIL the thread may still need."""
    if stop is None or not stop.received or get_current_signal_handlers_options() == SignalHandlerOptions.NO:
        return
    deadline = time.monotonic() + RCLPY_STOP_TIMEOUT_S
    while context.ok() and time.monotonic() < deadline:
        time.sleep(0.01)  # the GIL released, rclpy's thread finishes


def run_node(make_node: Callable[[], Node], name: str, user_errors: tuple[type[Exception], ...], args=None,
             until: Callable[[Node], bool] | None = None) -> int:
    """Spin the node `make_node` builds; 1 with a one-line message when start-up fails on `user_errors`.

    `until`: spin only until it says the node's work is done (the eval manager's last episode).

    The node's `close()` runs however the spin ends (Ctrl-C, SIGTERM, an exception in a callback),
    which is where drivers turn torque off and cameras let go of their device; signals that
    arrive during it are ignored (stop_signals).
    """
    _stacks_on_sigusr1()
    with stop_once(name, process_ends=True) as stop:
        rclpy.init(args=args)
        node = executor = None
        exit_code = 0
        try:
            node = make_node()
            executor = SingleThreadedExecutor(context=node.context)
            executor.add_node(node)
            while node.context.ok() and not (stop is not None and stop.stopping) and not (until and until(node)):
                executor.spin_once(timeout_sec=SPIN_WAKE_S)
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        except (ParameterError, *user_errors) as error:
            # Problems the user can fix (a wrong port, a missing calibration): one message, no traceback.
            print(f"[{name}] {error}", file=sys.stderr)
            exit_code = 1
        except Exception:
            # A signal can shut the context down between the loop's ok() check and the wait
            # (RCLError "the given context is not valid"): that is a stop, not a failure.
            if node is None or node.context.ok():
                raise
        finally:
            if stop is not None:
                stop.now_stopping()
            if executor is not None:
                executor.shutdown(timeout_sec=0)
            if node is not None:
                release(node)
                _let_rclpy_finish_its_stop(node.context, stop)
                node.destroy_node()
            rclpy.try_shutdown()
    return exit_code
