"""jobs.Pool against multiprocessing.Pool's own behaviour (CPython 3.11's _TestPool and _TestPoolWorkerErrors): remote
exceptions, MaybeEncodingError, methods sent by qualified name, threads and sockets ended, imap over a generator that
raises. Run by tests/Jobs.Tests/Clients/PoolFidelityTests.cs against the real service, whose worker serving JOBS_QUEUE
loads tests/python/fidelity/fidelity_functions.py."""

import gc
import multiprocessing.pool
import os
import pickle
import sys
import threading
import time
import unittest
import warnings

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "src", "python"))
sys.path.insert(0, os.path.join(here, "fidelity"))
import jobs  # noqa: E402
from fidelity_functions import Derived, K, Rejected, fail_on, raise_awkward, raise_runtime, raise_unencodable_args, raise_with, raising, sqr, unpickleable_result  # noqa: E402

URL, QUEUE = os.environ["JOBS_URL"], os.environ["JOBS_QUEUE"]


def Pool(processes=None):
    return jobs.Pool(processes, url=URL, queue=QUEUE)


class SayWhenError(ValueError):
    pass


def exception_throwing_generator(total, when):
    """CPython's own, from test/_test_multiprocessing.py."""
    if when == -1:
        raise SayWhenError("Somebody said when")
    for i in range(total):
        if i == when:
            raise SayWhenError("Somebody said when")
        yield i


def sockets():
    """This process's open sockets (its descriptors that are sockets)."""
    found = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            found += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:
            pass
    return found


