"""Argument checks for the operators of :mod:`mimo.lib.select`, ``aggregate``, ``timing`` and the rest.

Everything is checked when the stream is made, and each message names the
operator (``owner``) and the argument, so a wrong argument fails at the line
that made the stream, never in the middle of a run.
"""

from __future__ import annotations

import math
from typing import Any


def check_count(owner: str, arg: str, value: Any, *, minimum: int = 0) -> int:
    """``value`` is an int (not a bool) >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{owner}(): {arg} must be an int >= {minimum}, not {value!r}")
    if value < minimum:
        raise ValueError(f"{owner}(): {arg} must be an int >= {minimum}, not {value!r}")
    return value


def check_seconds(owner: str, arg: str, value: Any) -> float:
    """``value`` is a finite number of seconds > 0 (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{owner}(): {arg} must be a number of seconds > 0, not {value!r}")
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{owner}(): {arg} must be a finite number of seconds > 0, not {value!r}")
    return float(value)


def check_callable(owner: str, arg: str, value: Any) -> None:
    """``value`` can be called (a plain or ``async`` function)."""
    if not callable(value):
        raise TypeError(f"{owner}(): {arg} must be a function (plain or async), not {value!r}")
