"""The python3 side of the worker's Python function provider (standard library only).

    python3 jobs_host.py describe MODULE_PATH [INITIALIZER]
        prints one JSON object: the module's public top-level functions with their signatures.
    python3 jobs_host.py describe --imports '["os.getpid", "math.*"]'
        the same for functions of importable modules the operator lists (Python:Imports), each under the name pickle
        gives it (its __module__ and __qualname__: os.getpid is posix.getpid, str.upper is builtins.str.upper).
    python3 jobs_host.py serve MODULE_PATH|--imports JSON [INITIALIZER [INITARGS_JSON]]
        imports the module once, runs the initializer (as Pool's initializer/initargs), then answers calls, one JSON
        object per line: {"id", "function", "args", "kwargs", "tuples"?} in -> {"id", "ok": true, "result", "tuples"?} or
        {"id", "ok": false, "error": {"type", "message", "stackTrace"}} out; {"id", "progress": f, "message": m} lines
        may come before the answer (jobs_progress.report). Every line out after {"ready": true} carries the id of the
        call it answers (a fresh random one per call); an answer with "retire": true says this process ends now (the
        call left a thread, timer or hook in it that could run during the next). "tuples" says where a value held
        Python tuples, as JSON Pointers ({"args": [...], "kwargs": [...]} in, [...] of the result out): JSON has arrays only.

The protocol is private: at start the pipes the worker gave as stdin and stdout are moved to descriptors of their own
(not inherited by children), descriptor 0 becomes /dev/null and descriptor 1 a copy of descriptor 2. Whatever user code
writes — print(), os.write(1, ...), os.system, subprocesses, C libraries — lands in stderr, which the worker logs with
the job's id; nothing it reads from stdin is a request. The host is a child subreaper: every process a call starts
(even one that double-forks into a session of its own) stays its descendant and is killed before the call is answered.

Only what Pool could send to a worker is offered: public functions defined at the top level of the module itself
(not imported, not nested, not lambdas) — what pickle can name by module and qualified name.
"""

import _signal
import ctypes
import gc
import importlib.util
import inspect
import json
import os
import signal
import sys
import threading
import time
import traceback

PROTOCOL = None  # the private channel to the worker (private_channel()); jobs_progress looks for it
_REQUESTS = None
_WRITE = threading.Lock()
_CALL = None  # the id of the call running now: progress lines carry it

PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36


def _prctl(option, value):
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):  # not Linux: nothing to arrange
        return False


def private_channel():
    """Moves the protocol off descriptors 0 and 1, which user code and its children reach. The copies are not
    inherited (os.dup makes non-inheritable descriptors); 0 becomes /dev/null, 1 a copy of 2 (the worker's log)."""
    global PROTOCOL, _REQUESTS
    requests, answers = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    _REQUESTS = os.fdopen(requests, "r", encoding="utf-8", newline="\n")
    PROTOCOL = os.fdopen(answers, "w", encoding="utf-8", newline="\n")
    sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115 - lives as long as the process
    sys.stdout = sys.stderr  # print() and os.write(1, ...) both go to the log; one stream keeps their order
    # Other processes of this user (another call's python3) may not read this one's descriptors or memory, nor trace it.
    _prctl(PR_SET_DUMPABLE, 0)
    # Orphans of a call (a double fork, setsid) are re-parented to this process, not to init: end_descendants finds them.
    _prctl(PR_SET_CHILD_SUBREAPER, 1)


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


def _audit(event, args):
    global _HOOKS_ADDED
    if event == "sys.addaudithook":
        _HOOKS_ADDED = True  # an audit hook cannot be removed: it would run during later calls


_SIGNALS = [int(s) for s in signal.valid_signals() if s not in (signal.SIGKILL, signal.SIGSTOP)]
_TIMERS = (signal.ITIMER_REAL, signal.ITIMER_VIRTUAL, signal.ITIMER_PROF)


def _left_behind():
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


def _taints(before, after):
    """Whether the call left something behind (fewer threads is fine: one started earlier may have ended)."""
    return after[0] > before[0] or after[1] or after[2] != before[2] or after[3] != before[3]


def load(path):
    name = os.path.splitext(os.path.basename(path))[0]
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


_SCHEMAS = {int: {"type": "integer"}, float: {"type": "number"}, str: {"type": "string"}, bool: {"type": "boolean"},
            list: {"type": "array"}, dict: {"type": "object"}, type(None): {"type": "null"}}


def schema(annotation):
    if annotation is inspect.Parameter.empty:
        return {}
    return dict(_SCHEMAS.get(annotation, {}))


def offered(module):
    """(qualified name, function): the module's public top-level functions, and the public classmethods and
    staticmethods of its public top-level classes (nested classes too) under their qualified names (K.cm, K.Inner.sm),
    which pickle sends by name as well (getattr on the class). A plain method needs an instance: not offered."""
    for name, obj in vars(module).items():
        if name.startswith("_"):
            continue
        if inspect.isclass(obj) and obj.__module__ == module.__name__ and obj.__qualname__ == name:
            yield from _methods(obj)
        if not inspect.isfunction(obj):
            continue
        if obj.__module__ != module.__name__ or obj.__qualname__ != name or obj.__name__ == "<lambda>":
            continue  # imported from elsewhere, nested, or a lambda: pickle could not send it to a worker either
        yield name, obj


