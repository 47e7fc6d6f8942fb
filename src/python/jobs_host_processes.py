"""What jobs_host.py does about processes and what a call leaves behind: the descendants a call started (killed before
it is answered), the threads, timers and hooks it left in this process (which retire it), and the worker that started
it (this process ends with it)."""

import _signal
import ctypes
import gc
import os
import signal
import sys
import threading
import time

PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36


def prctl(option, value):
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):  # not Linux: nothing to arrange
        return False


def _children():
    """pid -> parent pid of every process (a scan of /proc)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        parents[int(entry)] = int(stat[stat.rindex(b")") + 2:].split()[1])
    return parents


def _reap():
    """Reaps ended children; False when this process has no child left (alive or not reaped)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return False
        if pid == 0:
            return True


def end_descendants(deadline=5.0):
    """Kills every process the calls started, and reaps them. As a subreaper, a process without a child left has no
    descendant at all (an orphan comes back to it), so the common case costs one waitpid."""
    if not _reap() or not os.path.isdir("/proc"):
        return  # no descendant; or not Linux, where this containment is not offered
    me, until = os.getpid(), time.monotonic() + deadline
    while _reap() and time.monotonic() < until:
        parents = _children()
        found, frontier = set(), {me}
        while frontier:
            frontier = {pid for pid, parent in parents.items() if parent in frontier and pid not in found}
            found |= frontier
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:  # gone; or a setuid program, which the worker's tree kill ends with this process
                pass
        time.sleep(0.005)
    if _reap():
        os._exit(71)  # descendants that would not die: the worker kills the tree and starts a fresh process


_HOOKS_ADDED = False


def audit(event, args):
    global _HOOKS_ADDED
    if event == "sys.addaudithook":
        _HOOKS_ADDED = True  # an audit hook cannot be removed: it would run during later calls


_SIGNALS = [int(s) for s in signal.valid_signals() if s not in (signal.SIGKILL, signal.SIGSTOP)]
_TIMERS = (signal.ITIMER_REAL, signal.ITIMER_VIRTUAL, signal.ITIMER_PROF)


def left_behind():
    """What user code can leave running in this process after its call, to run during a later one and read or answer
    it: the count of threads (Python's and C code's alike: procfs counts them in the task folder's links), armed
    timers, trace and profile hooks, gc callbacks, audit hooks and signal handlers."""
    try:
        threads = os.stat("/proc/self/task").st_nlink
    except OSError:
        threads = threading.active_count()
    timers = signal.getitimer(_TIMERS[0])[0] or signal.getitimer(_TIMERS[1])[0] or signal.getitimer(_TIMERS[2])[0]
    threading_hooks = (getattr(threading, "gettrace", lambda: None)(), getattr(threading, "getprofile", lambda: None)())  # 3.10+
    hooks = (sys.gettrace(), sys.getprofile(), *threading_hooks, len(gc.callbacks), _HOOKS_ADDED)
    return threads, timers, hooks, tuple(map(_signal.getsignal, _SIGNALS))  # _signal's: signal's wraps each in an enum


def taints(before, after):
    """Whether the call left something behind (fewer threads is fine: one started earlier may have ended)."""
    return after[0] > before[0] or after[1] or after[2] != before[2] or after[3] != before[3]


def exit_with_parent():
    """Ends this process when the worker that started it is gone (kill -9, the OOM killer): an orphan would run
    its call on while the job re-runs elsewhere, and an endless one would burn a core for good. A thread checks the
    parent every 0.2 s (PR_SET_PDEATHSIG would fire when the .NET thread that started us exits, not the process).
    A call stuck in C code that holds the GIL delays the check until it lets go."""
    parent = int(os.environ.pop("JOBS_WORKER_PID", "0") or 0) or os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(0.2)
        end_descendants(deadline=1.0)
        os._exit(70)

    threading.Thread(target=watch, name="jobs-parent-watch", daemon=True).start()
