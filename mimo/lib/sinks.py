"""Sinks: streams with one input, ``inp``, and no output.

Each function returns a fresh typed stream (a :class:`~mimo.dsl.SinkStream`)
that ends a ``|`` chain, making it runnable:
``(from_iterable(words) | collect(found)).run()``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import IO, Any, Protocol, TypeVar, overload

from mimo._checkpoint import position
from mimo._errors import EndOfStream
from mimo.dsl import In, SinkStream, stream
from mimo.lib._calls import check_per_item, per_item
from mimo.lib._checks import check_encoding, check_flag, check_path, check_str
from mimo.lib._files import open_text
from mimo.lib._naming import fn_name, named

__all__ = ["Appendable", "collect", "for_each", "to_file"]

T = TypeVar("T")
T_contra = TypeVar("T_contra", contravariant=True)


class Appendable(Protocol[T_contra]):
    """What :func:`collect` writes to: anything with ``append(item)``, such as a ``list[T]``.

    Only written to, so a ``list[float]`` is an ``Appendable[int]``: a chain of
    ints collects into a list of floats or of objects.
    """

    def append(self, item: T_contra, /) -> object: ...


#: Most items taken off the queue at once (one list extend, one file write).
_CHUNK = 1024


@stream(name="collect")
async def _collect(inp: In[Any], *, into: Appendable[Any]) -> None:
    while True:
        try:
            items = await inp.pop_many(_CHUNK)
        except EndOfStream:
            return
        if isinstance(into, list):
            into.extend(items)
        else:
            for item in items:
                into.append(item)


@overload
def collect(*, name: str | None = None) -> SinkStream[Any]: ...
@overload
def collect(into: Appendable[T], *, name: str | None = None) -> SinkStream[T]: ...
def collect(into: Appendable[Any] | None = None, *, name: str | None = None) -> SinkStream[Any]:
    """A sink that appends every item it receives to a list, in order.

    The list is ``into`` if given (``collect(results)``), else a new one; it is
    also the stream's ``state``, so ``sink.state`` reads it after the run.
    Items are appended as they arrive, so the list can be watched during the
    run; each run appends to it (empty it yourself between runs if needed).
    ``into`` may be any :class:`Appendable` (a ``deque(maxlen=...)`` keeps the
    last items), and is only written to: ints collect into a ``list[float]``.
    """
    if into is None:
        into = []
    elif not callable(getattr(into, "append", None)):
        raise TypeError(f"collect() appends to a list (or anything with an append method), not to {into!r}")
    sink: SinkStream[Any] = named(_collect(into=into), name, "collect")
    sink.state = into
    return sink


@stream(name="for_each")
async def _for_each(inp: In[Any], *, fn: Callable[[Any], Any]) -> None:
    call = per_item(fn)
    async for item in inp:
        await call(item)


@overload
def for_each(fn: Callable[[T], Awaitable[object]], *, name: str | None = None) -> SinkStream[T]: ...
@overload
def for_each(fn: Callable[[T], object], *, name: str | None = None) -> SinkStream[T]: ...
def for_each(fn: Callable[[T], object], *, name: str | None = None) -> SinkStream[T]:
    """A sink that calls ``fn(item)`` for every item, one at a time, in order.

    ``fn`` may be plain or ``async`` (then each call is awaited before the
    next item is taken, so a slow callback back-pressures the producers); its
    result is ignored and an exception from it fails the run. The stream is
    called ``name``, by default after ``fn``.
    """
    check_per_item("for_each", fn)
    return named(_for_each(fn=fn), name, fn_name(fn, "for_each"))


@stream(name="to_file")
async def _to_file(
    inp: In[Any],
    *,
    path: str | os.PathLike[str],
    mode: str,
    encoding: str,
    end: str,
) -> None:
    # Opening, writing and closing block, so they happen in a worker thread.
    pos = position()
    resumed = pos is not None and "offset" in pos
    f = await open_text(path, "a" if resumed else mode, encoding)
    try:
        if pos is not None:
            # Checkpointed: the byte offset written so far is the position. A resumed
            # run cuts what was written after the checkpoint, so nothing is written twice.
            pos["offset"] = await asyncio.to_thread(_cut, f, pos["offset"] if resumed else None)
        while True:
            try:
                items = await inp.pop_many(_CHUNK)
            except EndOfStream:
                return
            text = "".join(f"{item}{end}" for item in items)
            if pos is None:
                await asyncio.to_thread(f.write, text)
            else:
                pos["offset"] = await asyncio.to_thread(_write_at, f, text)
    finally:
        await asyncio.to_thread(f.close)


def _cut(f: IO[str], offset: int | None) -> int:
    if offset is not None:
        f.truncate(offset)
        f.seek(0, os.SEEK_END)
    return f.tell()


def _write_at(f: IO[str], text: str) -> int:
    f.write(text)
    return f.tell()  # flushes: the bytes a checkpoint counts are in the file


def to_file(
    path: str | os.PathLike[str],
    *,
    append: bool = False,
    encoding: str = "utf-8",
    end: str = "\n",
    name: str | None = None,
) -> SinkStream[object]:
    """A sink that writes each item to the text file at ``path``, one per line.

    Each item is written as ``str(item)`` followed by ``end``. The file is
    created (or emptied; ``append=True`` adds to it) when the run starts, and
    closed, with everything written, when the stream ends, however it ends.
    Writes happen in a worker thread, up to a thousand items at a time, so the
    event loop never waits on the disk. ``path`` must be a file name (a
    ``str`` or ``os.PathLike``): a file descriptor is refused, since the
    stream closes what it opens (to write to stdout use ``for_each(print)``).
    The arguments are checked when the stream is made.
    """
    check_path("to_file", path)
    check_flag("to_file", "append", append)
    check_encoding("to_file", encoding)
    check_str("to_file", "end", end)
    mode = "a" if append else "w"
    return named(_to_file(path=path, mode=mode, encoding=encoding, end=end), name, "to_file")
