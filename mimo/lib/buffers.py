"""Buffers: a stage that holds items between a fast producer and a slow consumer.

:func:`buffer` keeps up to ``size`` items of its own and, once they are all
taken, does what its ``overflow`` strategy says (Akka Streams' strategies):
wait, drop the oldest, drop the newest, or fail the run.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Literal, TypeVar, get_args

from mimo._checkpoint import position
from mimo._runtime import run_together
from mimo.dsl import In, Out, StageStream, stream
from mimo.lib._arguments import check_count
from mimo.lib._naming import named

__all__ = ["Overflow", "buffer"]

T = TypeVar("T")

#: What a full buffer does with the next item.
Overflow = Literal["block", "drop_oldest", "drop_newest", "fail"]


@stream(name="buffer")
async def _buffer(inp: In[Any], out: Out[Any], *, size: int, overflow: str) -> None:
    # A checkpointed run keeps the items held, and the one being pushed, in its position:
    # a checkpoint is taken when the reader pops, whatever the writer is doing then.
    pos = position()
    items: deque[Any] = deque() if pos is None else pos.setdefault("items", deque())
    pushing: list[Any] = [] if pos is None else pos.setdefault("pushing", [])
    if pushing:  # resumed: the item being pushed at the cut left after it, if at all: again, first
        items.extendleft(reversed(pushing))
        pushing.clear()
    changed = asyncio.Event()  # set when an item is added or taken, or the input ends
    ended = False

    def wake() -> None:
        changed.set()

    async def wait() -> None:
        changed.clear()
        await changed.wait()

    async def read() -> None:
        nonlocal ended
        try:
            async for item in inp:
                if len(items) >= size:
                    if overflow == "block":
                        while len(items) >= size:
                            await wait()
                    elif overflow == "fail":
                        raise OverflowError(
                            f"buffer {inp.stream!r}: {size} items buffered and another came; "
                            'the consumer is too slow (overflow="fail")'
                        )
                    elif overflow == "drop_newest":
                        inp.discarded()  # counted in the run report's dropped
                        continue
                    else:
                        items.popleft()
                        inp.discarded()
                items.append(item)
                wake()
        finally:
            ended = True
            wake()

    async def write() -> None:
        while True:
            if items:
                item = items.popleft()
                wake()
                if pos is None:
                    await out.push(item)
                else:
                    pushing.append(item)
                    await out.push(item)
                    pushing.clear()
            elif ended:
                return
            else:
                await wait()

    try:
        await run_together(read(), write())
    except BaseExceptionGroup as failed:
        if len(failed.exceptions) == 1:
            raise failed.exceptions[0] from None  # its own type, as from any stream
        raise


def buffer(size: int, *, overflow: Overflow = "block", name: str | None = None) -> StageStream[T, T]:
    """A stage that holds up to ``size`` items, so its producer can run ahead of its consumer.

    What happens when ``size`` items are held and another arrives:

    - ``"block"``: the stage stops reading (back-pressure, as every join does).
    - ``"drop_oldest"``: the oldest held item is dropped for the new one.
    - ``"drop_newest"``: the new item is dropped.
    - ``"fail"``: the run fails with ``OverflowError`` naming the stream.

    With a dropping strategy the producer never waits. Dropped items are
    counted in the run report (``report[name].dropped["inp"]``). Items held
    when the input ends are all pushed; held items are lost if the run fails
    or nobody reads the output any more. ``size`` is an int >= 1.
    """
    check_count("buffer", "size", size, minimum=1)
    if overflow not in get_args(Overflow):
        raise ValueError(
            f"buffer(): overflow must be one of {', '.join(map(repr, get_args(Overflow)))}, not {overflow!r}"
        )
    return named(_buffer(size=size, overflow=overflow), name, "buffer")
