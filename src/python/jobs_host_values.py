"""How jobs_host.py answers with values: results and exceptions as JSON (what JSON would change is refused), Pool's
MaybeEncodingError for a result that cannot travel back."""

import json
import traceback


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
