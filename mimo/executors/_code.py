"""Which of a stream's modules go to the workers by value, not by reference.

Ray pickles a stream with cloudpickle, which names functions and classes by
module and qualified name when their module is importable here; a worker then
imports that module. That fails for a module only this process can import: a
test module pytest put on ``sys.path``, a script that extended ``sys.path``
itself, a notebook. Those modules are sent by value instead (their functions
and classes travel as code). A module counts as importable on the workers
when a fresh Python of this installation would import it from the same file:
the standard library, installed packages (editable ones included, by their
``.pth`` path or import hook), ``PYTHONPATH``. The nodes of a cluster are
assumed to have the same installation, as Ray requires anyway.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import pickletools
import subprocess
import sys
import types
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

#: Rounds of "pickle, find modules, register them by value, pickle again".
_ROUNDS = 8


@functools.cache
def _fresh_path() -> tuple[str, ...]:
    """``sys.path`` of a fresh interpreter of this installation, without its script directory."""
    try:
        out = subprocess.run(
            [sys.executable, "-c", "import json, sys; print(json.dumps(sys.path[1:]))"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        paths = json.loads(out)
    except (OSError, subprocess.SubprocessError, ValueError):
        # Without a second interpreter, what site set up here is the best guess.
        paths = [p for p in sys.path if p and ("site-packages" in p or p.startswith(sys.base_prefix))]
    return tuple(os.path.realpath(p) for p in paths if p)


def _hook_finds(top: str) -> bool:
    """True if an editable install's import hook (installed in site-packages) finds ``top``."""
    for finder in sys.meta_path:
        owner = type(finder).__module__
        if owner.startswith(("__editable__", "_editable_impl")):
            find: Callable[..., Any] | None = getattr(finder, "find_spec", None)
            try:
                if find is not None and find(top, None) is not None:
                    return True
            except Exception:
                continue
    return False


def importable_elsewhere(module: types.ModuleType) -> bool:
    """True if a fresh interpreter of this installation would import ``module`` from the same file."""
    name = module.__name__
    if name in ("__main__", "__mp_main__"):
        return False
    spec = getattr(module, "__spec__", None)
    origin = getattr(spec, "origin", None)
    if name in sys.builtin_module_names or origin in ("built-in", "frozen"):
        return True
    file = getattr(module, "__file__", None)
    if not isinstance(file, str):
        # A namespace package or a module made in memory: judge by its top-level package.
        top = name.partition(".")[0]
        return top != name and top in sys.modules and importable_elsewhere(sys.modules[top])
    if _hook_finds(name.partition(".")[0]):
        return True
    real = os.path.realpath(file)
    for entry in _fresh_path():
        rel = os.path.relpath(real, entry)
        if rel.startswith(os.pardir + os.sep) or os.path.isabs(rel):
            continue
        parts = rel.split(os.sep)
        parts[-1] = parts[-1].partition(".")[0]  # mod.py, mod.cpython-311-x86_64-linux-gnu.so
        if parts[-1] == "__init__":
            parts.pop()
        if ".".join(parts) == name:
            return True
    return False


def _named_modules(blob: bytes) -> set[str]:
    """Names of loaded modules that a pickle mentions (the modules its loading would import)."""
    found: set[str] = set()
    for op, arg, _ in pickletools.genops(blob):
        if isinstance(arg, str):
            # GLOBAL's argument is "module name"; STACK_GLOBAL and cloudpickle's
            # subimport take the module's name as a plain string.
            for word in (arg, arg.partition(" ")[0]) if op.name == "GLOBAL" else (arg,):
                if word in sys.modules:
                    found.add(word)
    return found


def by_value(objects: Iterable[Any], dumps: Callable[[Any], bytes]) -> set[str]:
    """The modules to register by value so that ``objects`` load where only installed code is."""
    objects = list(objects)
    chosen: set[str] = set()
    checked: set[str] = set()
    for _ in range(_ROUNDS):
        with _registered(chosen):
            named = set().union(*(_named_modules(dumps(obj)) for obj in objects)) if objects else set()
        # cloudpickle sends __main__ by value by itself.
        new = {
            m
            for m in named - checked
            if m not in ("__main__", "__mp_main__") and isinstance(sys.modules.get(m), types.ModuleType)
        }
        checked |= named
        more = {m for m in new if not importable_elsewhere(sys.modules[m])}
        if not more:
            break
        chosen |= more
    return chosen


@contextmanager
def _registered(names: Iterable[str]) -> Iterator[None]:
    cp: Any = importlib.import_module("ray.cloudpickle")
    added = []
    try:
        for name in names:
            module = sys.modules.get(name)
            if isinstance(module, types.ModuleType) and name not in cp.list_registry_pickle_by_value():
                cp.register_pickle_by_value(module)
                added.append(module)
        yield
    finally:
        for module in added:
            if module.__name__ in cp.list_registry_pickle_by_value():
                cp.unregister_pickle_by_value(module)


def sent_by_value(names: Iterable[str]) -> Any:
    """A context in which Ray's cloudpickle sends ``names`` by value (restored after)."""
    return _registered(names)
