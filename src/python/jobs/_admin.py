"""An operator's calls, apart from any Pool."""

from __future__ import annotations

import os
import urllib.parse
import warnings

from ._http import _Client
from ._results import _Result


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
