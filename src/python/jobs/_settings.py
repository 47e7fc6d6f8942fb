"""Pool's initializer, initargs and maxtasksperchild, which are the workers' settings: checked, not sent."""

from __future__ import annotations

import json
import urllib.parse
import warnings

from ._errors import JobsError
from ._http import _Client
from ._targets import _target
from ._values import _json


class _WorkerSettings:
    """
    A pool's initializer, initargs and maxtasksperchild. They act on worker processes: here, the workers' python3
    processes, set per module in the workers' settings. The pool checks the workers run its module with these before
    it sends any work.
    """

    def __init__(self, initializer, initargs, maxtasksperchild):
        self._settings = None
        if initializer is not None or initargs or maxtasksperchild is not None:
            self._settings = {"initializer": None if initializer is None else _target(initializer)[0],
                              "initargs": json.loads(_json(list(initargs))), "maxtasksperchild": maxtasksperchild}
        self._checked: dict = {}

    def check(self, client: _Client, name: str) -> None:
        """With initializer/initargs/maxtasksperchild: the workers must run name's module with them (once per module)."""
        if self._settings is None:
            return
        module = name[3:].rpartition(".")[0] if name.startswith("py:") else None
        if module not in self._checked:
            self._checked[module] = self._problem(client, name, module)
        if self._checked[module]:
            raise TypeError(self._checked[module] + ": initializer, initargs and maxtasksperchild run in the service's worker "
                            "processes — set them for the module in the workers' settings (Python:Modules:N:Initializer, "
                            "InitArgs, MaxTasksPerChild) and pass the same here, or leave them out here")

    def _problem(self, client: _Client, name: str, module: str | None) -> str | None:
        wanted = dict(self._settings)
        if wanted["initializer"] is not None:
            init_module, _, init_name = wanted["initializer"][3:].rpartition(".")
            if init_module != module:
                return f"initializer {wanted['initializer'][3:]} is not a function of {module or name}'s module"
            wanted["initializer"] = init_name
        try:
            _, function = client.request("GET", f"/functions/{urllib.parse.quote(name, safe='')}")
        except JobsError:
            return None  # unknown: the submission itself is refused with the service's words
        running = function.get("python") or {"initializer": None, "initargs": [], "maxtasksperchild": None}
        if running == wanted:
            return None
        if {**running, "maxtasksperchild": None} == {**wanted, "maxtasksperchild": None}:
            # Only how often a worker process is replaced differs, not what a call computes: said, not refused (Pool's
            # own tests of maxtasksperchild check results; no process of this pool is there to count its tasks).
            warnings.warn(f"maxtasksperchild={wanted['maxtasksperchild']!r}: the workers replace the processes running "
                          f"{module or name} after {running['maxtasksperchild'] or 'no fixed number of'} calls "
                          "(Python:Modules:N:MaxTasksPerChild), not this pool", RuntimeWarning, stacklevel=5)
            return None
        return (f"this pool's initializer={wanted['initializer']!r}, initargs={wanted['initargs']!r}, "
                f"maxtasksperchild={wanted['maxtasksperchild']!r} are not what the workers run {module or name} with "
                f"({running!r})")
