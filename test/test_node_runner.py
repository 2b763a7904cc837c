"""Whatever ends a node's spin, its close() runs: that is where torque goes off."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from rclpy.node import Node

from ros_harness import isolated_ros_env, next_domain_id
from so101_driver.node_runner import ParameterError, declare_parameters, run_node

REPO = Path(__file__).parents[1]


@pytest.fixture(autouse=True)
def keep_pytests_signal_handlers():
    """run_node leaves SIGINT and SIGTERM ignored (its process is ending); pytest's own must come back."""
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


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


# A node whose close() announces itself, then waits for the test's word: the test's next signal
# lands inside the clean-up every time, not by luck of timing.
SLOW_TO_CLOSE = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from rclpy.node import Node
    from so101_driver.node_runner import ParameterError, declare_parameters, run_node

    spinning, closing, may_finish, stop_yourself = (Path(p) for p in sys.argv[1:5])

    class SlowToClose(Node):
        def __init__(self):
            super().__init__("slow_to_close")
            self.create_timer(0.05, self._tick)

        def _tick(self):
            spinning.touch()
            if stop_yourself.exists():  # the run ends without a signal (as a failed control loop ends it)
                self.context.try_shutdown()

        def close(self):
            closing.touch()
            deadline = time.monotonic() + 20
            while not may_finish.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            print("clean-up finished", flush=True)

    sys.exit(run_node(SlowToClose, "slow_to_close", ()))
""")


# A node in a graph gone quiet (no timer, no message) whose process rclpy's own signal handling
# never reaches: the worst case of the moment between a stop signal and rclpy's shutdown of the context.
QUIET_NODE = textwrap.dedent("""
    import sys
    from pathlib import Path
    from rclpy.node import Node
    from rclpy.signals import uninstall_signal_handlers
    from so101_driver.node_runner import run_node

    spinning = Path(sys.argv[1])

    class Quiet(Node):
        def __init__(self):
            super().__init__("quiet")
            uninstall_signal_handlers()
            spinning.touch()

        def close(self):
            print("closed", flush=True)

    sys.exit(run_node(Quiet, "quiet", ()))
