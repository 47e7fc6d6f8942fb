"""A multiprocessing.pool.Pool for Jobs: the same API, run durably by a Jobs service over HTTP.

    from multiprocessing import Pool            from jobs import Pool     # the one line that changes

    def square(x):
        return x * x

    if __name__ == "__main__":
        with Pool(4) as pool:
            print(pool.map(square, range(10)))

The workers load the script (Python:Modules) and offer its top-level functions as ``py:<script>.<name>``; a function
goes by the name pickle gives it (built-ins the workers list in Python:Imports, ``functools.partial`` with its
arguments), a registered function by its name (``pool.map("math.square", …)``). Everything else is Pool's: apply,
apply_async (callback=, error_callback=) returning an AsyncResult (get(timeout), wait, ready, successful), map,
map_async, starmap, starmap_async, imap, imap_unordered (IMapIterator), close, terminate, join, and the context
manager. The service is at $JOBS_URL (or url=), the key in $JOBS_API_KEY (or api_key=), the queue $JOBS_QUEUE (queue=).

Differences (src/python/README.md, "What differs from Pool, in one place"): work runs in the service's workers
and survives this process; values travel as JSON (tuples stay tuples; dict keys must be strings); initializer, initargs and
maxtasksperchild are the workers' settings, checked here. Standard library only.
"""

from __future__ import annotations

import builtins
import functools
import http.client
import itertools
import json
import multiprocessing
import multiprocessing.pool
import os
import pickle
import queue
import sys
import threading
import time
import types
import urllib.parse
import warnings
from typing import Any, Callable, Iterable, Iterator

__all__ = ["Pool", "Admin", "AsyncResult", "MapResult", "IMapIterator", "RemoteError", "RemoteTraceback", "MaybeEncodingError",
           "JobsError", "TimeoutError"]

# As multiprocessing exports it, so `from multiprocessing import Pool, TimeoutError` moves as `from jobs import …`.
TimeoutError = multiprocessing.TimeoutError

# A server-side wait is capped (Jobs:MaxWaitSeconds, 60 s by default); longer waits are several requests.
_LONGEST_WAIT = 30.0


class JobsError(Exception):
    """The service refused a request (problem+json): status, title and detail as it sent them."""

    def __init__(self, status: int, title: str, detail: str, problem: dict | None = None):
        super().__init__(f"{status} {title}: {detail}")
        self.status, self.title, self.detail, self.problem = status, title, detail, problem or {}


# Pool's own: the worker's traceback, the __cause__ of a remote exception (its .tb is the traceback's text).
RemoteTraceback = multiprocessing.pool.RemoteTraceback


class RemoteError(Exception):
    """
    The function raised in a worker, and this process does not have the remote exception's class (a .NET function's
    exception, a class of a module this process has not imported): the remote type's name, message and traceback.
    Where this process has the class — a built-in exception, or a class of a module it has imported (the module whose
    functions it sends) — the exception is raised as Pool raises it instead: that very class (``type(e) is KeyError``),
    rebuilt from the remote exception's args as pickle rebuilds it (``KeyError('key').args == ('key',)``), its
    ``__cause__`` a ``multiprocessing.pool.RemoteTraceback``; it also carries ``.type``, ``.message``, ``.traceback`` and
    ``.index`` (a map's item) as RemoteError does. A result that cannot travel back is ``jobs.MaybeEncodingError``: both
    Pool's ``multiprocessing.pool.MaybeEncodingError`` (``.exc``, ``.value``) and a RemoteError.
    """

    def __init__(self, type: str, message: str, traceback: str = "", index: int | None = None):
        where = "" if index is None else f" (item {index})"
        super().__init__(f"{type}: {message}{where}")
        self.type, self.message, self.traceback, self.index = type, message, traceback, index

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text}\n\nRemote traceback:\n{self.traceback}" if self.traceback else text

    @classmethod
    def from_error(cls, error: dict, index: int | None = None) -> Exception:
        """The exception to raise here for a stored error (a job's or item's ``error``, or a 424 problem)."""
        # A job's or item's error has "type"; a 424 problem (map().get()) has "exceptionType", and its "type" is the
        # problem's own URL, not the remote exception's.
        type_name = error.get("exceptionType") or error.get("type") or "Exception"
        message, traceback = error.get("message") or "", error.get("stackTrace") or ""
        # The remote exception's args, stored when JSON could carry them; otherwise it is rebuilt from its message.
        args = error.get("args") if isinstance(error.get("args"), list) else None
        if type_name == "MaybeEncodingError":
            e = MaybeEncodingError.__new__(MaybeEncodingError)
            # Pool's: exc and value are the reprs of the encoding error and of the result (the service's own refusals
            # of a result, which it cannot show, have the message as exc).
            e.exc, e.value = args if args is not None and len(args) == 2 else (message, "")
            e.args = (e.exc, e.value)
            RemoteError._describe(e, type_name, message, traceback, index)
            return e  # no __cause__: Pool's MaybeEncodingError has none either
        local = _as_local(type_name)
        if local is None:
            return cls(type_name, message, traceback, index)
        e = _rebuilt(local, args if args is not None else [message])
        RemoteError._describe(e, type_name, message, traceback, index)
        if traceback:
            e.__cause__ = RemoteTraceback('\n"""\n%s"""' % traceback)  # Pool's words (ExceptionWithTraceback)
        return e

    @staticmethod
    def _describe(e: BaseException, type_name: str, message: str, traceback: str, index: int | None) -> None:
        e.type, e.message, e.traceback, e.index = type_name, message, traceback, index


