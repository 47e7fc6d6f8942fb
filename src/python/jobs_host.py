"""The python3 side of the worker's Python function provider (standard library only).

    python3 jobs_host.py describe MODULE_PATH [INITIALIZER]
        prints one JSON object: the module's public top-level functions with their signatures.
    python3 jobs_host.py describe --imports '["os.getpid", "math.*"]'
        the same for functions of importable modules the operator lists (Python:Imports), each under the name pickle
        gives it (its __module__ and __qualname__: os.getpid is posix.getpid, str.upper is builtins.str.upper).
    python3 jobs_host.py serve MODULE_PATH|--imports JSON [INITIALIZER [INITARGS_JSON]]
        imports the module once, runs the initializer (as Pool's initializer/initargs), then answers calls, one JSON
        object per line: {"function", "args", "kwargs"} on stdin -> {"ok": true, "result"} or
        {"ok": false, "error": {"type", "message", "stackTrace"}} on stdout; {"progress": f, "message": m} lines may
        come before the answer (jobs_progress.report). The user's print() goes to stderr, never into the protocol.

Only what Pool could send to a worker is offered: public functions defined at the top level of the module itself
(not imported, not nested, not lambdas) — what pickle can name by module and qualified name.
"""

import importlib.util
import inspect
import json
import os
import sys
import threading
import time
import traceback

PROTOCOL = sys.stdout


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
    for name, obj in vars(module).items():
        if name.startswith("_") or not inspect.isfunction(obj):
            continue
        if obj.__module__ != module.__name__ or obj.__qualname__ != name or obj.__name__ == "<lambda>":
            continue  # imported from elsewhere, nested, or a lambda: pickle could not send it to a worker either
        yield name, obj


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
        os._exit(70)

    threading.Thread(target=watch, name="jobs-parent-watch", daemon=True).start()


def send(obj):
    PROTOCOL.write(json.dumps(obj, allow_nan=False) + "\n")
    PROTOCOL.flush()


def error(e, type_name=None):
    # A built-in exception by its name ("ValueError"); any other by module and name ("mymodule.Rejected"), so a client
    # that has that module can raise it as its own class.
    cls = type(e)
    name = cls.__name__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    return {"type": type_name or name, "message": str(e),
            "stackTrace": "".join(traceback.format_exception(type(e), e, e.__traceback__))}


def string_keys(value, path=()):
    if isinstance(value, (dict, list, tuple)):
        if id(value) in path:
            raise ValueError("Circular reference detected")  # json.dumps's own words
        path = (*path, id(value))
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"dict key {key!r} is not a string (JSON objects have string keys)")
            string_keys(item, path)
    elif isinstance(value, (list, tuple)):
        for item in value:
            string_keys(item, path)


def serve(module_name, functions_by_key):
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        _, _, fn = functions_by_key.get(request["function"], (None, None, None))
        if fn is None:
            send({"ok": False, "error": {"type": "LookupError", "message": f"{module_name}: {request['function']} is not offered", "stackTrace": ""}})
            continue
        try:
            result = fn(*request.get("args", []), **request.get("kwargs", {}))
        except BaseException as e:  # noqa: BLE001 - every failure of the user's code is the job's failure
            send({"ok": False, "error": error(e)})
            continue
        try:
            string_keys(result)  # json.dumps would turn {1: 'a'} into {'1': 'a'} without a word
            encoded = json.dumps(result, allow_nan=False, separators=(",", ":"))  # NaN/Infinity are not JSON
            # Jobs:MaxResultBytes, sent with each call: a larger result is refused here, before it travels. The worker checks
            # again, exactly; this count (compact JSON, non-ASCII escaped) is never more than the worker's, so it refuses
            # nothing the worker would store.
            limit = request.get("maxResultBytes") or 0
            if limit and len(encoded) > limit:
                send({"ok": False, "error": {"type": "MaybeEncodingError", "stackTrace": "", "message":
                      f"Error sending result: its JSON is {len(encoded):,} bytes, more than the {limit:,} bytes "
                      "this service stores for one result (Jobs:MaxResultBytes). Return less, or store it elsewhere and return where."}})
                continue
            encoded = '{"ok":true,"result":' + encoded + "}"
        except (TypeError, ValueError, RecursionError) as e:
            # Pool's MaybeEncodingError: the function returned, but its result cannot travel back.
            send({"ok": False, "error": error(e, "MaybeEncodingError") | {
                "message": f"Error sending result: {result!r:.200}. Reason: {e}"}})
            continue
        PROTOCOL.write(encoded + "\n")
        PROTOCOL.flush()


def main(argv):
    command, path = argv[1], argv[2]
    exit_with_parent()
    sys.stdout = sys.stderr  # the user's print() must not corrupt the protocol
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
        return 0
    if module is not None and rest and rest[0]:
        initializer = getattr(module, rest[0])
        initializer(*(json.loads(rest[1]) if len(rest) > 1 else []))
    send({"ready": True})
    serve(name, functions)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
