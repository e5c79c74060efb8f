"""The count check shared by the core: workers, capacities, sizes and limits."""

from __future__ import annotations

from typing import TypeGuard

#: Said of a capacity, where 0 is allowed: it means no queue.
ZERO_HANDS_OVER = " (0 hands items over directly)"


def is_count(value: object, least: int = 1) -> TypeGuard[int]:
    """True if ``value`` is an int (a bool is not) of at least ``least``."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def check_count(what: str, value: object, least: int = 1, *, note: str = "") -> int:
    """Return ``value`` if it is a count (see :func:`is_count`), else raise ``ValueError``.

    The message reads ``"<what> must be an int >= <least><note>, not <value!r>"``.
    """
    if is_count(value, least):
        return value
    raise ValueError(f"{what} must be an int >= {least}{note}, not {value!r}")