def _methods(cls):
    for name, member in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(member, (classmethod, staticmethod)) and inspect.isfunction(member.__func__) \
                and member.__func__.__qualname__ == f"{cls.__qualname__}.{name}":
            yield member.__func__.__qualname__, getattr(cls, name)  # the classmethod bound to its class, as pickle's getattr gives it
        elif inspect.isclass(member) and member.__module__ == cls.__module__ and member.__qualname__ == f"{cls.__qualname__}.{name}":
            yield from _methods(member)


def pickle_name(obj):
    """(module, qualname) as pickle names a function: os.getpid -> (posix, getpid), str.upper -> (builtins, str.upper)."""
    owner = getattr(obj, "__objclass__", None)  # a method of a built-in type
    module = getattr(obj, "__module__", None) or getattr(owner, "__module__", None) or "builtins"
    return module, obj.__qualname__


def imported(entries):
    """The routines the operator lists (Python:Imports): "module.name", "module.Class.method" or "module.*" (its public
    routines). Yields (key, module, qualname, function); the key is what the worker sends back to call it."""
    for entry in entries:
        parts = entry.split(".")
        for split in range(len(parts) - 1, 0, -1):
            try:
                target = importlib.import_module(".".join(parts[:split]))
                break
            except ImportError:
                continue
        else:
            raise ImportError(f"Python:Imports: no importable module in '{entry}'")
        names = parts[split:]
        if names == ["*"]:
            members = [getattr(target, n) for n in sorted(vars(target)) if not n.startswith("_")]
            members = [m for m in members if inspect.isroutine(m) and not inspect.isclass(m)]
        else:
            for n in names:
                target = getattr(target, n)
            if not callable(target):
                raise TypeError(f"Python:Imports: '{entry}' is not a function")
            members = [target]
        for fn in members:
            module, qualname = pickle_name(fn)
            yield f"{module}.{qualname}", module, qualname, fn


def describe(module_name, functions_by_key):
    functions = []
    for key, (module, qualname, fn) in functions_by_key.items():
        try:
            signature = inspect.signature(fn)
        except (TypeError, ValueError):  # a built-in without a signature (time.sleep): any arguments, checked when it runs
            signature = inspect.Signature([inspect.Parameter("args", inspect.Parameter.VAR_POSITIONAL),
                                           inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD)])
        parameters = []
        for p in signature.parameters.values():
            entry = {"name": p.name, "kind": p.kind.name, "schema": schema(p.annotation), "required": p.default is inspect.Parameter.empty}
            if p.default is None:
                entry["schema"]["nullable"] = True  # `text: str = None`: None is what the function expects when none is given
            if p.default is not inspect.Parameter.empty:
                try:
                    json.dumps(p.default, allow_nan=False)
                    entry["default"] = p.default
                except (TypeError, ValueError):
                    entry["default"] = repr(p.default)
            parameters.append(entry)
        functions.append({"name": key, "module": module, "qualname": qualname, "doc": inspect.getdoc(fn) or "",
                          "parameters": parameters, "returns": schema(signature.return_annotation)})
    return {"module": module_name, "functions": functions}


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


def send(obj):
    write(json.dumps(obj, allow_nan=False))


def write(line):
    with _WRITE:
        PROTOCOL.write(line + "\n")
        PROTOCOL.flush()


def report_progress(fraction, message):
    """jobs_progress.report: a progress line for the call running now (none between calls)."""
    call = _CALL
    if call is not None:
        send({"id": call, "progress": fraction, "message": message})


# The most JSON an exception's args may take in a stored error; larger args are left out (the message stays).
MAX_ARGS_BYTES = 64 * 1024


def carried(values):
    """values as JSON text when JSON carries them as they are (no NaN, string keys only, not too large), else None."""
    try:
        string_keys(values)
        text = json.dumps(values, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError):
        return None
    return text if len(text) <= MAX_ARGS_BYTES else None


def error(e, type_name=None):
    # A built-in exception by its name ("ValueError"); any other by module and name ("mymodule.Rejected"), so a client
    # that has that module can raise it as its own class. "args" (when JSON can carry them) lets the client rebuild it
    # as pickle does, from its class and args: KeyError('key') comes back with args ('key',), not its message.
    cls = type(e)
    name = cls.__name__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    answer = {"type": type_name or name, "message": str(e),
              "stackTrace": "".join(traceback.format_exception(type(e), e, e.__traceback__))}
    args = carried(list(e.args)) if isinstance(e.args, tuple) else None
    if args is not None:
        answer["args"] = json.loads(args)
    return answer


def encoding_error(exc, value, trace=""):
    """Pool's MaybeEncodingError(exc, value): args are the reprs of both, its message Pool's str of it."""
    exc, value = repr(exc), repr(value)
    if len(value) > 1000:
        value = value[:999] + "…"
    return {"type": "MaybeEncodingError", "message": f"Error sending result: '{value}'. Reason: '{exc}'",
            "stackTrace": trace, "args": [exc, value]}


