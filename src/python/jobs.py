"""A multiprocessing.pool.Pool for Jobs: the same API, run durably by a Jobs service over HTTP.

    from multiprocessing import Pool            import jobs
    with Pool(4) as pool:                       with jobs.Pool("http://127.0.0.1:5080") as pool:
        print(pool.map(square, range(10)))          print(pool.map("math.square", range(10)))

The callable is the name of a function registered with the service (``GET /functions`` lists them), or a
top-level function of a Python module the workers load (Python:Modules), which they offer as ``py:module.name``. Everything else is Pool's: apply, apply_async
(callback=, error_callback=) returning an AsyncResult (get(timeout), wait, ready, successful), map, map_async,
starmap, starmap_async, imap, imap_unordered, close, terminate, join, and the context manager.

Differences a Pool user should know: work runs in the service's worker processes, not in this one, so it survives
this process; a remote exception is raised here as RemoteError (carrying the remote type, message and traceback);
get() timing out raises multiprocessing.TimeoutError, as Pool's does. Standard library only.
"""

from __future__ import annotations

import builtins
import http.client
import json
import multiprocessing
import os
import queue
import sys
import threading
import time
import urllib.parse
from typing import Any, Callable, Iterable, Iterator

__all__ = ["Pool", "AsyncResult", "MapResult", "IMapIterator", "RemoteError", "RemoteTraceback", "JobsError"]

# A server-side wait is capped (Jobs:MaxWaitSeconds, 60 s by default); longer waits are several requests.
_LONGEST_WAIT = 30.0


class JobsError(Exception):
    """The service refused a request (problem+json): status, title and detail as it sent them."""

    def __init__(self, status: int, title: str, detail: str, problem: dict | None = None):
        super().__init__(f"{status} {title}: {detail}")
        self.status, self.title, self.detail, self.problem = status, title, detail, problem or {}


class RemoteTraceback(Exception):
    """The worker's traceback, as Pool's multiprocessing.pool.RemoteTraceback: the __cause__ of a remote exception."""

    def __init__(self, tb: str):
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return self.tb


class RemoteError(Exception):
    """
    The function raised in a worker: the remote exception's type, message and traceback. Where this process knows the
    remote type — a built-in exception, or a class of a module it has imported (the module whose functions it sends) —
    the exception raised here is also of that type, as with Pool: ``except ZeroDivisionError`` matches, ``str(e)`` is
    the message, and ``e.__cause__`` is the RemoteTraceback. Otherwise (a .NET function's exception) it is RemoteError alone.
    """

    def __init__(self, type: str, message: str, traceback: str = "", index: int | None = None):
        where = "" if index is None else f" (item {index})"
        super().__init__(f"{type}: {message}{where}")
        self.type, self.message, self.traceback, self.index = type, message, traceback, index

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text}\n\nRemote traceback:\n{self.traceback}" if self.traceback else text

    @classmethod
    def from_error(cls, error: dict, index: int | None = None) -> "RemoteError":
        # A job's or item's error has "type"; a 424 problem (map().get()) has "exceptionType", and its "type" is the
        # problem's own URL, not the remote exception's.
        type_name = error.get("exceptionType") or error.get("type") or "Exception"
        message, traceback = error.get("message", ""), error.get("stackTrace", "")
        combined = _as_local(type_name)
        if combined is None:
            return cls(type_name, message, traceback, index)
        e = combined.__new__(combined)
        RemoteError.__init__(e, type_name, message, traceback, index)
        e.args = (message,)
        if traceback:
            e.__cause__ = RemoteTraceback(traceback)
        return e


_LOCAL_TYPES: dict = {}


def _as_local(type_name: str):
    """The remote type as a class of this process, combined with RemoteError; None when this process does not know it."""
    if type_name in _LOCAL_TYPES:
        return _LOCAL_TYPES[type_name]
    module, _, name = type_name.rpartition(".")
    # Never imports anything: only what this program has imported already (it sends that module's functions).
    found = getattr(builtins, name, None) if not module else getattr(sys.modules.get(module), name, None)
    combined = None
    if isinstance(found, type) and issubclass(found, Exception) and not issubclass(found, RemoteError):
        try:
            combined = type(found.__name__, (found, RemoteError), {"__module__": found.__module__, "__qualname__": found.__qualname__,
                                                                    "__str__": lambda self: self.message})
        except TypeError:
            combined = None  # an exception with a C layout of its own (OSError and kin): RemoteError alone
    _LOCAL_TYPES[type_name] = combined
    return combined


