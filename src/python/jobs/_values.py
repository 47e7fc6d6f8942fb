"""Values as they travel: JSON request bodies (what JSON cannot carry is refused before anything is sent), and tuples
marked by JSON Pointers so that they arrive as tuples."""

from __future__ import annotations

import json
import pickle
from typing import Any


def _json(body: Any) -> bytes:
    """The request body; what JSON cannot carry is refused here, before anything is sent, as Pool refuses what it cannot pickle."""
    try:
        _string_keys(body)
        return json.dumps(body, allow_nan=False, default=_not_json).encode()
    except ValueError as e:
        if "Circular" in str(e):
            raise ValueError("Circular reference detected: a value that contains itself cannot be sent as JSON") from None
        raise ValueError("NaN and Infinity cannot be sent to the service: JSON has no such numbers "
                         "(send None, or a string, and convert in the function)") from None
    except TypeError as e:
        raise TypeError(f"{e}: arguments go to the service as JSON (numbers, strings, booleans, None, lists, dicts "
                        "with string keys, tuples)") from None


def _not_json(value: Any) -> None:
    """A value JSON cannot carry: first what Pool would do with it — pickle it, so an object whose pickling fails raises
    its own error, as under Pool — then the refusal, since even a picklable object does not travel as JSON."""
    pickle.dumps(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _string_keys(value: Any, path: tuple = ()) -> None:
    """JSON objects have string keys: json.dumps would silently turn {1: 'a'} into {'1': 'a'}; refused instead."""
    if isinstance(value, (dict, list, tuple)):
        if id(value) in path:
            raise ValueError("Circular reference detected")  # json.dumps's own words
        path = (*path, id(value))
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"dict key {key!r} is not a string, and would arrive as {json.dumps(str(key))}")
            _string_keys(item, path)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _string_keys(item, path)


def _tuple_pointers(value: Any, pointer: str = "", found: list | None = None) -> list:
    """The JSON Pointers (RFC 6901) of the tuples in value: JSON has arrays only, so a tuple travels as an array and
    its place beside it, for the Python worker (or this client) to make it a tuple again. REST clients see arrays."""
    found = [] if found is None else found
    if isinstance(value, tuple):
        found.append(pointer)
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _tuple_pointers(item, f"{pointer}/{index}", found)
    elif isinstance(value, dict):
        for key, item in value.items():
            _tuple_pointers(item, pointer + "/" + str(key).replace("~", "~0").replace("/", "~1"), found)
    return found


def _with_tuples(value: Any, pointers: list | None) -> Any:
    """value (decoded JSON) with the arrays at pointers made the tuples they were, the deepest first."""
    for pointer in sorted(pointers or (), key=lambda p: p.count("/"), reverse=True):
        keys = [key.replace("~1", "/").replace("~0", "~") for key in pointer.split("/")[1:]]
        if not keys:
            value = tuple(value)
            continue
        parent = value
        for key in keys[:-1]:
            parent = parent[int(key) if isinstance(parent, (list, tuple)) else key]
        key = int(keys[-1]) if isinstance(parent, list) else keys[-1]
        parent[key] = tuple(parent[key])
    return value
