"""How stock streams are named and how their many-port forms name their ports."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from mimo._stream import Stream, check_port_names

S = TypeVar("S", bound=Stream)


def named(stream: S, name: str | None, default: str) -> S:
    """Give ``stream`` (a fresh copy) its name.

    A name the user gives is explicit (a clash in one graph is an error); a
    default one is suffixed in a graph where it is taken, so that
    ``nums | map(f) | map(f)`` is two stages called ``f`` and ``f_2``.
    """
    if name is not None and not isinstance(name, str):
        raise TypeError(f"stream name must be a str, not {name!r}")
    stream.name = name or default
    stream.named = name is not None
    return stream


def fn_name(fn: Callable[..., Any], default: str) -> str:
    """``fn``'s own name when it has a usable one (not a lambda), else ``default``."""
    name = getattr(fn, "__name__", None)
    if isinstance(name, str) and name.isidentifier():
        return name
    return default


def port_names(owner: str, kind: str, spec: int | Sequence[str], prefix: str) -> list[str]:
    """``n`` ports called ``prefix0``.. ``prefix{n-1}``, or the names given, checked."""
    if isinstance(spec, bool) or (isinstance(spec, int) and spec < 1):
        raise ValueError(f"{owner}: needs at least one {kind} port, not {spec!r}")
    names = [f"{prefix}{i}" for i in range(spec)] if isinstance(spec, int) else list(spec)
    if not names:
        raise ValueError(f"{owner}: needs at least one {kind} port")
    return list(check_port_names(owner, kind, names))