class PoolFidelityTests(unittest.TestCase):
    def test_an_unencodable_result_arrives_as_pools_maybe_encoding_error(self):
        # CPython's test_unpickleable_result: MaybeEncodingError with .exc and .value, from get() and error_callback.
        seen = []
        with Pool(2) as p:
            for _ in range(3):
                result = p.apply_async(unpickleable_result, error_callback=seen.append)
                with self.assertRaises(multiprocessing.pool.MaybeEncodingError) as caught:
                    result.get(timeout=60)
                self.assertIsInstance(seen[-1], multiprocessing.pool.MaybeEncodingError)
                self.assertIsNotNone(seen[-1].exc)
                self.assertIsNotNone(seen[-1].value)
            with self.assertRaises(multiprocessing.pool.MaybeEncodingError) as mapped:
                p.starmap(unpickleable_result, [()])
        error = caught.exception
        self.assertIn("<function unpickleable_result.<locals>.<lambda>", error.value)
        self.assertIn("TypeError", error.exc)
        self.assertEqual(error.args, (error.exc, error.value))
        self.assertEqual(str(error), f"Error sending result: '{error.value}'. Reason: '{error.exc}'")
        self.assertIn("<lambda>", mapped.exception.value)

    def test_a_remote_exception_is_its_own_class_with_its_args_and_pools_remote_traceback(self):
        # CPython's test_traceback and test_async_error_callback: the exact class, its args, a RemoteTraceback cause.
        with Pool(1) as p:
            with self.assertRaises(KeyError) as key:
                p.apply(raising)
            with self.assertRaises(RuntimeError) as runtime:
                p.apply(raise_runtime)
            with self.assertRaises(Rejected) as own:
                p.apply(raise_with, ("Rejected", "no", 2, [None], {"k": 1.5}))
            with self.assertRaises(KeyError) as mapped:
                p.map(fail_on, [1, 2, 3])
            with self.assertRaises(KeyError) as streamed:
                list(p.imap(fail_on, [1, 2, 3]))
            with self.assertRaises(ValueError) as unencodable:
                p.apply(raise_unencodable_args)
        self.assertIs(type(key.exception), KeyError)
        self.assertEqual(key.exception.args, ("key",))
        self.assertEqual(str(key.exception), "'key'")
        cause = key.exception.__cause__
        self.assertIs(type(cause), multiprocessing.pool.RemoteTraceback)
        self.assertIn('raise KeyError("key")', cause.tb)
        self.assertIs(type(runtime.exception), RuntimeError)
        self.assertEqual(runtime.exception.args, (123,))
        self.assertIn("raise RuntimeError(123)  # some comment", runtime.exception.__cause__.tb)
        self.assertIs(type(own.exception), Rejected)
        self.assertEqual(own.exception.args, ("no", 2, [None], {"k": 1.5}))
        self.assertEqual((type(mapped.exception), mapped.exception.args), (KeyError, (2,)))
        self.assertEqual((type(streamed.exception), streamed.exception.args), (KeyError, (2,)))
        self.assertIs(type(mapped.exception.__cause__), multiprocessing.pool.RemoteTraceback)
        # Args JSON cannot carry: the exception is rebuilt from its message alone.
        self.assertEqual(len(unencodable.exception.args), 1)
        self.assertTrue(unencodable.exception.args[0].startswith("<object object at "), unencodable.exception.args)
        # What jobs adds for those who want it: the remote type's name, message and traceback.
        self.assertEqual((key.exception.type, key.exception.message), ("KeyError", "'key'"))
        self.assertIn("Traceback", key.exception.traceback)

    def test_args_that_cannot_be_stored_leave_the_exception_its_message(self):
        # The failure is stored all the same, its args left out: the exception is rebuilt from its message.
        with Pool(1) as p:
            for kind, message in (("nan", "(nan, 1)"), ("nul", "('a\\x00b', 1)"), ("large", f"('{'x' * 70_000}', 1)")):
                with self.subTest(kind):
                    with self.assertRaises(ValueError) as caught:
                        p.apply(raise_awkward, (kind,))
                    self.assertEqual(caught.exception.args, (message,))
                    self.assertIn("raise ValueError", caught.exception.__cause__.tb)

    def test_classmethods_and_staticmethods_are_sent_by_qualified_name(self):
        with Pool(2) as p:
            self.assertEqual(p.apply(K.cm, (4,)), 40)
            self.assertEqual(p.apply(K.sm, (4,)), 5)
            self.assertEqual(p.map(K.sm, range(5)), [1, 2, 3, 4, 5])
            self.assertEqual(p.apply_async(K.Inner.deep, (3,)).get(timeout=60), -3)
            # Inherited: sent as the class that defines it, which is cls in the worker (Pool's cls: Derived, 400).
            self.assertEqual(p.apply(Derived.cm, (4,)), 40)
            with self.assertRaises(RuntimeError) as caught:
                p.apply(K.boom)
            # A method bound to an instance: Pool pickles the instance with it; JSON cannot carry an instance.
            with self.assertRaises(pickle.PicklingError):
                p.apply(K().bound, (1,))
        self.assertEqual(caught.exception.args, (123,))

    def test_imap_drops_the_chunk_a_generator_raised_in_as_pool_does(self):
        # CPython's test_imap_handle_iterable_exception, verbatim but for the pool.
        with Pool(4) as p:
            it = p.imap(sqr, exception_throwing_generator(1, -1), 1)
            self.assertRaises(SayWhenError, it.__next__)
            it = p.imap(sqr, exception_throwing_generator(10, 3), 1)
            for i in range(3):
                self.assertEqual(next(it), i * i)
            self.assertRaises(SayWhenError, it.__next__)
            it = p.imap(sqr, exception_throwing_generator(20, 7), 2)
            for i in range(6):
                self.assertEqual(next(it), i * i)
            self.assertRaises(SayWhenError, it.__next__)
            it = p.imap(sqr, exception_throwing_generator(20, 7), 4)
            for i in range(4):
                self.assertEqual(next(it), i * i)
            self.assertRaises(SayWhenError, it.__next__)
            # Pool's default chunksize for imap is 1: every item before the raise runs.
            it = p.imap(sqr, exception_throwing_generator(10, 3))
            self.assertEqual([next(it) for _ in range(3)], [0, 1, 4])
            self.assertRaises(SayWhenError, it.__next__)
            # imap_unordered likewise: the generator raises at its 6th item; the chunk of 2 it was building is dropped.
            it = p.imap_unordered(sqr, exception_throwing_generator(20, 5), 2)
            got = []
            with self.assertRaises(SayWhenError):
                while True:
                    got.append(next(it))
            self.assertEqual(sorted(got), [0, 1, 4, 9])

    def test_closed_or_terminated_pools_end_their_threads_and_connections(self):
        # 20 pools used every way, then close()+join() (or terminate()+join()): no thread, no socket, no warning left.
        threads, open_sockets = threading.active_count(), sockets()
        done = threading.Event()
        started = time.monotonic()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for n in range(20):
                p = Pool(2)
                p.apply_async(sqr, (n,), callback=lambda _: done.set())
                self.assertEqual(p.apply(sqr, (n,)), n * n)
                self.assertEqual(p.map_async(sqr, range(3)).get(timeout=60), [0, 1, 4])
                self.assertEqual(list(p.imap(sqr, iter(range(3)))), [0, 1, 4])
                self.assertEqual(sorted(p.imap_unordered(sqr, [1, 2])), [1, 4])
                if n % 2:
                    p.close()
                else:
                    p.terminate()
                p.join()
                self.assertEqual((threading.active_count(), sockets()), (threads, open_sockets), f"pool {n}: threads, sockets")
            del p
            gc.collect()
        print(f"measured: 20 pools used and joined in {time.monotonic() - started:.1f} s: threads {threads} -> "
              f"{threading.active_count()}, sockets {open_sockets} -> {sockets()}", file=sys.stderr)
        self.assertEqual([str(w.message) for w in caught if issubclass(w.category, ResourceWarning)], [])
        self.assertTrue(done.is_set())

    def test_the_with_statement_ends_the_pools_threads_and_connections(self):
        # Pool.__exit__ terminates, and Pool's terminate() ends its threads.
        threads, open_sockets = threading.active_count(), sockets()
        with Pool(2) as p:
            p.apply_async(sqr, (1,), callback=lambda _: None)
            self.assertEqual(p.map(sqr, [1, 2]), [1, 4])
        self.assertEqual((threading.active_count(), sockets()), (threads, open_sockets))
        # Work still running when the block ends (a callback waiting on it, an imap reading its stream): terminate()
        # cancels it and returns at once, its threads ended, as Pool's does.
        failed = []
        with Pool(2) as p:
            p.apply_async(sqr, (1, 60), callback=lambda _: None, error_callback=failed.append)
            it = p.imap(sqr, [(2)] * 3, 1)
            p.imap_unordered(sqr, iter([3, 4]))
            started = time.monotonic()
        ended = time.monotonic() - started
        self.assertLess(ended, 5)
        self.assertEqual((threading.active_count(), sockets()), (threads, open_sockets))
        self.assertEqual(len(failed), 1)  # the canceled job's error_callback ran before terminate() returned
        print(f"measured: terminate() with a job, a callback and two imaps running: {ended:.2f} s", file=sys.stderr)

    def test_a_pool_never_closed_warns_as_pool_does_and_ends_when_collected(self):
        threads, open_sockets = threading.active_count(), sockets()
        p = Pool(1)
        p.apply_async(sqr, (2,), callback=lambda _: None).get(timeout=60)
        self.assertEqual(p.apply(sqr, (3,)), 9)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            p = None
            gc.collect()
        self.assertEqual([w.category for w in caught if "unclosed running multiprocessing pool" in str(w.message)], [ResourceWarning])
        # Its threads end (they are told to; nothing waits on them) and its connections are closed.
        deadline = time.monotonic() + 10
        while threading.active_count() > threads and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertEqual((threading.active_count(), sockets()), (threads, open_sockets))
        # CPython's test_resource_warning: a terminated, joined pool forced back to RUN warns when collected.
        p = Pool(1)
        p.terminate()
        p.join()
        p._state = multiprocessing.pool.RUN
        with warnings.catch_warnings(record=True) as forced:
            warnings.simplefilter("always")
            p = None
            gc.collect()
        self.assertEqual([w.category for w in forced if "unclosed running multiprocessing pool" in str(w.message)], [ResourceWarning])


if __name__ == "__main__":
    unittest.main()
