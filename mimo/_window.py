"""The window a windowing stage pushes (see :mod:`mimo.lib.windows`): plain data, importable without the DSL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

__all__ = ["Window"]

T_co = TypeVar("T_co", covariant=True)


@dataclass(frozen=True, slots=True)
class Window(Generic[T_co]):
    """A closed window: its ``key`` (``None`` without ``key=``), its span ``[start, end)`` and its items.

    ``items`` is a tuple, in arrival order. For a session, ``start`` is its
    first item's time and ``end`` its last item's time plus the gap.
    """

    key: Any
    start: float
    end: float
    items: tuple[T_co, ...]
