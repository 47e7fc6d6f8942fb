"""Functions that attack the worker that runs them and the calls of other clients (UserCodeIsolationTests).

Each does what a careless or hostile function could: write to file descriptor 1 behind print()'s back, run a shell,
leave a thread or a double-forked process behind, read stdin, read other processes' environments and files.
"""

import os
import sys
import threading
import time

FAKE = b'{"ok": true, "result": "INJECTED"}\n'


def echo(value: str):
    return value


def stdout_raw(text: str):
    """Writes a line to descriptor 1 itself, as C code or os.write would."""
    os.write(1, text.encode() + b"\n")
    return "real"


def shell(command: str):
    """os.system: the shell's output goes wherever descriptor 1 points."""
    return os.system(command)


def fake_answer_later(delay: float = 0.3):
    """Leaves a thread that, after the call, writes a fake answer to every descriptor it can (the host's own too)."""
    def write():
        time.sleep(delay)
        for fd in os.listdir("/proc/self/fd"):
            try:
                os.write(int(fd), FAKE)
            except OSError:
                pass

    threading.Thread(target=write, daemon=True).start()
    return "started"


def read_stdin():
    """Reads what the worker sends this process next."""
    return os.read(0, 65536).decode(errors="replace")


def read_stdin_later(path: str):
    """Leaves a thread reading stdin, where the next call's request would come; what it got is written to path."""
    def steal():
        data = sys.stdin.buffer.raw.read(65536) if hasattr(sys.stdin, "buffer") else os.read(0, 65536)
        with open(path, "wb") as f:
            f.write(data or b"")

    threading.Thread(target=steal, daemon=True).start()
    return "started"


def orphan(pidfile: str, then: str = "return"):
    """Double-forks a process into a session of its own (setsid) that writes its pid to pidfile and sleeps; then
    returns, or sleeps itself (then="sleep") until the job is canceled or times out."""
    child = os.fork()
    if child == 0:
        os.setsid()
        if os.fork() == 0:
            with open(pidfile + ".tmp", "w") as f:
                f.write(str(os.getpid()))
            os.rename(pidfile + ".tmp", pidfile)
            time.sleep(600)
        os._exit(0)
    os.waitpid(child, 0)
    while not os.path.exists(pidfile):
        time.sleep(0.01)
    if then == "sleep":
        time.sleep(600)
    return int(open(pidfile).read())


def read_file(path: str):
    """The file's text, or the error reading it gave."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return {"read": f.read()}
    except OSError as e:
        return {"error": type(e).__name__}


def secrets_in_environments():
    """Every process whose environment this code could read and that holds one of the service's secrets: the worker
    (its parent), the API, the launcher."""
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                environ = f.read()
        except OSError:
            continue
        hits = [name for name in (b"ConnectionStrings__", b"Callbacks__Secret", b"Auth__ApiKeys") if name in environ]
        if hits:
            found[pid] = [h.decode() for h in hits]
    return found


def worker_environ():
    """The worker's (this process's parent's) environment, or the error reading it gave."""
    return read_file(f"/proc/{os.getppid()}/environ")


def whoami():
    return {"uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups()}


def fake_answer_now():
    """Writes a fake answer to every descriptor it can, the host's private channel too, while its own call runs."""
    for fd in os.listdir("/proc/self/fd"):
        try:
            os.write(int(fd), FAKE)
        except OSError:
            pass
    time.sleep(0.5)
    return "real"


def slow_echo(value: str, seconds: float = 1.0):
    time.sleep(seconds)
    return value


def answer_next_call_by_timer(delay: float = 0.3):
    """Arms a timer whose handler, in the main thread during a later call, answers that call on the host's own channel
    with the call's own id (both found in the host's globals)."""
    import signal

    def inject(signum, frame):
        host = sys.modules["__main__"]
        call = getattr(host, "_CALL", None)
        if call is not None:
            host.send({"id": call, "ok": True, "result": "INJECTED"})

    signal.signal(signal.SIGALRM, inject)
    signal.setitimer(signal.ITIMER_REAL, delay)
    return "armed"


def answer_next_call_by_trace():
    """Installs a profile hook that answers the next call with that call's id as soon as it starts."""
    def hook(frame, event, arg):
        host = sys.modules["__main__"]
        call = getattr(host, "_CALL", None)
        if call is not None and frame.f_code.co_name == "slow_echo":
            sys.setprofile(None)
            host.send({"id": call, "ok": True, "result": "INJECTED"})

    sys.setprofile(hook)
    return "installed"