class MaybeEncodingError(multiprocessing.pool.MaybeEncodingError, RemoteError):
    """A result that cannot travel back as JSON: Pool's MaybeEncodingError (``.exc``, ``.value``: reprs of the reason and
    of the result), and a RemoteError (``.type``, ``.message``, ``.index``)."""

    def __str__(self) -> str:
        return self.message


_LOCAL_TYPES: dict = {}


def _as_local(type_name: str):
    """The remote type as a class of this process; None when this process does not have it."""
    if type_name in _LOCAL_TYPES:
        return _LOCAL_TYPES[type_name]
    module, _, name = type_name.rpartition(".")
    if module and module == _script_module():
        module = "__main__"  # the workers load this program as its module: its classes are here, in __main__
    # Never imports anything: only what this program has imported already (it sends that module's functions).
    found = getattr(builtins, name, None) if not module else _lookup(sys.modules.get(module), name)
    local = found if isinstance(found, type) and issubclass(found, Exception) and not issubclass(found, RemoteError) else None
    _LOCAL_TYPES[type_name] = local
    return local


def _rebuilt(cls: type, args: list) -> BaseException:
    """cls rebuilt from args as pickle rebuilds an exception (cls(*args)); a class whose __init__ wants other arguments
    (where unpickling fails in Pool) gets its args without __init__."""
    try:
        e = cls(*args)
    except Exception:  # noqa: BLE001 - the user's __init__, whatever it raises
        e = cls.__new__(cls)
        e.args = tuple(args)
    if not isinstance(e, cls):
        e = cls.__new__(cls)
        e.args = tuple(args)
    return e


def _lookup(owner: Any, qualname: str) -> Any:
    """What pickle finds for a qualified name: getattr along its dots (K.cm, K.Inner.sm); None when it finds nothing."""
    for part in qualname.split("."):
        owner = getattr(owner, part, None)
        if owner is None:
            return None
    return owner


