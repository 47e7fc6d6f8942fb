"""A stock Pool program's module through jobs.Pool: run by tests/Jobs.Tests/Functions/PythonFunctionTests.cs, with a
worker serving JOBS_QUEUE that loads src/python/examples/pool_examples.py."""

import os
import sys
import unittest

here = os.path.dirname(__file__)
sys.path.insert(0, os.path.join(here, "..", "..", "src", "python"))
sys.path.insert(0, os.path.join(here, "..", "..", "src", "python", "examples"))
import jobs  # noqa: E402
import pool_examples  # noqa: E402

URL, QUEUE = os.environ["JOBS_URL"], os.environ["JOBS_QUEUE"]


class PythonFunctionsThroughThePool(unittest.TestCase):
    def test_the_modules_functions_are_passed_as_in_pool(self):
        with jobs.Pool(URL, queue=QUEUE) as pool:
            # The same calls a Pool program makes: the function object, not a name.
            self.assertEqual(pool.map(pool_examples.square, range(10)), [x * x for x in range(10)])
            self.assertEqual(pool.apply_async(pool_examples.count_primes, (100,)).get(timeout=30), 25)
            with self.assertRaises(ValueError) as caught:  # Pool's class itself, with jobs' .type and .traceback
                pool.apply(pool_examples.fail, ("no",))
            self.assertEqual(caught.exception.type, "ValueError")
            self.assertIn("raise ValueError", caught.exception.traceback)

    def test_a_remote_exception_is_raised_as_its_own_class_as_pool_does(self):
        with jobs.Pool(URL, queue=QUEUE) as pool:
            with self.assertRaises(ValueError) as builtin:
                pool.apply(pool_examples.fail, ("no good",))
            with self.assertRaises(pool_examples.Rejected) as own:
                pool.apply(pool_examples.reject, ("not today",))
            with self.assertRaises(ValueError) as mapped:
                pool.map(pool_examples.fail, ["first", "second"])
            with self.assertRaises(ValueError) as streamed:
                list(pool.imap(pool_examples.fail, ["streamed"]))
        self.assertEqual(str(builtin.exception), "no good")
        self.assertIs(type(builtin.exception), ValueError)
        self.assertIsInstance(builtin.exception.__cause__, jobs.RemoteTraceback)
        self.assertIn("raise ValueError", str(builtin.exception.__cause__))
        self.assertEqual(str(own.exception), "not today")
        self.assertEqual(own.exception.type, "pool_examples.Rejected")
        self.assertEqual((str(mapped.exception), mapped.exception.index), ("first", 0))
        self.assertEqual(str(streamed.exception), "streamed")

    def test_pools_initializer_arguments_are_checked_against_the_workers_settings(self):
        # The worker runs pool_examples with Initializer=init, InitArgs=[1], MaxTasksPerChild=3.
        same = dict(initializer=pool_examples.init, initargs=(1,), maxtasksperchild=3)
        with jobs.Pool(2, url=URL, queue=QUEUE, **same) as pool:
            self.assertEqual(pool.apply(pool_examples.square, (3,)), 9)
        with jobs.Pool(2, url=URL, queue=QUEUE, initializer=pool_examples.init, initargs=(2,), maxtasksperchild=3) as pool:
            with self.assertRaises(TypeError) as caught:
                pool.apply(pool_examples.square, (3,))
            with self.assertRaises(TypeError):
                pool.map(pool_examples.square, [1])
        self.assertIn("initargs=[2]", str(caught.exception))
        self.assertIn("Python:Modules:N:Initializer", str(caught.exception))

    def test_a_function_defined_in_main_is_refused_like_pools_pickling_error(self):
        def local(x):
            return x
        with jobs.Pool(URL, queue=QUEUE) as pool:
            with self.assertRaises(AttributeError):
                pool.apply_async(local, (1,)).get(timeout=30)


if __name__ == "__main__":
    unittest.main()
