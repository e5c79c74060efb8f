"""Checkpointed runs: barriers through the graph, snapshots, and resuming.

A checkpoint is a consistent cut of the whole graph, taken as Chandy and
Lamport (and Flink) do, without stopping the run:

* every ``every`` seconds the run starts checkpoint *k*: each source records
  its state at its next push (before that item enters any queue) and sends a
  *barrier* for *k* down every queue it feeds;
* a stream records its state (pickled at once) when it first meets a barrier
  of *k* on any input, and then sends the barrier on. That is the *unaligned*
  form: no input is ever blocked waiting for a barrier, since a mimo stream
  may read its inputs in any order and blocking one could deadlock it. The
  items that reach it after it recorded, from a producer whose barrier has
  not come yet, are recorded as the queue's contents (channel state);
* a queue fed by several streams (fan-in) tells their items apart by who
  pushes: an item pushed by a producer that has already sent its barrier is
  after the cut and is not recorded;
* once every stream has recorded and every queue has every producer's
  barrier (or end), the cut is complete and written to the store in one
  transaction.

A stream run as several copies (``workers=N``) or reading from sub-tasks
records when none of its tasks holds an item: a task that took one holds it
until it asks for the next. Barriers are invisible to stream code (the
ports skip them) and nothing of this exists in a run without a checkpoint:
its queues are plain :class:`~mimo._channel.Channel` objects.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import pickle
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any

from mimo._channel import EMPTY, Channel
from mimo._errors import EndOfStream, MimoError
from mimo._store import CheckpointStore, open_store

if TYPE_CHECKING:
    from mimo._graph import Graph, Node

_VERSION = 1

_current_task: Callable[[], asyncio.Task[Any] | None]
if sys.version_info >= (3, 12):
    _current_task = asyncio.current_task  # in C
else:  # asyncio.current_task is Python code here; this is what it does, without its checks
    from asyncio.events import _get_running_loop

    _tasks: dict[Any, asyncio.Task[Any]] = asyncio.tasks._current_tasks  # type: ignore[attr-defined]

    def _current_task() -> asyncio.Task[Any] | None:
        return _tasks.get(_get_running_loop())


class CheckpointError(MimoError):
    """A checkpointed run cannot go on: a state that cannot be saved, or a checkpoint of another graph."""


class _Barrier:
    __slots__ = ("k",)

    def __init__(self, k: int) -> None:
        self.k = k


class _After:
    """An item pushed after its producer's barrier, before the consumer recorded: not part of the cut."""

    __slots__ = ("item", "k")

    def __init__(self, item: Any, k: int) -> None:
        self.item = item
        self.k = k


#: The stream (its checkpoint record) whose task is running: who pushes.
_CURRENT: contextvars.ContextVar[_NodeCk | None] = contextvars.ContextVar("mimo_checkpoint_node", default=None)


def position() -> dict[str, Any] | None:
    """A dict the running stream keeps its position in, saved with each checkpoint; None if the run takes none.

    Fresh for every run and restored when a run resumes. Stock sources and
    sinks keep their offsets here (so that a stream object's own ``state``
    is left to its user), and only in a checkpointed run: others pay nothing.
    """
    node = _CURRENT.get()
    return node.local if node is not None else None


