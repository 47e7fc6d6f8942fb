"""What jobs_host.py offers: a module's public functions, or those the operator lists (Python:Imports), described with
their signatures."""

import importlib.util
import inspect
import json
import os
import sys


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
