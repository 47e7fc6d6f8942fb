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

import multiprocessing

from ._admin import Admin
from ._errors import JobsError, MaybeEncodingError, RemoteError, RemoteTraceback
from ._imap import IMapIterator
from ._pool import Pool
from ._results import AsyncResult, MapResult
from ._values import _with_tuples  # noqa: F401 - jobs_host.py reads a call's tuples with it (`from jobs import _with_tuples`)

__all__ = ["Pool", "Admin", "AsyncResult", "MapResult", "IMapIterator", "RemoteError", "RemoteTraceback", "MaybeEncodingError",
           "JobsError", "TimeoutError"]

# As multiprocessing exports it, so `from multiprocessing import Pool, TimeoutError` moves as `from jobs import …`.
TimeoutError = multiprocessing.TimeoutError

# The package's modules (jobs._pool, jobs._errors, …) are its own business: clients see each class as jobs.<name>, in
# reprs and tracebacks and to pickle, as when the client was the single module jobs.py.
for _public in (Pool, Admin, AsyncResult, MapResult, IMapIterator, RemoteError, MaybeEncodingError, JobsError):
    _public.__module__ = __name__
del _public
