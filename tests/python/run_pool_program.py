"""Runs one Pool program of pool_programs/ twice — on multiprocessing.Pool as written, then on jobs.Pool with only the
line that makes the pool changed — and compares what both print. Exit 0 when they match (pids and the order of
unordered results aside, and the documented differences of src/python/README.md "What differs from Pool, in one place" applied).

    JOBS_URL=http://127.0.0.1:5080 JOBS_QUEUE=default python3 run_pool_program.py docs_intro [MOVED_COPY]

MOVED_COPY: where to write the program with its pool line changed (a file named as the program): the workers load
that very file, as they would load a user's moved script (it imports jobs, which the worker provides beside its host).

The workers must load the program as a module (Python:Modules) and import os.getpid, time.sleep, builtins.sorted and
builtins.str.upper (Python:Imports); tests/Jobs.Tests/Clients/PoolProgramTests.cs starts such a worker.
"""

import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAMS = os.path.join(HERE, "pool_programs")
CLIENT = os.path.join(HERE, "..", "..", "src", "python")

# The one line each program changes, as a Pool user would change it.
POOL_LINE = re.compile(r"^from multiprocessing import Pool\b(.*)$", re.M)


def pids(lines, numbers):
    """Lines printing process ids: what is compared is that they are ids, not which."""
    return [re.sub(r"\b\d+\b", "<pid>", line) if i in numbers else line for i, line in enumerate(lines)]


def unordered(lines, start, end):
    return lines[:start] + sorted(lines[start:end]) + lines[end:]


# Per program: what makes two correct runs print differently (pids, completion order).
NORMALIZE = {
    "docs_pool_usage": lambda lines: pids(unordered(lines, 1, 11), {12, 13}),
}

# Per program: Pool's output -> what jobs.Pool prints, for each difference src/python/README.md documents.
DIFFERENCES = {
    # A map item's arguments are stored as jsonb, which orders an object's keys (shorter first, then bytewise).
    "values": lambda text: text.replace("{'b': 1, 'a': [None]}", "{'a': [None], 'b': 1}"),
}


def run(path, environment):
    done = subprocess.run([sys.executable, path], capture_output=True, text=True, timeout=240, env=environment,
                          cwd=os.path.dirname(path))
    if done.returncode != 0:
        last = done.stderr.strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
        return done.stdout + last[0] + "\n", done.stderr
    return done.stdout, done.stderr


def moved(name):
    """The program's text with its pool line changed, as a Pool user changes it."""
    with open(os.path.join(PROGRAMS, name + ".py")) as f:
        text, changed = POOL_LINE.subn(r"from jobs import Pool\1", f.read())
    assert changed == 1, f"{name}: expected one `from multiprocessing import Pool` line, found {changed}"
    return text


def main(name, copy=None):
    source = os.path.join(PROGRAMS, name + ".py")
    base = {k: v for k, v in os.environ.items() if not k.startswith("JOBS_")}
    expected, pool_errors = run(source, base)
    with tempfile.TemporaryDirectory() as folder:
        # The same file name: the workers load the program under its module name (spawn's __mp_main__).
        copy = copy or os.path.join(folder, name + ".py")
        assert os.path.basename(copy) == name + ".py", copy
        if not os.path.exists(copy) or open(copy).read() != moved(name):  # rewriting would make the workers reload it
            with open(copy, "w") as f:
                f.write(moved(name))
        actual, jobs_errors = run(copy, dict(os.environ, PYTHONPATH=CLIENT))

    normalize = NORMALIZE.get(name, lambda lines: lines)
    expected = DIFFERENCES.get(name, lambda t: t)(expected)
    want, got = normalize(expected.splitlines()), normalize(actual.splitlines())
    print(f"--- multiprocessing.Pool ({name}.py as written)\n{expected}--- jobs.Pool (the pool line changed)\n{actual}", end="")
    if want != got:
        print(f"DIFFERENT\n--- stderr of jobs.Pool's run\n{jobs_errors}\n--- stderr of Pool's run\n{pool_errors}")
        return 1
    print("SAME")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
