#!/usr/bin/env python3
"""How much memory concurrent reads of one large result cost the API.

Starts the service with the launcher (its own PostgreSQL under .data/measure-reads, made anew, one worker, the API on a free
port), runs a Python function that returns a string of SIZE bytes of JSON, then reads that job READERS times at once
(GET /jobs/{id}/result, GET /jobs/{id} and GET /jobs?limit=5 in turn, ROUNDS rounds) while sampling the API process's resident memory every
10 ms from /proc/<pid>/status. Prints RSS before, peak during and after (5 s later), in MiB.

    dotnet build -c Release src/Jobs.Launcher && python3 tests/memory/measure_result_reads.py [SIZE_MIB] [READERS] [ROUNDS]
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SIZE = int(float(sys.argv[1]) * 1024 * 1024) if len(sys.argv) > 1 else 16 * 1024 * 1024 - 64
READERS = int(sys.argv[2]) if len(sys.argv) > 2 else 12
ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 6


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(field)


def children(pid):
    out = subprocess.run(["ps", "-o", "pid=,args=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [(int(p), a) for p, a in (line.strip().split(" ", 1) for line in out.splitlines() if line.strip())]


def get(url, timeout=120):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        n = 0
        while chunk := r.read(1 << 20):
            n += len(chunk)
        return r.status, n


def main():
    module = os.path.join(tempfile.mkdtemp(prefix="jobs-measure-"), "measure_mod.py")
    with open(module, "w") as f:
        f.write("def big(n):\n    return 'x' * n\n")
    shutil.rmtree(os.path.join(ROOT, ".data", "measure-reads"), ignore_errors=True)  # the same data every run
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    launcher_dll = os.path.join(ROOT, "src", "Jobs.Launcher", "bin", "Release", "net10.0", "Jobs.Launcher.dll")
    env = dict(os.environ, Api__Urls=base, Launcher__Workers="1", Launcher__DataDirectory=".data/measure-reads",
               Python__Modules__0__Path=module, Worker__WorkerCount="1", Logging__LogLevel__Default="Warning")
    launcher = subprocess.Popen(["dotnet", launcher_dll], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 120
        while True:
            try:
                if get(base + "/functions/py:measure_mod.big", 5)[0] == 200:
                    break
            except Exception:
                pass
            if time.time() > deadline or launcher.poll() is not None:
                raise RuntimeError("the service did not start")
            time.sleep(0.5)
        api = next(p for p, a in children(launcher.pid) if "Jobs.Api" in a)

        body = json.dumps({"function": "py:measure_mod.big", "args": [SIZE - 2]}).encode()
        req = urllib.request.Request(base + "/jobs?wait=60", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=90) as r:
            job = json.loads(r.read())
        assert job["state"] == "succeeded", job["state"] + " " + json.dumps(job.get("error"))[:300]
        job_id = job["id"]
        # One read to warm up the code paths (JIT, pools), so "before" is the steady state.
        get(f"{base}/jobs/{job_id}/result")
        time.sleep(3)
        before = rss_kib(api)
        peak = [before]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], rss_kib(api))
                time.sleep(0.01)

        sampler = threading.Thread(target=sample)
        sampler.start()
        started = time.time()
        sizes = set()
        with ThreadPoolExecutor(READERS) as pool:
            for r in range(ROUNDS):
                path = [f"/jobs/{job_id}/result", f"/jobs/{job_id}", "/jobs?limit=5"][r % 3]
                for status, n in pool.map(lambda _: get(base + path), range(READERS)):
                    assert status == 200, status
                    sizes.add((path.rsplit("/", 1)[-1][:12], n))
        took = time.time() - started
        time.sleep(5)
        stop.set()
        sampler.join()
        after = rss_kib(api)
        mib = lambda k: f"{k / 1024:.0f} MiB"
        print(f"result {SIZE / 1048576:.1f} MiB of JSON; {ROUNDS} rounds of {READERS} concurrent reads in {took:.1f} s; bytes read {sorted(sizes)}")
        print(f"API RSS before {mib(before)}, peak {mib(peak[0])}, after {mib(after)} (VmHWM {mib(rss_kib(api, 'VmHWM'))})")
    finally:
        launcher.send_signal(signal.SIGINT)
        try:
            launcher.wait(60)
        except subprocess.TimeoutExpired:
            launcher.kill()


if __name__ == "__main__":
    main()
