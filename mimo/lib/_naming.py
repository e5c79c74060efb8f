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
    if name is not None and (not isinstance(name, str) or not name):
        raise TypeError(f"stream {default!r}: name must be a non-empty str, not {name!r}")
    stream.name = name or default
    stream.named = name is not None
    return stream


def fn_name(fn: Callable[..., Any], default: str) -> str:
    """``fn``'s own name when it has a usable one (not a lambda), else ``default``."""
    name = getattr(fn, "__name__", None)
    if isinstance(name, str) and name.isidentifier():
        return name
    return default


def port_names(
    owner: str, kind: str, spec: int | Sequence[str], prefix: str, *, none_why: str | None = None
) -> list[str]:
    """``n`` ports called ``prefix0``.. ``prefix{n-1}``, or the names given, checked.

    No ports (``0`` or ``[]``) is allowed unless ``none_why`` says why not.
    """
    if isinstance(spec, bool) or not isinstance(spec, int | list | tuple):
        raise TypeError(
            f"{owner}: {kind}s must be a count or a list of port names, not {spec!r}"
            + (" (a string is one name: put it in a list)" if isinstance(spec, str) else "")
        )
    if isinstance(spec, int) and spec < 0:
        raise ValueError(f"{owner}: the number of {kind}s must be >= 0, not {spec!r}")
    names = [f"{prefix}{i}" for i in range(spec)] if isinstance(spec, int) else list(spec)
    if not names and none_why is not None:
        raise ValueError(f"{owner}: needs at least one {kind} port, not {spec!r}: {none_why}")
    return list(check_port_names(owner, kind, names))


K = TypeVar("K", bound=Stream)


def as_kind(cls: type[K], stream: Stream) -> K:
    """``stream`` (a fresh copy) as an instance of ``cls``, a subclass of its class with extra typed attributes."""
    new = object.__new__(cls)
    new.__dict__.update(stream.__dict__)
    return new
