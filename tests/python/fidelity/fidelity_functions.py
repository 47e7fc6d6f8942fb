"""Functions a Pool program sends, loaded by the workers of tests/Jobs.Tests/Clients/PoolFidelityTests.cs as a module
(Python:Modules) and imported by tests/python/test_pool_fidelity.py, as a Pool program's own module would be."""

import time


def sqr(x, wait=0.0):
    if wait:
        time.sleep(wait)
    return x * x


def raising():
    raise KeyError("key")


def raise_runtime():
    raise RuntimeError(123)  # some comment


def raise_with(kind, *args):
    raise {"ValueError": ValueError, "Rejected": Rejected}[kind](*args)


def raise_unencodable_args():
    raise ValueError(object())


def raise_awkward(kind):
    """Args JSON cannot carry (NaN), or jsonb cannot store (U+0000), or too large to store with the error."""
    raise ValueError({"nan": float("nan"), "nul": "a\x00b", "large": "x" * 70_000}[kind], 1)


def unpickleable_result():
    return lambda: 42


def fail_on(x):
    if x == 2:
        raise KeyError(x)
    return x


class Rejected(Exception):
    """An exception class of the module: the client has it, as Pool's parent process has the module."""


class K:
    factor = 10

    @classmethod
    def cm(cls, x):
        return x * cls.factor

    @staticmethod
    def sm(x):
        return x + 1

    @classmethod
    def boom(cls):
        raise RuntimeError(123)

    def bound(self, x):
        return x

    class Inner:
        @staticmethod
        def deep(x):
            return -x


class Derived(K):
    factor = 100
