"""The errors the client raises: the service's refusals (JobsError) and the functions' own exceptions, raised here as
Pool raises them (RemoteError where this process does not have the remote class)."""

from __future__ import annotations

import builtins
import json
import multiprocessing.pool
import sys

from ._targets import _lookup, _script_module


class JobsError(Exception):
    """The service refused a request (problem+json): status, title and detail as it sent them."""

    def __init__(self, status: int, title: str, detail: str, problem: dict | None = None):
        super().__init__(f"{status} {title}: {detail}")
        self.status, self.title, self.detail, self.problem = status, title, detail, problem or {}


# Pool's own: the worker's traceback, the __cause__ of a remote exception (its .tb is the traceback's text).
RemoteTraceback = multiprocessing.pool.RemoteTraceback


class RemoteError(Exception):
    """
    The function raised in a worker, and this process does not have the remote exception's class (a .NET function's
    exception, a class of a module this process has not imported): the remote type's name, message and traceback.
    Where this process has the class — a built-in exception, or a class of a module it has imported (the module whose
    functions it sends) — the exception is raised as Pool raises it instead: that very class (``type(e) is KeyError``),
    rebuilt from the remote exception's args as pickle rebuilds it (``KeyError('key').args == ('key',)``), its
    ``__cause__`` a ``multiprocessing.pool.RemoteTraceback``; it also carries ``.type``, ``.message``, ``.traceback`` and
    ``.index`` (a map's item) as RemoteError does. A result that cannot travel back is ``jobs.MaybeEncodingError``: both
    Pool's ``multiprocessing.pool.MaybeEncodingError`` (``.exc``, ``.value``) and a RemoteError.
    """

    def __init__(self, type: str, message: str, traceback: str = "", index: int | None = None):
        where = "" if index is None else f" (item {index})"
        super().__init__(f"{type}: {message}{where}")
        self.type, self.message, self.traceback, self.index = type, message, traceback, index

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text}\n\nRemote traceback:\n{self.traceback}" if self.traceback else text

    @classmethod
    def from_error(cls, error: dict, index: int | None = None) -> Exception:
        """The exception to raise here for a stored error (a job's or item's ``error``, or a 424 problem)."""
        # A job's or item's error has "type"; a 424 problem (map().get()) has "exceptionType", and its "type" is the
        # problem's own URL, not the remote exception's.
        type_name = error.get("exceptionType") or error.get("type") or "Exception"
        message, traceback = error.get("message") or "", error.get("stackTrace") or ""
        # The remote exception's args, stored when JSON could carry them; otherwise it is rebuilt from its message.
        args = error.get("args") if isinstance(error.get("args"), list) else None
        if type_name == "MaybeEncodingError":
            e = MaybeEncodingError.__new__(MaybeEncodingError)
            # Pool's: exc and value are the reprs of the encoding error and of the result (the service's own refusals
            # of a result, which it cannot show, have the message as exc).
            e.exc, e.value = args if args is not None and len(args) == 2 else (message, "")
            e.args = (e.exc, e.value)
            RemoteError._describe(e, type_name, message, traceback, index)
            return e  # no __cause__: Pool's MaybeEncodingError has none either
        local = _as_local(type_name)
        if local is None:
            return cls(type_name, message, traceback, index)
        e = _rebuilt(local, args if args is not None else [message])
        RemoteError._describe(e, type_name, message, traceback, index)
        if traceback:
            e.__cause__ = RemoteTraceback('\n"""\n%s"""' % traceback)  # Pool's words (ExceptionWithTraceback)
        return e

    @staticmethod
    def _describe(e: BaseException, type_name: str, message: str, traceback: str, index: int | None) -> None:
        e.type, e.message, e.traceback, e.index = type_name, message, traceback, index


class MaybeEncodingError(multiprocessing.pool.MaybeEncodingError, RemoteError):
    """A result that cannot travel back as JSON: Pool's MaybeEncodingError (``.exc``, ``.value``: reprs of the reason and
    of the result), and a RemoteError (``.type``, ``.message``, ``.index``)."""

    def __str__(self) -> str:
        return self.message


_LOCAL_TYPES: dict = {}


def _as_local(type_name: str):
    """The remote type as a class of this process; None when this process does not have it."""
    if type_name in _LOCAL_TYPES:
        return _LOCAL_TYPES[type_name]
    module, _, name = type_name.rpartition(".")
    if module and module == _script_module():
        module = "__main__"  # the workers load this program as its module: its classes are here, in __main__
    # Never imports anything: only what this program has imported already (it sends that module's functions).
    found = getattr(builtins, name, None) if not module else _lookup(sys.modules.get(module), name)
    local = found if isinstance(found, type) and issubclass(found, Exception) and not issubclass(found, RemoteError) else None
    _LOCAL_TYPES[type_name] = local
    return local


def _rebuilt(cls: type, args: list) -> BaseException:
    """cls rebuilt from args as pickle rebuilds an exception (cls(*args)); a class whose __init__ wants other arguments
    (where unpickling fails in Pool) gets its args without __init__."""
    try:
        e = cls(*args)
    except Exception:  # noqa: BLE001 - the user's __init__, whatever it raises
        e = cls.__new__(cls)
        e.args = tuple(args)
    if not isinstance(e, cls):
        e = cls.__new__(cls)
        e.args = tuple(args)
    return e


def _refusal(status: int, reason: str, raw: bytes) -> JobsError:
    try:
        problem = json.loads(raw or b"{}")
    except ValueError:
        problem = {}
    return JobsError(status, problem.get("title", reason), problem.get("detail", ""), problem)
