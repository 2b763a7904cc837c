"""When a graph's end is a failure: the rule every launch file's nodes follow (launch_support).

A graph ends in one of three ways:
- its work is done: the eval manager exits 0 after its last episode, and the others are stopped;
- the user stops it: Ctrl-C reaches every node, which exits 0, or the graph is already shutting down
  when it exits;
- a node fails: it exits non-zero, or is killed by a signal, while nobody has asked the graph to stop.

Only the last is a failure, and the first node to fail is the one named. `ros2 launch` exits non-zero
only when an exception escapes its event loop (an `on_exit=Shutdown()` is a normal end to it), so the
launch files raise GraphFailed with this module's line: launch logs it, shuts the graph down as it
would for Ctrl-C, and returns 1.
"""

from __future__ import annotations

import signal

from .commands.common import GraphFailed


def node_exit_failure(node: str, returncode: int | None, graph_stopping: bool) -> str | None:
    """The one line that says `node`'s exit failed the graph, or None when the exit is a normal end."""
    if graph_stopping or returncode == 0:
        return None
    if returncode is None:
        return f"{node} ended without an exit status; the graph is shut down"
    if returncode < 0:
        try:
            how = f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            how = f"killed by signal {-returncode}"
    else:
        how = f"exited with code {returncode}"
    return f"{node} {how}; the graph is shut down (its own message, if it left one, is above)"


def check_node_exit(node: str, returncode: int | None, graph_stopping: bool) -> None:
    """Raise GraphFailed where `node`'s exit failed the graph; return where the graph should end normally."""
    failure = node_exit_failure(node, returncode, graph_stopping)
    if failure is not None:
        raise GraphFailed(failure)