class _NodeCk:
    """One stream's part in the checkpoints."""

    def __init__(self, ck: Checkpointer, index: int, node: Node, workers: int) -> None:
        self.ck = ck
        self.id = index
        self.node = node
        self.name = node.name
        self.workers = workers
        self.ins: list[CkChannel] = []
        self.outs: list[CkChannel] = []
        self.source = False
        self.recorded = False
        self.finished = False
        self.skip = False  # finished at the checkpoint resumed from: not run again
        self.snap: bytes | None = None
        self.local: dict[str, Any] = {}
        self.copies_ended = 0
        # The one task that has read its inputs so far; once a second one reads, holders tracks them all.
        self.solo: asyncio.Task[Any] | None = None
        self.holders: set[asyncio.Task[Any]] | None = None
        self.known: set[asyncio.Task[Any]] = set()
        self.want: asyncio.Future[None] | None = None

    # -- who holds an item ------------------------------------------------------

    def arrive(self, t: asyncio.Task[Any] | None) -> bool:
        """Task ``t`` asks for an item: it holds none now. False if it must wait for a recording."""
        if t is not self.solo:
            if self.solo is None and self.holders is None:
                self.solo = t
            elif self.holders is None:
                # A second reader: the first may be holding an item (it is until it asks again).
                self.holders = {self.solo} if self.solo is not None else set()
                self.solo = None
                self._know(t)
                for h in list(self.holders):
                    self._know(h)
            else:
                self._know(t)
        if self.holders is not None:
            self.holders.discard(t)
        if self.want is not None:
            if self._quiet():
                self.record()
                return True
            return False
        return True

    def took(self, t: asyncio.Task[Any] | None) -> None:
        if self.holders is not None and t is not None:
            self.holders.add(t)

    def _know(self, t: asyncio.Task[Any] | None) -> None:
        if t is not None and t not in self.known:
            self.known.add(t)
            t.add_done_callback(self._task_done)

    def _task_done(self, t: asyncio.Task[Any]) -> None:
        if self.holders is not None:
            self.holders.discard(t)
        if self.want is not None and self._quiet():
            self.record()

    def _quiet(self) -> bool:
        return not self.holders or all(h.done() for h in self.holders)

    def request(self) -> bool:
        """Record now if no task of this stream holds an item; else ask to be called back. True if recorded."""
        if self.recorded:
            return True
        if self._quiet():
            self.record()
            return True
        if self.want is None:
            self.want = asyncio.get_running_loop().create_future()
        return False

    def inputs_complete(self) -> bool:
        return all(ch.complete for ch in self.ins)

    # -- recording -----------------------------------------------------------------

    def record(self) -> None:
        """Take this stream's part of the current checkpoint and send the barrier on."""
        ck = self.ck
        if self.recorded or not ck.active:
            self._release()
            return
        self.recorded = True
        self.snap = ck.pickle_state(self)
        for ch in self.ins:
            ch.consumer_recorded()
        for ch in self.outs:
            ch.barrier_from(self)
        ck.part_done()
        self._release()

    def _release(self) -> None:
        want, self.want = self.want, None
        if want is not None and not want.done():
            want.set_result(None)

    def copy_ended(self) -> None:
        """A copy ended cleanly; after the last one, the stream's final state stands for every later checkpoint."""
        self.copies_ended += 1
        if self.copies_ended < self.workers:
            return
        ck = self.ck
        self.finished = True
        if not ck.active or not self.recorded:
            self.snap = ck.pickle_state(self)
        if ck.active and not self.recorded:
            self.recorded = True
            ck.part_done()
        self._release()
        for ch in self.ins:
            ch.consumer_finished()


