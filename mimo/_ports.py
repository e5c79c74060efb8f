"""Input and output ports, and the ``ins`` / ``outs`` bundles a stream receives.

Ports are thin views on channels (:mod:`mimo._channel`): an input port reads
the one channel that feeds it; an output port writes every channel it is
joined to (broadcast).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Coroutine, Generator, Iterable, Iterator, Sequence
from typing import Any, Final, Generic, TypeVar

from mimo._channel import EMPTY, Channel, ChannelStatistics, check_limit
from mimo._errors import ConsumersGone, EndOfStream, PortClosed, PushNotAwaited, WouldBlock, unknown_name
from mimo.speedups import _install as _install_speedups

# An input port is only read from and an output port only written to, so an
# InputPort[int] is an InputPort[object] and an OutputPort[object] an OutputPort[int].
T_co = TypeVar("T_co", covariant=True)
T_contra = TypeVar("T_contra", contravariant=True)

perf_counter = time.perf_counter
_WAIT_ITEM: Final = Channel.wait_item
_WAIT_ROOM: Final = Channel.wait_room

#: A push into nothing lets other tasks run once in this many.
_DISCARD_YIELD = 64
P = TypeVar("P", "InputPort[Any]", "OutputPort[Any]")


class WaitClock:
    """Adds up the time during which at least one wait is on.

    A stream may wait on several ports at once (from sub-tasks, as ``merge``
    does): overlapping waits count once, so the clock never runs faster than
    the wall clock.
    """

    __slots__ = ("_on", "_t0", "seconds")

    def __init__(self) -> None:
        self.seconds: float = 0.0
        self._on = 0
        self._t0 = 0.0

    def start(self, now: float | None = None) -> None:
        """A wait begins (at ``now``, a ``time.perf_counter()`` reading, if given)."""
        if not self._on:
            self._t0 = time.perf_counter() if now is None else now
        self._on += 1

    def stop(self, now: float | None = None) -> None:
        """A wait ends (at ``now`` if given)."""
        self._on -= 1
        if not self._on:
            self.seconds += (time.perf_counter() if now is None else now) - self._t0


class PortTimes:
    """Per-stream clocks that the ports run on their slow paths."""

    __slots__ = ("popping", "pushing", "retries")

    def __init__(self) -> None:
        self.pushing: WaitClock = WaitClock()
        self.popping: WaitClock = WaitClock()
        #: Calls a stream retried (``lib.map(..., retry=...)``), for the run report.
        self.retries: int = 0

    @property
    def blocked_s(self) -> float:
        """Time spent waiting to push into a full queue."""
        return self.pushing.seconds

    @property
    def starved_s(self) -> float:
        """Time spent waiting to pop from an empty queue."""
        return self.popping.seconds


class InputPort(Generic[T_co]):
    """The receiving end of a connection, as a stream sees it.

    ``await pop()`` takes the next item, ``await peek()`` looks at it without
    taking it; both raise :class:`~mimo.EndOfStream` once every producer has
    closed and the buffer is drained. ``async for item in port`` reads until
    then. ``len(port)`` is the number of items buffered now, and ``closed`` is
    True once no more items will arrive (some may still be buffered).
    Cancelling a waiting ``pop`` takes no item.
    """

    __slots__ = ("name", "stream", "_ch", "_pop_nowait", "_times", "_fast")

    def __init__(self, name: str, stream: str, channel: Channel[T_co], times: PortTimes | None = None) -> None:
        self.name: str = name
        self.stream: str = stream
        self._ch = channel
        self._pop_nowait = channel._try_pop
        self._fast = type(channel) is Channel
        self._times = times if times is not None else PortTimes()

    def __repr__(self) -> str:
        return f"<InputPort {self.stream}.{self.name} buffered={len(self._ch)} closed={self.closed}>"

    async def pop(self, timeout: float | None = None) -> T_co:
        """The next item; waits while none is buffered. ``EndOfStream`` at the end.

        With ``timeout`` (seconds), ``TimeoutError`` if no item came in time;
        no item is taken then. A wait with a timeout is never part of a deadlock.
        ``timeout`` must be a number >= 0 (``ValueError`` otherwise, even when an
        item is ready).
        """
        if timeout is not None:
            self._check_timeout(timeout)
        item = self._pop_nowait()
        if item is EMPTY:
            return await self._pop_slow(timeout)
        return item  # type: ignore[return-value]

    def pop_nowait(self) -> T_co:
        """The next item if one is buffered; :class:`~mimo.WouldBlock` if none is yet.

        ``EndOfStream`` once closed and drained.
        """
        item = self._pop_nowait()
        if item is EMPTY:
            raise WouldBlock(f"no item buffered on {self.stream}.{self.name} yet")
        return item  # type: ignore[return-value]

    async def pop_many(self, limit: int = 1024, timeout: float | None = None) -> list[T_co]:
        """Between 1 and ``limit`` items, waiting for the first; ``EndOfStream`` at the end.

        ``limit`` must be an int >= 1 (else ``ValueError``). ``timeout`` as for :meth:`pop`.
        """
        check_limit(limit, f"input {self.stream}.{self.name}")
        if timeout is not None:
            self._check_timeout(timeout)
        ch = self._ch
        items = ch._pop_many(limit)
        if items:
            return items
        deadline = None if timeout is None else time.monotonic() + timeout
        while not items:
            await self._wait(deadline)
            items = ch._pop_many(limit)
        return items

    def _check_timeout(self, timeout: object) -> None:
        if (
            isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout >= 0  # also refuses NaN
        ):
            raise ValueError(
                f"pop on {self.stream}.{self.name}: timeout must be a number of seconds >= 0 or None, not {timeout!r}"
            )

    async def _pop_slow(self, timeout: float | None = None) -> T_co:
        ch = self._ch
        if timeout is not None or type(ch).wait_item is not _WAIT_ITEM:
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                await self._wait(deadline)
                item = ch._try_pop()
                if item is not EMPTY:
                    return item  # type: ignore[return-value]
        # Channel.wait_item inline: a wait is then one coroutine frame (this
        # one) below the stream's, and the clocks share one reading.
        clock = self._times.popping
        while True:
            fut = ch._add_getter()
            if fut is not None:
                t0 = perf_counter()
                clock.start(t0)
                try:
                    await fut
                except BaseException:
                    ch._getter_failed(fut)
                    raise
                finally:
                    t1 = perf_counter()
                    clock.stop(t1)
                    ch._getter_ended(fut, t1 - t0)
            item = ch._try_pop()
            if item is not EMPTY:
                return item  # type: ignore[return-value]

    async def _wait(self, deadline: float | None = None) -> None:
        self._times.popping.start()
        try:
            if deadline is None:
                await self._ch.wait_item()
            else:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no item on {self.stream}.{self.name} in time")
                try:
                    await self._ch.wait_item(left)
                except TimeoutError:
                    raise TimeoutError(f"no item on {self.stream}.{self.name} in time") from None
        finally:
            self._times.popping.stop()

    async def peek(self) -> T_co:
        """The next item, left in place for the next ``pop``; waits like ``pop``."""
        ch = self._ch
        while True:
            item = ch._try_peek()
            if item is not EMPTY:
                return item  # type: ignore[return-value]
            await self._wait()

    def __aiter__(self) -> AsyncIterator[T_co]:
        # The port is its own iterator: ``__anext__`` makes one coroutine per
        # item. An async generator would be no faster up to 3.11 and slower
        # from 3.12 (each step allocates a StopIteration for the item), and a
        # cancelled step would close it, where a cancelled ``__anext__`` takes
        # no item and the loop may go on.
        return self

    async def __anext__(self) -> T_co:
        ch = self._ch
        buf = ch._buf
        if self._fast and buf:
            # Channel._try_pop inline (keep the two in step): a call per item
            # is a sizeable share of a hop.
            item = buf.popleft()
            ch._popped += 1
            if ch._putters:
                ch._room_freed()
            return item
        try:
            got = self._pop_nowait()
            if got is EMPTY:
                return await self._pop_slow()
        except EndOfStream:
            raise StopAsyncIteration from None
        return got  # type: ignore[return-value]

    def __len__(self) -> int:
        return len(self._ch)

    @property
    def closed(self) -> bool:
        """True once every producer has closed; buffered items may remain."""
        return self._ch.closed

    def statistics(self) -> ChannelStatistics:
        """A snapshot of the queue behind this port (capacity, high water, waits)."""
        return self._ch.statistics()

    def retried(self, n: int = 1) -> None:
        """Count ``n`` retries of a call on an item taken from this port.

        The run report shows them in the stream's ``retries``, so a stream
        that retries (``lib.map(..., retry=Retry(...))``) never hides its failures.
        """
        self._times.retries += n

    def discarded(self, n: int = 1) -> None:
        """Count ``n`` items taken from this port and thrown away on purpose.

        The run report shows them in the stream's ``dropped``, so a lossy
        stream (``lib.buffer(overflow="drop_oldest")``) never loses items silently.
        """
        self._ch.discarded(n)


#: What awaiting a push that has already delivered its item iterates: nothing.
#: One shared exhausted iterator, so the fast path allocates nothing per item.
_NOTHING_LEFT: Final = iter(())


class _Pushed(Coroutine[Any, Any, None]):
    """What ``push`` returns when it delivered the item at once: a finished coroutine.

    One per port, reused for every such push. Awaiting it (or running it as a
    task) marks the push as awaited; a push that is never awaited is found by
    the port's next push or close, or when the stream's body returns.
    """

    __slots__ = ("_port",)

    def __init__(self, port: OutputPort[Any]) -> None:
        self._port = port

    def __await__(self) -> Generator[Any, None, None]:
        self._port._pending = None
        return _NOTHING_LEFT  # type: ignore[return-value]

    def send(self, value: Any) -> Any:
        self._port._pending = None
        raise StopIteration

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        self._port._pending = None
        if val is None:
            val = typ() if isinstance(typ, type) else typ
        raise val

    def close(self) -> None:
        self._port._pending = None

    def __repr__(self) -> str:
        return f"<push on {self._port.stream}.{self._port.name}, delivered>"


class OutputPort(Generic[T_contra]):
    """The sending end of a stream's output, joined to zero or more inputs.

    ``await push(item)`` hands the item to every joined input (broadcast),
    waiting while any of their queues is full (back-pressure); a cancelled push
    delivered the item nowhere. A push must be awaited: one that is not makes
    the next push, ``push_many`` or ``close`` of this output, or the end of the
    stream's body, raise :class:`~mimo.PushNotAwaited`. ``close()`` ends this
    output early (idempotent); a push after it raises :class:`~mimo.PortClosed`,
    and so does a push that was waiting for room when it was called. An input
    whose stream has finished is dropped from the broadcast; once no input of
    any connected output of this stream remains, ``push`` raises
    :class:`~mimo.ConsumersGone`, which ends the stream quietly. Items pushed
    to an output joined to nothing are discarded (the run report still counts
    them).
    """

    __slots__ = (
        "name",
        "stream",
        "_chans",
        "_one",
        "_closed",
        "count",
        "_bundle",
        "_times",
        "_one_push",
        "_pending",
        "_pushed",
        "_waiting",
        "_failing",
    )

    def __init__(
        self,
        name: str,
        stream: str,
        channels: list[Channel[T_contra]],
        times: PortTimes | None = None,
    ) -> None:
        self.name: str = name
        self.stream: str = stream
        self._chans: list[Channel[T_contra]] = list(channels)
        self._closed = False
        self.count: int = 0
        self._bundle: Outs | None = None
        self._times = times if times is not None else PortTimes()
        self._one: Channel[T_contra] | None = None
        # The push returned last and not awaited yet (None: every push was).
        self._pending: Coroutine[Any, Any, None] | None = None
        self._pushed = _Pushed(self)
        # Tasks whose push waits for room, and those of them close() is failing.
        self._waiting: set[asyncio.Task[Any]] = set()
        self._failing: set[asyncio.Task[Any]] = set()
        self._refresh()
        for ch in self._chans:
            ch.on_detach.append(self._on_detach)

    def __repr__(self) -> str:
        return f"<OutputPort {self.stream}.{self.name} consumers={len(self._chans)} closed={self._closed}>"

    def _refresh(self) -> None:
        one = len(self._chans) == 1 and not self._closed
        ch = self._chans[0] if one else None
        # The inline fast path reads Channel's fields; a subclass (an executor's
        # outbox, say) may push differently, so it is called instead.
        self._one = ch if type(ch) is Channel else None
        self._one_push = ch.push_nowait if ch is not None and self._one is None else None

    def _on_detach(self, ch: Channel[Any]) -> None:
        if ch in self._chans:
            self._chans.remove(ch)
            self._refresh()
            if not self._chans and self._bundle is not None:
                self._bundle._port_gone()

    @property
    def closed(self) -> bool:
        """True once this output was closed (by ``close()`` or the stream's end)."""
        return self._closed

    @property
    def consumers(self) -> int:
        """How many inputs this output still feeds (those whose stream has finished drop out)."""
        return len(self._chans)

    def _not_awaited(self) -> None:
        raise PushNotAwaited(
            f"a push on output {self.stream}.{self.name} was not awaited, so its item may never arrive: "
            f"write `await {self.name}.push(...)` (a push run as a task counts once the task has started)"
        )

    def _check_awaited(self) -> None:
        """Raise ``PushNotAwaited`` if the last push or push_many was not awaited."""
        if self._pending is not None:
            self._not_awaited()

    def push(self, item: T_contra) -> Coroutine[Any, Any, None]:
        """Send ``item`` to every joined input, waiting while any queue is full.

        Await the result (or run it as a task). When every queue has room the
        item is delivered at once and the coroutine has nothing left to do;
        otherwise it waits for room. Typed as a coroutine so that mypy and
        pyright report a push that is not awaited.
        """
        if self._pending is not None:
            self._not_awaited()
        ch = self._one
        if ch is not None:
            # Channel.push_nowait inline (keep the two in step); saving the
            # call and the coroutine per item is about a fifth of a hop.
            buf = ch._buf
            n = len(buf)
            if n < ch._cap:
                buf.append(item)
                if n >= ch._high:
                    ch._high = n + 1
                if ch._getters:
                    ch._wake_getter()
                self.count += 1
                self._pending = pushed = self._pushed
                return pushed
        else:
            push_nowait = self._one_push
            if push_nowait is not None and push_nowait(item):
                self.count += 1
                self._pending = pushed = self._pushed
                return pushed
        self._pending = coro = self._push_slow(item)
        return coro

    def _check_open(self) -> list[Channel[T_contra]]:
        """The queues to push to; raises if this output may not push any more."""
        if self._closed:
            raise PortClosed(f"push on output {self.stream}.{self.name} after it was closed")
        chans = self._chans
        if not chans:
            bundle = self._bundle
            if bundle is not None and bundle._all_gone():
                raise ConsumersGone(f"every consumer of {self.stream}'s outputs has finished")
        return chans

    async def _wait_room(self, full: Channel[T_contra], waited: Channel[T_contra] | None) -> None:
        if waited is not None and waited is not full:
            # We were woken for room on `waited` but will not use it yet.
            waited.pass_room_on()
        inline = type(full).wait_room is _WAIT_ROOM
        fut = full._add_putter() if inline else None
        if inline and fut is None:
            return  # room already
        task = asyncio.current_task()
        if task is not None:
            self._waiting.add(task)
        clock = self._times.pushing
        t0 = perf_counter()
        clock.start(t0)
        try:
            if fut is None:
                await full.wait_room()
            else:
                # Channel.wait_room inline, as in InputPort._pop_slow.
                try:
                    await fut
                except BaseException:
                    full._putter_failed(fut)
                    raise
                finally:
                    full._putter_ended(fut, perf_counter() - t0)
                full._putter_woken(fut)
        except asyncio.CancelledError:
            if task is not None and task in self._failing:
                # close() cancelled this wait; unless someone else cancelled
                # the task too, it is a push on a closed output.
                self._failing.discard(task)
                if task.uncancel() == 0:
                    raise PortClosed(
                        f"output {self.stream}.{self.name} was closed while a push waited for room"
                    ) from None
            raise
        finally:
            clock.stop(perf_counter())
            if task is not None:
                self._waiting.discard(task)
                self._failing.discard(task)

    async def _push_slow(self, item: T_contra) -> None:
        self._pending = None  # awaited (or run as a task): this push is in hand
        waited: Channel[T_contra] | None = None
        while True:
            chans = self._check_open()
            if not chans:
                self.count += 1  # joined to nothing (now): discarded
                if not self.count % _DISCARD_YIELD:
                    # A discarding push never waits; without this, a loop
                    # pushing into nothing would starve every other task.
                    await asyncio.sleep(0)
                return
            full = None
            for ch in chans:
                if not ch.has_room():
                    full = ch
                    break
            if full is None:
                # Every queue has room, so this broadcast is all-or-nothing.
                for ch in chans:
                    ch.push_nowait(item)
                self.count += 1
                return
            await self._wait_room(full, waited)
            waited = full

    def push_many(self, items: Iterable[T_contra]) -> Coroutine[Any, Any, None]:
        """Send ``items``, in order, to every joined input; waits while a queue is full.

        Await the result, as for :meth:`push`. The batched form of :meth:`push`:
        one call moves a whole list, so the per-item cost is close to a plain
        loop's. The bound still holds: items enter each queue only while it has
        room. If cancelled (or failed by ``close()``) while waiting, the items
        before the wait were delivered (to every input) and the rest were not.
        """
        if self._pending is not None:
            self._not_awaited()
        if isinstance(items, list | tuple):
            batch = items
        elif isinstance(items, str | bytes | bytearray):
            # An iterable of characters, but never meant as one: refused.
            raise TypeError(
                f"push_many on {self.stream}.{self.name} takes an iterable of items, not a "
                f"{type(items).__name__}; to send it as one item use push(...)"
            )
        else:
            batch = list(items)
        ch = self._one
        if ch is not None:
            buf = ch._buf
            n = len(buf) + len(batch)
            if n <= ch._cap:
                # Channel.push_many_nowait's common case inline, as in push.
                buf.extend(batch)
                if n > ch._high:
                    ch._high = n
                if ch._getters and batch:
                    ch.wake_consumers(len(batch))
                self.count += len(batch)
                self._pending = pushed = self._pushed
                return pushed
        self._pending = coro = self._push_many_slow(batch)
        return coro

    async def _push_many_slow(self, batch: Sequence[T_contra]) -> None:
        self._pending = None
        done = 0
        total = len(batch)
        waited: Channel[T_contra] | None = None
        while done < total or not total:
            chans = self._check_open()
            if not chans:
                self.count += total - done  # joined to nothing (now): discarded
                await asyncio.sleep(0)  # as in _push_slow: never starve the loop
                return
            if not total:
                return
            k = total - done
            full = None
            for ch in chans:
                room = ch.room()
                if room < k:
                    k = room
                    if not room:
                        full = ch
                        break
            if full is None:
                # Every queue takes these k items, so each chunk is all-or-nothing.
                chunk = batch[done : done + k] if (done or k < total) else batch
                for ch in chans:
                    ch.push_many_nowait(chunk)
                done += k
                self.count += k
                continue
            await self._wait_room(full, waited)
            waited = full

    def close(self) -> None:
        """End this output now; every joined input sees one producer fewer. Idempotent.

        A push of this output waiting for room (in another task) fails at once
        with ``PortClosed``, as ``asyncio.Queue.shutdown()`` fails its waiters.
        ``PushNotAwaited`` if the last push was not awaited.
        """
        if self._pending is not None:
            self._not_awaited()
        if self._closed:
            return
        self._closed = True
        chans, self._chans = self._chans, []
        self._refresh()
        for task in self._waiting - self._failing:
            self._failing.add(task)
            task.cancel()
        for ch in chans:
            ch.close_producer()
        if chans and self._bundle is not None:
            # A closed output is one that nobody will read from again.
            self._bundle._port_gone()


class _Bundle(Generic[P]):
    __slots__ = ("__dict__", "_Bundle__ports", "_Bundle__stream", "_Bundle__kind")

    def __init__(self, stream: str, kind: str, ports: dict[str, P]) -> None:
        self.__ports: dict[str, P] = ports
        self.__stream = stream
        self.__kind = kind
        self.__dict__.update(ports)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise AttributeError(unknown_name(f"stream {self.__stream!r}", self.__kind, name, list(self.__ports)))

    def __getitem__(self, name: str) -> P:
        try:
            return self.__ports[name]
        except KeyError:
            raise KeyError(unknown_name(f"stream {self.__stream!r}", self.__kind, name, list(self.__ports))) from None

    def __iter__(self) -> Iterator[P]:
        return iter(self.__ports.values())

    def __len__(self) -> int:
        return len(self.__ports)

    def __contains__(self, name: object) -> bool:
        return name in self.__ports

    def __repr__(self) -> str:
        return f"<{self.__kind}s of {self.__stream}: {', '.join(self.__ports)}>"


class Ins(_Bundle[InputPort[Any]]):
    """A stream's input ports: ``ins.NAME``, ``ins['NAME']``, iteration, ``len``."""

    __slots__ = ()

    def __init__(self, stream: str, ports: dict[str, InputPort[Any]]) -> None:
        super().__init__(stream, "input", ports)


class Outs(_Bundle[OutputPort[Any]]):
    """A stream's output ports: ``outs.NAME``, ``outs['NAME']``, iteration, ``len``."""

    # Mangled names, so that no port name can shadow them.
    __slots__ = ("_Outs__connected", "_Outs__live")

    def __init__(self, stream: str, ports: dict[str, OutputPort[Any]]) -> None:
        super().__init__(stream, "output", ports)
        connected = [p for p in ports.values() if p._chans]
        self.__connected = len(connected)
        self.__live = len(connected)
        for p in connected:
            p._bundle = self

    def _port_gone(self) -> None:
        self.__live -= 1

    def _all_gone(self) -> bool:
        return self.__connected > 0 and self.__live <= 0


# The compiled fast paths (mimo/_speedups.c) when built and not turned off: see mimo.speedups.
_install_speedups(sys.modules[__name__], Channel, InputPort, OutputPort, EndOfStream)
