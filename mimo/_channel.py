"""The bounded queue under every connection.

A :class:`Channel` joins the output ports feeding one input port (one or more
*producers*, fan-in) to that input port (its *consumer*; several when a stream
runs as several workers, each item going to one of them). It is the only
code in mimo that knows how waiting works:

* ``push_nowait`` / ``pop_nowait`` / ``peek_nowait`` never touch the event loop;
  the awaiting forms are the nowait forms plus a wait, and the loop is involved
  only on the empty/non-empty and full/not-full transitions. ``pop_nowait`` and
  ``peek_nowait`` raise :class:`~mimo.WouldBlock` when nothing is buffered yet
  (the ports use the private ``_try_pop`` / ``_try_peek``, which return a
  sentinel instead: cheaper on a path taken once per empty queue).
* At most ``capacity`` items are buffered. Capacity 0 is a hand-over: a push
  completes only while the consumer is waiting for an item.
* The channel closes when its last producer closes (fan-in counting); the
  consumer then drains what is buffered and gets :class:`EndOfStream`. A push
  on a closed channel, or one ``close_producer()`` more than it has producers,
  raises :class:`~mimo.PortClosed`.
* A consumer that leaves early *detaches* the channel: buffered items are
  dropped, waiting producers wake, and later pushes are discarded. Whoever owns
  the producing ports is told through ``on_detach``.
* Cancellation is atomic: a cancelled ``pop`` takes no item (items leave the
  buffer only when a pop returns) and a cancelled push enqueued nothing (items
  enter the buffer only when a push succeeds).

This module imports nothing of mimo's but its exceptions. The end exception
is :class:`~mimo.EndOfStream` unless another is passed in.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any, Final, Generic, Literal, Protocol, TypeVar

from mimo._checks import ZERO_HANDS_OVER, check_count, is_count
from mimo._errors import EndOfStream, PortClosed, WouldBlock

T = TypeVar("T")

#: Private: returned by ``Channel._try_pop`` / ``_try_peek`` when nothing is
#: buffered yet (the channel is still open).
EMPTY: Final = object()

WaitKind = Literal["push", "pop"]


class WaitObserver(Protocol):
    """Told when a task starts and stops waiting on a channel (slow path only)."""

    def wait_started(self, channel: Channel[Any], kind: WaitKind, fut: asyncio.Future[None]) -> None: ...

    def wait_ended(self, channel: Channel[Any], kind: WaitKind, fut: asyncio.Future[None], seconds: float) -> None: ...


@dataclass(frozen=True, slots=True)
class ChannelStatistics:
    """A snapshot of one channel.

    ``high_water`` is the most items a producer was ever ahead of the consumer;
    it never exceeds ``capacity``. ``push_wait_s`` / ``pop_wait_s`` add up the
    time producers spent blocked by a full queue and the consumer spent waiting
    on an empty one.
    """

    label: str
    capacity: int
    buffered: int
    popped: int
    dropped: int  # buffered when the consumer left, or discarded by it: never delivered
    high_water: int
    open_producers: int
    detached: bool
    waiting_pushers: int
    waiting_poppers: int
    push_wait_s: float
    pop_wait_s: float


def check_capacity(capacity: object) -> int:
    """Return ``capacity`` if it is an int >= 0, else raise ``ValueError``."""
    return check_count("capacity", capacity, 0, note=ZERO_HANDS_OVER)


def check_limit(limit: object, where: str) -> int:
    """Return ``limit`` if it is an int >= 1, else raise ``ValueError`` naming ``where``."""
    if is_count(limit):  # first: the message is built only for a wrong limit
        return limit
    # pop_many(0) would return nothing for ever: refused rather than spun on.
    return check_count(f"pop_many on {where}: limit", limit)


class Channel(Generic[T]):
    """A bounded FIFO from one or more producers to one or more consumers.

    ``producers`` is how many times ``close_producer()`` must be called before
    the channel closes; one call more raises :class:`~mimo.PortClosed`, as does
    a push once it is closed. ``pop_nowait`` / ``peek_nowait`` raise
    :class:`~mimo.WouldBlock` while nothing is buffered, and the end exception
    (:class:`~mimo.EndOfStream` by default) once closed and drained.
    """

    __slots__ = (
        "_buf",
        "_cap",
        "_capacity",
        "_shut",
        "_producers",
        "_getters",
        "_consumers",
        "_putters",
        "_woken",
        "_detached",
        "_popped",
        "_dropped",
        "_high",
        "_push_wait",
        "_pop_wait",
        "_end",
        "label",
        "observer",
        "on_detach",
    )

    def __init__(
        self,
        capacity: int = 64,
        *,
        producers: int = 1,
        consumers: int = 1,
        label: str = "",
        end: type[Exception] = EndOfStream,
        observer: WaitObserver | None = None,
    ) -> None:
        self._cap = self._capacity = check_capacity(capacity)
        self._shut = False
        # Checked when made: a wrong count would close the channel early or never.
        check_count("producers", producers, 0)
        check_count("consumers", consumers)
        self._buf: deque[T] = deque()
        self._producers = producers
        self._getters: deque[asyncio.Future[None]] = deque()
        self._consumers = consumers
        self._putters: deque[asyncio.Future[None]] = deque()
        # The producer last woken for room that has not run yet. While there is
        # one, freed slots wake no one else: it will fill them, and waking every
        # producer of a fan-in would only make each find the queue full again.
        self._woken: asyncio.Future[None] | None = None
        self._detached = False
        self._popped = 0
        self._dropped = 0
        self._high = 0
        self._push_wait = 0.0
        self._pop_wait = 0.0
        self._end = end
        self.label: str = label
        self.observer: WaitObserver | None = observer
        self.on_detach: list[Callable[[Channel[T]], None]] = []

    # -- state --------------------------------------------------------------

    @property
    def capacity(self) -> int:
        """The bound given at creation."""
        return self._capacity

    @property
    def closed(self) -> bool:
        """True once every producer has closed: no item will be added."""
        return self._producers <= 0

    @property
    def detached(self) -> bool:
        """True once the consumer has left; pushes are discarded."""
        return self._detached

    def __len__(self) -> int:
        return len(self._buf)

    def statistics(self) -> ChannelStatistics:
        """A frozen snapshot of this channel's counters and state."""
        return ChannelStatistics(
            label=self.label,
            capacity=self._capacity,
            buffered=len(self._buf),
            popped=self._popped,
            dropped=self._dropped,
            high_water=self._high,
            open_producers=max(self._producers, 0),
            detached=self._detached,
            waiting_pushers=sum(1 for f in self._putters if not f.done()),
            waiting_poppers=sum(1 for f in self._getters if not f.done()),
            push_wait_s=self._push_wait,
            pop_wait_s=self._pop_wait,
        )

    # -- producer side ------------------------------------------------------

    def has_room(self) -> bool:
        """True if ``push_nowait`` would accept an item now."""
        if len(self._buf) < self._cap or self._detached:
            return True
        return not self._buf and self._popper_waiting()

    def _popper_waiting(self) -> bool:
        return any(not f.done() for f in self._getters)

    def push_nowait(self, item: T) -> bool:
        """Enqueue ``item`` if there is room and return True; else return False.

        ``PortClosed`` once the channel is closed.
        """
        if self._producers <= 0:
            self._refuse_push()
        buf = self._buf
        n = len(buf)
        if n < self._cap:
            buf.append(item)
            if n >= self._high:
                self._high = n + 1
            if self._getters:
                self._wake_getter()
            return True
        if self._detached:
            return True
        # Capacity 0 (or a full queue drained by a waiting consumer): hand over
        # directly. The item is in the consumer's hands, so it is not "ahead".
        if not buf and self._popper_waiting():
            buf.append(item)
            self._wake_getter()
            return True
        return False

    def room(self) -> int:
        """How many items ``push_many_nowait`` would take now (0 when full).

        Unlimited (``sys.maxsize``) once detached, since pushes are then discarded.
        """
        if self._detached:
            return sys.maxsize
        n = len(self._buf)
        if n < self._cap:
            return self._cap - n
        # A waiting consumer takes one item straight from an empty queue (hand-over).
        return 1 if not n and self._popper_waiting() else 0

    def push_many_nowait(self, items: Sequence[T]) -> int:
        """Enqueue the longest prefix of ``items`` there is room for; return its length.

        ``PortClosed`` once the channel is closed.
        """
        if self._producers <= 0:
            self._refuse_push()
        if self._detached:
            return len(items)
        buf = self._buf
        room = self._cap - len(buf)
        if room <= 0:
            return 1 if items and self.push_nowait(items[0]) else 0
        k = len(items)
        if k > room:
            k = room
            buf.extend(items[:k])
        else:
            buf.extend(items)
        if len(buf) > self._high:
            self._high = len(buf)
        if self._getters:
            self.wake_consumers(k)
        return k

    def wake_consumers(self, items: int) -> None:
        """Wake up to ``items`` waiting consumers: that many items just arrived."""
        getters = self._getters
        while items > 0 and getters:
            f = getters.popleft()
            if not f.done():
                f.set_result(None)
                items -= 1

    async def push(self, item: T) -> None:
        """Enqueue ``item``, waiting while the queue is full.

        If cancelled while waiting, nothing was enqueued.
        """
        while not self.push_nowait(item):
            await self.wait_room()

    async def wait_room(self) -> None:
        """Wait until ``push_nowait`` may succeed (a pop or a detach happened)."""
        fut = self._add_putter()
        if fut is None:
            return
        t0 = time.perf_counter()
        try:
            await fut
        except BaseException:
            self._putter_failed(fut)
            raise
        finally:
            self._putter_ended(fut, time.perf_counter() - t0)
        self._putter_woken(fut)

    # The four steps of wait_room, for the ports' slow path, which waits
    # without a coroutine of the channel's own (a wait costs a few coroutine
    # frames less). A subclass that overrides wait_room is awaited instead.

    def _add_putter(self) -> asyncio.Future[None] | None:
        """A future to await for room, registered; None if there is room now."""
        if self.has_room():
            return None
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._putters.append(fut)
        obs = self.observer
        if obs is not None:
            obs.wait_started(self, "push", fut)
        return fut

    def _putter_failed(self, fut: asyncio.Future[None]) -> None:
        if self._woken is fut:
            self._woken = None
        if fut.done() and not fut.cancelled():
            # We were woken but will not use the room: pass it on.
            self._wake_putter()
        else:
            try:
                self._putters.remove(fut)
            except ValueError:
                pass

    def _putter_ended(self, fut: asyncio.Future[None], seconds: float) -> None:
        self._push_wait += seconds
        obs = self.observer
        if obs is not None:
            obs.wait_ended(self, "push", fut, seconds)

    def _putter_woken(self, fut: asyncio.Future[None]) -> None:
        if self._woken is fut:
            self._woken = None
        # Room for us and more: the next waiting producer may use the rest.
        if self._putters and len(self._buf) + 1 < self._cap:
            self._wake_putter()

    def pass_room_on(self) -> None:
        """Wake another waiting producer if there is room (a woken one will not use it)."""
        if self._putters and self.has_room():
            self._wake_putter()

    def close_producer(self) -> None:
        """One producer is done. The last one closes the channel.

        Called once more than there are producers, raises ``PortClosed``:
        a producer closing twice would otherwise end its siblings' items early.
        """
        if self._producers <= 0:
            if self._shut:
                return  # the teardown closed it for every producer
            raise PortClosed(
                f"channel {self._name()} is already closed: close_producer() was called more times "
                "than it has producers"
            )
        self._producers -= 1
        if self._producers == 0:
            self._wake_all_getters()

    def _refuse_push(self) -> None:
        raise PortClosed(f"push on channel {self._name()} after it was closed")

    def _name(self) -> str:
        return repr(self.label) if self.label else "(unlabelled)"

    def _wake_putter(self) -> None:
        putters = self._putters
        while putters:
            f = putters.popleft()
            if not f.done():
                f.set_result(None)
                self._woken = f
                return

    def _room_freed(self) -> None:
        """A pop made room: wake a producer unless one is already on its way."""
        if self._woken is None:
            self._wake_putter()

    # -- consumer side ------------------------------------------------------

    def pop_nowait(self) -> T:
        """The next item; ``WouldBlock`` if none is buffered yet.

        Raises the channel's end exception when closed and drained.
        """
        item = self._try_pop()
        if item is EMPTY:
            raise WouldBlock(f"no item buffered on channel {self._name()} yet")
        return item  # type: ignore[return-value]

    def peek_nowait(self) -> T:
        """Like :meth:`pop_nowait` but leaves the item in place."""
        item = self._try_peek()
        if item is EMPTY:
            raise WouldBlock(f"no item buffered on channel {self._name()} yet")
        return item  # type: ignore[return-value]

    def _try_pop(self) -> T | object:
        """The next item, or ``EMPTY`` if none is buffered yet; the end exception at the end."""
        buf = self._buf
        if buf:
            item = buf.popleft()
            self._popped += 1
            if self._putters:
                self._room_freed()
            return item
        if self._producers <= 0:
            raise self._end()
        return EMPTY

    def _try_peek(self) -> T | object:
        """Like :meth:`_try_pop` but leaves the item in place."""
        buf = self._buf
        if buf:
            return buf[0]
        if self._producers <= 0:
            raise self._end()
        return EMPTY

    def pop_many_nowait(self, limit: int) -> list[T]:
        """Up to ``limit`` (>= 1) buffered items (maybe none); the end exception if closed and drained."""
        check_limit(limit, f"channel {self._name()}")
        return self._pop_many(limit)

    def _pop_many(self, limit: int) -> list[T]:
        buf = self._buf
        if not buf:
            if self._producers <= 0:
                raise self._end()
            return []
        if limit >= len(buf):
            out = list(buf)
            buf.clear()
        else:
            out = list(map(deque.popleft, repeat(buf, limit)))  # the loop in C
        self._popped += len(out)
        if self._putters:
            self._room_freed()
        return out

    async def pop(self) -> T:
        """The next item, waiting while the queue is empty.

        Raises the channel's end exception once closed and drained. If
        cancelled while waiting, no item was taken.
        """
        while True:
            item = self._try_pop()
            if item is not EMPTY:
                return item  # type: ignore[return-value]
            await self.wait_item()

    async def peek(self) -> T:
        """The next item, left in place; waits like :meth:`pop`."""
        while True:
            item = self._try_peek()
            if item is not EMPTY:
                return item  # type: ignore[return-value]
            await self.wait_item()

    async def wait_item(self, timeout: float | None = None) -> None:
        """Wait until an item is buffered or the channel closes.

        With ``timeout`` (seconds), ``TimeoutError`` once it passes. Such a
        wait is not reported to the observer: its timer will wake it, so it is
        never part of a deadlock.
        """
        fut = self._add_getter(timeout is None)
        if fut is None:
            return
        t0 = time.perf_counter()
        try:
            if timeout is None:
                await fut
            else:
                async with asyncio.timeout(timeout):
                    await fut
        except BaseException:
            self._getter_failed(fut)
            raise
        finally:
            self._getter_ended(fut, time.perf_counter() - t0, timeout is None)

    # The steps of wait_item, for the ports' slow path (as for wait_room).

    def _add_getter(self, observed: bool = True) -> asyncio.Future[None] | None:
        """A future to await for an item, registered; None if one is buffered or the channel closed."""
        if self._buf or self._producers <= 0:
            return None
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._getters.append(fut)
        # A hand-over producer (capacity 0) may be waiting for us to ask.
        if self._putters:
            self._wake_putter()
        if observed:
            obs = self.observer
            if obs is not None:
                obs.wait_started(self, "pop", fut)
        return fut

    def _getter_failed(self, fut: asyncio.Future[None]) -> None:
        if fut.done() and not fut.cancelled():
            # Woken but leaving: another consumer may take the item.
            if self._buf or self._producers <= 0:
                self._wake_getter()
        else:
            try:
                self._getters.remove(fut)
            except ValueError:
                pass

    def _getter_ended(self, fut: asyncio.Future[None], seconds: float, observed: bool = True) -> None:
        self._pop_wait += seconds
        if observed:
            obs = self.observer
            if obs is not None:
                obs.wait_ended(self, "pop", fut, seconds)

    def close_consumer(self) -> None:
        """One consumer is done; when the last one is, the channel detaches."""
        self._consumers -= 1
        if self._consumers == 0:
            self.detach()

    def discarded(self, n: int = 1) -> None:
        """Count ``n`` items the consumer took and threw away on purpose (a lossy buffer's overflow).

        They add to ``dropped``, with the items buffered when the consumer left.
        """
        self._dropped += n

    def detach(self) -> None:
        """The consumer has left: drop what is buffered, wake every producer.

        Later pushes are accepted and discarded at once. Idempotent.
        """
        if self._detached:
            return
        self._detached = True
        self._dropped += len(self._buf)
        # A zero-length deque discards what is appended, so later pushes
        # succeed at once without a check on the fast path.
        self._buf = deque(maxlen=0)
        self._wake_all_getters()
        putters = self._putters
        while putters:
            f = putters.popleft()
            if not f.done():
                f.set_result(None)
        for callback in self.on_detach:
            callback(self)

    def _wake_getter(self) -> None:
        getters = self._getters
        while getters:
            f = getters.popleft()
            if not f.done():
                f.set_result(None)
                return

    def _wake_all_getters(self) -> None:
        getters = self._getters
        while getters:
            f = getters.popleft()
            if not f.done():
                f.set_result(None)

    def shutdown(self) -> None:
        """End this channel for a run's teardown: no wait on it may last.

        Every waiter wakes now; from then on a push raises ``PortClosed`` and a
        pop takes what is buffered, then raises the end exception. Unlike
        :meth:`detach`, the ``on_detach`` callbacks are not told (nobody is
        leaving early: the whole run is ending). Idempotent.
        """
        self._producers = 0
        self._shut = True
        # No fast path (the ports' inline pushes test `_cap`) takes an item now.
        self._cap = -1
        # has_room() is then True, so a woken push goes on to push_nowait,
        # which refuses it on the closed channel.
        self._detached = True
        self._woken = None
        self._wake_all_getters()
        putters = self._putters
        while putters:
            f = putters.popleft()
            if not f.done():
                f.set_result(None)
