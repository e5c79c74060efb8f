"""Timing: stages that act on the time between items.

:func:`timeout` fails a run whose input falls silent; :func:`debounce` passes
on only the last item of each burst. Both read time from a :class:`Clock`:
by default the event loop's, or one given as ``clock=`` — a
:class:`ManualClock` in tests, which moves only when told, so a test of
"five seconds of quiet" takes no real seconds and gives the same answer on
a loaded machine.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final, Protocol, TypeVar, runtime_checkable

from mimo._errors import EndOfStream, WouldBlock
from mimo._ports import InputPort
from mimo.dsl import In, Out, StageStream, stream
from mimo.lib._arguments import check_seconds
from mimo.lib._naming import named

__all__ = ["Clock", "ManualClock", "debounce", "timeout"]

T = TypeVar("T")


@runtime_checkable
class Clock(Protocol):
    """Where a timed stage reads the time and waits: ``now()`` in seconds, ``await sleep(seconds)``.

    Any object with these two methods will do (``mimo.lib.windows``' clocks too).
    """

    def now(self) -> float:
        """The current time, in seconds from any fixed point."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Return once ``seconds`` have passed on this clock; cancellable."""
        ...


class ManualClock:
    """A clock for tests: time stands still until :meth:`advance` (or :meth:`set`) moves it.

    A ``sleep`` on it returns once the clock has been moved past its end, so
    a test of "five seconds of quiet" takes no real seconds and gives the
    same answer on a loaded machine. :meth:`until_sleeping` lets a test move
    time exactly when a stage has taken what it was given and waits::

        await out.push(1)               # in a test's source stream
        await clock.until_sleeping()    # the stage took 1 and waits for more
        clock.advance(5.0)              # five seconds of quiet, at once

    Use it from the event loop that runs the workflow.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []
        self._begun = 0  # sleeps begun so far
        self._watchers: list[asyncio.Future[None]] = []

    def now(self) -> float:
        """The clock's time: ``start`` moved by every ``advance`` and ``set``."""
        return self._now

    def set(self, when: float) -> None:
        """Move the clock to ``when`` (never back) and wake the sleeps now over."""
        if isinstance(when, bool) or not isinstance(when, int | float) or not when >= self._now:
            raise ValueError(f"ManualClock.set: the clock is at {self._now} and never goes back, not to {when!r}")
        self._now = float(when)
        for due, fut in self._sleepers:
            if due <= self._now and not fut.done():
                fut.set_result(None)

    def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` (a number >= 0) forward and wake the sleeps now over."""
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds >= 0:
            raise ValueError(f"ManualClock.advance: seconds must be a number >= 0, not {seconds!r}")
        self.set(self._now + seconds)

    @property
    def sleeping(self) -> int:
        """How many sleeps on this clock are waiting now."""
        return sum(1 for _, fut in self._sleepers if not fut.done())

    async def sleep(self, seconds: float) -> None:
        """Wait until the clock has been moved ``seconds`` past its reading now (``<= 0``: at once)."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        entry = (self._now + seconds, asyncio.get_running_loop().create_future())
        self._sleepers.append(entry)
        self._begun += 1
        for watcher in self._watchers:
            if not watcher.done():
                watcher.set_result(None)
        self._watchers.clear()
        try:
            await entry[1]
        finally:
            self._sleepers.remove(entry)

    async def until_sleeping(self) -> None:
        """Wait until a sleep on this clock begins after this call."""
        begun = self._begun
        while self._begun == begun:
            watcher: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._watchers.append(watcher)
            await watcher

    def __repr__(self) -> str:
        return f"ManualClock(now={self._now})"


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
    if pop.cancelled():
        return _NONE, True
    return pop.result(), due  # the item, or EndOfStream


# -- timeout ---------------------------------------------------------------------


@stream(name="timeout")
async def _timeout(inp: In[Any], out: Out[Any], *, seconds: float = 1.0, clock: Clock = LOOP_CLOCK) -> None:
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
async def _debounce(inp: In[Any], out: Out[Any], *, seconds: float = 1.0, clock: Clock = LOOP_CLOCK) -> None:
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
