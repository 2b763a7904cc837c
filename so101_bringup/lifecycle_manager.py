"""`lifecycle_manager`: brings the graph's managed nodes (the driver) to active, as Nav2's lifecycle manager does.

The launch files start the driver with autostart:=false and this node beside it. It waits for each
named node's lifecycle services, then asks for configure and activate in order (the driver opens the
arm and checks its calibration, then turns torque on holding where the arm is). A node whose services
never appear, or a transition that fails, ends this process with one line naming the node; launch,
where every node is required, then shuts the graph down and the driver turns torque off. Once every
node is active it stays up, so that launch does not take its end for a failure. `so101` drives the
same transitions itself, in its one process (in_process.run_graph).
"""

from __future__ import annotations

import sys
import time
from enum import Enum

from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.clock import Clock, ClockType
from rclpy.node import Node

from so101_driver.node_runner import declare_parameters, run_node

PARAMETERS = {
    "node_names": ("so101_driver", "lifecycle nodes to bring to active, in this order, comma separated"),
    "transition_timeout": (60.0, "wall s to wait for a node's services, and for each of its transitions",
                           (0.1, 3600.0)),
}
TRANSITIONS_TO_ACTIVE = {
    State.PRIMARY_STATE_UNCONFIGURED: (Transition.TRANSITION_CONFIGURE, "configure"),
    State.PRIMARY_STATE_INACTIVE: (Transition.TRANSITION_ACTIVATE, "activate"),
}


class LifecycleError(RuntimeError):
    """A managed node that could not be brought to active."""


class Next(Enum):
    ACTIVE = "active"  # nothing left to do for this node
    WAIT = "wait"  # in a transition: ask again


def parse_node_names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise LifecycleError("node_names is empty: name the lifecycle nodes to bring up (so101_driver)")
    return names


def next_transition(node: str, state_id: int, label: str) -> Next | tuple[int, str]:
    """What brings a node in this state closer to active: a transition (id, label), or Next."""
    if state_id == State.PRIMARY_STATE_ACTIVE:
        return Next.ACTIVE
    if state_id in TRANSITIONS_TO_ACTIVE:
        return TRANSITIONS_TO_ACTIVE[state_id]
    if state_id >= State.TRANSITION_STATE_CONFIGURING:
        return Next.WAIT
    raise LifecycleError(f"{node} is {label}: it cannot be brought to active any more (start it again)")


class LifecycleManager(Node):
    def __init__(self, **node_options):
        super().__init__("so101_lifecycle_manager", **node_options)
        p = declare_parameters(self, PARAMETERS)
        self.pending = parse_node_names(p["node_names"])
        self.timeout = p["transition_timeout"]
        self._lifecycle_services = {name: (self.create_client(GetState, f"{name}/get_state"),
                                self.create_client(ChangeState, f"{name}/change_state")) for name in self.pending}
        self._request = None
        self._asked = ""  # "its state", or the transition asked for
        self._deadline = time.monotonic() + self.timeout
        # Wall time: a sim graph's /clock starts only once the driver is active.
        self.create_timer(0.05, self._step, clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.get_logger().info(f"bringing {', '.join(self.pending)} to active")

    @property
    def all_active(self) -> bool:
        return not self.pending

    def _ask(self, request, what: str) -> None:
        self._request, self._asked = request, what
        self._deadline = time.monotonic() + self.timeout

    def _step(self) -> None:
        if not self.pending:
            return
        name = self.pending[0]
        get_state, change_state = self._lifecycle_services[name]
        if self._request is None:
            if get_state.service_is_ready():
                self._ask(get_state.call_async(GetState.Request()), "its state")
            elif time.monotonic() > self._deadline:
                raise LifecycleError(f"{name} offered no lifecycle services within {self.timeout:g} s: is it "
                                     "running, under that name?")
            return
        if not self._request.done():
            if time.monotonic() > self._deadline:
                raise LifecycleError(f"{name} did not answer {self._asked} within {self.timeout:g} s")
            return
        reply, asked, self._request = self._request.result(), self._asked, None
        if asked != "its state":
            if not reply.success:
                raise LifecycleError(f"{asked} of {name} failed (its log says why)")
            return  # its state is asked again on the next step
        step = next_transition(name, reply.current_state.id, reply.current_state.label)
        if step is Next.ACTIVE:
            self.pending.pop(0)
            self.get_logger().info(f"{name} is active")
            self._deadline = time.monotonic() + self.timeout
        elif step is not Next.WAIT:
            transition, label = step
            self._ask(change_state.call_async(ChangeState.Request(transition=Transition(id=transition))), label)


USER_ERRORS = (LifecycleError,)


def main(args=None) -> int:
    return run_node(LifecycleManager, "so101_lifecycle_manager", USER_ERRORS, args)


if __name__ == "__main__":
    sys.exit(main())
