"""Whatever ends a node's spin, its close() runs: that is where torque goes off."""

import pytest
from rclpy.node import Node

from so101_driver.node_runner import run_node


class FailingNode(Node):
    closed = []

    def __init__(self):
        super().__init__("failing_node")
        self.create_timer(0.01, self._fail)

    def _fail(self):
        raise RuntimeError("a callback failed mid-run")

    def close(self):
        FailingNode.closed.append(True)


class UnusableSetting(ValueError):
    pass


def refuse_to_start():
    raise UnusableSetting("port /dev/ttyX does not exist; set port:=...")


def test_a_failing_callback_still_closes_the_node():
    with pytest.raises(RuntimeError, match="mid-run"):
        run_node(FailingNode, "failing_node", (UnusableSetting,), args=[])
    assert FailingNode.closed == [True]


def test_start_up_errors_are_one_line_and_exit_1(capsys):
    assert run_node(refuse_to_start, "so101_driver", (UnusableSetting,), args=[]) == 1
    assert capsys.readouterr().err == "[so101_driver] port /dev/ttyX does not exist; set port:=...\n"
