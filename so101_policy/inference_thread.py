"""The one thread that computes every chunk, and a wait on it that a stop signal ends."""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor, wait

from so101_driver.stop_signals import stop_requested

# A wait wakes this often (s) to run Python's signal handlers: a signal the kernel gives another
# thread (any of the process may take it) wakes nothing that sleeps in a lock.
WAKE_S = 0.1


class InferenceThread:
    """One thread computes every chunk: torch's grad mode and torch.compile's CUDA graphs belong to a thread."""

    def __init__(self):
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="so101_inference")
        self._lock = threading.Lock()
        self._running_on: int | None = None  # the thread's id while it runs a function
        self._stopped = False

    def submit(self, function: Callable, *args) -> Future:
        return self._executor.submit(self._run, function, *args)

    def call(self, function: Callable, *args):
        """`function(*args)` computed on the thread, waited for. A stop signal during the wait
        (KeyboardInterrupt) stops the thread's work too: a compilation or a CUDA-graph recording at
        start-up takes minutes, and the interpreter would wait for it at exit, Ctrl-C or not."""
        try:
            future = self.submit(function, *args)
            while not wait([future], timeout=WAKE_S).done:
                if stop_requested():  # a signal that landed in rclpy's code raised nothing (stop_signals)
                    raise KeyboardInterrupt
            return future.result()
        except KeyboardInterrupt:
            self.stop()
            raise

    def stop(self) -> None:
        """Interrupt the function running, drop the ones queued; nothing runs on the thread after it."""
        with self._lock:
            self._stopped = True
            if self._running_on is not None:
                # torch.compile, its Inductor and a CUDA-graph recording are mostly Python: raised in
                # the thread, the exception ends them at their next bytecode, once the C call in
                # progress (a compiler's subprocess, a CUDA synchronisation) has returned. Nothing
                # else stops a thread.
                _raise_in_thread(self._running_on, KeyboardInterrupt)
        self._executor.shutdown(wait=False, cancel_futures=True)

    def shutdown(self) -> None:
        """Waits for the chunk being computed; the ones queued behind it are dropped."""
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _run(self, function: Callable, *args):
        # stop() raises in this thread only while _running_on names it, and the finally clears it:
        # whenever the exception lands, it lands in here, and the future takes it.
        try:
            with self._lock:
                if self._stopped:
                    raise CancelledError("the inference thread was stopped")
                self._running_on = threading.get_ident()
            return function(*args)
        finally:
            with self._lock:
                self._running_on = None


def _raise_in_thread(thread_id: int, exception_type: type[BaseException]) -> None:
    """CPython's PyThreadState_SetAsyncExc: the thread raises it at its next bytecode."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exception_type))
