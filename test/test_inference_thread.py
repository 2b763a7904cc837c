"""The policy node's inference thread: a stop during a wait on it stops what the thread computes."""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import CancelledError

import pytest

from so101_policy.inference_thread import InferenceThread


def test_ctrl_c_while_waiting_interrupts_the_function_and_drops_the_queued_ones():
    inference = InferenceThread()
    assert inference.call(lambda: 1) == 1  # the thread exists: shutdown() below joins it
    started, ended_by = threading.Event(), []

    def compile_for_ever():  # a compilation in Python code that outlasts the test
        deadline = time.monotonic() + 60
        try:
            started.set()
            while time.monotonic() < deadline:
                pass
            ended_by.append("its deadline")
        except KeyboardInterrupt:
            ended_by.append("the interruption")
            raise

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


def test_a_stop_after_the_function_returned_reaches_nothing():
    inference = InferenceThread()
    assert inference.call(lambda: 1) == 1
    inference.stop()
    inference.shutdown()  # the idle thread was not interrupted: it ends as usual
    assert not any(thread.name.startswith("so101_inference") for thread in threading.enumerate())