class CkChannel(Channel[Any]):
    """A queue of a checkpointed run: carries barriers and records its contents for the cut.

    Its type differs from :class:`Channel`, so the ports' inline fast paths
    (which read Channel's fields) call these methods instead.
    """

    __slots__ = (
        "_ck",
        "_node",
        "_producers_of",
        "_ended",
        "_marked",
        "_recorded",
        "_log",
        "complete",
        "_specials",
        "_copies_closed",
    )

    def __init__(self, ck: Checkpointer, node: _NodeCk, producers_of: dict[int, int], *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._ck = ck
        self._node = node
        #: Producer stream id -> its copies.
        self._producers_of = producers_of
        self._copies_closed: dict[int, int] = {}
        self._ended: set[int] = set()
        self._marked: set[int] = set()
        self._recorded = False
        self._log: list[Any] | None = None
        self.complete = True
        self._specials = 0

    # -- the cut ------------------------------------------------------------------

    def begin(self) -> None:
        self._marked = set(self._ended)
        self._recorded = False
        self._log = None
        self.complete = len(self._marked) >= len(self._producers_of)

    def consumer_recorded(self) -> None:
        k = self._ck.k
        self._recorded = True
        # What is queued now and came before its producer's barrier was pushed before the cut
        # and is not in the consumer's state yet: it belongs to the checkpoint.
        self._log = [x for x in self._buf if type(x) is not _Barrier and not (type(x) is _After and x.k == k)]
        self._log = [x.item if type(x) is _After else x for x in self._log]
        if self.complete:
            self._ck.part_done()

    def consumer_finished(self) -> None:
        if not self._recorded and self._ck.active:
            self._recorded = True
            self._log = []
            if self.complete:
                self._ck.part_done()

    def barrier_from(self, node: _NodeCk) -> None:
        if node.id in self._marked:
            return
        if not self._detached and self._producers > 0:
            self._buf.append(_Barrier(self._ck.k))
            self._specials += 1
            if self._getters:
                self._wake_getter()
        self._mark(node.id)

    def _mark(self, nid: int) -> None:
        self._marked.add(nid)
        if not self.complete and len(self._marked) >= len(self._producers_of):
            self.complete = True
            if self._recorded:
                self._ck.part_done()

    def state(self) -> list[Any]:
        return list(self._log or ())

    # -- producer side ------------------------------------------------------------

    def _producer(self) -> _NodeCk | None:
        p = _CURRENT.get()
        if p is not None and p.source and not p.recorded:
            p.record()
        return p

    def has_room(self) -> bool:
        if self._ck.active:
            self._producer()
        return super().has_room()

    def room(self) -> int:
        if self._ck.active:
            self._producer()
        return super().room()

    def push_nowait(self, item: Any) -> bool:
        if not self._ck.active:
            # Channel.push_nowait's common case inline: this runs once per item per queue.
            buf = self._buf
            n = len(buf)
            if n < self._cap and self._producers > 0:
                buf.append(item)
                if n >= self._high:
                    self._high = n + 1
                if self._getters:
                    self._wake_getter()
                return True
            return super().push_nowait(item)
        if self._ck.active:
            p = self._producer()
            if p is not None and not self._detached:
                if not self._recorded:
                    if p.id in self._marked:
                        # After its producer's barrier, before the consumer recorded: tagged so the
                        # consumer's recording leaves it out of the cut.
                        ok = super().push_nowait(_After(item, self._ck.k))
                        if ok:
                            self._specials += 1
                        return ok
                elif not self.complete and p.id not in self._marked:
                    # Before its producer's barrier, after the consumer recorded: channel state.
                    ok = super().push_nowait(item)
                    if ok and self._log is not None:
                        self._log.append(item)
                    return ok
        return super().push_nowait(item)

    def push_many_nowait(self, items: Sequence[Any]) -> int:
        if self._ck.active:
            n = 0
            for item in items:
                if not self.push_nowait(item):
                    break
                n += 1
            return n
        return super().push_many_nowait(items)

    def close_producer(self) -> None:
        p = _CURRENT.get()
        super().close_producer()
        if p is not None and p.id in self._producers_of:
            n = self._copies_closed.get(p.id, 0) + 1
            self._copies_closed[p.id] = n
            if n >= self._producers_of[p.id]:
                self._ended.add(p.id)
                if self._ck.active:
                    self._mark(p.id)

    # -- consumer side ------------------------------------------------------------

    def _try_pop(self) -> Any:
        node = self._node
        t = _current_task()
        if t is not node.solo or node.want is not None:
            if not node.arrive(t):
                return EMPTY
        ck = self._ck
        if not self._specials and not ck.active:
            buf = self._buf
            if buf:
                # Channel._try_pop inline, as above.
                item = buf.popleft()
                self._popped += 1
                if self._putters:
                    self._room_freed()
                if node.holders is not None:
                    node.took(t)
                return item
            return super()._try_pop()
        if ck.active and not node.recorded and node.inputs_complete() and not node.request():
            return EMPTY
        buf = self._buf
        while True:
            if not buf:
                self._specials = 0
                return super()._try_pop()
            head = buf[0]
            tp = type(head)
            if tp is _Barrier:
                if ck.active and head.k == ck.k and not node.recorded and not node.request():
                    return EMPTY
                buf.popleft()
                self._specials -= 1
                if self._putters:
                    self._room_freed()
                continue
            item = super()._try_pop()
            if tp is _After:
                self._specials -= 1
                item = head.item
            node.took(t)
            return item

    async def iterate(self, port: Any) -> AsyncIterator[Any]:
        """What ``async for`` on an input port reads: one generator frame per item, barriers skipped."""
        try:
            while True:
                item = self._try_pop()
                if item is EMPTY:
                    item = await port._pop_slow()
                yield item
        except EndOfStream:
            return

    def _try_peek(self) -> Any:
        while True:
            buf = self._buf
            if buf and type(buf[0]) is _Barrier:
                item = self._try_pop()  # handles the barrier; the item after it goes back in front
                if item is EMPTY:
                    return EMPTY
                buf.appendleft(item)
                self._popped -= 1
                return item
            if buf and type(buf[0]) is _After:
                return buf[0].item
            return super()._try_peek()

    def _pop_many(self, limit: int) -> list[Any]:
        if not self._specials and not self._ck.active and self._node.holders is None:
            t = _current_task()
            node = self._node
            if t is node.solo and node.want is None:
                return super()._pop_many(limit)
        out: list[Any] = []
        ck = self._ck
        node = self._node
        while len(out) < limit:
            if out and (node.want is not None or (ck.active and not node.recorded)):
                # The stream may record at its next pop: it must have dealt with these items first.
                break
            try:
                item = self._try_pop()
            except BaseException:
                if out:
                    break
                raise
            if item is EMPTY:
                break
            out.append(item)
        return out

    async def wait_item(self, timeout: float | None = None) -> None:
        want = self._node.want
        if want is not None:
            if timeout is None:
                await asyncio.shield(want)
            else:
                async with asyncio.timeout(timeout):
                    await asyncio.shield(want)
            return
        await super().wait_item(timeout)


class Checkpointer:
    """Takes a run's checkpoints and resumes it from the last one."""

    def __init__(self, graph: Graph, store: object, every: float, workers: Any) -> None:
        if isinstance(every, bool) or not isinstance(every, int | float) or not every > 0:
            raise ValueError(f"checkpoint_every must be a number of seconds > 0, not {every!r}")
        if graph.feeds:
            raise ValueError(
                "a checkpointed run cannot resume items fed with step.push(); feed them from a source stream "
                "(lib.from_iterable) instead"
            )
        self.graph = graph
        self.every = float(every)
        self.fingerprint = fingerprint(graph, workers)
        self.nodes: dict[Node, _NodeCk] = {}
        for i, node in enumerate(graph.nodes):
            self.nodes[node] = _NodeCk(self, i, node, workers(node))
        self.channels: dict[tuple[str, str], CkChannel] = {}
        self.k = 0
        self.active = False
        self.error: BaseException | None = None
        self.taken = 0
        self.last_size = 0
        self._pending = 0
        self._complete: asyncio.Future[None] | None = None
        self._saving: asyncio.Future[None] | None = None
        self._resume: dict[str, Any] | None = None
        self.store: CheckpointStore = open_store(store)
        try:
            saved = self.store.load()
        except BaseException:
            self.store.close()
            raise
        if saved is not None and not saved.done:
            if saved.fingerprint != self.fingerprint:
                self.store.close()
                raise CheckpointError(
                    f"the checkpoint in {_where(store)} was taken by a different graph (its streams, ports or "
                    "joins differ), so this run cannot resume from it; delete it or pass another checkpoint file"
                )
            self._resume = pickle.loads(saved.data)
            self.k = saved.number

    @property
    def resumed(self) -> bool:
        """True if this run goes on from a saved checkpoint."""
        return self._resume is not None

    def make_channel(self, node: Node, port: str, cap: int, **kw: Any) -> CkChannel:
        me = self.nodes[node]
        producers_of: dict[int, int] = {}
        for e in self.graph.inputs_of(node, port):
            src = self.nodes[e.src]
            producers_of[src.id] = src.workers
        ch = CkChannel(self, me, producers_of, cap, **kw)
        me.ins.append(ch)
        for e in self.graph.inputs_of(node, port):
            self.nodes[e.src].outs.append(ch)
        self.channels[(node.name, port)] = ch
        return ch

    def prepare(self) -> None:
        """Once the queues exist: find the sources and restore the saved checkpoint, if any."""
        for n in self.nodes.values():
            n.source = all(not ch._producers_of for ch in n.ins)
        data = self._resume
        if data is None:
            return
        for n in self.nodes.values():
            entry = data["nodes"].get(n.name)
            if entry is None:
                continue
            state, local = pickle.loads(entry["snap"])
            _restore_state(n.node.stream, state)
            n.local = local
            n.skip = entry["finished"]
        for (name, port), ch in self.channels.items():
            items = data["channels"].get(f"{name}.{port}")
            if items and not ch._node.skip:
                ch._buf.extend(pickle.loads(items))

    def enter(self, node: Node) -> bool:
        """Called in a stream copy's task before it runs; True if it finished before the checkpoint (skip it)."""
        n = self.nodes[node]
        _CURRENT.set(n)
        return n.skip

    def ended(self, node: Node) -> None:
        self.nodes[node].copy_ended()

    # -- taking checkpoints ---------------------------------------------------------

    def pickle_state(self, n: _NodeCk) -> bytes:
        try:
            return pickle.dumps((n.node.stream.state, n.local), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            err = CheckpointError(
                f"stream {n.name!r}: its state cannot be saved in a checkpoint ({type(exc).__name__}: {exc}); "
                "a checkpointed stream keeps only picklable values in its state"
            )
            self.fail(err)
            return b""

    def fail(self, err: BaseException) -> None:
        if self.error is None:
            self.error = err
        if self._complete is not None and not self._complete.done():
            self._complete.set_result(None)

    def part_done(self) -> None:
        self._pending -= 1
        if self._pending <= 0 and self._complete is not None and not self._complete.done():
            self._complete.set_result(None)

    def begin(self) -> None:
        self.k += 1
        self.active = True
        self._complete = asyncio.get_running_loop().create_future()
        self._pending = 0
        for n in self.nodes.values():
            n.recorded = n.finished
            if not n.finished:
                self._pending += 1
        for ch in self.channels.values():
            ch.begin()
            if ch._node.finished:
                ch._recorded = True
                ch._log = []
            if not (ch._recorded and ch.complete):
                self._pending += 1
        if self._pending <= 0:
            self._complete.set_result(None)

    def assemble(self) -> bytes:
        nodes = {n.name: {"snap": n.snap, "finished": n.finished} for n in self.nodes.values()}
        channels: dict[str, bytes] = {}
        for (name, port), ch in self.channels.items():
            items = ch.state()
            if items:
                try:
                    channels[f"{name}.{port}"] = pickle.dumps(items, protocol=pickle.HIGHEST_PROTOCOL)
                except Exception as exc:
                    raise CheckpointError(
                        f"the items queued for {name}.{port} cannot be saved in a checkpoint "
                        f"({type(exc).__name__}: {exc}); items of a checkpointed run must be picklable"
                    ) from exc
        return pickle.dumps({"version": _VERSION, "nodes": nodes, "channels": channels})

    async def coordinate(self, stop: asyncio.Future[None]) -> None:
        """Take a checkpoint every ``every`` seconds until the run ends; a failure stops the run."""
        try:
            while True:
                await asyncio.sleep(self.every)
                self.begin()
                assert self._complete is not None
                await self._complete
                if self.error is not None:
                    raise self.error
                data = self.assemble()
                self.active = False
                for n in self.nodes.values():
                    n._release()
                # Shielded: a run that ends meanwhile lets the write finish before the store closes.
                self._saving = asyncio.ensure_future(asyncio.to_thread(self.store.save, self.fingerprint, self.k, data))
                await asyncio.shield(self._saving)
                self.taken += 1
                self.last_size = len(data)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self.error = exc
            if not stop.done():
                stop.set_result(None)

    async def finish(self, ok: bool) -> None:
        """The run is over: a clean end marks the checkpoint done; the store is closed either way."""
        try:
            if self._saving is not None:
                await asyncio.wait([self._saving])
            if ok:
                await asyncio.to_thread(self._mark_done)
        finally:
            self.store.close()

    def _mark_done(self) -> None:
        if self.taken == 0 and not self.resumed:
            # Never saved: store the end anyway, so a run over a file starts afresh next time.
            self.store.save(self.fingerprint, self.k, pickle.dumps({"version": _VERSION, "nodes": {}, "channels": {}}))
        self.store.mark_done()


def _restore_state(stream: Any, state: Any) -> None:
    # In place where possible: the user (or lib.collect's caller) may hold the object itself.
    old = stream.state
    if isinstance(old, list) and isinstance(state, list):
        old[:] = state
    elif isinstance(old, dict) and isinstance(state, dict) and type(old) is type(state):
        old.clear()
        old.update(state)
    else:
        stream.state = state


def _where(store: object) -> str:
    return repr(getattr(store, "path", store)) if not isinstance(store, str) else repr(store)


def fingerprint(graph: Graph, workers: Any) -> str:
    """A digest of the graph's shape: stream names, their ports and copies, and the joins."""
    parts = [f"node {n.name} in={list(n.ins)} out={list(n.outs)} workers={workers(n)}" for n in graph.nodes]
    parts += sorted(f"edge {e.src.name}.{e.out}->{e.dst.name}.{e.in_}" for e in graph.edges)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()