class _Client:
    """
    HTTP to the service over keep-alive connections, one per thread (the caller's, the result handler's waiters, each
    imap reader): a pool's many small requests do not each pay for a new TCP connection, as they did through urllib.
    A thread that ends closes its own (release()); close() closes them all, and from then on each request has a
    connection of its own, closed with its answer (a result read after the pool was joined leaves no socket open).
    """

    def __init__(self, url: str, api_key: str | None, timeout: float):
        self.url, self.api_key, self.timeout = url.rstrip("/"), api_key, timeout
        parts = urllib.parse.urlsplit(self.url)
        self._https, self._host, self._port = parts.scheme == "https", parts.hostname or "127.0.0.1", parts.port
        self._base = parts.path.rstrip("/")
        self._local = threading.local()
        self._open: set = set()  # every kept-alive connection, whichever thread holds it: close() ends them all
        self._lock = threading.Lock()
        self._closed = False

    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        return kind(self._host, self._port, timeout=timeout)

    def request(self, method: str, path: str, body: Any = None, stream: bool = False, read_timeout: float = 0.0):
        data = None if body is None else body if isinstance(body, bytes) else _json(body)
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self.api_key:
            headers["Authorization"] = "Bearer " + self.api_key
        timeout = self.timeout + read_timeout
        # A stream holds its connection until it ends: it gets one of its own, as does every request once closed.
        keep = not stream and not self._closed
        connection = getattr(self._local, "connection", None) if keep else None
        reused = connection is not None
        while True:
            if connection is None:
                connection = self._connect(timeout)
                if keep:
                    self._local.connection = connection
                    with self._lock:
                        self._open.add(connection)
            try:
                connection.timeout = timeout
                if connection.sock is not None:
                    connection.sock.settimeout(timeout)
                connection.request(method, self._base + path, body=data, headers=headers)
                response = connection.getresponse()
                break
            except (ConnectionError, http.client.HTTPException):
                connection.close()
                if keep:
                    self._forget(connection)
                connection = None
                # Only a kept-alive connection the service closed while idle is tried again, on a new one; a new
                # connection that fails is the service's failure, and a submission must not be sent twice.
                if not reused:
                    raise
                reused = False
        # RFC 9111's Warning (a job accepted for a queue no live worker serves), for the caller on this thread.
        self._local.warning = response.getheader("Warning")
        if response.status >= 400:
            raw = response.read()
            if not keep:
                connection.close()
            if response.status == 424:
                return response.status, json.loads(raw or b"{}")
            raise _refusal(response.status, response.reason, raw)
        if stream:
            return response.status, _Stream(response, connection)
        raw = response.read()
        if not keep:
            connection.close()
        return response.status, (json.loads(raw) if raw else None)

    def _forget(self, connection: http.client.HTTPConnection) -> None:
        if getattr(self._local, "connection", None) is connection:
            self._local.connection = None
        with self._lock:
            self._open.discard(connection)

    def release(self) -> None:
        """Closes the calling thread's kept-alive connection: a thread of the pool does this as it ends."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            self._forget(connection)
            connection.close()

    def close(self) -> None:
        """Closes every kept-alive connection; later requests each use a connection of their own, closed after."""
        self._closed = True
        with self._lock:
            connections, self._open = list(self._open), set()
        for connection in connections:
            connection.close()


class _Stream:
    """A streamed answer with the connection it holds: closing it closes both (the socket is not left to the collector)."""

    def __init__(self, response: http.client.HTTPResponse, connection: http.client.HTTPConnection):
        self._response, self._connection = response, connection

    def __iter__(self):
        return iter(self._response)

    def __enter__(self) -> "_Stream":
        return self

    def __exit__(self, *exc) -> None:
        self._response.close()
        self._connection.close()


def _json(body: Any) -> bytes:
    """The request body; what JSON cannot carry is refused here, before anything is sent, as Pool refuses what it cannot pickle."""
    try:
        _string_keys(body)
        return json.dumps(body, allow_nan=False, default=_not_json).encode()
    except ValueError as e:
        if "Circular" in str(e):
            raise ValueError("Circular reference detected: a value that contains itself cannot be sent as JSON") from None
        raise ValueError("NaN and Infinity cannot be sent to the service: JSON has no such numbers "
                         "(send None, or a string, and convert in the function)") from None
    except TypeError as e:
        raise TypeError(f"{e}: arguments go to the service as JSON (numbers, strings, booleans, None, lists, dicts "
                        "with string keys, tuples)") from None


def _not_json(value: Any) -> None:
    """A value JSON cannot carry: first what Pool would do with it — pickle it, so an object whose pickling fails raises
    its own error, as under Pool — then the refusal, since even a picklable object does not travel as JSON."""
    pickle.dumps(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _string_keys(value: Any, path: tuple = ()) -> None:
    """JSON objects have string keys: json.dumps would silently turn {1: 'a'} into {'1': 'a'}; refused instead."""
    if isinstance(value, (dict, list, tuple)):
        if id(value) in path:
            raise ValueError("Circular reference detected")  # json.dumps's own words
        path = (*path, id(value))
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"dict key {key!r} is not a string, and would arrive as {json.dumps(str(key))}")
            _string_keys(item, path)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _string_keys(item, path)


def _tuple_pointers(value: Any, pointer: str = "", found: list | None = None) -> list:
    """The JSON Pointers (RFC 6901) of the tuples in value: JSON has arrays only, so a tuple travels as an array and
    its place beside it, for the Python worker (or this client) to make it a tuple again. REST clients see arrays."""
    found = [] if found is None else found
    if isinstance(value, tuple):
        found.append(pointer)
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _tuple_pointers(item, f"{pointer}/{index}", found)
    elif isinstance(value, dict):
        for key, item in value.items():
            _tuple_pointers(item, pointer + "/" + str(key).replace("~", "~0").replace("/", "~1"), found)
    return found


def _with_tuples(value: Any, pointers: list | None) -> Any:
    """value (decoded JSON) with the arrays at pointers made the tuples they were, the deepest first."""
    for pointer in sorted(pointers or (), key=lambda p: p.count("/"), reverse=True):
        keys = [key.replace("~1", "/").replace("~0", "~") for key in pointer.split("/")[1:]]
        if not keys:
            value = tuple(value)
            continue
        parent = value
        for key in keys[:-1]:
            parent = parent[int(key) if isinstance(parent, (list, tuple)) else key]
        key = int(keys[-1]) if isinstance(parent, list) else keys[-1]
        parent[key] = tuple(parent[key])
    return value


def _refusal(status: int, reason: str, raw: bytes) -> JobsError:
    try:
        problem = json.loads(raw or b"{}")
    except ValueError:
        problem = {}
    return JobsError(status, problem.get("title", reason), problem.get("detail", ""), problem)


# Pool's own errors for what cannot be sent (pickle's): the same type and wording, and TypeError as well.
_CannotPickleLocal = type("AttributeError", (AttributeError, TypeError), {"__module__": "jobs"})
_CannotPickle = type("PicklingError", (pickle.PicklingError, TypeError), {"__module__": "jobs"})
_WHERE = ("jobs: only top-level functions of a module the workers load (Python:Modules, the script itself included) "
          "or functions they import (Python:Imports) can be sent, as with Pool's pickling; or pass a registered function's name")


def _unsendable(kind: type, message: str) -> Exception:
    error = kind(message)
    error.add_note(_WHERE)  # shown under the traceback; str(e) stays Pool's
    return error


def _script_module() -> str | None:
    """The name the workers load this program under: the script's file name without .py (spawn's __mp_main__)."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)  # python3 -m package.module too: the workers load the file by its name
    return os.path.splitext(os.path.basename(path))[0] if path else None


