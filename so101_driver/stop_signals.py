"""A process stops once: the first SIGINT or SIGTERM stops it, the ones after it are noted and ignored.

A terminal's Ctrl-C reaches every process of its group, and `ros2 launch` then sends each node a
SIGINT of its own. That second signal lands in the clean-up (torque off, a bag's metadata), which
must finish: Python's default handler would raise KeyboardInterrupt in the middle of it, and once
the interpreter is finalising, kill the process with SIGINT's default action.

Entered before rclpy.init, so that rclpy's own handler (which wakes the executor) chains to this one.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from contextlib import contextmanager

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopOnce:
    """The handler: KeyboardInterrupt for the first stop signal, a line on stderr for each later one."""

    def __init__(self, name: str):
        self.name = name
        self.received: list[str] = []
        self.stopping = False
        self._shielding = 0  # depth of uninterrupted() blocks running
        self._stop_pending = False

    def now_stopping(self) -> None:
        """The clean-up begins (however the run ended): from here on every signal is ignored."""
        self.stopping = True

    def __call__(self, signum, frame) -> None:
        self.received.append(signal.Signals(signum).name)
        if not self.stopping:
            self.stopping = True
            if self._shielding:
                self._stop_pending = True  # raised when the block ends
                return
            if _inside_rclpy(frame):
                # rclpy's own handler has shut the context down, which ends the spin; an exception
                # raised in the middle of its code leaves half-built objects behind (a Task whose
                # __del__ then prints a traceback at exit).
                return
            raise KeyboardInterrupt
        print(f"[{self.name}] {self.received[-1]} while stopping: ignored, the clean-up finishes first",
              file=sys.stderr, flush=True)


    @contextmanager
    def shielded(self):
        self._shielding += 1
        try:
            yield
        finally:
            self._shielding -= 1
        if not self._shielding and self._stop_pending:
            self._stop_pending = False
            raise KeyboardInterrupt


def _inside_rclpy(frame) -> bool:
    while frame is not None:
        if f"{os.sep}rclpy{os.sep}" in frame.f_code.co_filename:
            return True
        frame = frame.f_back
    return False


_active: StopOnce | None = None  # the handler of the stop_once block running, if any


def stop_requested() -> bool:
    """A stop signal came to the stop_once block running: also the one its handler left to rclpy."""
    return _active is not None and _active.stopping


@contextmanager
def uninterrupted():
    """A block that a stop signal does not cut in two (closing a bag): the stop comes right after it."""
    if _active is None:
        yield
        return
    with _active.shielded():
        yield


@contextmanager
def stop_once(name: str, process_ends: bool):
    """Handle SIGINT and SIGTERM with StopOnce inside the block.

    After it: ignored for good where the process ends with the block (a node's executable, whose
    interpreter is then finalising), else the previous handlers come back (`so101 demo` goes on).
    Only the main thread can set handlers; elsewhere the block runs with the handlers as they are.
    """
    if threading.current_thread() is not threading.main_thread():
        yield None
        return
    global _active
    handler = _active = StopOnce(name)
    previous = {signum: signal.signal(signum, handler) for signum in STOP_SIGNALS}
    try:
        yield handler
    finally:
        _active = None
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_IGN if process_ends else previous[signum])
