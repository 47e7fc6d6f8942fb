"""Pool's result-handler thread: callbacks and error_callbacks."""

from __future__ import annotations

import queue
import threading

from ._http import _Client
from ._results import _Result


class _ResultHandler:
    """
    Pool's result-handler thread: callbacks and error_callbacks run on this one thread, one at a time, in the order
    their results finish (a callback that blocks holds up the others, as in Pool). Each watched result is waited for
    by a waiter thread of its own (a server-side long poll); join() waits until every callback has run, and stop()
    ends the threads (the pool's join(), terminate() and collection).
    """

    def __init__(self, client: "_Client"):
        self._client = client
        self._ready: "queue.Queue" = queue.Queue()
        self._pending = 0
        self._idle = threading.Condition()
        self._thread: threading.Thread | None = None
        self._waiters: list = []

    def watch(self, result: "_Result", callback, error_callback) -> None:
        waiter = threading.Thread(target=self._wait, args=(result, callback, error_callback), name="jobs-result-waiter", daemon=True)
        with self._idle:
            self._pending += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="jobs-result-handler", daemon=True)
                self._thread.start()
            self._waiters = [w for w in self._waiters if w.is_alive()]
            self._waiters.append(waiter)
        waiter.start()

    def _wait(self, result: "_Result", callback, error_callback) -> None:
        try:
            self._ready.put((result, result._outcome(), callback, error_callback))
        finally:
            self._client.release()

    def _run(self) -> None:
        while True:
            ready = self._ready.get()
            if ready is None:
                return  # stop(): every callback queued before has run
            self._handle(*ready)
            del ready  # while it waits, this thread holds no result (nor its pool, which collection then ends)

    def _handle(self, result: "_Result", outcome: tuple, callback, error_callback) -> None:
        value, error = outcome
        try:
            if error is None and callback is not None:
                callback(value)
            elif error is not None and error_callback is not None:
                error_callback(error)
        finally:
            result._handled.set()
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()

    def join(self) -> None:
        if threading.current_thread() is self._thread:
            return  # join() or terminate() called by a callback: the others run once it returns
        with self._idle:
            self._idle.wait_for(lambda: self._pending == 0)

    def stop(self, wait: bool = True) -> None:
        """Ends the handler thread (after the callbacks of every result watched so far, when wait) and its waiters."""
        if wait:
            self.join()
        with self._idle:
            thread, self._thread = self._thread, None
            waiters, self._waiters = self._waiters, []
        if wait:
            for waiter in waiters:
                waiter.join()
        if thread is not None:
            self._ready.put(None)
            if wait and thread is not threading.current_thread():
                thread.join()