def string_keys(value, path=(), pointer="", tuples=None):
    """Refuses what JSON would change (non-string keys, cycles); collects in tuples the JSON Pointer of each tuple."""
    if isinstance(value, (dict, list, tuple)):
        if id(value) in path:
            raise ValueError("Circular reference detected")  # json.dumps's own words
        path = (*path, id(value))
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"dict key {key!r} is not a string (JSON objects have string keys)")
            string_keys(item, path, pointer + "/" + key.replace("~", "~0").replace("/", "~1"), tuples)
    elif isinstance(value, (list, tuple)):
        if isinstance(value, tuple) and tuples is not None:
            tuples.append(pointer)
        for index, item in enumerate(value):
            string_keys(item, path, f"{pointer}/{index}", tuples)


def serve(module_name, functions_by_key):
    global _CALL
    sys.addaudithook(_audit)
    clean = _left_behind()  # no user code runs between calls: the state after one clean call is the state before the next
    for line in _REQUESTS:
        if not line.strip():
            continue
        request = json.loads(line)
        call = request["id"]
        _CALL = call
        answer = run(module_name, functions_by_key, request)
        _CALL = None
        end_descendants()  # every process the call started ends with it
        # A thread, timer or hook the call left could read or answer the next call: this process serves no other.
        now = _left_behind()
        retire = _taints(clean, now)
        clean = (min(clean[0], now[0]), *clean[1:])
        write(json.dumps({"id": call, **({"retire": True} if retire else {})})[:-1] + ", " + answer[1:])
        if retire:
            os._exit(0)


def run(module_name, functions_by_key, request):
    """Runs one call; its answer as a JSON object's text (without the id)."""
    _, _, fn = functions_by_key.get(request["function"], (None, None, None))
    if fn is None:
        return json.dumps({"ok": False, "error": {"type": "LookupError", "message": f"{module_name}: {request['function']} is not offered", "stackTrace": ""}})
    tuples = request.get("tuples") or {}
    try:
        args, kwargs = request.get("args", []), request.get("kwargs", {})
        if tuples:
            # The client's own reading of the pointers: jobs.py ships beside this host (its build output, a copy).
            from jobs import _with_tuples
            args, kwargs = _with_tuples(args, tuples.get("args")), _with_tuples(kwargs, tuples.get("kwargs"))
        result = fn(*args, **kwargs)
    except BaseException as e:  # noqa: BLE001 - every failure of the user's code is the job's failure
        return json.dumps({"ok": False, "error": error(e)})
    try:
        tuples = []
        string_keys(result, tuples=tuples)  # json.dumps would turn {1: 'a'} into {'1': 'a'} without a word
        encoded = json.dumps(result, allow_nan=False, separators=(",", ":"))  # NaN/Infinity are not JSON
    except (TypeError, ValueError, RecursionError) as e:
        # Pool's MaybeEncodingError: the function returned, but its result cannot travel back.
        return json.dumps({"ok": False, "error": encoding_error(e, result, error(e)["stackTrace"])})
    # Jobs:MaxResultBytes, sent with each call: a larger result is refused here, before it travels. The worker checks
    # again, exactly; this count (compact JSON, non-ASCII escaped) is never more than the worker's, so it refuses
    # nothing the worker would store.
    limit = request.get("maxResultBytes") or 0
    if limit and len(encoded) > limit:
        reason = ValueError(f"its JSON is {len(encoded):,} bytes, more than the {limit:,} bytes this service stores for one "
                            "result (Jobs:MaxResultBytes). Return less, or store it elsewhere and return where.")
        return json.dumps({"ok": False, "error": encoding_error(reason, result)})
    return '{"ok":true,"result":' + encoded + (',"tuples":' + json.dumps(tuples) if tuples else "") + "}"


def _user():
    try:
        import pwd
        return f"{pwd.getpwuid(os.getuid()).pw_name}, uid {os.getuid()}"
    except (ImportError, KeyError):
        return f"uid {os.getuid()}"


def main(argv):
    command, path = argv[1], argv[2]
    private_channel()  # before any user code runs (importing the module runs it)
    exit_with_parent()
    if path != "--imports" and not os.access(path, os.R_OK):
        user = _user()
        raise PermissionError(f"{path} cannot be read by the user python3 runs as ({user}): make the module and its "
                              "folders readable by that user, or set Python:User")
    if path == "--imports":
        module, rest = None, argv[4:]
        name = "imports"
        functions = {key: (m, q, fn) for key, m, q, fn in imported(json.loads(argv[3]))}
    else:
        module, rest = load(path), argv[3:]
        name = module.__name__
        functions = {key: (name, key, fn) for key, fn in offered(module)}
    if command == "describe":
        if rest and rest[0]:
            functions.pop(rest[0], None)  # the initializer runs in each process; it is not offered as a job
        send(describe(name, functions))
        end_descendants()
        return 0
    if module is not None and rest and rest[0]:
        initializer = getattr(module, rest[0])
        initializer(*(json.loads(rest[1]) if len(rest) > 1 else []))
    send({"ready": True})
    serve(name, functions)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