""")


RATE = {"rate": (30.0, "ticks per second", (1.0, 200.0)), "ticks": (5, "ticks to fade over", (1, 300))}


@pytest.fixture
def ros_context():
    import rclpy

    context = rclpy.Context()
    rclpy.init(args=[], context=context)
    yield context
    rclpy.shutdown(context=context)


def node_given(context, **overrides) -> Node:
    from rclpy.parameter import Parameter

    return Node("ranged", context=context,
                parameter_overrides=[Parameter(name, value=value) for name, value in overrides.items()])


def test_declared_ranges_are_shown_and_bound_what_a_user_may_give(ros_context):
    node = node_given(ros_context, rate=200.0, ticks=1)  # both ends are inside
    assert declare_parameters(node, RATE) == {"rate": 200.0, "ticks": 1}
    rate, ticks = node.describe_parameters(["rate", "ticks"])
    assert (rate.floating_point_range[0].from_value, rate.floating_point_range[0].to_value) == (1.0, 200.0)
    assert (ticks.integer_range[0].from_value, ticks.integer_range[0].to_value) == (1, 300)
    assert rate.read_only and ticks.read_only
    node.destroy_node()


@pytest.mark.parametrize("overrides, message", [
    ({"rate": -1.0}, "rate must be within [1.0, 200.0] (ticks per second), got -1.0."),
    ({"ticks": 301}, "ticks must be within [1, 300] (ticks to fade over), got 301."),
    # `-p rate:=30` is an integer to ROS: say so rather than rclpy's type error.
    ({"rate": 30}, "rate takes a float like 30.0 (ticks per second), got 30."),
])
def test_a_value_outside_the_range_or_of_the_wrong_type_is_one_line(ros_context, overrides, message):
    node = node_given(ros_context, **overrides)
    with pytest.raises(ParameterError) as error:
        declare_parameters(node, RATE)
    assert str(error.value) == message
    node.destroy_node()


def wait_for_file(path: Path, process: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()[0]
        assert time.monotonic() < deadline, f"timed out waiting for {path.name}"
        time.sleep(0.01)


@pytest.mark.parametrize("signals", [("SIGINT", "SIGINT"), ("SIGINT", "SIGTERM"), ("SIGTERM", "SIGINT"),
                                     ("itself", "SIGINT")])
def test_signals_that_land_in_the_clean_up_are_ignored(tmp_path, signals):
    """A terminal's Ctrl-C under ros2 launch: SIGINT to the whole group, then launch sends the node another.

    ("itself", ...): the run ends without a signal (a failed control loop), and a Ctrl-C lands in the clean-up.
    """
    paths = [tmp_path / name for name in ("spinning", "closing", "may_finish", "stop_yourself")]
    spinning, closing, may_finish, stop_yourself = paths
    env = dict(isolated_ros_env(next_domain_id()), PYTHONPATH=str(REPO))
    process = subprocess.Popen([sys.executable, "-c", SLOW_TO_CLOSE, *map(str, paths)],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    try:
        wait_for_file(spinning, process)
        if signals[0] == "itself":
            stop_yourself.touch()
        else:
            os.killpg(process.pid, getattr(signal, signals[0]))
        wait_for_file(closing, process)
        for name in signals[1:]:
            process.send_signal(getattr(signal, name))
        may_finish.touch()
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert "clean-up finished" in output and "Traceback" not in output, output
    assert output.count("while stopping: ignored") == len(signals) - 1, output


def test_a_stop_signal_ends_a_quiet_spin_without_rclpys_shutdown(tmp_path):
    """A policy_node once ignored Ctrl-C: the signal came as it began a wait that nothing would end."""
    spinning = tmp_path / "spinning"
    env = dict(isolated_ros_env(next_domain_id()), PYTHONPATH=str(REPO))
    process = subprocess.Popen([sys.executable, "-c", QUIET_NODE, str(spinning)], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        wait_for_file(spinning, process)
        os.killpg(process.pid, signal.SIGINT)
        output, _ = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0 and "closed" in output and "Traceback" not in output, output


def test_a_stop_signal_that_lands_as_a_bag_closes_lets_it_close_once(tmp_path, monkeypatch):
    """Ctrl-C right after an episode's end: the bag was once closed a second time in the clean-up, a traceback."""
    from rclpy.parameter import Parameter

    from so101_bringup import recorder as recorder_module

    close = recorder_module.EpisodeBag.close

    def close_then_ctrl_c(bag, metadata):
        close(bag, metadata)
        os.kill(os.getpid(), signal.SIGINT)  # lands before the recorder has let go of the bag

    monkeypatch.setattr(recorder_module.EpisodeBag, "close", close_then_ctrl_c)
    recorders = []

    def recorder_that_records_one_episode():
        node = recorder_module.Recorder(parameter_overrides=[Parameter("output_dir", value=str(tmp_path))])
        recorders.append(node)

        def step():  # start once the recorder hears markers, end once the bag is open
            if node.bag is None and not node.bags:
                node.mark("start")
            elif node.bag is not None:
                node.mark("end", "success")

        node.create_timer(0.1, step)
        return node

    assert run_node(recorder_that_records_one_episode, "so101_recorder", recorder_module.USER_ERRORS, args=[]) == 0
    assert recorders[0].bags == [tmp_path / "episode_000"]
    assert "outcome: success" in (tmp_path / "episode_000" / "metadata.yaml").read_text()


def test_a_first_signal_inside_rclpy_stops_through_the_context_not_an_exception():
    """A KeyboardInterrupt raised inside rclpy's executor once left a half-built Task behind, whose
    __del__ printed a traceback at exit; rclpy's own handler already shuts the context down."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from so101_driver.stop_signals import StopOnce

    outside = StopOnce("so101_test")
    with pytest.raises(KeyboardInterrupt):  # in our own code the stop is immediate
        outside(signal.SIGINT, sys._getframe())

    inside, answers = StopOnce("so101_test"), []
    context = rclpy.Context()
    rclpy.init(args=[], context=context)
    try:
        node = Node("signal_in_a_callback", context=context)
        node.create_timer(0.01, lambda: answers.append(inside(signal.SIGINT, sys._getframe())))
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        executor.spin_once(timeout_sec=5.0)  # the callback runs under rclpy's executor
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)
    assert answers == [None] and inside.stopping
