"""Windows: group a stream's items by time into :class:`Window` objects.

Three shapes, as in Flink and bytewax:

* :func:`tumbling`: back-to-back windows ``[k*size, (k+1)*size)``;
* :func:`sliding`: windows of ``size`` starting every ``every`` seconds,
  so an item is in ``ceil(size / every)`` or so of them;
* :func:`session`: a window per burst of items, closed after ``gap`` seconds
  without one.

**Processing time** (the default): an item's time is the clock's reading when
the stage takes it, so nothing is ever late; a timer closes a window when its
end passes, even if no item comes. The stage has one output, ``out``, and is
typed: ``lib.range(10) | lib.tumbling(3.0)`` gives ``Window[int]``.

**Event time** (``timestamp=fn``): an item's time is ``fn(item)``. The
*watermark* is the latest timestamp seen minus ``allowed_lateness``; a window
closes once the watermark reaches its end. An item whose timestamp is below
the watermark is *late*: it goes, unchanged, to a second output, ``late``,
never into a window and never silently away (the run report counts it under
``late`` even if nothing is joined there). With two outputs, the stage is
joined by port name: ``flow.out['out'] >> ...``, ``flow.out['late'] >> ...``.

With ``key=fn``, each key has its own windows (``Window.key``); without,
``key`` is ``None``. Every open window is pushed when the input ends; nothing
is pushed for a cancelled or failed run. Windows that close together are
pushed in order of their end, then start. Items in a window keep their
arrival order.

Tests replace the clock (``clock=ManualClock()``) so that no test sleeps.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import time
from collections.abc import Callable, Hashable
from typing import Any, Protocol, TypeVar, overload, runtime_checkable

from mimo._checkpoint import position
from mimo._errors import EndOfStream, WouldBlock
from mimo._ports import InputPort
from mimo._window import Window
from mimo.dsl import In, Out, PortStream, StageStream, stream
from mimo.lib._naming import named

__all__ = ["Clock", "ManualClock", "SystemClock", "Window", "session", "sliding", "tumbling"]

T = TypeVar("T")


# -- clocks ------------------------------------------------------------------------


@runtime_checkable
class Clock(Protocol):
    """Where a processing-time window reads the time and waits for it."""

    def now(self) -> float:
        """The time now, in seconds."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Return once ``seconds`` have passed on this clock."""
        ...


class SystemClock:
    """The wall clock (``time.time``), so that windows start at round times; the default."""

    def now(self) -> float:
        """Seconds since the epoch."""
        return time.time()

    async def sleep(self, seconds: float) -> None:
        """An ``asyncio.sleep``."""
        await asyncio.sleep(max(seconds, 0.0))

    def __repr__(self) -> str:
        return "SystemClock()"


