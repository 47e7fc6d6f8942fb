"""Pool's IMapIterator: imap's and imap_unordered's results, read from the service's results streams."""

from __future__ import annotations

import json
import multiprocessing
import queue
import threading
from typing import Any, Callable, Iterator

from ._errors import RemoteError
from ._http import _Client
from ._values import _with_tuples


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
