"""Timing: stages that act on the time between items.

:func:`timeout` fails a run whose input falls silent; :func:`debounce` passes
on only the last item of each burst. Both read time from a clock: by
default the event loop's (monotonic), or one given as ``clock=`` — anything
with ``now()`` and ``async sleep(seconds)`` (:class:`~mimo.lib.Clock`), such
as :class:`~mimo.lib.ManualClock` in tests, which moves only when told, so a
test of "five seconds of quiet" takes no real seconds and gives the same
answer on a loaded machine::

    clock = lib.ManualClock()
    ...                             # in a test's source stream:
    await out.push(1)
    await clock.until_sleeping()    # the stage took 1 and waits for more
    clock.advance(5.0)              # five seconds of quiet, at once
"""

from __future__ import annotations

import asyncio
from typing import Any, Final, TypeVar

from mimo._checkpoint import position
from mimo._errors import EndOfStream, WouldBlock
from mimo._ports import InputPort, OutputPort
from mimo.dsl import In, Out, StageStream, stream
from mimo.lib._arguments import check_seconds
from mimo.lib._naming import named
from mimo.lib.windows import Clock, ManualClock

__all__ = ["Clock", "ManualClock", "debounce", "timeout"]

T = TypeVar("T")


class _LoopClock:
    """The event loop's clock: the default."""

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


#: The clock of a stage made without ``clock=``.
LOOP_CLOCK: Final = _LoopClock()

#: What :func:`_pop_by` gives when no item came before the deadline.
_NONE: Final = object()


def _check_clock(owner: str, clock: object) -> Clock:
    if clock is None:
        return LOOP_CLOCK
    if not isinstance(clock, Clock):
        raise TypeError(f"{owner}(): clock must have now() and sleep(seconds) (a ManualClock, say), not {clock!r}")
    return clock


async def _pop_by(inp: InputPort[Any], clock: Clock, deadline: float) -> tuple[Any, bool]:
    """``(item, due)``: the next item (``_NONE`` if none came) and whether ``deadline`` passed first.

    ``EndOfStream`` at the end. An item already buffered is taken at once,
    whatever the time: it has arrived. Otherwise the pop races the clock; an
    item that arrives as the deadline passes is given with ``due`` true,
    never lost.
    """
    try:
        return inp.pop_nowait(), False
    except WouldBlock:
        pass
    left = deadline - clock.now()
    if left <= 0:
        return _NONE, True
    if clock is LOOP_CLOCK:
        # One timed pop instead of two tasks: the common case, and never part of a deadlock.
        try:
            return await inp.pop(timeout=left), False
        except TimeoutError:
            return _NONE, True
    pop = asyncio.ensure_future(inp.pop())
    timer = asyncio.ensure_future(clock.sleep(left))
    try:
        await asyncio.wait((pop, timer), return_when=asyncio.FIRST_COMPLETED)
        due = timer.done()
    finally:
        timer.cancel()
        pop.cancel()  # a cancelled pop takes no item; one already done keeps its result
        await asyncio.wait((pop, timer))
    if due and not timer.cancelled() and timer.exception() is not None:
        raise timer.exception()  # type: ignore[misc]  # the clock itself failed
    if pop.cancelled():
        return _NONE, True
    return pop.result(), due  # the item, or EndOfStream


# -- timeout ---------------------------------------------------------------------


@stream(name="timeout")
async def _timeout(inp: In[Any], out: Out[Any], *, seconds: float, clock: Clock) -> None:
    while True:
        try:
            item, due = await _pop_by(inp, clock, clock.now() + seconds)
        except EndOfStream:
            return
        if due:
            raise TimeoutError(f"timeout {inp.stream!r}: no item on its input for {seconds:g} s")
        await out.push(item)


def timeout(seconds: float, *, clock: Clock | None = None, name: str | None = None) -> StageStream[T, T]:
    """A stage that passes items on unchanged, and fails the run if its input falls silent.

    If no item arrives for ``seconds`` while the stage waits for one (from
    its start, and after each item it has passed on), the run fails with a
    ``TimeoutError`` naming the stream. Time spent pushing to a slow consumer
    does not count: only the input's silence does. The end of the input ends
    the stage quietly. ``seconds`` is a finite number > 0; ``clock`` (see
    :class:`ManualClock`) replaces the event loop's clock.
    """
    seconds = check_seconds("timeout", "seconds", seconds)
    return named(_timeout(seconds=seconds, clock=_check_clock("timeout", clock)), name, "timeout")


# -- debounce --------------------------------------------------------------------


@stream(name="debounce")
async def _debounce(inp: In[Any], out: Out[Any], *, seconds: float, clock: Clock) -> None:
    if (pos := position()) is not None:
        await _debounce_kept(inp, out, seconds, clock, pos)
        return
    while True:
        try:
            pending = await inp.pop()  # no item waiting: nothing to time
        except EndOfStream:
            return
        deadline = clock.now() + seconds
        while True:
            try:
                item, due = await _pop_by(inp, clock, deadline)
            except EndOfStream:
                await out.push(pending)
                return
            if due:
                # Quiet for long enough: the burst ended before ``item`` (if any) came.
                await out.push(pending)
                if item is _NONE:
                    break
            pending = item
            deadline = clock.now() + seconds


async def _debounce_kept(inp: InputPort[Any], out: OutputPort[Any], seconds: float, clock: Clock, pos: Any) -> None:
    """``debounce`` in a checkpointed run: the item waiting is kept in ``pos["pending"]`` (empty or one item).

    A resumed run times it afresh from its start: time is not part of a checkpoint.
    """
    held: list[Any] = pos.setdefault("pending", [])
    while True:
        if not held:
            try:
                held.append(await inp.pop())
            except EndOfStream:
                return
        deadline = clock.now() + seconds
        while True:
            try:
                item, due = await _pop_by(inp, clock, deadline)
            except EndOfStream:
                await out.push(held[0])
                held.clear()
                return
            if due:
                await out.push(held[0])
                held.clear()
                if item is _NONE:
                    break
            held[:] = [item]
            deadline = clock.now() + seconds


def debounce(seconds: float, *, clock: Clock | None = None, name: str | None = None) -> StageStream[T, T]:
    """A stage that passes on an item only once ``seconds`` have passed with no newer one.

    Of each burst of items (items less than ``seconds`` apart) only the last
    is pushed, ``seconds`` after it arrived. When the input ends, the item
    still waiting is pushed at once. Items already queued when the stage
    looks count as arriving together, so a stage held back by its consumer
    keeps the newest. ``seconds`` is a finite number > 0; ``clock`` (see
    :class:`ManualClock`) replaces the event loop's clock.
    """
    seconds = check_seconds("debounce", "seconds", seconds)
    return named(_debounce(seconds=seconds, clock=_check_clock("debounce", clock)), name, "debounce")
