"""HTTP to the service: kept-alive connections, one per thread, and streamed answers."""

from __future__ import annotations

import http.client
import json
import threading
import urllib.parse
from typing import Any

from ._errors import _refusal
from ._values import _json


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