class ManualClock:
    """A clock that moves only when told to (:meth:`advance`, :meth:`set`): for tests.

    A ``sleep`` on it returns once the clock has been moved past its end, so a
    test decides exactly when a window's time is up and never sleeps for real.
    Use it from the event loop that runs the workflow.
    """

    def __init__(self, start: float = 0.0) -> None:
        _check_seconds("ManualClock", "start", start, allow_negative=True)
        self._now = float(start)
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._count = 0
        self._changed: asyncio.Event | None = None

    def now(self) -> float:
        """The time this clock was set to."""
        return self._now

    def set(self, when: float) -> None:
        """Move the clock to ``when`` (never back) and wake every sleep that is over."""
        _check_seconds("ManualClock.set", "when", when, allow_negative=True)
        if when < self._now:
            raise ValueError(f"ManualClock.set: the clock is at {self._now}; it never goes back (to {when})")
        self._now = float(when)
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)

    def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` forward (see :meth:`set`)."""
        _check_seconds("ManualClock.advance", "seconds", seconds)
        self.set(self._now + seconds)

    @property
    def sleeping(self) -> int:
        """How many sleeps on this clock are waiting now."""
        return sum(1 for _, _, fut in self._sleepers if not fut.done())

    async def sleep(self, seconds: float) -> None:
        """Wait until the clock has been moved ``seconds`` past its reading now."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._count += 1
        heapq.heappush(self._sleepers, (self._now + seconds, self._count, fut))
        if self._changed is not None:
            self._changed.set()
            self._changed = None
        try:
            await fut
        finally:
            fut.cancel()
            self._sleepers = [s for s in self._sleepers if not s[2].done()]
            heapq.heapify(self._sleepers)

    async def until_sleeping(self) -> None:
        """Wait until a task begins a sleep on this clock after this call.

        A test that feeds a processing-time stage awaits it after a push: the
        stage has then taken the item, at the time the clock shows, and waits
        for its next deadline, so the clock may move on.
        """
        seen = self._count
        while self._count == seen:
            if self._changed is None:
                self._changed = asyncio.Event()
            await self._changed.wait()

    def __repr__(self) -> str:
        return f"ManualClock(now={self._now})"


# -- which windows an item belongs to --------------------------------------------


class _Open:
    """A window still taking items."""

    __slots__ = ("key", "start", "last", "end", "items", "alive")

    def __init__(self, key: Any, start: float, last: float, end: float) -> None:
        self.key = key
        self.start = start
        self.last = last
        self.end = end
        self.items: list[tuple[int, Any]] = []  # (arrival number, item)
        self.alive = True

    def close(self) -> Window[Any]:
        self.alive = False
        return Window(self.key, self.start, self.end, tuple(item for _, item in self.items))


class _Windows:
    """The open windows of one run, by key; closes those whose end the time reaches."""

    def __init__(self) -> None:
        # (end, start, order, window): the order breaks ties without comparing keys.
        self._heap: list[tuple[float, float, int, _Open]] = []
        self._order = 0

    def _schedule(self, w: _Open) -> None:
        self._order += 1
        heapq.heappush(self._heap, (w.end, w.start, self._order, w))

    def add(self, key: Any, t: float, seq: int, item: Any) -> None:
        raise NotImplementedError

    def _forget(self, w: _Open) -> None:
        raise NotImplementedError

    def next_end(self) -> float | None:
        """When the next window closes, or None with none open."""
        heap = self._heap
        while heap and (not heap[0][3].alive or heap[0][3].end != heap[0][0]):
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def due(self, now: float) -> list[Window[Any]]:
        """Close and return every window whose end is at or before ``now``, in order."""
        closed = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            end, _, _, w = heapq.heappop(heap)
            if w.alive and w.end == end:
                self._forget(w)
                closed.append(w.close())
        return closed


class _Fixed(_Windows):
    """Tumbling (``every == size``) and sliding windows: ``[k*every, k*every + size)``."""

    def __init__(self, size: float, every: float) -> None:
        super().__init__()
        self.size = size
        self.every = every
        self._open: dict[tuple[Any, float], _Open] = {}

    def spans(self, t: float) -> list[tuple[float, float]]:
        """The windows holding time ``t``, earliest first (shared with the tests' model)."""
        return spans(t, self.size, self.every)

    def add(self, key: Any, t: float, seq: int, item: Any) -> None:
        for start, end in self.spans(t):
            w = self._open.get((key, start))
            if w is None:
                w = self._open[(key, start)] = _Open(key, start, start, end)
                self._schedule(w)
            w.items.append((seq, item))

    def _forget(self, w: _Open) -> None:
        del self._open[(w.key, w.start)]


def spans(t: float, size: float, every: float) -> list[tuple[float, float]]:
    """``[start, end)`` of every window ``[k*every, k*every + size)`` that holds ``t``, earliest first."""
    k = math.floor(t / every)
    # Float division may be one off either way: settle k by the same products the spans use.
    while k * every > t:
        k -= 1
    while (k + 1) * every <= t:
        k += 1
    found = []
    while k * every + size > t:
        found.append((k * every, k * every + size))
        k -= 1
    found.reverse()
    return found


class _Sessions(_Windows):
    """Session windows: items less than ``gap`` apart share one; a window may merge two."""

    def __init__(self, gap: float) -> None:
        super().__init__()
        self.gap = gap
        self._open: dict[Any, list[_Open]] = {}

    def add(self, key: Any, t: float, seq: int, item: Any) -> None:
        gap = self.gap
        mine = self._open.setdefault(key, [])
        near = [w for w in mine if w.start - gap < t < w.last + gap]
        merged = _Open(key, min([t, *(w.start for w in near)]), max([t, *(w.last for w in near)]), 0.0)
        merged.end = merged.last + gap
        for w in near:
            w.alive = False
            mine.remove(w)
            merged.items.extend(w.items)
        merged.items.append((seq, item))
        if len(near) > 1:
            merged.items.sort(key=lambda pair: pair[0])
        mine.append(merged)
        self._schedule(merged)

    def _forget(self, w: _Open) -> None:
        mine = self._open[w.key]
        mine.remove(w)
        if not mine:
            del self._open[w.key]


# -- the stages ------------------------------------------------------------------


#: What _pop_within returns when the time was up before an item came.
_TIME_UP: Any = object()


async def _pop_within(inp: InputPort[Any], clock: Clock, seconds: float | None) -> Any:
    """The next item, or ``_TIME_UP`` once ``seconds`` have passed on ``clock``; ``EndOfStream`` at the end."""
    if seconds is None:
        return await inp.pop()
    if type(clock) is SystemClock:
        # A timed pop: no task per wait, and never mistaken for part of a deadlock.
        try:
            return await inp.pop(timeout=max(seconds, 0.0))
        except TimeoutError:
            return _TIME_UP
    try:
        return inp.pop_nowait()
    except WouldBlock:
        pass
    popping = asyncio.ensure_future(inp.pop())
    sleeping = asyncio.ensure_future(clock.sleep(seconds))
    try:
        await asyncio.wait((popping, sleeping), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (popping, sleeping):
            task.cancel()
        # A cancelled pop takes no item; one that finished first keeps its item.
        await asyncio.wait((popping, sleeping))
    if popping.cancelled():
        return _TIME_UP
    return popping.result()


def _key_of(owner: str, key: Callable[[Any], Any] | None, item: Any) -> Any:
    if key is None:
        return None
    k = key(item)
    if not isinstance(k, Hashable):
        raise TypeError(f"{owner}: key(item) must be hashable, not {type(k).__name__} ({k!r}) for item {item!r}")
    return k


def _time_of(owner: str, timestamp: Callable[[Any], Any], item: Any) -> float:
    t = timestamp(item)
    if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t):
        raise TypeError(f"{owner}: timestamp(item) must be a finite number of seconds, not {t!r} for item {item!r}")
    return t


@stream(name="window")
async def _processing_time(
    inp: In[Any],
    out: Out[Window[Any]],
    *,
    shape: Callable[[], _Windows],
    key: Callable[[Any], Any] | None,
    clock: Clock,
) -> None:
    owner = out.stream
    # A checkpointed run keeps the open windows (contents and spans) and the counters in its
    # position, saved at the pops below; the time a resumed run reads is the clock's then.
    pos = position()
    windows = shape() if pos is None else pos.setdefault("windows", shape())
    latest = -math.inf if pos is None else pos.get("latest", -math.inf)
    seq = 0 if pos is None else pos.get("seq", 0)
    while True:
        if pos is not None:
            pos["latest"], pos["seq"] = latest, seq
        end = windows.next_end()
        # The clock is read as never going back, so a window once closed stays closed.
        latest = max(latest, clock.now())
        if end is not None and end <= latest:
            for w in windows.due(latest):
                await out.push(w)
            continue
        try:
            item = await _pop_within(inp, clock, None if end is None else end - latest)
        except EndOfStream:
            break
        if item is _TIME_UP:
            continue
        latest = max(latest, clock.now())
        for w in windows.due(latest):
            await out.push(w)
        windows.add(_key_of(owner, key, item), latest, seq, item)
        seq += 1
    for w in windows.due(math.inf):
        await out.push(w)


@stream(name="window")
async def _event_time(
    inp: In[Any],
    out: Out[Window[Any]],
    late: Out[Any],
    *,
    shape: Callable[[], _Windows],
    key: Callable[[Any], Any] | None,
    timestamp: Callable[[Any], Any],
    lateness: float,
) -> None:
    owner = out.stream
    pos = position()  # a checkpointed run keeps the open windows and the watermark there
    windows = shape() if pos is None else pos.setdefault("windows", shape())
    watermark = -math.inf if pos is None else pos.get("watermark", -math.inf)
    seq = 0 if pos is None else pos.get("seq", 0)
    async for item in inp:
        t = _time_of(owner, timestamp, item)
        if t < watermark:
            await late.push(item)
            continue
        windows.add(_key_of(owner, key, item), t, seq, item)
        seq += 1
        if t - lateness > watermark:
            watermark = t - lateness
            for w in windows.due(watermark):
                await out.push(w)
        if pos is not None:
            pos["watermark"], pos["seq"] = watermark, seq
    for w in windows.due(math.inf):
        await out.push(w)


# -- the public factories -------------------------------------------------------


def _check_seconds(
    owner: str, arg: str, value: object, *, positive: bool = False, allow_negative: bool = False
) -> None:
    ok = not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
    if ok and positive:
        ok = value > 0  # type: ignore[operator]
    elif ok and not allow_negative:
        ok = value >= 0  # type: ignore[operator]
    if not ok:
        need = " > 0" if positive else ("" if allow_negative else " >= 0")
        raise ValueError(f"{owner}: {arg} must be a finite number of seconds{need}, not {value!r}")


def _make(
    owner: str,
    shape: Callable[[], _Windows],
    key: Callable[[Any], Any] | None,
    timestamp: Callable[[Any], Any] | None,
    allowed_lateness: float | None,
    clock: Clock | None,
    name: str | None,
) -> Any:
    if key is not None and not callable(key):
        raise TypeError(f"{owner}: key must be a function of an item, not {key!r}")
    if timestamp is None:
        if allowed_lateness is not None:
            raise ValueError(f"{owner}: allowed_lateness applies to event time only: give timestamp= too")
        if clock is None:
            clock = SystemClock()
        elif not isinstance(clock, Clock):
            raise TypeError(
                f"{owner}: clock must have now() and async sleep(seconds), such as ManualClock(), not {clock!r}"
            )
        return named(_processing_time(shape=shape, key=key, clock=clock), name, owner)
    if not callable(timestamp):
        raise TypeError(f"{owner}: timestamp must be a function giving an item's time in seconds, not {timestamp!r}")
    if clock is not None:
        raise ValueError(f"{owner}: clock applies to processing time only; with timestamp= the items' times are used")
    lateness = 0.0 if allowed_lateness is None else allowed_lateness
    _check_seconds(owner, "allowed_lateness", lateness)
    return named(_event_time(shape=shape, key=key, timestamp=timestamp, lateness=lateness), name, owner)


@overload
def tumbling(
    size: float,
    *,
    key: Callable[[T], Hashable] | None = None,
    clock: Clock | None = None,
    name: str | None = None,
) -> StageStream[T, Window[T]]: ...
@overload
def tumbling(
    size: float,
    *,
    timestamp: Callable[[T], float],
    allowed_lateness: float | None = None,
    key: Callable[[T], Hashable] | None = None,
    name: str | None = None,
) -> PortStream: ...
def tumbling(
    size: float,
    *,
    key: Callable[[T], Hashable] | None = None,
    timestamp: Callable[[T], float] | None = None,
    allowed_lateness: float | None = None,
    clock: Clock | None = None,
    name: str | None = None,
) -> Any:
    """A stage that groups items into back-to-back windows of ``size`` seconds, ``[k*size, (k+1)*size)``.

    Each item is in exactly one window. Processing time by default (read from
    ``clock``, the wall clock unless given); with ``timestamp=fn``, event time,
    with ``allowed_lateness`` and a ``late`` output (see :mod:`mimo.lib.windows`).
    ``key=fn`` keeps separate windows per key.
    """
    _check_seconds("tumbling", "size", size, positive=True)
    return _make("tumbling", lambda: _Fixed(size, size), key, timestamp, allowed_lateness, clock, name)


@overload
def sliding(
    size: float,
    every: float,
    *,
    key: Callable[[T], Hashable] | None = None,
    clock: Clock | None = None,
    name: str | None = None,
) -> StageStream[T, Window[T]]: ...
@overload
def sliding(
    size: float,
    every: float,
    *,
    timestamp: Callable[[T], float],
    allowed_lateness: float | None = None,
    key: Callable[[T], Hashable] | None = None,
    name: str | None = None,
) -> PortStream: ...
def sliding(
    size: float,
    every: float,
    *,
    key: Callable[[T], Hashable] | None = None,
    timestamp: Callable[[T], float] | None = None,
    allowed_lateness: float | None = None,
    clock: Clock | None = None,
    name: str | None = None,
) -> Any:
    """A stage that groups items into windows of ``size`` seconds starting every ``every`` seconds.

    The windows are ``[k*every, k*every + size)``, so they overlap and an item
    is in each one that holds its time. ``every`` must not exceed ``size``
    (else some items would be in no window). Time, keys and lateness as for
    :func:`tumbling`.
    """
    _check_seconds("sliding", "size", size, positive=True)
    _check_seconds("sliding", "every", every, positive=True)
    if every > size:
        raise ValueError(
            f"sliding: every ({every}) must not exceed size ({size}), or items between windows would be lost"
        )
    return _make("sliding", lambda: _Fixed(size, every), key, timestamp, allowed_lateness, clock, name)


@overload
def session(
    gap: float,
    *,
    key: Callable[[T], Hashable] | None = None,
    clock: Clock | None = None,
    name: str | None = None,
) -> StageStream[T, Window[T]]: ...
@overload
def session(
    gap: float,
    *,
    timestamp: Callable[[T], float],
    allowed_lateness: float | None = None,
    key: Callable[[T], Hashable] | None = None,
    name: str | None = None,
) -> PortStream: ...
def session(
    gap: float,
    *,
    key: Callable[[T], Hashable] | None = None,
    timestamp: Callable[[T], float] | None = None,
    allowed_lateness: float | None = None,
    clock: Clock | None = None,
    name: str | None = None,
) -> Any:
    """A stage that groups items into sessions: runs of items less than ``gap`` seconds apart.

    A session closes once ``gap`` seconds pass without an item for it (by the
    clock, or by the watermark in event time); its window is ``[first item's
    time, last item's time + gap)``. In event time an item that falls between
    two open sessions of its key merges them. Time, keys and lateness as for
    :func:`tumbling`.
    """
    _check_seconds("session", "gap", gap, positive=True)
    return _make("session", lambda: _Sessions(gap), key, timestamp, allowed_lateness, clock, name)