class _Client:
    """
    HTTP to the service over keep-alive connections, one per thread (the caller's, the result handler's waiters, each
    imap reader): a pool's many small requests do not each pay for a new TCP connection, as they did through urllib.
    """

    def __init__(self, url: str, api_key: str | None, timeout: float):
        self.url, self.api_key, self.timeout = url.rstrip("/"), api_key, timeout
        parts = urllib.parse.urlsplit(self.url)
        self._https, self._host, self._port = parts.scheme == "https", parts.hostname or "127.0.0.1", parts.port
        self._base = parts.path.rstrip("/")
        self._local = threading.local()

    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        return kind(self._host, self._port, timeout=timeout)

    def request(self, method: str, path: str, body: Any = None, stream: bool = False, read_timeout: float = 0.0):
        data = None if body is None else _json(body)
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self.api_key:
            headers["Authorization"] = "Bearer " + self.api_key
        timeout = self.timeout + read_timeout
        # A stream holds its connection until it ends: it gets one of its own.
        connection = None if stream else getattr(self._local, "connection", None)
        reused = connection is not None
        while True:
            if connection is None:
                connection = self._connect(timeout)
                if not stream:
                    self._local.connection = connection
            try:
                connection.timeout = timeout
                if connection.sock is not None:
                    connection.sock.settimeout(timeout)
                connection.request(method, self._base + path, body=data, headers=headers)
                response = connection.getresponse()
                break
            except (ConnectionError, http.client.HTTPException):
                connection.close()
                connection = None
                if not stream:
                    self._local.connection = None
                # Only a kept-alive connection the service closed while idle is tried again, on a new one; a new
                # connection that fails is the service's failure, and a submission must not be sent twice.
                if not reused:
                    raise
                reused = False
        if response.status >= 400:
            raw = response.read()
            if stream:
                connection.close()
            if response.status == 424:
                return response.status, json.loads(raw or b"{}")
            raise _refusal(response.status, response.reason, raw)
        if stream:
            return response.status, response
        raw = response.read()
        return response.status, (json.loads(raw) if raw else None)


def _json(body: Any) -> bytes:
    """The request body; what JSON cannot carry is refused here, before anything is sent, as Pool refuses what it cannot pickle."""
    try:
        return json.dumps(body, allow_nan=False).encode()
    except ValueError:
        raise ValueError("NaN and Infinity cannot be sent to the service: JSON has no such numbers "
                         "(send None, or a string, and convert in the function)") from None
    except TypeError as e:
        raise TypeError(f"{e}: arguments go to the service as JSON (numbers, strings, booleans, None, lists, dicts "
                        "with string keys; tuples arrive as lists)") from None


def _refusal(status: int, reason: str, raw: bytes) -> JobsError:
    try:
        problem = json.loads(raw or b"{}")
    except ValueError:
        problem = {}
    return JobsError(status, problem.get("title", reason), problem.get("detail", ""), problem)


def _name(func: Callable | str) -> str:
    """A registered function's name as is; a Python function as the name its worker offers it under, py:module.name."""
    if isinstance(func, str):
        return func
    module, qualname = getattr(func, "__module__", None), getattr(func, "__qualname__", None)
    if not module or not qualname or "<" in qualname or "." in qualname or module == "__main__":
        # Pool's own rule ("Can't pickle local object"): only top-level functions of an importable module can go
        # to a worker — here, a module the workers load (Python:Modules).
        raise TypeError(f"{func!r} can't be sent to a worker: only top-level functions of a module the workers load "
                        "(Python:Modules) can, as with Pool's pickling; or pass a registered function's name")
    return f"py:{module}.{qualname}"


