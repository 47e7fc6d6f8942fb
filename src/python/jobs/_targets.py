"""What a function is called at the service: the name pickle gives it, and Pool's errors for what cannot be sent."""

from __future__ import annotations

import functools
import os
import pickle
import sys
import types
from typing import Any, Callable


def _lookup(owner: Any, qualname: str) -> Any:
    """What pickle finds for a qualified name: getattr along its dots (K.cm, K.Inner.sm); None when it finds nothing."""
    for part in qualname.split("."):
        owner = getattr(owner, part, None)
        if owner is None:
            return None
    return owner


# Pool's own errors for what cannot be sent (pickle's): the same type and wording, and TypeError as well.
_CannotPickleLocal = type("AttributeError", (AttributeError, TypeError), {"__module__": "jobs"})
_CannotPickle = type("PicklingError", (pickle.PicklingError, TypeError), {"__module__": "jobs"})
_WHERE = ("jobs: only top-level functions of a module the workers load (Python:Modules, the script itself included) "
          "or functions they import (Python:Imports) can be sent, as with Pool's pickling; or pass a registered function's name")


def _unsendable(kind: type, message: str) -> Exception:
    error = kind(message)
    error.add_note(_WHERE)  # shown under the traceback; str(e) stays Pool's
    return error


def _script_module() -> str | None:
    """The name the workers load this program under: the script's file name without .py (spawn's __mp_main__)."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)  # python3 -m package.module too: the workers load the file by its name
    return os.path.splitext(os.path.basename(path))[0] if path else None


def _target(func: Callable | str) -> tuple[str, list, dict]:
    """
    The function's name at the service and the arguments it comes with: (name, leading args, keyword args). A
    registered function's name as is; a Python function under the name pickle gives it, as ``py:module.qualname``:
    a function of the running script (``__main__``) under the script's module name, which the workers load;
    ``functools.partial`` as its function with its arguments; built-ins by their module (os.getpid is posix.getpid,
    str.upper is builtins.str.upper), served where the workers list them in Python:Imports; a classmethod or
    staticmethod by its module and qualified name (``py:module.K.cm``), which the workers offer for the public methods
    of a module's public classes — an inherited classmethod as the class that defines it (cls is that class; Pool's is
    the class it was taken from). A method bound to an instance cannot be sent (Pool pickles the instance with it).
    """
    if isinstance(func, str):
        return func, [], {}
    if isinstance(func, functools.partial):
        name, args, kwargs = _target(func.func)
        return name, [*args, *func.args], {**kwargs, **func.keywords}
    qualname = getattr(func, "__qualname__", None)
    owner = getattr(func, "__objclass__", None)  # a method of a built-in type: str.upper
    module = getattr(func, "__module__", None) or getattr(owner, "__module__", None)
    bound = getattr(func, "__self__", None)
    if bound is not None and not isinstance(bound, (types.ModuleType, type)):
        # Pool pickles a method bound to an instance with its instance; JSON cannot carry an instance.
        raise _unsendable(_CannotPickle, f"Can't pickle {func!r}: it is bound to an instance, which cannot be sent as JSON "
                                         "(a classmethod or staticmethod can be sent, as can a top-level function)")
    if isinstance(bound, type) and not module:  # a classmethod of a built-in type (dict.fromkeys)
        module = getattr(bound, "__module__", None)
    if not qualname or not module:
        raise _unsendable(_CannotPickle, f"Can't pickle {func!r}: it has no importable name")
    if "<locals>" in qualname:
        raise _unsendable(_CannotPickleLocal, f"Can't pickle local object {qualname!r}")
    if module == "__main__":
        found = _lookup(sys.modules["__main__"], qualname)
        if found is not func and not (isinstance(bound, type) and getattr(found, "__func__", None) is func.__func__):
            raise _unsendable(_CannotPickle, f"Can't pickle {func!r}: attribute lookup {qualname} on __main__ failed")
        module = _script_module()
        if module is None:
            raise _unsendable(_CannotPickle, f"Can't pickle {func!r}: it was defined interactively, not in a file the workers can load")
    return f"py:{module}.{qualname}", [], {}
