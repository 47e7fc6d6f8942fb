"""CPython's own Pool tests against jobs.Pool: the classes _TestPool, _TestPoolWorkerErrors and _TestPoolWorkerLifetime
(31 tests) of test._test_multiprocessing — imported from the interpreter running this file, never copied — run as
CPython runs them (its ProcessesMixin), with Pool (and multiprocessing.Pool, which two of the classes call) made
jobs.Pool on the service at $JOBS_URL, queue $JOBS_QUEUE.

    JOBS_URL=http://127.0.0.1:5080 JOBS_QUEUE=q python3 cpython_pool_tests.py    # jobs.Pool
    python3 cpython_pool_tests.py --baseline                                      # multiprocessing.Pool: 31 of 31
    python3 cpython_pool_tests.py --worker-imports                                # what the workers must offer

The test methods run verbatim, except the statements listed in REMOVED (checks of the pool's local Process objects,
which a remote pool does not have), each replaced by `pass`. The workers must offer the functions the tests send:
WORKER_IMPORTS, as the workers' Python:Imports (tests/Jobs.Tests/Clients/CPythonPoolTests.cs starts such a worker;
Debian's python3 has test._test_multiprocessing in the package libpython3.11-testsuite).

Each test's outcome is printed as one line. KNOWN_FAILURES lists the tests that fail on jobs.Pool, each with its cause;
they run as expected failures, so one that passes fails the run (take it off the list). Exit 0: every other test passed.
Run it with the interpreter the workers run: both sides must have the same test._test_multiprocessing.
"""

import ast
import faulthandler
import inspect
import json
import multiprocessing
import os
import sys
import textwrap
import time
import traceback
import unittest
from unittest import mock

import test._test_multiprocessing as cpython
from test.support import script_helper

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "python"))
import jobs  # noqa: E402

CLASSES = (cpython._TestPool, cpython._TestPoolWorkerErrors, cpython._TestPoolWorkerLifetime)

# The functions these tests send, by the names Pool pickles them under: what the workers list in Python:Imports.
WORKER_IMPORTS = [f"test._test_multiprocessing.{name}" for name in (
    "sqr", "mul", "identity", "raising", "unpickleable_result", "raise_large_valuerror",
    "_TestPool._test_traceback", "_TestPool._test_wrapped_exception")] + ["builtins.int", "builtins.float", "time.sleep"]

_NO_PROCESSES = "jobs.Pool has no local worker Process objects (p._pool): its workers are the service's"
# Per test: the statements taken out (each by its first line; a compound statement with its block), and why.
REMOVED = {
    "test_make_pool": [("self.assertEqual(3, len(p._pool))", _NO_PROCESSES)],
    "test_pool_worker_lifetime": [
        ("self.assertEqual(3, len(p._pool))", _NO_PROCESSES),
        ("origworkerpids = [w.pid for w in p._pool]", _NO_PROCESSES),
        ("p._repopulate_pool()", "Pool's private method that starts local worker processes; the service's workers replace theirs"),
        ("while countdown and not all(w.is_alive() for w in p._pool):", _NO_PROCESSES),
        ("finalworkerpids = [w.pid for w in p._pool]", _NO_PROCESSES),
        ("self.assertNotIn(None, origworkerpids)", "checks the removed local pids"),
        ("self.assertNotIn(None, finalworkerpids)", "checks the removed local pids"),
        ("self.assertNotEqual(sorted(origworkerpids), sorted(finalworkerpids))", "checks the removed local pids"),
    ],
}

# The tests that fail on jobs.Pool, each with its cause: "not yet" (a difference being fixed), "inherent" (a remote pool
# whose values are JSON cannot do it), "design" (a choice of jobs.Pool's). They run as expected failures: one that
# passes fails the run, so that it comes off this list.
KNOWN_FAILURES = {
    "test_release_task_refs": "inherent: map(identity, [CountedObject(), ...]) sends instances of a class; values travel "
                              "as JSON, and unpickling what a client sends would let any API client run code in the workers",
}

TEST_TIMEOUT = 180  # seconds; a test that hangs ends the run with every thread's stack on stderr


def without(method, removals):
    """The method compiled from the interpreter's own source with the listed statements replaced by `pass` (line
    numbers kept, so tracebacks still point into test/_test_multiprocessing.py)."""
    lines, first = inspect.getsourcelines(method)
    source = textwrap.dedent("".join(lines)).splitlines(keepends=True)
    for statement, _ in removals:
        found = [i for i, line in enumerate(source) if line.strip() == statement]
        if len(found) != 1:
            raise LookupError(f"{method.__qualname__}: {statement!r} occurs {len(found)} times in {inspect.getsourcefile(method)}")
        i = found[0]
        indent = len(source[i]) - len(source[i].lstrip())
        source[i] = " " * indent + "pass\n"
        i += 1
        while i < len(source) and (not source[i].strip() or len(source[i]) - len(source[i].lstrip()) > indent):
            source[i] = "\n"  # the block of a removed compound statement
            i += 1
    tree = ast.parse("".join(source))
    ast.increment_lineno(tree, first - 1)
    namespace = {}
    exec(compile(tree, inspect.getsourcefile(method), "exec"), vars(cpython), namespace)
    return namespace[method.__name__]


