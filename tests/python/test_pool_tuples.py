"""Tuples survive the trip between jobs.Pool and a Python function, nested, in arguments and results, while REST
clients see the same values as plain JSON arrays (JSON has no tuples; the places of the tuples travel beside it).
Needs a worker loading tuple_functions.py on $JOBS_QUEUE (TupleTests starts one)."""

import collections
import json
import os
import sys
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "python"))
import jobs  # noqa: E402
import tuple_functions as f  # noqa: E402

URL = os.environ["JOBS_URL"]
QUEUE = os.environ["JOBS_QUEUE"]


def rest(method, path, body=None):
    request = urllib.request.Request(URL + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


class TupleTests(unittest.TestCase):
    def test_a_result_with_tuples_comes_back_with_tuples(self):
        with jobs.Pool(2, queue=QUEUE) as pool:
            self.assertEqual(pool.apply(f.pair, (3,)), (3, 9))
            self.assertIsInstance(pool.apply(f.pair, (3,)), tuple)
            value = pool.apply(f.nested)
            self.assertEqual(value, {"point": (1, 2), "path": [(0, 0), (1, (2, 3))], "a/b~c": (4,), "plain": [5, 6]})
            self.assertIsInstance(value["path"], list)
            self.assertIsInstance(value["path"][1][1], tuple)
            self.assertIsInstance(value["plain"], list)
            # What a Pool program does with them: hash them.
            pairs = [pool.apply_async(f.pair, (x,)) for x in (1, 2, 2, 3)]
            results = [r.get(timeout=60) for r in pairs]
            self.assertEqual(set(results), {(1, 1), (2, 4), (3, 9)})
            self.assertEqual(collections.Counter(results)[(2, 4)], 2)
            self.assertEqual({r: r[1] for r in results}[(3, 9)], 9)

    def test_arguments_with_tuples_arrive_as_tuples(self):
        with jobs.Pool(2, queue=QUEUE) as pool:
            self.assertEqual(pool.apply(f.echo, ((1, (2, [3, (4,)])),)), (1, (2, [3, (4,)])))
            self.assertEqual(pool.apply(f.kinds, ((1, 2), [3]), {"k": (4, [5]), "plain": [6]}), {
                "args": [["tuple", ["int", "int"]], ["list", ["int"]]],
                "kwargs": {"k": ["tuple", ["int", ["list", ["int"]]]], "plain": ["list", ["int"]]}})
            self.assertEqual(pool.apply(f.kinds, ((),)), {"args": ["tuple", []], "kwargs": {}})

    def test_maps_keep_tuples_in_items_kwargs_and_results(self):
        xs = [1, 2, 2, 3]
        with jobs.Pool(2, queue=QUEUE) as pool:
            self.assertEqual(set(pool.map(f.pair, xs)), {(1, 1), (2, 4), (3, 9)})
            self.assertEqual(collections.Counter(pool.map(f.pair, xs, chunksize=1))[(2, 4)], 2)
            self.assertEqual(pool.map(f.echo, [(1, 2), [3, (4,)], 5]), [(1, 2), [3, (4,)], 5])
            self.assertEqual(pool.starmap(f.kinds, [((1, 2), [3]), ([4], (5,))]), [
                {"args": [["tuple", ["int", "int"]], ["list", ["int"]]], "kwargs": {}},
                {"args": [["list", ["int"]], ["tuple", ["int"]]], "kwargs": {}}])
            self.assertEqual(list(pool.imap(f.pair, xs)), [(1, 1), (2, 4), (2, 4), (3, 9)])
            self.assertEqual(sorted(pool.imap_unordered(f.pair, xs)), [(1, 1), (2, 4), (2, 4), (3, 9)])
            mapping = pool.map_async(f.echo, [(1, (2,)), [3]])
            self.assertEqual(mapping.get(timeout=60), [(1, (2,)), [3]])
            status, results = rest("GET", f"/maps/{mapping.id}/results")
        self.assertEqual((status, results), (200, {"ready": True, "results": [[1, [2]], [3]], "tuples": {"0": ["", "/1"]}}))

    def test_rest_clients_see_plain_arrays_and_where_the_tuples_were(self):
        with jobs.Pool(2, queue=QUEUE) as pool:
            result = pool.apply_async(f.echo, ((1, (2, 3)),))
            self.assertEqual(result.get(timeout=60), (1, (2, 3)))
            status, job = rest("GET", f"/jobs/{result.id}")
        self.assertEqual(status, 200)
        self.assertEqual(job["args"], [[1, [2, 3]]])
        self.assertEqual(job["result"], [1, [2, 3]])
        self.assertEqual(job["tuples"], {"args": ["/0", "/0/1"], "result": ["", "/1"]})
        status, answer = rest("GET", f"/jobs/{result.id}/result")
        self.assertEqual((status, answer), (200, {"ready": True, "result": [1, [2, 3]], "tuples": ["", "/1"]}))
        status, plain = rest("POST", "/jobs?wait=30", {"function": "py:tuple_functions.echo", "args": [[1, 2]], "queue": QUEUE})
        self.assertEqual((plain["result"], plain["tuples"]), ([1, 2], None))  # no tuples sent, none made up

    def test_a_pointer_that_names_no_array_is_refused_and_nothing_is_stored(self):
        for tuples, field in (({"args": ["/0/5"]}, "tuples.args"), ({"args": ["0"]}, "tuples.args"),
                              ({"kwargs": ["/k"]}, "tuples.kwargs"), ({"args": ["/0/0"]}, "tuples.args")):
            status, problem = rest("POST", "/jobs", {"function": "py:tuple_functions.kinds", "args": [[1, 2]], "kwargs": {"k": 1},
                                                     "tuples": tuples, "queue": QUEUE})
            self.assertEqual(status, 400, problem)
            self.assertIn(field, problem["errors"])
        for tuples, field in (({"items": ["/2"]}, "tuples.items"), ({"items": [""]}, "tuples.items"), ({"items": ["/0/0"]}, "tuples.items"),
                              ({"kwargs": ["/k"]}, "tuples.kwargs")):
            status, problem = rest("POST", "/maps", {"function": "py:tuple_functions.kinds", "items": [[1], [2]], "kwargs": {"k": 1},
                                                     "tuples": tuples, "queue": QUEUE})
            self.assertEqual(status, 400, problem)
            self.assertIn(field, problem["errors"])
        status, page = rest("GET", f"/jobs?queue={QUEUE}&function=py:tuple_functions.kinds")
        self.assertEqual(status, 200)
        self.assertEqual(page["items"], [])


if __name__ == "__main__":
    unittest.main()
