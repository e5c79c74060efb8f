"""Making a re-exported class or function say which public module it belongs to."""

from __future__ import annotations

import sys
from typing import Any


def publish(value: Any, module: str) -> None:
    """Make ``value`` report ``module`` (``mimo.EndOfStream``, not ``mimo._errors.EndOfStream``).

    Reprs, tracebacks and pickles then use the public name, which must resolve
    in ``module``, so that pickling by reference (as Ray does with a stream's
    exception) still works.
    """
    if value.__module__ == module:
        return
    if isinstance(value, type):
        # typing.get_type_hints evaluates a class's string annotations among the
        # names of its __module__: evaluate them now, among those of their own module.
        own = value.__dict__.get("__annotations__", {})  # noqa: RUF063 (changed in place)
        home = vars(sys.modules[value.__module__])
        for key, annotation in list(own.items()):
            if isinstance(annotation, str):
                try:
                    own[key] = eval(annotation, home, dict(vars(value)))
                except Exception:  # a name imported only for type checkers: left as it was
                    pass
    value.__module__ = module
