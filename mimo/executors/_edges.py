"""Connections between processes: batched, credit-bounded, re-ordered on arrival.

An edge runs from one copy of a producing stream to one input port of each
copy of the consuming stream; each such pair is a *link* with its own
sequence numbers. The sending end, :class:`Outbox`, is a
:class:`~mimo.Channel` to the output port that writes to it, so ports, counts
and back-pressure work exactly as in one process:

* items are gathered into batches of up to ``batch_size`` items and, when
  sized, ``batch_bytes`` bytes, sent when full or ``linger_s`` after the first
  item;
* each link has at most ``credits`` batches and, when sized, ``link_bytes``
  bytes in flight (a batch larger than that goes alone); a push waits while
  no link can take the next batch (back-pressure);
* the last batch of each link carries the end-of-stream marker;
* a link whose consumer has finished answers ``False``; when every link has,
  the edge detaches as a local channel would.

The receiving end, :class:`Inbox`, puts each link's batches into the input's
channel in sequence order, since calls may arrive out of order, and answers a
batch only once all its items are in that bounded channel.

In a checkpointed run, a :class:`Barrier` travels on every link as a batch
of its own, after every item its producer pushed before its part of the cut
and before every item after it; :mod:`mimo.executors._cut` says what the ends do with it.

Nothing here knows the transport: a :class:`Target` sends with a function
returning an asyncio future.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mimo._channel import Channel
from mimo._errors import MimoError

#: ``send(port, link, seq, items, end)``: a future of True (taken) or False (consumer gone).
Send = Callable[[str, int, int, list[Any], bool], "asyncio.Future[bool]"]
#: How many bytes an item counts for against the byte bounds.
Sizer = Callable[[Any], int]

#: What a scalar counts for: small, but never free, so that a flood of them is bounded too.
_SCALAR_BYTES = 8
_SCALARS = frozenset({int, float, bool, complex, type(None)})
#: Containers are sized from this many members, scaled up to their length.
_SAMPLE = 64
#: How deep containers are looked into; below that, an object counts as ``sys.getsizeof``.
_DEPTH = 3


def estimate_size(item: Any) -> int:
    """A cheap estimate of the bytes ``item`` takes when sent (not an exact pickle size).

    Bytes-like objects and ``str`` count their length, objects with an integer
    ``nbytes`` (NumPy arrays and the like) that; numbers and ``None`` 8 bytes;
    tuples, lists, sets, dicts and an object's ``__dict__`` the sum of their
    members, sampled from the first 64 and three levels deep; anything else
    ``sys.getsizeof``.
    """
    return _size(item, _DEPTH)


def _size(item: Any, depth: int) -> int:
    t = type(item)
    if t in _SCALARS:
        return _SCALAR_BYTES
    if t is bytes or t is str or t is bytearray:
        return len(item)
    if t is memoryview:
        return int(item.nbytes)
    nbytes = getattr(item, "nbytes", None)
    if isinstance(nbytes, int):
        return nbytes
    if depth <= 0:
        return sys.getsizeof(item)
    if isinstance(item, (tuple, list, set, frozenset)):
        return _sampled(item, len(item), depth - 1)
    if isinstance(item, dict):
        return _sampled((x for kv in item.items() for x in kv), 2 * len(item), depth - 1)
    attrs = getattr(item, "__dict__", None)
    if isinstance(attrs, dict):
        return _SCALAR_BYTES + _sampled((x for kv in attrs.items() for x in kv), 2 * len(attrs), depth - 1)
    return sys.getsizeof(item)


def _sampled(members: Any, n: int, depth: int) -> int:
    total = 0
    seen = 0
    for x in members:
        if seen == _SAMPLE:
            return _SCALAR_BYTES + total * n // seen
        total += _size(x, depth)
        seen += 1
    return _SCALAR_BYTES + total


@dataclass(eq=False)
class Target:
    """One link: where to send, to which input port, under which link number."""

    send: Send
    port: str
    link: int
    #: The consuming stream's name, and which of its copies (None: it runs as one), for messages.
    consumer: str = ""
    copy: int | None = None
    seq: int = 0
    outstanding: int = 0
    #: Estimated bytes of the batches in flight.
    in_flight: int = 0
    ended: bool = False
    gone: bool = False
    #: Its consumer restarts when its process dies (``on_error=Restart``): losing it is not an error.
    restartable: bool = False
    #: Its consumer's process died; it takes nothing until :meth:`Outbox.retarget` gives a new one.
    down: bool = False
    futures: dict[asyncio.Future[bool], int] = field(default_factory=dict)


class Barrier:
    """Checkpoint ``k``'s barrier, sent alone as a one-item batch: the link's items before it are before the cut."""

    __slots__ = ("k",)

    def __init__(self, k: int) -> None:
        self.k = k

    def __reduce__(self) -> Any:
        return (Barrier, (self.k,))


class PeerLost(Exception):
    """A transport's verdict: the process at the other end of a link is gone."""