def _target(func: Callable | str) -> tuple[str, list, dict]:
    """
    The function's name at the service and the arguments it comes with: (name, leading args, keyword args). A
    registered function's name as is; a Python function under the name pickle gives it, as ``py:module.qualname``:
    a function of the running script (``__main__``) under the script's module name, which the workers load;
    ``functools.partial`` as its function with its arguments; built-ins by their module (os.getpid is posix.getpid,
    str.upper is builtins.str.upper), served where the workers list them in Python:Imports; a classmethod or
    staticmethod by its module and qualified name (``py:module.K.cm``), which the workers offer for the public methods
    of a module's public classes — an inherited classmethod as the class that defines it (cls is that class; Pool's is
    the class it was taken from). A method bound to an instance cannot be sent (Pool pickles the instance with it).
    """
    if isinstance(func, str):
        return func, [], {}
    if isinstance(func, functools.partial):
        name, args, kwargs = _target(func.func)
        return name, [*args, *func.args], {**kwargs, **func.keywords}
    qualname = getattr(func, "__qualname__", None)
    owner = getattr(func, "__objclass__", None)  # a method of a built-in type: str.upper
    module = getattr(func, "__module__", None) or getattr(owner, "__module__", None)
    bound = getattr(func, "__self__", None)
    if bound is not None and not isinstance(bound, (types.ModuleType, type)):
        # Pool pickles a method bound to an instance with its instance; JSON cannot carry an instance.
        raise _unsendable(_CannotPickle, f"Can't pickle {func!r}: it is bound to an instance, which cannot be sent as JSON "
                                         "(a classmethod or staticmethod can be sent, as can a top-level function)")
    if isinstance(bound, type) and not module:  # a classmethod of a built-in type (dict.fromkeys)
        module = getattr(bound, "__module__", None)
    if not qualname or not module:
        raise _unsendable(_CannotPickle, f"Can't pickle {func!r}: it has no importable name")
    if "<locals>" in qualname:
        raise _unsendable(_CannotPickleLocal, f"Can't pickle local object {qualname!r}")
    if module == "__main__":
        found = _lookup(sys.modules["__main__"], qualname)
        if found is not func and not (isinstance(bound, type) and getattr(found, "__func__", None) is func.__func__):
            raise _unsendable(_CannotPickle, f"Can't pickle {func!r}: attribute lookup {qualname} on __main__ failed")
        module = _script_module()
        if module is None:
            raise _unsendable(_CannotPickle, f"Can't pickle {func!r}: it was defined interactively, not in a file the workers can load")
    return f"py:{module}.{qualname}", [], {}


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


class _Stopped(Exception):
    """The pool was terminated while an imap reader waited for its caller."""


class IMapIterator:
    """
    Pool's IMapIterator: ``next(timeout)`` raises multiprocessing.TimeoutError when no result comes in time, and a
    failed item raises its exception from ``next()`` while the iteration goes on with the next item, as in Pool.
    A thread of its own submits the maps and reads their results streams (GET /maps/{id}/stream) into a queue. A list
    is one map; a generator (anything without a length) is taken lazily, ``_WINDOW`` items a map, the next map sent
    while the previous one runs and no further until its results are taken — an endless generator never runs ahead.
    """

    _END = ("end", None, None)
    _WINDOW = 1000

    def __init__(self, client: "_Client", maps: Iterator[dict], order: str, stopped: Callable[[], bool] = lambda: False):
        # Up to _WINDOW results wait for the caller, and the last item (the end, or what the reader raised) always fits.
        self._items: "queue.Queue" = queue.Queue()
        self._room = threading.Semaphore(self._WINDOW)
        self._stopped = stopped
        self.ended = False  # the reader has queued its last item: its thread is ending, without waiting for anyone
        self.thread = threading.Thread(target=self._read, args=(client, maps, order), name="jobs-imap", daemon=True)
        self.thread.start()

    def _read(self, client: "_Client", maps: Iterator[dict], order: str) -> None:
        try:
            self._read_all(client, maps, order)
        finally:
            client.release()  # the connection it sent its maps on
            getattr(maps, "close", lambda: None)()  # and the generator: a terminated pool lets go of it at once

    def _read_all(self, client: "_Client", maps: Iterator[dict], order: str) -> None:
        try:
            offset, current = 0, next(maps, None)
            while current is not None and not self._stopped():
                try:
                    following, failed = next(maps, None), None  # sent now, so it runs while this one's results are read
                except Exception as e:  # the generator raised, or the next window was refused: after this window's results
                    following, failed = None, e
                self._read_one(client, current["id"], order, offset)
                if failed is not None:
                    raise failed
                offset += current["total"]
                current = following
        except _Stopped:
            return  # the pool was terminated: nobody reads on
        except Exception as e:  # the service went away, or refused a map: the next next() raises it
            self._last(("raise", e, None))
        self._last(self._END)

    def _last(self, item: tuple) -> None:
        self.ended = True
        self._items.put(item)  # never waits: the queue bounds results only

    def _put(self, item: tuple) -> None:
        # Blocks while the caller has _WINDOW results untaken: no more maps are sent meanwhile. Gives up once the
        # pool is terminated, letting go of the stream and the generator.
        while not self._room.acquire(timeout=0.5):
            if self._stopped():
                raise _Stopped
        self._items.put(item)

    def _read_one(self, client: "_Client", map_id: str, order: str, offset: int) -> None:
        _, response = client.request("GET", f"/maps/{map_id}/stream?order={order}", stream=True, read_timeout=86_400)
        with response:
            for line in response:
                if line.strip():
                    item = json.loads(line)
                    self._put(("error", item["error"], offset + item.get("index", 0)) if "error" in item
                              else ("value", _with_tuples(item.get("result"), item.get("tuples")), None))

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
        if kind != "raise":
            self._room.release()
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


