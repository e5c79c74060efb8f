"""Advanced: stages that run a sub-stream per item.

:func:`switch_map` follows only the newest item's sub-stream, abandoning the
one before (as ReactiveX's ``switchMap`` and aiostream's ``switchmap``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Awaitable, Callable
from typing import Any, TypeVar, overload

from mimo._checkpoint import position
from mimo.dsl import In, Out, StageStream, stream
from mimo.lib._calls import check_per_item, per_item
from mimo.lib._naming import fn_name, named

__all__ = ["switch_map"]

A = TypeVar("A")
B = TypeVar("B")


@stream(name="switch_map")
async def _switch_map(inp: In[Any], out: Out[Any], *, fn: Callable[[Any], Any]) -> None:
    call = per_item(fn)
    # A checkpointed run keeps the item followed and how many of its results were pushed,
    # so that a resumed run follows it again from there (fn must give the same results).
    pos = position()

    async def follow(item: Any, entry: list[Any] | None = None) -> None:
        results = await call(item)
        if not isinstance(results, AsyncIterable):
            raise TypeError(
                f"switch_map {inp.stream!r}: fn must return an async iterable (an async def with yield), "
                f"not {type(results).__name__}"
            )
        iterator = aiter(results)
        try:
            if entry is None:
                async for result in iterator:
                    await out.push(result)
            else:
                skip = entry[1]
                async for result in iterator:
                    if skip:
                        skip -= 1
                        continue
                    await out.push(result)
                    entry[1] += 1
                if pos is not None and pos.get("current") is entry:
                    del pos["current"]
        finally:
            # Abandoned, ended or failed: the sub-stream's own finally runs now.
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                await aclose()

    try:
        async with asyncio.TaskGroup() as group:
            current: asyncio.Task[None] | None = None
            if pos is not None and "current" in pos:  # resumed while following an item
                current = group.create_task(follow(pos["current"][0], pos["current"]))
            async for item in inp:
                entry = None
                if pos is not None:
                    entry = pos["current"] = [item, 0]
                if current is not None and not current.done():
                    current.cancel()
                    await asyncio.wait((current,))  # closed before the next one starts
                current = group.create_task(follow(item, entry))
    except BaseExceptionGroup as failed:
        if len(failed.exceptions) == 1:
            # One failure, as from any stream: its own type, not a group.
            raise failed.exceptions[0] from None
        raise


@overload
def switch_map(fn: Callable[[A], AsyncIterable[B]], *, name: str | None = None) -> StageStream[A, B]: ...
@overload
def switch_map(fn: Callable[[A], Awaitable[AsyncIterable[B]]], *, name: str | None = None) -> StageStream[A, B]: ...
def switch_map(fn: Callable[[A], Any], *, name: str | None = None) -> StageStream[A, Any]:
    """A stage that pushes the items of ``fn(item)`` for the newest item, abandoning older ones.

    ``fn(item)`` gives an async iterable (an ``async def`` with ``yield``,
    or an ``async def`` returning one). Its items are pushed until a newer
    item arrives on ``inp``: then it is abandoned — cancelled where it
    waits and closed (``aclose``, so its ``finally`` runs) — before the
    newer item's sub-stream starts. When the input ends, the last sub-stream
    runs to its end. An exception from ``fn`` or a sub-stream fails the run.
    Named after ``fn``.
    """
    check_per_item("switch_map", fn, many=True)
    return named(_switch_map(fn=fn), name, fn_name(fn, "switch_map"))
