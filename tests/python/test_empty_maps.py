"""Pool verbs over an empty iterable give what multiprocessing.Pool gives ([]), against a real Jobs service (JOBS_URL);
run by tests/Jobs.Tests/Maps/MapScaleTests.cs."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "src", "python"))
import jobs  # noqa: E402

URL = os.environ["JOBS_URL"]


class EmptyMapTests(unittest.TestCase):
    def test_every_map_verb_over_an_empty_iterable(self):
        with jobs.Pool(URL) as pool:
            self.assertEqual(pool.map("math.square", []), [])
            self.assertEqual(pool.map("math.square", range(0)), [])
            self.assertEqual(pool.map("math.square", [], chunksize=1), [])
            self.assertEqual(pool.map_async("math.square", []).get(timeout=10), [])
            self.assertEqual(pool.starmap("math.pow", []), [])
            self.assertEqual(pool.starmap_async("math.pow", []).get(timeout=10), [])
            self.assertEqual(list(pool.imap("math.square", [])), [])
            self.assertEqual(list(pool.imap_unordered("math.square", [])), [])
            self.assertEqual(list(pool.imap("math.square", iter([]))), [])
            self.assertEqual(list(pool.imap_unordered("math.square", (x for x in []))), [])
            result = pool.map_async("math.square", [])
            result.wait(timeout=10)
            self.assertTrue(result.ready())
            self.assertTrue(result.successful())
            seen = []
            pool.map_async("math.square", [], callback=seen.append).wait(timeout=10)
            pool.close()
            pool.join()
            self.assertEqual(seen, [[]])


if __name__ == "__main__":
    unittest.main()
