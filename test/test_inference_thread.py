"""The policy node's inference thread: a stop during a wait on it stops what the thread computes."""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import CancelledError

import pytest

from so101_driver.stop_signals import stop_once
from so101_policy.inference_thread import InferenceThread


def compiling_for_ever(started: threading.Event, ended_by: list[str]):
    """A compilation in Python code that outlasts the test; says how it ended."""
    def compile_for_ever():
        deadline = time.monotonic() + 60
        try:
            started.set()
            while time.monotonic() < deadline:
                pass
            ended_by.append("its deadline")
        except KeyboardInterrupt:
            ended_by.append("the interruption")
            raise
    return compile_for_ever


def no_worker_errors(caplog) -> None:
    """An exception that reached the executor's own loop (outside a function) ends the thread with this log."""
    assert not [record for record in caplog.records if record.name == "concurrent.futures"], caplog.text


def test_ctrl_c_while_waiting_interrupts_the_function_and_drops_the_queued_ones(caplog):
    inference = InferenceThread()
    assert inference.call(lambda: 1) == 1  # the thread exists: shutdown() below joins it
    started, ended_by = threading.Event(), []
    compile_for_ever = compiling_for_ever(started, ended_by)

    queued = []
    sent_on = threading.Thread(target=lambda: started.wait(30) and (
        queued.append(inference.submit(lambda: "computed after the stop")), os.kill(os.getpid(), signal.SIGINT)))
    sent_on.start()
    with pytest.raises(KeyboardInterrupt):  # Python's own SIGINT handler, in this (the main) thread
        inference.call(compile_for_ever)
    sent_on.join()
    inference.shutdown()  # waits for the thread to leave the function
    assert ended_by == ["the interruption"]
    with pytest.raises(CancelledError):
        queued[0].result(timeout=5)
    no_worker_errors(caplog)


def test_a_stop_signal_that_raised_nothing_still_ends_the_wait():
    """A signal landing in rclpy's code is left to rclpy (stop_signals): the handler notes the stop, raises nothing."""
    inference = InferenceThread()
    started, ended_by = threading.Event(), []
    with stop_once("test", process_ends=False) as stop:
        threading.Thread(target=lambda: started.wait(30) and setattr(stop, "stopping", True)).start()
        with pytest.raises(KeyboardInterrupt):
            inference.call(compiling_for_ever(started, ended_by))
    inference.shutdown()
    assert ended_by == ["the interruption"]


def test_a_stop_after_the_function_returned_reaches_nothing(caplog):
    inference = InferenceThread()
    assert inference.call(lambda: 1) == 1
    inference.stop()
    inference.shutdown()  # the idle thread was not interrupted: it ends as usual
    assert not any(thread.name.startswith("so101_inference") for thread in threading.enumerate())
    no_worker_errors(caplog)
