"""jobs.Admin, the Python client's operator calls, against a real Jobs service (JOBS_URL); run by
tests/Jobs.Tests/Clients/PythonAdminClientTests.cs."""

import os
import sys
import unittest
import uuid
import warnings

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "src", "python"))
import jobs  # noqa: E402

URL = os.environ["JOBS_URL"]


def private_queue() -> str:
    return "t_" + uuid.uuid4().hex[:12]  # declared by the service's Jobs:Queues "t_*"; no worker serves it


class AdminClientTests(unittest.TestCase):
    def test_retry_runs_a_failed_job_again_with_its_attempts_going_on(self):
        admin = jobs.Admin(URL)
        with jobs.Pool(URL) as pool:
            result = pool.apply_async("debug.flaky", (2,))  # attempt 1 fails, attempt 2 succeeds
            with self.assertRaises(jobs.RemoteError):
                result.get(timeout=30)
        view = admin.retry(result)
        self.assertEqual(view["id"], result.id)
        done = admin.job(result.id, wait=30)
        self.assertEqual(done["state"], "succeeded")
        self.assertEqual(done["result"], 2)
        self.assertEqual(done["attempts"], 2)
        with self.assertRaises(jobs.JobsError) as caught:
            admin.retry(result.id)
        self.assertEqual(caught.exception.status, 409)
        with self.assertRaises(jobs.JobsError) as unknown:
            admin.retry(str(uuid.uuid4()))
        self.assertEqual(unknown.exception.status, 404)

    def test_a_retry_for_a_queue_no_worker_serves_warns(self):
        admin, queue = jobs.Admin(URL), private_queue()
        with jobs.Pool(URL, queue=queue) as pool:
            result = pool.apply_async("noop")
            job_id = result.id
        # Leaving the pool terminated it: the waiting job is canceled.
        self.assertEqual(admin.job(job_id, wait=10)["state"], "canceled")
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            self.assertEqual(admin.retry(job_id)["state"], "enqueued")
        self.assertTrue(any(queue in str(w.message) for w in seen), [str(w.message) for w in seen])

    def test_pause_resume_and_queues(self):
        admin, queue = jobs.Admin(URL), private_queue()
        paused = admin.pause_queue(queue)
        self.assertTrue(paused["paused"])
        listed = {q["name"]: q for q in admin.queues()}
        self.assertTrue(listed[queue]["paused"])
        self.assertEqual(listed[queue]["workers"], [])
        self.assertIn(queue, listed[queue]["warning"])
        self.assertFalse(listed["default"]["paused"])
        self.assertGreaterEqual(len(listed["default"]["workers"]), 1)
        self.assertIsNone(listed["default"]["warning"])
        self.assertFalse(admin.resume_queue(queue)["paused"])
        self.assertFalse(admin.queue(queue)["paused"])
        with self.assertRaises(jobs.JobsError) as caught:
            admin.pause_queue("nobody-declares-this")
        self.assertEqual(caught.exception.status, 400)


if __name__ == "__main__":
    unittest.main()
