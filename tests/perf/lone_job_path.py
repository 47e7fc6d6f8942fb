#!/usr/bin/env python3
"""A lone job's path, round trip by round trip, from PostgreSQL's own statement log.

Run against a service started by the launcher (its private cluster), e.g.:

    Api__Urls=http://127.0.0.1:5199 Launcher__DataDirectory=.data/path-postgres dotnet run -c Release --project src/Jobs.Launcher &
    python3 tests/perf/lone_job_path.py --url http://127.0.0.1:5199 --data .data/path-postgres --jobs 100

It turns on PostgreSQL's statement log (log_min_duration_statement = 0) for the run, submits lone jobs one at a time
(POST /jobs, then GET /jobs/{id}?wait=5, then a pause so every process is idle again), turns the log off, and prints:
statements per job by backend process, and the statements of the median job in time order, in ms from its INSERT.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import time
import urllib.request

# One log entry (continuation lines joined): an executed statement (simple protocol) or the execute phase of an
# extended-protocol one (its parse and bind phases are logged too, and skipped: one round trip carries all three).
LINE = re.compile(r"^(\S+ \S+) \S+ \[(\d+)\] (\S*) LOG:\s+duration: ([\d.]+) ms\s+(?:statement|execute [^:]*): (.*)$")
ENTRY = re.compile(r"^\d{4}-\d\d-\d\d ", re.M)


def psql(data, port, password, sql):
    env = dict(os.environ, PGPASSWORD=password)
    # One -c per statement: ALTER SYSTEM cannot run in the transaction psql makes of a multi-statement -c.
    commands = [arg for statement in sql.split(";") if statement.strip() for arg in ("-c", statement)]
    subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "jobs", "-d", "postgres", "-Atq", *commands], check=True, env=env)


def request(method, url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as response:
        return json.loads(response.read() or b"null")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="http://127.0.0.1:5199")
    parser.add_argument("--data", default=".data/path-postgres")
    parser.add_argument("--jobs", type=int, default=100)
    args = parser.parse_args()
    port = int(open(os.path.join(args.data, "postmaster.pid")).read().splitlines()[3])
    password = open(args.data + ".password").read().strip()
    log = os.path.join(args.data, "server.log")

    for _ in range(20):  # warm: every statement prepared, every path jitted
        request("GET", f"{args.url}/jobs/{request('POST', args.url + '/jobs', {'function': 'math.square', 'args': [2]})['id']}?wait=5")
    psql(args.data, port, password, "ALTER SYSTEM SET log_min_duration_statement = 0; "
         "ALTER SYSTEM SET log_line_prefix = '%m [%p] %a '; SELECT pg_reload_conf()")
    time.sleep(1)
    start = os.path.getsize(log)
    marks = []
    for i in range(args.jobs):
        time.sleep(0.25)
        job = request("POST", args.url + "/jobs", {"function": "math.square", "args": [i]})
        request("GET", f"{args.url}/jobs/{job['id']}?wait=5")
        marks.append(job["id"])
    time.sleep(0.5)
    psql(args.data, port, password, "ALTER SYSTEM RESET log_min_duration_statement; ALTER SYSTEM RESET log_line_prefix; SELECT pg_reload_conf()")

    with open(log, encoding="utf-8", errors="replace") as f:
        f.seek(start)
        text = f.read()
    starts = [m.start() for m in ENTRY.finditer(text)] + [len(text)]
    entries = (re.sub(r"\s+", " ", text[a:b]).strip() for a, b in zip(starts, starts[1:]))
    lines = [m for m in (LINE.match(e) for e in entries) if m]
    # Jobs are 250 ms apart and each takes a few ms: a gap of > 100 ms between statements starts the next job.
    def ms(stamp):
        t = time.strptime(stamp.split(".")[0], "%Y-%m-%d %H:%M:%S")
        return time.mktime(t) * 1000 + float("0." + stamp.split(".")[1]) * 1000
    groups, current, last = [], [], None
    for m in lines:
        t = ms(m.group(1))
        if last is not None and t - last > 100 and current:
            groups.append(current)
            current = []
        current.append((t, m.group(2), m.group(3), m.group(5)))
        last = t
    if current:
        groups.append(current)
    groups = [g for g in groups if any("INSERT INTO jobs.job (id" in s[3] for s in g)]
    counts = [len(g) for g in groups]
    print(f"{len(groups)} lone jobs; statements per job: median {statistics.median(counts)}, min {min(counts)}, max {max(counts)}")
    typical = sorted(groups, key=len)[len(groups) // 2]
    t0 = next(t for t, _, _, s in typical if "INSERT INTO jobs.job (id" in s)
    for t, pid, app, sql in typical:
        print(f"{t - t0:8.2f} ms  [{pid}] {app:14.14} {sql[:150]}")


if __name__ == "__main__":
    main()
