"""Sources: streams with one output, ``out``, and no input.

Each function returns a fresh typed stream (a :class:`~mimo.dsl.SourceStream`)
that starts a ``|`` chain: ``from_iterable(words) | map(str.upper) | collect()``.
"""

from __future__ import annotations

import asyncio
import builtins
import itertools
import os
from collections.abc import AsyncIterable, Iterable
from typing import IO, Any, TypeVar

from mimo._checkpoint import position
from mimo.dsl import Out, SourceStream, stream
from mimo.lib._checks import check_encoding, check_flag, check_path
from mimo.lib._files import open_text
from mimo.lib._naming import named

__all__ = ["file_lines", "from_async_iterable", "from_iterable", "range"]

T = TypeVar("T")

#: Lines read per trip to the worker thread: few trips, little memory.
_LINES_PER_READ = 256


@stream(name="from_iterable")
async def _from_iterable(out: Out[Any], *, items: Iterable[Any]) -> None:
    pos = position()
    if pos is None:
        for item in items:
            await out.push(item)
        return
    # Checkpointed: the count pushed is the position; a resumed run skips that many.
    for item in itertools.islice(items, pos.setdefault("next", 0), None):
        await out.push(item)
        pos["next"] += 1


def from_iterable(items: Iterable[T], *, name: str | None = None) -> SourceStream[T]:
    """A source that pushes every item of ``items``, in order, then ends.

    ``items`` is iterated afresh on every run, in the event loop: a list or a
    range gives the same items each time, while an iterator or generator is
    used up by the first run. Iterating must not block (for blocking reads use
    :func:`file_lines` or an async iterable). The stream ends early, quietly,
    once nobody downstream reads any more. ``items`` that is not iterable is
    a ``TypeError`` when the stream is made.
    """
    if not isinstance(items, Iterable) and not hasattr(type(items), "__getitem__"):
        hint = "; for an async iterable use from_async_iterable()" if isinstance(items, AsyncIterable) else ""
        raise TypeError(f"from_iterable(): items must be iterable, not {items!r}{hint}")
    return named(_from_iterable(items=items), name, "from_iterable")


@stream(name="from_async_iterable")
async def _from_async_iterable(out: Out[Any], *, items: AsyncIterable[Any]) -> None:
    iterator = aiter(items)
    pos = position()
    try:
        if pos is None:
            async for item in iterator:
                await out.push(item)
        else:
            # Checkpointed: the count pushed is the position; a resumed run skips that many.
            skip = pos.setdefault("next", 0)
            async for item in iterator:
                if skip:
                    skip -= 1
                    continue
                await out.push(item)
                pos["next"] += 1
    finally:
        # An async generator left suspended would only be closed at loop shutdown.
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()


def from_async_iterable(items: AsyncIterable[T], *, name: str | None = None) -> SourceStream[T]:
    """A source that pushes every item of the async iterable ``items``, then ends.

    Items are awaited one at a time and pushed with back-pressure, so a slow
    consumer slows the iteration. When the stream ends (at the end of
    ``items``, because nobody reads any more, or because the run fails) an
    async generator is closed (``aclose``), so its ``finally`` blocks run then.
    ``items`` that is not an async iterable is a ``TypeError`` when the stream
    is made.
    """
    if not isinstance(items, AsyncIterable):
        if isinstance(items, Iterable):
            hint = "; for a plain iterable use from_iterable()"
        elif callable(items):
            hint = "; call the async generator function to get one"
        else:
            hint = ""
        raise TypeError(f"from_async_iterable(): items must be an async iterable, not {items!r}{hint}")
    return named(_from_async_iterable(items=items), name, "from_async_iterable")


@stream(name="range")
async def _range(out: Out[int], *, start: int, stop: int, step: int) -> None:
    pos = position()
    if pos is None:
        for i in builtins.range(start, stop, step):
            await out.push(i)
        return
    for i in builtins.range(pos.get("next", start), stop, step):
        await out.push(i)
        pos["next"] = i + step  # after the push: a checkpoint taken at the next push counts this one


def range(start: int, stop: int | None = None, step: int = 1, *, name: str | None = None) -> SourceStream[int]:
    """A source of the integers of ``builtins.range(start, stop, step)``.

    ``range(5)`` pushes 0 to 4; ``range(2, 10, 3)`` pushes 2, 5, 8. The
    arguments are checked when the stream is made (``step=0`` is a
    ``ValueError`` here, not during the run).
    """
    if stop is None:
        start, stop = 0, start
    for arg, value in (("start", start), ("stop", stop), ("step", step)):
        if isinstance(value, bool):
            raise TypeError(f"range(): {arg} must be an int, not {value!r}")
    try:
        builtins.range(start, stop, step)  # the same checks as the builtin
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"range(): {exc}") from None
    return named(_range(start=start, stop=stop, step=step), name, "range")


@stream(name="file_lines")
async def _file_lines(
    out: Out[str],
    *,
    path: str | os.PathLike[str],
    encoding: str,
    keep_ends: bool,
) -> None:
    # File reads block, so they happen in a worker thread, many lines per trip.
    f = await open_text(path, "r", encoding)
    pos = position()
    try:
        if pos is not None:
            await _file_lines_from(f, out, pos, keep_ends)
            return
        while True:
            lines = await asyncio.to_thread(_read_lines, f, _LINES_PER_READ)
            if not lines:
                return
            for line in lines:
                await out.push(line if keep_ends else line.rstrip("\r\n"))
    finally:
        f.close()


async def _file_lines_from(f: IO[str], out: Out[str], pos: dict[str, Any], keep_ends: bool) -> None:
    # The position is the offset of a read's first line and how many of its lines were pushed.
    if "at" in pos:
        await asyncio.to_thread(f.seek, pos["at"])
        skip = pos["done"]
    else:
        skip = 0
    while True:
        at = await asyncio.to_thread(f.tell)
        lines = await asyncio.to_thread(_read_lines, f, _LINES_PER_READ)
        if not lines:
            return
        for j in builtins.range(skip, len(lines)):
            line = lines[j]
            await out.push(line if keep_ends else line.rstrip("\r\n"))
            pos["at"] = at
            pos["done"] = j + 1
        skip = 0


def _read_lines(f: IO[str], n: int) -> list[str]:
    lines = []
    for _ in builtins.range(n):
        line = f.readline()
        if not line:
            break
        lines.append(line)
    return lines


def file_lines(
    path: str | os.PathLike[str],
    *,
    encoding: str = "utf-8",
    keep_ends: bool = False,
    name: str | None = None,
) -> SourceStream[str]:
    """A source of the lines of the text file at ``path``, without their line endings.

    The file is opened when the run starts (a missing file fails the run with
    ``FileNotFoundError``) and closed when the stream ends, however it ends.
    Reading happens in a worker thread, a few hundred lines at a time, so the
    event loop never waits on the disk and memory stays bounded for a file of
    any size. ``keep_ends=True`` keeps each line's ``\\n``. ``path`` must be a
    file name (a ``str`` or ``os.PathLike``; not a file descriptor) and
    ``encoding`` a known codec, checked when the stream is made.
    """
    check_path("file_lines", path)
    check_encoding("file_lines", encoding)
    check_flag("file_lines", "keep_ends", keep_ends)
    return named(_file_lines(path=path, encoding=encoding, keep_ends=keep_ends), name, "file_lines")
