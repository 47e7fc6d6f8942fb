"""apply_async's submissions, sent in batches by a thread of the pool."""

from __future__ import annotations

import http.client
import queue
import threading

from ._errors import JobsError
from ._http import _Client
from ._results import AsyncResult


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