def moved_script(assert_python_ok):
    """test_worker_finalization_via_atexit_handler_of_multiprocessing runs a Pool program in a new interpreter: it
    runs moved as a Pool user moves it — its one pool line changed — with the service's address."""
    def run(*args, **env):
        *options, script = args
        moved = script.replace("from multiprocessing import Pool", "from jobs import Pool")
        if moved == script:
            raise LookupError("the script no longer makes its pool with 'from multiprocessing import Pool'")
        return assert_python_ok(*options, moved, PYTHONPATH=sys.path[0], JOBS_URL=os.environ["JOBS_URL"],
                                JOBS_QUEUE=os.environ.get("JOBS_QUEUE", ""), **env)
    return run


def suite(pool, not_yet):
    """The three classes as CPython makes them (base, ProcessesMixin, TestCase), with Pool = `pool`; the tests of
    `not_yet` as expected failures."""
    tests = unittest.TestSuite()
    unknown = (set(REMOVED) | set(not_yet)) - {name for base in CLASSES for name in dir(base)}
    if unknown:
        raise LookupError(f"no such tests in {cpython.__file__}: {sorted(unknown)}")
    for base in CLASSES:
        body = {"Pool": staticmethod(pool), "__module__": __name__}
        for name in dir(base):
            if name in REMOVED:
                body[name] = without(getattr(base, name), REMOVED[name])
            if name in not_yet:
                body[name] = unittest.expectedFailure(body.get(name, getattr(base, name)))
        case = type(base.__name__.lstrip("_"), (base, cpython.ProcessesMixin, unittest.TestCase), body)
        globals()[case.__name__] = case  # as CPython installs them: Pool pickles a classmethod by its class's name
        tests.addTests(unittest.defaultTestLoader.loadTestsFromTestCase(case))
    return tests


class Outcomes(unittest.TextTestResult):
    """One line per test: PASS, FAIL (with the error's last line), XFAIL (listed in KNOWN_FAILURES), XPASS (listed, but passed)."""

    def startTest(self, test):
        super().startTest(test)
        self._started = time.monotonic()
        faulthandler.dump_traceback_later(TEST_TIMEOUT, exit=True)

    def stopTest(self, test):
        faulthandler.cancel_dump_traceback_later()
        super().stopTest(test)

    def _line(self, test, outcome, detail=""):
        name = f"{type(test).__name__}.{test._testMethodName}"
        self.stream.writeln(f"CPYTHON {outcome:5} {name} ({time.monotonic() - self._started:.1f} s){': ' + detail if detail else ''}")
        self.stream.flush()

    @staticmethod
    def _last(err):
        return " ".join(traceback.format_exception_only(err[0], err[1])[-1].split())[:300]

    def addSuccess(self, test):
        super().addSuccess(test)
        self._line(test, "PASS")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._line(test, "FAIL", self._last(err))

    def addError(self, test, err):
        super().addError(test, err)
        self._line(test, "FAIL", self._last(err))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._line(test, "SKIP", reason)

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._line(test, "XFAIL", f"{self._last(err)} [KNOWN_FAILURES: {KNOWN_FAILURES[test._testMethodName]}]")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._line(test, "XPASS", "listed in KNOWN_FAILURES but passed: take it off the list")


def main(argv):
    if "--worker-imports" in argv:
        print(json.dumps(WORKER_IMPORTS))
        return 0
    baseline = "--baseline" in argv
    runner = unittest.TextTestRunner(stream=sys.stdout, resultclass=Outcomes, verbosity=0)
    started = time.monotonic()
    if baseline:
        result = runner.run(suite(multiprocessing.Pool, {}))
    else:
        # Two of the classes call multiprocessing.Pool(...) themselves; the subprocess test moves its script's pool line.
        with mock.patch.object(multiprocessing, "Pool", jobs.Pool), \
                mock.patch.object(script_helper, "assert_python_ok", moved_script(script_helper.assert_python_ok)):
            result = runner.run(suite(jobs.Pool, KNOWN_FAILURES))
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    print(f"CPYTHON SUMMARY {'multiprocessing.Pool' if baseline else 'jobs.Pool'}: {result.testsRun} tests, "
          f"{result.testsRun - failed - len(result.expectedFailures) - len(result.skipped)} passed, "
          f"{len(result.expectedFailures)} expected failures (KNOWN_FAILURES), {failed} failed, {len(result.skipped)} skipped "
          f"in {time.monotonic() - started:.1f} s")
    return 0 if result.wasSuccessful() and not result.skipped else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