class _Result:
    """What AsyncResult and MapResult share: a view of one resource (/jobs/{id} or /maps/{id}), waited on server-side."""

    _kind = ""

    def __init__(self, pool: "Pool", view: dict, callback=None, error_callback=None):
        self._pool, self.id, self._view = pool, view["id"], view
        if callback is not None or error_callback is not None:
            pool._handler.watch(self, callback, error_callback)

    def _refresh(self, wait: float) -> dict:
        # Fractional seconds go to the server as they are: get(timeout=0.5) is one request that waits 0.5 s, not a loop.
        _, self._view = self._pool._client.request("GET", f"/{self._kind}s/{self.id}?wait={max(0.0, wait):.3f}", read_timeout=wait)
        return self._view

    def ready(self) -> bool:
        return bool(self._view.get("ready")) or bool(self._refresh(0).get("ready"))

    def successful(self) -> bool:
        if not self.ready():
            raise ValueError(f"{self._kind} {self.id} is not ready")
        return bool(self._view.get("successful"))

    def wait(self, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._view.get("ready"):
            left = _LONGEST_WAIT if deadline is None else deadline - time.monotonic()
            if left <= 0:
                return
            self._refresh(min(left, _LONGEST_WAIT))

    def get(self, timeout: float | None = None) -> Any:
        self.wait(timeout)
        if not self._view.get("ready"):
            raise multiprocessing.TimeoutError(f"{self._kind} {self.id} not finished within {timeout} s")
        return self._value()

    def _value(self) -> Any:
        raise NotImplementedError

    def cancel(self) -> bool:
        """Not in Pool: cancels this job or map (DELETE); False when it had already finished."""
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
            return self.get(), None
        except Exception as e:  # the remote exception, or the service unreachable: either way join() must not hang
            return None, e


class AsyncResult(_Result):
    """Pool's AsyncResult for one job: get(timeout), wait(timeout), ready(), successful()."""

    _kind = "job"

    def _value(self) -> Any:
        if self._view.get("successful"):
            return self._view.get("result")
        raise RemoteError.from_error(self._view.get("error") or {})


class MapResult(_Result):
    """Pool's MapResult for a map: get(timeout) returns the results in input order."""

    _kind = "map"

    def _value(self) -> list:
        status, body = self._pool._client.request("GET", f"/maps/{self.id}/results?timeout=0")
        if status == 424:
            # Pool.map raises the first failing item's exception.
            raise RemoteError.from_error(body, body.get("index"))
        return body["results"]


class IMapIterator:
    """
    Pool's IMapIterator: ``next(timeout)`` raises multiprocessing.TimeoutError when no result comes in time, and a
    failed item raises its exception from ``next()`` while the iteration goes on with the next item, as in Pool.
    The results stream (GET /maps/{id}/stream) is read by a thread of its own into a queue.
    """

    _END = ("end", None, None)

    def __init__(self, client: "_Client", map_id: str, order: str):
        self.id = map_id
        self._items: "queue.Queue" = queue.Queue()
        threading.Thread(target=self._read, args=(client, order), name=f"jobs-imap-{map_id}", daemon=True).start()

    def _read(self, client: "_Client", order: str) -> None:
        try:
            _, response = client.request("GET", f"/maps/{self.id}/stream?order={order}", stream=True, read_timeout=86_400)
            with response:
                for line in response:
                    if line.strip():
                        item = json.loads(line)
                        self._items.put(("error", item["error"], item.get("index")) if "error" in item
                                        else ("value", item.get("result"), None))
        except Exception as e:  # the service went away: the next next() raises it
            self._items.put(("raise", e, None))
        self._items.put(self._END)

    def __iter__(self) -> "IMapIterator":
        return self

    def next(self, timeout: float | None = None) -> Any:
        try:
            kind, value, index = self._items.get(timeout=timeout)
        except queue.Empty:
            raise multiprocessing.TimeoutError from None
        if kind == "end":
            self._items.put(self._END)  # and so on for every later call
            raise StopIteration
        if kind == "error":
            raise RemoteError.from_error(value, index)
        if kind == "raise":
            raise value
        return value

    __next__ = next


class _ResultHandler:
    """
    Pool's result-handler thread: callbacks and error_callbacks run on this one thread, one at a time, in the order
    their results finish (a callback that blocks holds up the others, as in Pool). Each watched result is waited for
    by a waiter thread of its own (a server-side long poll); join() waits until every callback has run.
    """

    def __init__(self):
        self._ready: "queue.Queue" = queue.Queue()
        self._pending = 0
        self._idle = threading.Condition()
        self._thread: threading.Thread | None = None

    def watch(self, result: "_Result", callback, error_callback) -> None:
        with self._idle:
            self._pending += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="jobs-result-handler", daemon=True)
                self._thread.start()
        threading.Thread(target=lambda: self._ready.put((result._outcome(), callback, error_callback)), daemon=True).start()

    def _run(self) -> None:
        while True:
            (value, error), callback, error_callback = self._ready.get()
            try:
                if error is None and callback is not None:
                    callback(value)
                elif error is not None and error_callback is not None:
                    error_callback(error)
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def join(self) -> None:
        with self._idle:
            self._idle.wait_for(lambda: self._pending == 0)


