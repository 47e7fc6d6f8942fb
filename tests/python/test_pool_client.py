"""The Python client against a real Jobs service (JOBS_URL), run by tests/Jobs.Tests/Clients/PythonClientTests.cs."""

import multiprocessing
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "src", "python"))
import jobs  # noqa: E402

URL = os.environ["JOBS_URL"]


class PoolClientTests(unittest.TestCase):
    def test_apply_and_apply_async_return_the_remote_result(self):
        with jobs.Pool(URL) as pool:
            self.assertEqual(pool.apply("math.square", (7,)), 49)
            result = pool.apply_async("math.pow", (2,), {"y": 10})
            self.assertEqual(result.get(timeout=30), 1024)
            self.assertTrue(result.ready())
            self.assertTrue(result.successful())

    def test_callbacks_run_with_the_result_or_the_remote_error(self):
        done, failed = threading.Event(), threading.Event()
        seen = {}
        with jobs.Pool(URL) as pool:
            pool.apply_async("math.square", (3,), callback=lambda v: (seen.update(value=v), done.set()))
            pool.apply_async("debug.fail", ("boom",), error_callback=lambda e: (seen.update(error=e), failed.set()))
            self.assertTrue(done.wait(30) and failed.wait(30))
        self.assertEqual(seen["value"], 9)
        self.assertIsInstance(seen["error"], jobs.RemoteError)
        self.assertEqual(seen["error"].message, "boom")

    def test_a_remote_exception_carries_type_message_and_traceback(self):
        with jobs.Pool(URL) as pool:
            result = pool.apply_async("debug.fail", ("the disk is full",))
            with self.assertRaises(jobs.RemoteError) as caught:
                result.get(timeout=30)
            self.assertFalse(result.successful())
        error = caught.exception
        self.assertTrue(error.type.endswith("DebugFailureException"), error.type)
        self.assertEqual(error.message, "the disk is full")
        self.assertIn("DebugFunctions.Fail", error.traceback)

    def test_get_timing_out_raises_multiprocessing_timeout_error(self):
        with jobs.Pool(URL) as pool:
            result = pool.apply_async("time.sleep", (30,))
            with self.assertRaises(multiprocessing.TimeoutError):
                result.get(timeout=1)
            self.assertFalse(result.ready())
        # Leaving the with-block terminated the pool: the sleeping job was canceled.
        result.wait(30)
        self.assertEqual(result._view["state"], "canceled")

    def test_map_starmap_and_their_async_forms_keep_input_order(self):
        with jobs.Pool(URL) as pool:
            self.assertEqual(pool.map("math.square", range(100)), [x * x for x in range(100)])
            self.assertEqual(pool.starmap("math.pow", [(2, 3), (3, 2)]), [8, 9])
            self.assertEqual(pool.map_async("math.square", [4, 5], chunksize=1).get(timeout=30), [16, 25])
            self.assertEqual(pool.starmap_async("math.pow", [(10, 2)]).get(timeout=30), [100])

    def test_map_raises_the_first_failing_items_exception(self):
        with jobs.Pool(URL) as pool:
            with self.assertRaises(jobs.RemoteError) as caught:
                pool.map("debug.fail", ["first", "second"])
        self.assertEqual(caught.exception.index, 0)
        self.assertEqual(caught.exception.message, "first")

    def test_imap_in_order_and_imap_unordered_as_completed(self):
        with jobs.Pool(URL) as pool:
            self.assertEqual(list(pool.imap("math.square", range(20), chunksize=3)), [x * x for x in range(20)])
            self.assertEqual(sorted(pool.imap_unordered("math.square", range(20))), sorted(x * x for x in range(20)))

    def test_close_then_join_waits_and_refuses_new_work(self):
        pool = jobs.Pool(URL)
        results = [pool.apply_async("math.square", (i,)) for i in range(10)]
        pool.close()
        with self.assertRaises(ValueError):
            pool.apply_async("math.square", (1,))
        pool.join()
        self.assertTrue(all(r.ready() for r in results))
        self.assertEqual([r.get() for r in results], [i * i for i in range(10)])

    def test_refused_requests_raise_jobs_error_with_the_problem(self):
        # As Pool reports a task it cannot pickle: apply_async returns, the result is ready and unsuccessful, get() raises.
        refused = []
        with jobs.Pool(URL) as pool:
            result = pool.apply_async("no.such.function", error_callback=refused.append)
            good = pool.apply_async("math.square", (4,))
            with self.assertRaises(jobs.JobsError) as caught:
                result.get(timeout=30)
            self.assertTrue(result.ready())
            self.assertFalse(result.successful())
            self.assertEqual(good.get(timeout=30), 16)  # sent in the same batch, stored on its own
            pool.close()
            pool.join()
        self.assertEqual(caught.exception.status, 404)
        self.assertIn("no.such.function", caught.exception.detail)
        self.assertIs(refused[0], caught.exception)

    def test_local_functions_are_refused_as_pool_would(self):
        def local(x):
            return x
        with jobs.Pool(URL) as pool:
            with self.assertRaises(AttributeError) as caught:  # Pool's type and words: pickle's
                pool.apply_async(local, (1,)).get(timeout=30)
            with self.assertRaises(AttributeError):
                pool.map(lambda x: x, [1])
        self.assertEqual(str(caught.exception), "Can't pickle local object "
                         "'PoolClientTests.test_local_functions_are_refused_as_pool_would.<locals>.local'")
        self.assertIsInstance(caught.exception, TypeError)
        self.assertIn("Python:Modules", caught.exception.__notes__[0])

    def test_a_failing_map_item_carries_the_remote_type_as_apply_and_imap_do(self):
        with jobs.Pool(URL) as pool:
            with self.assertRaises(jobs.RemoteError) as mapped:
                pool.map("debug.fail", ["m"])
            with self.assertRaises(jobs.RemoteError) as applied:
                pool.apply("debug.fail", ("a",))
            with self.assertRaises(jobs.RemoteError) as streamed:
                list(pool.imap("debug.fail", ["i"]))
        self.assertTrue(mapped.exception.type.endswith("DebugFailureException"), mapped.exception.type)
        self.assertEqual(mapped.exception.type, applied.exception.type)
        self.assertEqual(mapped.exception.type, streamed.exception.type)

    def test_get_with_a_fractional_timeout_waits_on_the_server_instead_of_polling(self):
        with jobs.Pool(URL) as pool:
            result = pool.apply_async("time.sleep", (30,))
            calls = []
            request = pool._client.request
            pool._client.request = lambda *a, **k: (calls.append(a[1]), request(*a, **k))[1]
            started = time.monotonic()
            with self.assertRaises(multiprocessing.TimeoutError):
                result.get(timeout=0.5)
            took = time.monotonic() - started
        self.assertLessEqual(len(calls), 3, f"{len(calls)} requests, the first: {calls[:2]}")
        self.assertGreaterEqual(took, 0.45)
        self.assertLess(took, 3)

    def test_join_returns_after_every_callback_ran_on_one_result_handler_thread(self):
        seen, threads = [], set()

        def callback(value):
            time.sleep(0.05)
            threads.add(threading.get_ident())
            seen.append(value)

        pool = jobs.Pool(URL)
        for i in range(12):
            pool.apply_async("math.square", (i,), callback=callback)
        pool.close()
        pool.join()
        self.assertEqual(sorted(seen), [i * i for i in range(12)])
        self.assertEqual(len(threads), 1, threads)
        self.assertNotIn(threading.get_ident(), threads)
    def test_pools_constructor_arguments_move_unchanged_or_name_the_worker_setting(self):
        os.environ["JOBS_URL"] = URL
        with jobs.Pool(4) as pool:
            self.assertEqual(pool.map("math.square", [1, 2, 3]), [1, 4, 9])
        with jobs.Pool(processes=2) as pool:
            self.assertEqual(pool.apply("math.square", (5,)), 25)
        with self.assertRaises(ValueError):
            jobs.Pool(0)
        for arguments in ({"initializer": print}, {"initargs": (1,)}):
            # Registered .NET functions run in no Python process: a pool that asks for an initializer is refused.
            with jobs.Pool(2, **arguments) as pool:
                with self.assertRaises(TypeError) as caught:
                    pool.apply("math.square", (2,))
            self.assertIn("Python:Modules:N:Initializer", str(caught.exception))
        # maxtasksperchild changes how often a process is replaced, not what a call returns: a warning, the work runs.
        with jobs.Pool(2, maxtasksperchild=10) as pool:
            with self.assertWarns(RuntimeWarning) as warned:
                self.assertEqual(pool.apply("math.square", (2,)), 4)
        self.assertIn("Python:Modules:N:MaxTasksPerChild", str(warned.warning))
        with self.assertRaises(ValueError):
            jobs.Pool(2, maxtasksperchild=0)
    def test_imap_raises_a_failed_item_and_goes_on_and_next_takes_a_timeout(self):
        with jobs.Pool(URL) as pool:
            outcomes = []
            iterator = pool.imap("math.square", [1, 1e200, 3])  # 1e200 squared is beyond JSON: that item fails
            while True:
                try:
                    outcomes.append(iterator.next(timeout=30))
                except StopIteration:
                    break
                except jobs.RemoteError as e:
                    outcomes.append(e.type)
            self.assertEqual(outcomes, [1, "MaybeEncodingError", 9])
            slow = pool.imap("time.sleep", [5])
            started = time.monotonic()
            with self.assertRaises(multiprocessing.TimeoutError):
                slow.next(timeout=0.3)
            self.assertLess(time.monotonic() - started, 3)
    def test_many_small_calls_share_one_kept_alive_connection(self):
        import http.client
        connects = []
        original = http.client.HTTPConnection.connect
        http.client.HTTPConnection.connect = lambda self: (connects.append(1), original(self))[1]
        try:
            with jobs.Pool(URL) as pool:
                started = time.monotonic()
                results = [pool.apply_async("math.square", (i,)) for i in range(200)]
                values = [r.get(timeout=60) for r in results]
                took = time.monotonic() - started
        finally:
            http.client.HTTPConnection.connect = original
        self.assertEqual(values, [i * i for i in range(200)])
        self.assertLessEqual(len(connects), 3, f"{len(connects)} connections for 200 calls")
        print(f"200 apply_async + get: {took:.2f} s", file=sys.stderr)
    def test_values_json_cannot_carry_are_refused_before_anything_is_sent(self):
        with jobs.Pool(URL) as pool:
            with self.assertRaises(ValueError) as nan:
                pool.apply_async("math.square", (float("nan"),)).get(timeout=30)
            with self.assertRaises(TypeError) as unsendable:
                pool.apply("math.square", ({1, 2},))
            with self.assertRaises(TypeError) as int_keys:  # json.dumps would send {"1": "a"} without a word
                pool.apply("math.square", ([{1: "a"}],))
        self.assertIn("dict key 1 is not a string", str(int_keys.exception))
        self.assertIn("NaN and Infinity", str(nan.exception))
        self.assertIn("as JSON", str(unsendable.exception))

    def test_imap_takes_an_endless_generator_lazily_a_window_at_a_time(self):
        def naturals():
            n = 0
            while True:
                yield n
                n += 1
        with jobs.Pool(URL) as pool:
            iterator = pool.imap("math.square", naturals())
            first = [iterator.next(timeout=60) for _ in range(1500)]
            time.sleep(1)
            maps = sum(isinstance(r, jobs.MapResult) for r in pool._results)
            time.sleep(1)  # nobody takes results: the reader must not run ahead
            later = sum(isinstance(r, jobs.MapResult) for r in pool._results)
        self.assertEqual(first, [n * n for n in range(1500)])
        # Taken: 1.5 windows; held: one window of results untaken, the map being read and the one sent after it.
        self.assertLessEqual(maps, 4, f"{maps} maps of 1,000 sent for 1,500 items taken")
        self.assertEqual(later, maps)

    def test_batches_stay_within_the_services_body_limit_and_every_result_settles(self):
        text = "x" * 3000  # 500 of these are 1.5 MB: more than one request may carry (Api:MaxRequestBodyBytes, 1 MiB)
        with jobs.Pool(URL) as pool:
            results = [pool.apply_async("text.sha256", (text,)) for _ in range(500)]
            values = {r.get(timeout=120) for r in results}
            looped = []
            looped.append(looped)  # contains itself: refused, never hanging
            with self.assertRaises(ValueError):
                pool.apply_async("math.square", (looped,)).get(timeout=30)
        self.assertEqual(len(values), 1)
        with jobs.Pool(url="http://127.0.0.1:9") as gone:  # nothing listens there
            result = gone.apply_async("math.square", (2,))
            with self.assertRaises(ConnectionRefusedError):
                result.get(timeout=30)
            self.assertTrue(result.ready())

    def test_imap_over_a_generator_that_raises_gives_what_came_before_then_the_error(self):
        def items():
            for n in range(1500):
                yield n
            raise KeyError("the generator broke")
        with jobs.Pool(URL) as pool:
            seen = []
            with self.assertRaises(KeyError):
                for value in pool.imap("math.square", items()):
                    seen.append(value)
        self.assertEqual(seen, [n * n for n in range(1500)])

    def test_500_apply_async_calls_go_in_a_few_batched_requests(self):
        sent = []
        with jobs.Pool(URL) as pool:
            request = pool._client.request
            pool._client.request = lambda *a, **k: (sent.append(a[1]), request(*a, **k))[1]
            started = time.monotonic()
            results = [pool.apply_async("math.square", (i,)) for i in range(500)]
            calls = time.monotonic() - started
            ids = [r.id for r in results]  # each known once the service has stored it
            stored = time.monotonic() - started
            values = [r.get(timeout=60) for r in results]
        self.assertEqual(values, [i * i for i in range(500)])
        self.assertEqual(len(set(ids)), 500)
        batches = [path for path in sent if path == "/jobs/batch"]
        self.assertLessEqual(len(batches), 25, f"{len(batches)} batch requests for 500 calls")
        print(f"500 apply_async: calls {calls:.3f} s, all stored {stored:.3f} s, {len(batches)} requests", file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
