"""Classic multiprocessing.Pool tutorial functions, run by Jobs workers as py:pool_examples.<name>.

Point a worker at this file (Python:Modules) and call them over REST or through jobs.Pool.
"""

import time

try:
    import jobs_progress  # beside jobs_host.py in a Jobs worker; src/python elsewhere
except ImportError:  # run as a plain Pool program: progress goes nowhere
    jobs_progress = None

_factor = 1


def init(factor: int = 1) -> None:
    """Pool's initializer: runs once in each python3 process before its first task."""
    global _factor
    _factor = factor


def square(x: float) -> float:
    """x squared (times the initializer's factor)."""
    return x * x * _factor


def count_primes(limit: int) -> int:
    """How many primes are <= limit (CPU-bound)."""
    if limit < 2:
        return 0
    sieve = bytearray([1]) * (limit + 1)
    sieve[0] = sieve[1] = 0
    for i in range(2, int(limit ** 0.5) + 1):
        if sieve[i]:
            sieve[i * i::i] = bytearray(len(sieve[i * i::i]))
    return sum(sieve)


def fail(message: str) -> None:
    """Raises ValueError(message)."""
    raise ValueError(message)


class Rejected(ValueError):
    """An exception of the module's own: the client raises it as this class."""


def reject(reason: str) -> None:
    """Raises the module's own exception."""
    raise Rejected(reason)


def sleep(seconds: float) -> float:
    """Sleeps, ignoring any request to stop: only terminating its process ends it early."""
    time.sleep(seconds)
    return seconds


def steps(n: int) -> int:
    """Reports progress after each of n short steps."""
    for i in range(n):
        time.sleep(0.05)
        if jobs_progress:
            jobs_progress.report((i + 1) / n, f"step {i + 1} of {n}")
    return n


def half(x: int) -> float:
    """Half of x: hinted int, run with whatever number Python would run it with."""
    return x / 2


def shout(text: str = None) -> str:
    """The text in capitals; None (the default) when there is none."""
    return (text or "nothing").upper()


def cwd() -> str:
    """The directory the function runs in: the module's own folder."""
    import os
    return os.getcwd()


def pid() -> int:
    """The python3 process's id (to watch maxtasksperchild recycle processes)."""
    import os
    return os.getpid()


def crash() -> None:
    """Kills its python3 process (os._exit): re-run on fresh processes, then failed after Jobs:MaxWorkerCrashes deaths."""
    import os
    os._exit(3)


def not_json() -> set:
    """Returns a set, which JSON cannot carry: the job fails like Pool's MaybeEncodingError."""
    return {1, 2}


def awkward(kind: str):
    """Returns what JSON cannot carry ("nan", "inf", "surrogate": the job fails with MaybeEncodingError) or what jsonb
    could not ("nul": stored as returned, since results are kept as sent)."""
    return {"nan": float("nan"), "inf": float("inf"), "nul": "a\x00b", "surrogate": "\ud800"}[kind]


def rest(*args, scale: float = 1.0, **kwargs) -> dict:
    """Echoes its arguments (shows *args, keyword-only and **kwargs binding)."""
    return {"args": [a * scale for a in args], "kwargs": kwargs}


lambda_is_not_offered = lambda x: x  # noqa: E731 - a lambda: never offered, as pickle could not send it


def _private(x):
    return x