def copy_label(stream: str, copy: int | None) -> str:
    """``stream`` for a stream run as one copy, ``stream[i]`` for copy ``i`` of several."""
    return stream if copy is None else f"{stream}[{copy}]"


class EdgeError(MimoError, RuntimeError):
    """Sending a batch along an edge failed (its consumer's process died, say).

    ``consumer`` names the stream copy at the other end (``name`` or
    ``name[i]``); ``peer_lost`` is
    True when the transport said that copy's process is gone, so the failure
    is the consumer's, not the sender's.
    """

    def __init__(self, message: str, *, consumer: str = "", peer_lost: bool = False) -> None:
        super().__init__(message)
        self.consumer = consumer
        self.peer_lost = peer_lost

    def __reduce__(self) -> Any:
        return (_edge_error, (str(self), self.consumer, self.peer_lost))


def _edge_error(message: str, consumer: str, peer_lost: bool) -> EdgeError:
    return EdgeError(message, consumer=consumer, peer_lost=peer_lost)


class Outbox(Channel[Any]):
    """The sending end of one edge from one stream copy, to every copy of the consumer.

    With ``sizeof`` (a function giving an item's bytes), a batch is also full
    at ``batch_bytes`` and a link takes a batch only while its batches in
    flight stay within ``link_bytes`` (or when it has none in flight, so that
    any one item can pass). The items of one ``push_many`` call may overfill
    a batch: they are in the producer's memory already.
    """

    __slots__ = (
        "_targets",
        "_credits",
        "_size",
        "_bytes_cap",
        "_link_bytes",
        "_sizeof",
        "_linger",
        "_batch",
        "_batch_bytes",
        "_timer",
        "_due",
        "_closing",
        "_gone",
        "_error",
        "_waiters",
        "_drained",
        "_turn",
        "_failed",
        "sent",
        "wait_s",
        "before_push",
        "eager_end",
    )

    def __init__(
        self,
        targets: list[Target],
        *,
        credits: int,
        batch_size: int,
        linger_s: float,
        label: str = "",
        batch_bytes: int | None = None,
        link_bytes: int | None = None,
        sizeof: Sizer | None = None,
    ) -> None:
        super().__init__(0, label=label)
        if not targets:
            raise ValueError("an edge needs at least one target")
        self._targets = targets
        self._credits = max(1, credits)
        self._size = max(1, batch_size)
        sized = sizeof is not None and (batch_bytes is not None or link_bytes is not None)
        self._sizeof = sizeof if sized else None
        self._bytes_cap = max(1, batch_bytes) if sized and batch_bytes is not None else sys.maxsize
        self._link_bytes = max(1, link_bytes) if sized and link_bytes is not None else sys.maxsize
        self._linger = linger_s
        self._batch: list[Any] = []
        self._batch_bytes = 0
        self._timer: asyncio.Handle | None = None
        self._due = False
        self._closing = False
        self._gone = False
        self._error: BaseException | None = None
        self._waiters: list[asyncio.Future[None]] = []
        self._drained: asyncio.Future[None] | None = None
        self._turn = 0
        self._failed: Target | None = None
        #: Items sent, and seconds producers waited for a credit.
        self.sent = 0
        self.wait_s = 0.0
        #: Called before an item is taken, while set (a source's part of a checkpoint is taken at its push).
        self.before_push: Callable[[], None] | None = None
        #: A checkpointed run's: the end marker leaves at once, whatever the credits.
        self.eager_end = False

    # -- what an OutputPort uses -------------------------------------------

    @property
    def detached(self) -> bool:
        return self._gone

    def has_room(self) -> bool:
        return self._error is not None or self._gone or not self._full() or self._free_target() is not None

    def push_nowait(self, item: Any) -> bool:
        # _put inline, with the estimate's common case inline too: this is per item.
        if self.before_push is not None:
            self.before_push()
        if self._error is not None:
            raise self._failure()
        if self._gone:
            return True
        batch = self._batch
        if len(batch) >= self._size or self._batch_bytes >= self._bytes_cap:
            if not self._send_batch():
                return False
            batch = self._batch
        batch.append(item)
        sizeof = self._sizeof
        if sizeof is not None:
            self._batch_bytes += _SCALAR_BYTES if sizeof is estimate_size and type(item) in _SCALARS else sizeof(item)
        if len(batch) >= self._size or self._batch_bytes >= self._bytes_cap:
            self._send_batch()
        elif len(batch) == 1 and self._timer is None:
            self._start_timer()
        return True

    def room(self) -> int:
        if self._error is not None or self._gone:
            return sys.maxsize  # push_many_nowait raises, or discards
        if not self._full():
            return self._size - len(self._batch)
        return self._size if self._free_target() is not None else 0

    def push_many_nowait(self, items: Sequence[Any]) -> int:
        if self.before_push is not None and items:
            self.before_push()
        if self._error is not None:
            raise self._failure()
        if self._gone:
            return len(items)
        # Takes exactly what room() promised, whatever the items' sizes.
        n = min(len(items), self.room())
        for i in range(n):
            self._put(items[i], True)
        return n

    def pass_room_on(self) -> None:
        self._wake()

    async def wait_room(self) -> None:
        while not self.has_room():
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            t0 = time.perf_counter()
            try:
                await fut
            finally:
                self.wait_s += time.perf_counter() - t0
                if fut in self._waiters:
                    self._waiters.remove(fut)

    def close_producer(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._cancel_timer()
        if self.eager_end and not (self._gone or self._error is not None):
            # The end marker is a checkpoint's barrier for every later one: it must not wait for credits.
            self._flush_now()
            for t in self._targets:
                if not (t.gone or t.ended or t.down):
                    self._send(t, [], 0, True)
        self._pump()

    def detach(self) -> None:
        """Every consumer has gone: discard from now on and tell the output port."""
        if self._gone:
            return
        self._gone = True
        self._batch = []
        self._batch_bytes = 0
        self._cancel_timer()
        self._wake()
        for callback in self.on_detach:
            callback(self)

    # -- draining ------------------------------------------------------------

    async def drained(self) -> None:
        """Wait until every link has its end marker and every batch is answered."""
        if not (self._closing or self._gone or self._error is not None):
            raise RuntimeError("drained() before the output was closed")
        if not self._is_drained():
            if self._drained is None:
                self._drained = asyncio.get_running_loop().create_future()
            await self._drained
        if self._error is not None:
            raise self._failure()

    def barrier(self, k: int) -> None:
        """Send checkpoint ``k``'s barrier on every link, after every item taken so far.

        The batch being gathered leaves first, and the barriers after it,
        whatever the credits (one batch and one barrier over the bound, once
        per checkpoint): the producer has recorded, so nothing may wait.
        """
        if self._gone or self._error is not None:
            return
        self._flush_now()
        for t in self._targets:
            if not (t.gone or t.ended or t.down):
                self._send(t, [Barrier(k)], 0, False)
                self.sent -= 1  # not an item

    def _flush_now(self) -> None:
        """Send the batch being gathered now, to a link with a credit free or else the least loaded one."""
        if not self._batch:
            return
        target = self._free_target() or min(
            (t for t in self._targets if not (t.gone or t.ended or t.down)),
            key=lambda t: t.outstanding,
            default=None,
        )
        if target is not None:
            batch, self._batch = self._batch, []
            size, self._batch_bytes = self._batch_bytes, 0
            self._due = False
            self._cancel_timer()
            self._send(target, batch, size, False)

    def retarget(self, index: int, send: Send, link: int) -> None:
        """The consumer copy of target ``index`` was restarted: send to it from now on, along ``link``.

        Batches in flight to the old one are forgotten (lost with it); if this
        output has already ended, the new one gets the end marker.
        """
        t = self._targets[index]
        t.send, t.link = send, link
        t.seq = t.outstanding = t.in_flight = 0
        t.futures = {}
        t.down = t.ended = False
        if t.gone:
            return
        if self._gone or self._error is not None:
            self._send(t, [], 0, True)
        self._pump()

    def target_gone(self, index: int) -> None:
        """The consumer copy of target ``index`` has finished: as if a batch had been answered "gone"."""
        t = self._targets[index]
        if t.gone:
            return
        t.gone = True
        t.down = False
        if all(x.gone for x in self._targets):
            self.detach()
        self._pump()

    def abandon(self) -> None:
        """Stop waiting for answers (the run is being torn down)."""
        self._cancel_timer()
        for t in self._targets:
            for f in list(t.futures):
                f.cancel()

    # -- internals -----------------------------------------------------------

    def _failure(self) -> EdgeError:
        error = self._error
        t = self._failed
        consumer = copy_label(t.consumer, t.copy) if t is not None and t.consumer else ""
        lost = isinstance(error, PeerLost)
        why = f": stream {consumer!r} is gone" if lost and consumer else ""
        exc = EdgeError(f"sending along {self.label} failed{why}", consumer=consumer, peer_lost=lost)
        exc.__cause__ = error
        return exc

    def _full(self) -> bool:
        return len(self._batch) >= self._size or self._batch_bytes >= self._bytes_cap

    def _put(self, item: Any, force: bool) -> bool:
        if self._full() and not self._send_batch() and not force:
            return False
        self._batch.append(item)
        if self._sizeof is not None:
            self._batch_bytes += self._sizeof(item)
        if self._full():
            self._send_batch()
        elif len(self._batch) == 1 and self._timer is None:
            self._start_timer()
        return True

    def _start_timer(self) -> None:
        if self._linger > 0:
            self._timer = asyncio.get_running_loop().call_later(self._linger, self._linger_over)
        else:
            self._timer = asyncio.get_running_loop().call_soon(self._linger_over)

    def _free_target(self) -> Target | None:
        best: Target | None = None
        n = len(self._targets)
        size = self._batch_bytes
        for i in range(n):
            t = self._targets[(self._turn + i) % n]
            if t.gone or t.ended or t.down or t.outstanding >= self._credits:
                continue
            if t.outstanding and t.in_flight + size > self._link_bytes:
                continue
            if best is None or t.outstanding < best.outstanding:
                best = t
        return best

    def _send_batch(self) -> bool:
        target = self._free_target()
        if target is None:
            return False
        batch, self._batch = self._batch, []
        size, self._batch_bytes = self._batch_bytes, 0
        self._due = False
        self._cancel_timer()
        # With several consumers, the next batch starts looking one further on.
        self._turn = (self._targets.index(target) + 1) % len(self._targets)
        end = self._closing and len(self._targets) == 1
        self._send(target, batch, size, end)
        return True

    def _send(self, target: Target, items: list[Any], size: int, end: bool) -> None:
        seq = target.seq
        target.seq += 1
        target.outstanding += 1
        target.in_flight += size
        if end:
            target.ended = True
        self.sent += len(items)
        fut = target.send(target.port, target.link, seq, items, end)
        target.futures[fut] = size
        fut.add_done_callback(lambda f: self._answered(target, f))

    def _answered(self, target: Target, fut: asyncio.Future[bool]) -> None:
        if fut not in target.futures:
            return  # sent to a consumer since replaced (retarget): its answer no longer counts
        target.outstanding -= 1
        target.in_flight -= target.futures.pop(fut, 0)
        if target.restartable and not fut.cancelled() and isinstance(fut.exception(), PeerLost):
            # The driver restarts that consumer and retargets this link; its batches are lost.
            target.down = True
            target.ended = False
        elif fut.cancelled():
            if self._error is None:
                self._error = asyncio.CancelledError()
                self._failed = target
        elif fut.exception() is not None:
            if self._error is None:
                self._error = fut.exception()
                self._failed = target
        elif fut.result() is False and not target.gone:
            target.gone = True
            if all(t.gone for t in self._targets):
                self.detach()
        self._pump()

    def _linger_over(self) -> None:
        self._timer = None
        self._due = True
        self._pump()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _pump(self) -> None:
        if self._error is None and not self._gone:
            if self._batch and (self._due or self._closing or self._full()):
                self._send_batch()
            if self._closing and not self._batch:
                for t in self._targets:
                    if not (t.ended or t.gone or t.down) and t.outstanding < self._credits:
                        self._send(t, [], 0, True)
        self._wake()
        if self._drained is not None and not self._drained.done() and self._is_drained():
            self._drained.set_result(None)

    def _is_drained(self) -> bool:
        if self._error is not None or self._gone:
            return all(t.outstanding == 0 for t in self._targets)
        return (
            self._closing and not self._batch and all((t.ended or t.gone) and t.outstanding == 0 for t in self._targets)
        )

    def _wake(self) -> None:
        if self._waiters and self.has_room():
            waiters, self._waiters = self._waiters, []
            for f in waiters:
                if not f.done():
                    f.set_result(None)


class Inbox:
    """The receiving end of an input port: every link's batches, in order, into one channel."""

    __slots__ = ("channel", "_next", "_turns", "_ended", "_mute", "cut", "port", "here", "end_seq")

    def __init__(self, channel: Channel[Any], port: str = "") -> None:
        self.channel = channel
        self.port = port
        #: In a checkpointed run, what is told of barriers, items and ends (see :mod:`mimo.executors._cut`),
        #: the batches that have come and are not all in the channel yet, and where each link's end came.
        self.cut: Any = None
        self.here: dict[tuple[int, int], list[Any]] = {}
        self.end_seq: dict[int, int] = {}
        self._next: dict[int, int] = {}
        self._turns: dict[tuple[int, int], asyncio.Future[None]] = {}
        self._ended: set[int] = set()
        # Links whose end marker must not close the channel (see replace_link).
        self._mute: set[int] = set()

    @property
    def ended(self) -> frozenset[int]:
        """The links whose end marker has come."""
        return frozenset(self._ended)

    def replace_link(self, old: int, new: int) -> None:
        """The producer of link ``old`` was restarted and now sends along ``new``.

        The channel counts one producer for both: whichever of the two did not
        end first has its end marker ignored, so the channel closes once.
        """
        if old in self._ended:
            self._mute.add(new)
        else:
            self._mute.add(old)

    async def deliver(self, link: int, seq: int, items: list[Any], end: bool) -> bool:
        """Put ``items`` into the channel after every earlier batch of ``link``.

        Returns once they are all in (waiting for room as a local push
        would), True while the consumer is there, False once it has gone.
        """
        if self.cut is not None:
            return await self._deliver_cut(link, seq, items, end)
        if self._next.get(link, 0) != seq:
            await self._turn(link, seq)
        ch = self.channel
        try:
            for item in items:
                if not ch.push_nowait(item):
                    await ch.push(item)
            if end:
                self._end(link)
        finally:
            self._pass_turn(link, seq)
        return not ch.detached

    async def _deliver_cut(self, link: int, seq: int, items: list[Any], end: bool) -> bool:
        """:meth:`deliver` in a checkpointed run: the cut hears of each batch, barrier and end as it arrives."""
        cut = self.cut
        port = self.port
        k = items[0].k if items and type(items[0]) is Barrier else 0
        if k:
            items = []
        rest: list[Any] = [items, 0]  # the batch's items, and how many of them are in the channel
        self.here[(link, seq)] = rest
        if end:
            self.end_seq[link] = seq
        ch = self.channel
        try:
            if k:
                cut.barrier(port, link, seq, k)
            else:
                cut.arrived(port, link, seq, items, end)
            if self._next.get(link, 0) != seq:
                await self._turn(link, seq)
            try:
                await cut.admit(port, link, seq)
                for item in items:
                    if not ch.push_nowait(item):
                        await ch.push(item)
                    rest[1] += 1
                if end:
                    self._end(link)
            finally:
                self._pass_turn(link, seq)
        finally:
            del self.here[(link, seq)]
        return not ch.detached

    def waiting(self, link: int, seq: int) -> list[Any]:
        """The items of batch ``seq`` of ``link`` that have come but are not in the channel yet."""
        items, done = self.here.get((link, seq), ((), 0))
        return list(items[done:])

    def came(self, link: int, below: int) -> bool:
        """True if every batch of ``link`` numbered below ``below`` has come (in the channel or waiting here)."""
        return all((link, seq) in self.here for seq in range(self._next.get(link, 0), below))

    async def _turn(self, link: int, seq: int) -> None:
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._turns[(link, seq)] = turn
        try:
            await turn
        finally:
            del self._turns[(link, seq)]

    def _pass_turn(self, link: int, seq: int) -> None:
        self._next[link] = seq + 1
        after = self._turns.get((link, seq + 1))
        if after is not None and not after.done():
            after.set_result(None)

    def _end(self, link: int) -> None:
        if link not in self._ended:
            self._ended.add(link)
            if link not in self._mute:
                self.channel.close_producer()
