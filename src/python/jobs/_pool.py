"""multiprocessing.pool.Pool, served by the Jobs service."""

from __future__ import annotations

import itertools
import os
import threading
import warnings
from typing import Iterable, Iterator

from ._errors import JobsError
from ._handler import _ResultHandler
from ._http import _Client
from ._imap import IMapIterator
from ._results import AsyncResult, MapResult
from ._settings import _WorkerSettings
from ._submitter import _Submitter
from ._targets import _target
from ._values import _json, _tuple_pointers


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
        self._settings = _WorkerSettings(initializer, initargs, maxtasksperchild)
        self._processes = processes
        self._client = _Client(url or os.environ.get("JOBS_URL") or "http://127.0.0.1:5080",
                               api_key or os.environ.get("JOBS_API_KEY"), timeout)
        self._queue = queue or os.environ.get("JOBS_QUEUE")
        self._state = "RUN"
        self._results: list = []
        self._handler = _ResultHandler(self._client)
        self._submitter = _Submitter(self._client)
        self._iterators: list = []  # imap's and imap_unordered's: their reader threads end by join() or terminate()

    # -- single jobs ---------------------------------------------------------------------------------------------

    def apply(self, func, args=(), kwds=None):
        return self.apply_async(func, args, kwds).get()

    def apply_async(self, func, args=(), kwds=None, callback=None, error_callback=None) -> AsyncResult:
        self._check_running()
        result = AsyncResult(self, None, callback, error_callback)
        self._results.append(result)
        try:
            name, leading, keywords = _target(func)
            self._settings.check(self._client, name)
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
        self._settings.check(self._client, name)
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