class _Submitter:
    """
    Sends a pool's apply_async calls: the caller only queues them, and one thread sends whatever has queued in one
    POST /jobs/batch (up to 1,000 jobs, and no more than _MAX_BYTES of JSON: the service's request limit), so 500 quick
    calls are a handful of requests, each stored by the service in one commit, instead of 500 round trips. A job the
    service refuses (unknown function, arguments that don't bind) makes its result ready and unsuccessful: get() raises
    the refusal, error_callback gets it — where Pool reports a task it could not pickle. Every queued result is settled:
    stored, refused, or failed with why it may or may not have been stored.
    """

    _MAX = 1000
    _MAX_BYTES = 512 * 1024
    _READ_TIMEOUT = 120.0  # a thousand jobs stored in one commit, on a busy service

    def __init__(self, client: "_Client"):
        self._client = client
        self._queue: "queue.Queue" = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._held: tuple | None = None  # a job that did not fit the last request: first in the next

    def submit(self, encoded: bytes, result: "AsyncResult") -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="jobs-submitter", daemon=True)
                self._thread.start()
            self._queue.put((encoded, result))

    def stop(self, wait: bool = True) -> None:
        """Ends the thread once it has sent every call queued before (a later call starts a new one)."""
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is not None:
                self._queue.put(None)
        if wait and thread is not None and thread is not threading.current_thread():
            thread.join()

    def _run(self) -> None:
        try:
            self._send_all()
        finally:
            self._client.release()

    def _send_all(self) -> None:
        while True:
            first = self._held or self._queue.get()
            self._held = None
            if first is None or self._send_from(first):
                return
            del first  # while it waits, this thread holds no result (nor its pool, which collection then ends)

    def _send_from(self, first: tuple) -> bool:
        """Sends first and what has queued after it, as one batch; True when a stop() came among them."""
        stopping = False
        batch = [first]
        size = len(batch[0][0])
        while len(batch) < self._MAX:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                stopping = True  # after this batch
                break
            if size + len(item[0]) > self._MAX_BYTES:
                self._held = item
                break
            batch.append(item)
            size += len(item[0]) + 1
        try:
            self._send(batch)
        except BaseException as e:  # noqa: BLE001 - whatever happened, no result may wait for ever
            for _, result in batch:
                if not result._sent.is_set():
                    result._refuse(e)
        return stopping

    def _send(self, batch: list) -> None:
        body = b'{"jobs":[' + b",".join(encoded for encoded, _ in batch) + b"]}"
        try:
            _, answer = self._client.request("POST", "/jobs/batch", body, read_timeout=self._READ_TIMEOUT)
        except JobsError as e:
            if e.status == 413 and len(batch) > 1:  # a service with a smaller limit: halves, until each fits
                self._send(batch[: len(batch) // 2])
                self._send(batch[len(batch) // 2:])
                return
            for _, result in batch:
                result._refuse(e)
            return
        except ConnectionRefusedError as e:  # nothing reached the service
            for _, result in batch:
                result._refuse(e)
            return
        except (OSError, http.client.HTTPException) as e:
            # Sent, maybe stored: the service went away, or answered too late. Say so rather than "refused".
            unknown = JobsError(0, "Outcome unknown", f"the service did not answer ({e!r}); these jobs may have been "
                                "stored: look before you submit them again")
            for _, result in batch:
                result._refuse(unknown)
            return
        outcomes = (answer or {}).get("jobs") or []
        for index, (_, result) in enumerate(batch):
            outcome = outcomes[index] if index < len(outcomes) else {"problem": {"title": "No answer", "detail":
                                                                                   "the service's answer lists fewer jobs than were sent"}}
            if outcome.get("job") is not None:
                result._stored(outcome["job"])
            else:
                problem = outcome.get("problem") or {}
                result._refuse(JobsError(problem.get("status", 0), problem.get("title", ""), problem.get("detail", ""), problem))

    def discard(self) -> None:
        """terminate(): queued calls not sent yet are never sent (their results raise that they were canceled)."""
        canceled = JobsError(0, "Canceled", "the pool was terminated before this job was sent")
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is None:
                self._queue.put(None)  # a stop() meant for the thread: left for it
                return
            item[1]._refuse(canceled)



class Admin:
    """
    An operator's calls, apart from any Pool (writes need an admin key when the service has keys):
    ``retry(job_id)`` runs a failed or canceled job again (same id, its attempts go on), ``pause_queue(name)`` /
    ``resume_queue(name)`` stop and restart the workers' taking of a queue's jobs, ``queues()`` lists each queue's depth,
    oldest waiting age, paused flag, live workers and warning, ``queue(name)`` one of them, and ``job(job_id, wait)``
    reads a job. Each returns the service's JSON (a JobView or a queue) as a dict; a refusal raises JobsError
    (409 for a job that is not failed or canceled, 404 for an unknown one, 400 for an unknown queue, 403 without an
    admin key). A retry whose queue no live worker serves is accepted all the same, with a RuntimeWarning (the
    service's Warning header).
    """

    def __init__(self, url: str | None = None, api_key: str | None = None, timeout: float = 30.0):
        self._client = _Client(url or os.environ.get("JOBS_URL") or "http://127.0.0.1:5080",
                               api_key or os.environ.get("JOBS_API_KEY"), timeout)

    @staticmethod
    def _id(job) -> str:
        return job.id if isinstance(job, _Result) else str(job)

    def retry(self, job) -> dict:
        """POST /jobs/{id}/retry: the job (an id or an AsyncResult), enqueued again."""
        view = self._client.request("POST", f"/jobs/{urllib.parse.quote(self._id(job))}/retry")[1]
        if warning := getattr(self._client._local, "warning", None):
            warnings.warn(warning, RuntimeWarning, stacklevel=2)
        return view

    def job(self, job, wait: float = 0.0) -> dict:
        """GET /jobs/{id}?wait=N: the job, once finished or after ``wait`` seconds."""
        return self._client.request("GET", f"/jobs/{urllib.parse.quote(self._id(job))}?wait={max(0.0, wait):.3f}", read_timeout=wait)[1]

    def pause_queue(self, name: str) -> dict:
        """POST /queues/{name}/pause: workers take none of its jobs until resumed; running ones finish."""
        return self._client.request("POST", f"/queues/{urllib.parse.quote(name, safe='')}/pause")[1]

    def resume_queue(self, name: str) -> dict:
        """POST /queues/{name}/resume: its waiting jobs start within about a second."""
        return self._client.request("POST", f"/queues/{urllib.parse.quote(name, safe='')}/resume")[1]

    def queues(self) -> list:
        """GET /queues: every queue with depth, oldestAgeSeconds, paused, workers (name, slots) and warning."""
        return self._client.request("GET", "/queues")[1]

    def queue(self, name: str) -> dict:
        """GET /queues/{name}."""
        return self._client.request("GET", f"/queues/{urllib.parse.quote(name, safe='')}")[1]


class Pool:
    """multiprocessing.pool.Pool, served by the Jobs service at ``url``."""

    def __init__(self, processes: int | str | None = None, initializer=None, initargs=(), maxtasksperchild=None, *,
                 url: str | None = None, api_key: str | None = None, queue: str | None = None, timeout: float = 30.0):
        """
        Pool's signature, so ``Pool(4)`` → ``jobs.Pool(4)``. The service is at ``url``, else $JOBS_URL, else
        http://127.0.0.1:5080 (``jobs.Pool("http://…")`` still takes the URL first). ``processes`` is checked as Pool
        checks it, but the service's parallelism is its workers' (Worker:WorkerCount per worker process), not this
        pool's. initializer, initargs and maxtasksperchild act on worker processes, so they are worker settings
        (Python:Modules:N:Initializer, InitArgs, MaxTasksPerChild): given here, the pool checks that the workers run
        the functions' module with the same, and refuses work otherwise.
        """
        if isinstance(processes, str):
            url, processes = processes, None
        if processes is not None and (isinstance(processes, bool) or not isinstance(processes, int) or processes < 1):
            raise ValueError("Number of processes must be at least 1")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        if maxtasksperchild is not None and (not isinstance(maxtasksperchild, int) or maxtasksperchild <= 0):
            raise ValueError("maxtasksperchild must be a positive int or None")
        # Pool's per-pool settings act on worker processes: here, the workers' python3 processes, set per module in
        # the workers' settings. The pool checks the workers run its module with these before it sends any work.
        self._settings = None
        if initializer is not None or initargs or maxtasksperchild is not None:
            self._settings = {"initializer": None if initializer is None else _target(initializer)[0],
                              "initargs": json.loads(_json(list(initargs))), "maxtasksperchild": maxtasksperchild}
        self._checked: dict = {}
        self._processes = processes
        self._client = _Client(url or os.environ.get("JOBS_URL") or "http://127.0.0.1:5080",
                               api_key or os.environ.get("JOBS_API_KEY"), timeout)
        self._queue = queue or os.environ.get("JOBS_QUEUE")
        self._state = "RUN"
        self._results: list = []
        self._handler = _ResultHandler(self._client)
        self._submitter = _Submitter(self._client)
        self._iterators: list = []  # imap's and imap_unordered's: their reader threads end by join() or terminate()

    def _check_settings(self, name: str) -> None:
        """With initializer/initargs/maxtasksperchild: the workers must run name's module with them (once per module)."""
        if self._settings is None:
            return
        module = name[3:].rpartition(".")[0] if name.startswith("py:") else None
        if module not in self._checked:
            self._checked[module] = self._settings_problem(name, module)
        if self._checked[module]:
            raise TypeError(self._checked[module] + ": initializer, initargs and maxtasksperchild run in the service's worker "
                            "processes — set them for the module in the workers' settings (Python:Modules:N:Initializer, "
                            "InitArgs, MaxTasksPerChild) and pass the same here, or leave them out here")

    def _settings_problem(self, name: str, module: str | None) -> str | None:
        wanted = dict(self._settings)
        if wanted["initializer"] is not None:
            init_module, _, init_name = wanted["initializer"][3:].rpartition(".")
            if init_module != module:
                return f"initializer {wanted['initializer'][3:]} is not a function of {module or name}'s module"
            wanted["initializer"] = init_name
        try:
            _, function = self._client.request("GET", f"/functions/{urllib.parse.quote(name, safe='')}")
        except JobsError:
            return None  # unknown: the submission itself is refused with the service's words
        running = function.get("python") or {"initializer": None, "initargs": [], "maxtasksperchild": None}
        if running == wanted:
            return None
        if {**running, "maxtasksperchild": None} == {**wanted, "maxtasksperchild": None}:
            # Only how often a worker process is replaced differs, not what a call computes: said, not refused (Pool's
            # own tests of maxtasksperchild check results; no process of this pool is there to count its tasks).
            warnings.warn(f"maxtasksperchild={wanted['maxtasksperchild']!r}: the workers replace the processes running "
                          f"{module or name} after {running['maxtasksperchild'] or 'no fixed number of'} calls "
                          "(Python:Modules:N:MaxTasksPerChild), not this pool", RuntimeWarning, stacklevel=5)
            return None
        return (f"this pool's initializer={wanted['initializer']!r}, initargs={wanted['initargs']!r}, "
                f"maxtasksperchild={wanted['maxtasksperchild']!r} are not what the workers run {module or name} with "
                f"({running!r})")

    # -- single jobs ---------------------------------------------------------------------------------------------

    def apply(self, func, args=(), kwds=None):
        return self.apply_async(func, args, kwds).get()

    def apply_async(self, func, args=(), kwds=None, callback=None, error_callback=None) -> AsyncResult:
        self._check_running()
        result = AsyncResult(self, None, callback, error_callback)
        self._results.append(result)
        try:
            name, leading, keywords = _target(func)
            self._check_settings(name)
            body = {"function": name, "args": [*leading, *args], "kwargs": {**keywords, **dict(kwds or {})}}
            if self._queue:
                body["queue"] = self._queue
            encoded = _json(body)  # what JSON cannot carry is refused here, as Pool's pickling fails
            tuples = {part: pointers for part in ("args", "kwargs") if (pointers := _tuple_pointers(body[part]))}
            if tuples:
                body["tuples"] = tuples
                encoded = _json(body)
        except BaseException as e:  # noqa: BLE001 - settled, whatever it was: the result must never wait for ever
            result._refuse(e)
            if not isinstance(e, Exception):
                raise  # KeyboardInterrupt and kin go on
            return result
        self._submitter.submit(encoded, result)
        return result

    # -- maps ----------------------------------------------------------------------------------------------------

    def _submit_map(self, func, iterable: Iterable, chunksize: int | None, star: bool, checked: bool = True) -> dict:
        if checked:
            self._check_running()
        name, leading, keywords = _target(func)
        self._check_settings(name)
        if leading:  # partial(f, a): each call is f(a, item) — sent as starmap's argument lists
            items = [[*leading, *i] if star else [*leading, i] for i in iterable]
            star = True
        else:
            items = [list(i) if star else i for i in iterable]
        body = {"function": name, "items": items, "star": star}
        if keywords:
            body["kwargs"] = keywords
        if chunksize is not None:
            body["chunksize"] = chunksize
        if self._queue:
            body["queue"] = self._queue
        tuples = {part: pointers for part in ("items", "kwargs") if (pointers := _tuple_pointers(body.get(part)))}
        if tuples:
            body["tuples"] = tuples
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
        return self._stream(func, iterable, chunksize, "input")

    def imap_unordered(self, func, iterable: Iterable, chunksize: int | None = None) -> "IMapIterator":
        """Results in completion order (within each window of a generator's items)."""
        return self._stream(func, iterable, chunksize, "completion")

    def _stream(self, func, iterable: Iterable, chunksize: int | None, order: str) -> "IMapIterator":
        self._check_running()
        if hasattr(iterable, "__len__"):
            maps = iter([self._submit_map(func, iterable, chunksize, star=False)])  # refused here, at once
        else:
            maps = self._windows(func, iter(iterable), chunksize)
        iterator = IMapIterator(self._client, self._tracked(maps), order, stopped=lambda: self._state == "TERMINATE")
        self._iterators = [i for i in self._iterators if i.thread.is_alive()]
        self._iterators.append(iterator)
        return iterator

    def _windows(self, func, items: Iterator, chunksize: int | None) -> Iterator[dict]:
        # Whole chunks a window: Pool's task handler sends a generator's items a chunk at a time, and a generator that
        # raises loses the chunk it was building (its items never run), then next() raises what it raised. Without a
        # chunksize Pool's is 1: every item taken before the raise runs.
        chunk = chunksize if isinstance(chunksize, int) and chunksize > 0 else 1
        size = max(1, IMapIterator._WINDOW // chunk) * chunk
        while self._state != "TERMINATE":
            window, failed = [], None
            try:
                for item in itertools.islice(items, size):
                    window.append(item)
            except Exception as e:  # the generator raised: the whole chunks before run, then next() raises it
                failed = e
                del window[len(window) - len(window) % chunk:]
            if window:
                yield self._submit_map(func, window, chunksize, star=False, checked=False)
            if failed is not None:
                raise failed
            if len(window) < size:
                return

    def _tracked(self, maps: Iterator[dict]) -> Iterator[dict]:
        for mapping in maps:
            result = MapResult(self, mapping)
            self._results.append(result)  # terminate() cancels it
            if self._state == "TERMINATE":
                result.cancel()  # sent while terminate() ran
            yield mapping

    # -- lifecycle -----------------------------------------------------------------------------------------------

    def close(self) -> None:
        """No more work will be submitted through this pool."""
        self._state = "CLOSE"

    def terminate(self) -> None:
        """Stops at once: cancels every job and map of this pool that has not finished; its threads end, as Pool's."""
        self._state = "TERMINATE"
        self._submitter.discard()
        for result in self._results:
            if result._view.get("ready"):
                continue  # known finished: nothing to cancel
            try:
                result.cancel()
            except JobsError:
                pass  # gone
        self._shutdown()

    def join(self) -> None:
        """Waits for all work of this pool to finish; call close() or terminate() first, as with Pool. Its threads
        and connections end (a result read afterwards uses a connection of its own, closed with the answer)."""
        if self._state == "RUN":
            raise ValueError("Pool is still running")
        if self._state == "CLOSE":
            for result in self._results:
                result.wait()
        self._shutdown()  # as Pool's join, after the last callback has run

    def _shutdown(self, wait: bool = True) -> None:
        """Ends the pool's threads and closes its connections. wait=False (collection): tells the threads to end."""
        self._submitter.stop(wait)
        self._handler.stop(wait)
        for iterator in self._iterators:
            # A reader that has queued its last item ends by itself; a terminated pool's readers stop within 0.5 s.
            # One whose caller stopped reading a closed pool's imap waits for the caller (Pool keeps those results too).
            if wait and (iterator.ended or self._state == "TERMINATE") and iterator.thread is not threading.current_thread():
                iterator.thread.join(self._client.timeout)
        self._client.close()

    def __del__(self, _warn=warnings.warn) -> None:
        # Pool's warning for a pool collected while running; its threads are told to end and its connections closed.
        # Unlike Pool, nothing is canceled: the work is the service's and outlives the pool.
        state = getattr(self, "_state", None)
        if state == "RUN":
            _warn(f"unclosed running multiprocessing pool {self!r}", ResourceWarning, source=self)
        if state is not None:
            try:
                self._shutdown(wait=False)
            except Exception:  # noqa: BLE001 - at interpreter exit, what it would end may be gone already
                pass

    def __enter__(self) -> "Pool":
        self._check_running()
        return self

    def __exit__(self, *exc) -> None:
        # Pool.__exit__ terminates, as multiprocessing's does.
        self.terminate()

    def _check_running(self) -> None:
        if self._state != "RUN":
            raise ValueError("Pool not running")
