"""Whether mimo's optional compiled core is in use.

mimo's per-item fast paths (``OutputPort.push``, ``InputPort.pop`` and
``async for`` over an ``InputPort``) have a C implementation,
``mimo._speedups``, built when mimo is installed on a machine with a C
compiler. It is used when it imports; the pure-Python code is the fallback,
with the same behaviour. Set the environment
variable ``MIMO_NO_EXTENSIONS=1`` (before mimo is imported) to use the
pure-Python code anyway.

``active`` is True when the compiled core is in use, and ``reason`` says which
core runs and why; ``mimo --version`` shows it too.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["active", "reason"]

#: True when the compiled core is in use.
active: bool = False
#: ``"compiled core"``, or ``"pure Python: "`` and why.
reason: str = "pure Python: mimo._ports is not imported yet"

# What the compiled core replaces, as each implementation gives it: the
# attributes set on the port classes and on mimo._ports (tests switch between them).
_pure: dict[tuple[Any, str], Any] = {}
_compiled: dict[tuple[Any, str], Any] = {}


def _disabled() -> bool:
    return os.environ.get("MIMO_NO_EXTENSIONS", "") not in ("", "0")


def _install(ports: Any, channel_cls: type, input_cls: type, output_cls: type, end: type[BaseException]) -> None:
    """Put the compiled fast paths on the port classes, unless turned off or not built.

    Called once, at the end of ``mimo._ports`` (the module ``ports``).
    """
    global active, reason
    _pure.update(
        {
            (output_cls, "push"): vars(output_cls)["push"],
            (input_cls, "__aiter__"): vars(input_cls)["__aiter__"],
            (input_cls, "pop"): vars(input_cls)["pop"],
            (ports, "_Pushed"): ports._Pushed,
        }
    )
    if _disabled():
        reason = "pure Python: MIMO_NO_EXTENSIONS is set"
        return
    why = _load(ports, channel_cls, input_cls, output_cls, end)
    if why is not None:
        reason = f"pure Python: {why}"
        return
    _use(_compiled)
    active = True
    reason = "compiled core"


def _load(ports: Any, channel_cls: type, input_cls: type, output_cls: type, end: type[BaseException]) -> str | None:
    """Fill ``_compiled`` from ``mimo._speedups``; None, or why it cannot be used."""
    if _compiled:
        return None
    try:
        from mimo import _speedups
    except ImportError:
        return "the compiled core is not built"
    from collections import deque

    # The Python methods the C code calls on its slow paths.
    wanted: dict[type, tuple[str, ...]] = {
        channel_cls: ("_wake_getter", "_room_freed"),
        output_cls: ("_not_awaited", "_push_slow"),
        input_cls: ("_pop_slow",),
    }
    missing = [f"{c.__name__}.{n}" for c, names in wanted.items() for n in names if not callable(getattr(c, n, None))]
    if missing:
        return f"the compiled core does not fit this mimo (no {', '.join(missing)})"
    try:
        push, aiter, pop = _speedups.setup(channel_cls, input_cls, output_cls, end, deque)
    except (TypeError, AttributeError) as exc:  # the classes' fields changed under the C code
        return f"the compiled core does not fit this mimo ({exc})"
    _compiled.update(
        {
            (output_cls, "push"): push,
            (input_cls, "__aiter__"): aiter,
            (input_cls, "pop"): pop,
            (ports, "_Pushed"): _speedups.Pushed,
        }
    )
    return None


def _use(implementation: dict[tuple[Any, str], Any]) -> None:
    """Set one implementation's attributes (ports made afterwards use its ``_Pushed``)."""
    for (owner, name), value in implementation.items():
        setattr(owner, name, value)
