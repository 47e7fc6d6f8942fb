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

This script is the protocol; its parts beside it: jobs_host_functions.py (what is offered, described),
jobs_host_values.py (results and errors as JSON) and jobs_host_processes.py (what a call starts or leaves behind).
"""

import json
import os
import sys
import threading

# This script's parts, beside it. python3 puts this folder first on sys.path, but not with PYTHONSAFEPATH (an
# operator's PYTHON* settings reach python3): it is put there for these imports and taken away again, so user code
# sees sys.path as python3 made it.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from jobs_host_functions import describe, imported, load, offered  # noqa: E402
from jobs_host_processes import (PR_SET_CHILD_SUBREAPER, PR_SET_DUMPABLE, audit, end_descendants, exit_with_parent,  # noqa: E402
                                 left_behind, prctl, taints)
from jobs_host_values import encoding_error, error, string_keys  # noqa: E402
del sys.path[0]

PROTOCOL = None  # the private channel to the worker (private_channel()); jobs_progress looks for it
_REQUESTS = None
_WRITE = threading.Lock()
_CALL = None  # the id of the call running now: progress lines carry it


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
    prctl(PR_SET_DUMPABLE, 0)
    # Orphans of a call (a double fork, setsid) are re-parented to this process, not to init: end_descendants finds them.
    prctl(PR_SET_CHILD_SUBREAPER, 1)


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


def serve(module_name, functions_by_key):
    global _CALL
    sys.addaudithook(audit)
    clean = left_behind()  # no user code runs between calls: the state after one clean call is the state before the next
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
        now = left_behind()
        retire = taints(clean, now)
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
            # The client's own reading of the pointers: the package jobs ships beside this host (its build output, a copy).
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
