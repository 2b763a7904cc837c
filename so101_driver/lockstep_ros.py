"""Lockstep on ROS: how a participant tells the sim driver which tick it has consumed.

The message is a sensor_msgs/TimeReference on so101/lockstep/ready: `source` is the participant's
node name, `header.stamp` the tick it consumed (zero: present, nothing consumed yet) and
`time_ref` the stamp of the last chunk it published (zero: none), which the driver must have
received before it takes the next tick. The topic is latched (transient local), so a driver that
starts after a participant still hears it announce itself.
"""

from __future__ import annotations

from builtin_interfaces.msg import Time
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import TimeReference
from std_msgs.msg import Header

from .lockstep import READY_TOPIC

# Each participant latches its latest answer; the driver keeps every participant's (one history
# holds the messages of all writers of a topic, so a depth of one would let one hide another).
READY_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
READY_LISTENER_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                                durability=DurabilityPolicy.TRANSIENT_LOCAL)
# A lockstep participant must see every tick: its inputs are subscribed reliably, deep enough
# for the few messages of one tick.
TICK_INPUT_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


def stamp_ns(stamp: Time) -> int:
    return stamp.sec * 1_000_000_000 + stamp.nanosec


def ns_to_time(nanoseconds: int) -> Time:
    return Time(sec=nanoseconds // 1_000_000_000, nanosec=nanoseconds % 1_000_000_000)


class LockstepParticipant:
    """Announces the node on creation, then reports each tick it has consumed."""

    def __init__(self, node: Node):
        self.node = node
        self._publisher = node.create_publisher(TimeReference, READY_TOPIC, READY_QOS)
        self.consumed_ns = 0
        self.chunk_ns = 0
        self._publish()

    def consumed(self, tick_ns: int, chunk_ns: int | None = None) -> None:
        """This tick is consumed; `chunk_ns`: the stamp of a chunk published because of it."""
        self.consumed_ns = max(self.consumed_ns, tick_ns)
        if chunk_ns is not None:
            self.chunk_ns = max(self.chunk_ns, chunk_ns)
        self._publish()

    def repeat(self) -> None:
        """The driver published a tick again (it lost our answer, or we lost its tick): answer again."""
        self._publish()

    def _publish(self) -> None:
        self._publisher.publish(TimeReference(header=Header(stamp=ns_to_time(self.consumed_ns)),
                                              time_ref=ns_to_time(self.chunk_ns), source=self.node.get_name()))