class Pool:
    """multiprocessing.pool.Pool, served by the Jobs service at ``url``."""

    def __init__(self, processes: int | str | None = None, initializer=None, initargs=(), maxtasksperchild=None, *,
                 url: str | None = None, api_key: str | None = None, queue: str | None = None, timeout: float = 30.0):
        """
        Pool's signature, so ``Pool(4)`` → ``jobs.Pool(4)``. The service is at ``url``, else $JOBS_URL, else
        http://127.0.0.1:5080 (``jobs.Pool("http://…")`` still takes the URL first). ``processes`` is checked as Pool
        checks it, but the service's parallelism is its workers' (Worker:WorkerCount per worker process), not this
        pool's. initializer, initargs and maxtasksperchild act on worker processes, so they are worker settings.
        """
        if isinstance(processes, str):
            url, processes = processes, None
        if processes is not None and (isinstance(processes, bool) or not isinstance(processes, int) or processes < 1):
            raise ValueError("Number of processes must be at least 1")
        if initializer is not None or initargs or maxtasksperchild is not None:
            raise TypeError("initializer, initargs and maxtasksperchild run in the service's worker processes: set them for "
                            "the module in the workers' settings (Python:Modules:N:Initializer, InitArgs, MaxTasksPerChild)")
        self._processes = processes
        self._client = _Client(url or os.environ.get("JOBS_URL") or "http://127.0.0.1:5080", api_key, timeout)
        self._queue = queue
        self._state = "RUN"
        self._results: list = []
        self._handler = _ResultHandler()

    # -- single jobs ---------------------------------------------------------------------------------------------

    def apply(self, func, args=(), kwds=None):
        return self.apply_async(func, args, kwds).get()

    def apply_async(self, func, args=(), kwds=None, callback=None, error_callback=None) -> AsyncResult:
        self._check_running()
        body = {"function": _name(func), "args": list(args), "kwargs": dict(kwds or {})}
        if self._queue:
            body["queue"] = self._queue
        _, job = self._client.request("POST", "/jobs", body)
        result = AsyncResult(self, job, callback, error_callback)
        self._results.append(result)
        return result

    # -- maps ----------------------------------------------------------------------------------------------------

    def _submit_map(self, func, iterable: Iterable, chunksize: int | None, star: bool) -> dict:
        self._check_running()
        body = {"function": _name(func), "items": [list(i) if star else i for i in iterable], "star": star}
        if chunksize is not None:
            body["chunksize"] = chunksize
        if self._queue:
            body["queue"] = self._queue
        _, mapping = self._client.request("POST", "/maps", body)
        return mapping

    def map(self, func, iterable: Iterable, chunksize: int | None = None) -> list:
        return self.map_async(func, iterable, chunksize).get()

    def map_async(self, func, iterable, chunksize=None, callback=None, error_callback=None) -> MapResult:
        result = MapResult(self, self._submit_map(func, iterable, chunksize, star=False), callback, error_callback)
        self._results.append(result)
        return result

    def starmap(self, func, iterable: Iterable[Iterable], chunksize: int | None = None) -> list:
        return self.starmap_async(func, iterable, chunksize).get()

    def starmap_async(self, func, iterable, chunksize=None, callback=None, error_callback=None) -> MapResult:
        result = MapResult(self, self._submit_map(func, iterable, chunksize, star=True), callback, error_callback)
        self._results.append(result)
        return result

    def imap(self, func, iterable: Iterable, chunksize: int | None = None) -> "IMapIterator":
        """Results in input order, each as soon as it and those before it are done. Without a chunksize, the service
        picks one (as map does): a chunk per item would make each item a Hangfire job of its own."""
        return self._stream(self._submit_map(func, iterable, chunksize, star=False), "input")

    def imap_unordered(self, func, iterable: Iterable, chunksize: int | None = None) -> "IMapIterator":
        """Results in completion order."""
        return self._stream(self._submit_map(func, iterable, chunksize, star=False), "completion")

    def _stream(self, mapping: dict, order: str) -> "IMapIterator":
        result = MapResult(self, mapping)
        self._results.append(result)
        return IMapIterator(self._client, mapping["id"], order)

    # -- lifecycle -----------------------------------------------------------------------------------------------

    def close(self) -> None:
        """No more work will be submitted through this pool."""
        self._state = "CLOSE"

    def terminate(self) -> None:
        """Stops at once: cancels every job and map of this pool that has not finished."""
        self._state = "TERMINATE"
        for result in self._results:
            if result._view.get("ready"):
                continue  # known finished: nothing to cancel
            try:
                result.cancel()
            except JobsError:
                pass  # gone

    def join(self) -> None:
        """Waits for all work of this pool to finish; call close() or terminate() first, as with Pool."""
        if self._state == "RUN":
            raise ValueError("Pool is still running")
        if self._state == "CLOSE":
            for result in self._results:
                result.wait()
        self._handler.join()  # as Pool's join, after the last callback has run

    def __enter__(self) -> "Pool":
        self._check_running()
        return self

    def __exit__(self, *exc) -> None:
        # Pool.__exit__ terminates, as multiprocessing's does.
        self.terminate()

    def _check_running(self) -> None:
        if self._state != "RUN":
            raise ValueError("Pool not running")
