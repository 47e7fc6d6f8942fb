"""Pool's AsyncResult and MapResult: a job or a map at the service, waited on server-side."""

from __future__ import annotations

import multiprocessing
import threading
import time
from typing import TYPE_CHECKING, Any

from ._errors import JobsError, RemoteError
from ._values import _with_tuples

if TYPE_CHECKING:
    from ._pool import Pool

# A server-side wait is capped (Jobs:MaxWaitSeconds, 60 s by default); longer waits are several requests.
_LONGEST_WAIT = 30.0


class _Result:
    """What AsyncResult and MapResult share: a view of one resource (/jobs/{id} or /maps/{id}), waited on server-side."""

    _kind = ""

    def __init__(self, pool: "Pool", view: dict | None, callback=None, error_callback=None):
        # view None: sent by the pool's submitter (apply_async) — id and view arrive when the service has stored it.
        self._pool, self._view = pool, view or {"ready": False}
        self._refused: Exception | None = None
        self._sent = threading.Event()
        if view is not None:
            self._sent.set()
        # With a callback, as in Pool, the result is ready only once its callback has run (the handler sets this).
        self._handled: threading.Event | None = None
        if callback is not None or error_callback is not None:
            self._handled = threading.Event()
            pool._handler.watch(self, callback, error_callback)

    @property
    def id(self) -> str:
        self._wait_sent()
        return self._view["id"]

    def _stored(self, view: dict) -> None:
        self._view = view
        self._sent.set()

    def _refuse(self, error: Exception) -> None:
        """Not stored (refused by the service, or never sent): ready and unsuccessful, get() raises it — as Pool's
        result of a task that could not be pickled."""
        self._refused, self._view = error, {"ready": True, "successful": False}
        self._sent.set()

    def _wait_sent(self) -> None:
        self._sent.wait()
        if self._refused is not None:
            raise self._refused

    def _refresh(self, wait: float) -> dict:
        self._wait_sent()
        # Fractional seconds go to the server as they are: get(timeout=0.5) is one request that waits 0.5 s, not a loop.
        _, self._view = self._pool._client.request("GET", f"/{self._kind}s/{self.id}?wait={max(0.0, wait):.3f}", read_timeout=wait)
        return self._view

    def _finished(self) -> bool:
        return bool(self._view.get("ready")) and (self._handled is None or self._handled.is_set())

    def ready(self) -> bool:
        if not self._sent.is_set():
            return False  # still queued in this process: not finished (Pool's ready() never blocks either)
        if not self._view.get("ready"):
            self._refresh(0)
        return self._finished()

    def successful(self) -> bool:
        if not self.ready():
            raise ValueError(f"{self._kind} {self.id} is not ready")
        return bool(self._view.get("successful"))

    def _wait_stored_result(self, deadline: float | None) -> None:
        """Until the service says the job or map is finished (or the deadline passes); callbacks aside."""
        if not self._sent.wait(None if deadline is None else max(0.0, deadline - time.monotonic())):
            return
        while not self._view.get("ready"):
            left = _LONGEST_WAIT if deadline is None else deadline - time.monotonic()
            if left <= 0:
                return
            self._refresh(min(left, _LONGEST_WAIT))

    def wait(self, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        self._wait_stored_result(deadline)
        if self._handled is not None and self._view.get("ready"):
            self._handled.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))

    def get(self, timeout: float | None = None) -> Any:
        self.wait(timeout)
        if not self._finished():
            raise multiprocessing.TimeoutError(f"{self._kind} {self._view.get('id', '(not sent yet)')} not finished within {timeout} s")
        if self._refused is not None:
            raise self._refused
        return self._value()

    def _value(self) -> Any:
        raise NotImplementedError

    def cancel(self) -> bool:
        """Not in Pool: cancels this job or map (DELETE); False when it had already finished."""
        self._sent.wait()
        if self._refused is not None:
            return False
        try:
            _, self._view = self._pool._client.request("DELETE", f"/{self._kind}s/{self.id}")
            return True
        except JobsError as e:
            if e.status == 409:
                return False
            raise

    def _outcome(self):
        """Waits for the end; (callback's value, None) or (None, the exception for error_callback)."""
        try:
            self._wait_stored_result(None)
            if self._refused is not None:
                raise self._refused
            return self._value(), None
        except Exception as e:  # the remote exception, or the service unreachable: either way join() must not hang
            return None, e


class AsyncResult(_Result):
    """Pool's AsyncResult for one job: get(timeout), wait(timeout), ready(), successful()."""

    _kind = "job"

    def _value(self) -> Any:
        if self._view.get("successful"):
            return _with_tuples(self._view.get("result"), (self._view.get("tuples") or {}).get("result"))
        raise RemoteError.from_error(self._view.get("error") or {})


class MapResult(_Result):
    """Pool's MapResult for a map: get(timeout) returns the results in input order."""

    _kind = "map"

    def _value(self) -> list:
        status, body = self._pool._client.request("GET", f"/maps/{self.id}/results?timeout=0")
        if status == 424:
            # Pool.map raises the first failing item's exception.
            raise RemoteError.from_error(body, body.get("index"))
        results = body["results"]
        for index, pointers in (body.get("tuples") or {}).items():
            results[int(index)] = _with_tuples(results[int(index)], pointers)
        return results
