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

A stream run as several copies (``workers=N``) records when none of its
copies holds an item: a copy that took one holds it until it asks for the
next. Barriers are invisible to stream code.

Between checkpoints a checkpointed run's queues are plain
:class:`~mimo._channel.Channel` objects with plain deques, so the ports'
inline fast paths run at full speed. Only while a checkpoint is being taken
(and until its barriers have left a queue) is a queue's buffer a
:class:`_CkBuf`, whose methods (called by those same fast paths) sort
producers' items around the cut and skip barriers, and its class
:class:`_WindowChannel`, for batched pops and peeks.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import pickle
import sys
import weakref
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mimo._channel import EMPTY, Channel
from mimo._errors import MimoError
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


#: Each checkpointed run's Checkpointer, by the run's deadlock monitor (what keyed workers' routing is given).
_BY_MONITOR: weakref.WeakKeyDictionary[Any, Checkpointer] = weakref.WeakKeyDictionary()


def checkpointer_of(monitor: object) -> Checkpointer | None:
    """The Checkpointer of the run watched by ``monitor``; None if the run takes no checkpoints."""
    return _BY_MONITOR.get(monitor) if monitor is not None else None


def enter_router(node: _NodeCk) -> None:
    """Called in a keyed stream's router task: it pops the stream's queues on the stream's behalf."""
    _CURRENT.set(node)
    task = _current_task()
    if task is not None:
        node.routers.add(task)


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


#: The position dict of a stream copy run by an executor (which has no :class:`_NodeCk`).
_POSITION: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("mimo_position", default=None)

#: Which copy of its stream the running task is (its part of the position, with several copies).
_COPY: contextvars.ContextVar[int] = contextvars.ContextVar("mimo_copy", default=0)


def position() -> dict[str, Any] | None:
    """A dict the running stream keeps its position in, saved with each checkpoint; None if the run takes none.

    Fresh for every run and restored when a run resumes. Stock sources and
    sinks keep their offsets here (so that a stream object's own ``state``
    is left to its user), and only in a checkpointed run: others pay nothing.
    """
    node = _CURRENT.get()
    if node is None:
        return _POSITION.get()
    if node.workers == 1:
        return node.local
    # Each copy its own, as its local variables would be in a run without checkpoints.
    return node.local.setdefault(f"copy {_COPY.get()}", {})  # type: ignore[no-any-return]


def use_position(local: dict[str, Any]) -> None:
    """Make ``local`` what :func:`position` returns in this task (and those it starts): an executor's copies."""
    _POSITION.set(local)


def take_snapshot(name: str, state: Any, local: dict[str, Any]) -> bytes:
    """A stream's part of a checkpoint: its ``state`` and position, pickled now; CheckpointError naming it if not."""
    try:
        return pickle.dumps((state, local), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        raise CheckpointError(
            f"stream {name!r}: its state cannot be saved in a checkpoint ({type(exc).__name__}: {exc}); "
            "a checkpointed stream keeps only picklable values in its state"
        ) from None


def restore_snapshot(stream: Any, snap: bytes) -> dict[str, Any]:
    """Put a snapshot's state back on ``stream`` (in place where possible); its position dict."""
    state, local = pickle.loads(snap)
    _restore_state(stream, state)
    return local  # type: ignore[no-any-return]


def pickle_items(items: list[Any], where: str) -> bytes:
    """The items queued for input ``where`` (``stream.port``) at a cut, pickled; CheckpointError if they cannot be."""
    try:
        return pickle.dumps(items, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        raise CheckpointError(
            f"the items queued for {where} cannot be saved in a checkpoint "
            f"({type(exc).__name__}: {exc}); items of a checkpointed run must be picklable"
        ) from exc


class _NodeCk:
    """One stream's part in the checkpoints."""

    def __init__(self, ck: Checkpointer, index: int, node: Node, workers: int) -> None:
        self.ck = ck
        self.id = index
        self.node = node
        self.name = node.name
        self.workers = workers
        self.ins: list[_Lane] = []
        self.outs: list[_Lane] = []
        self.source = False
        self.recorded = False
        self.finished = False
        self.skip = False  # finished at the checkpoint resumed from: not run again
        self.snap: bytes | None = None
        self.local: dict[str, Any] = {}
        self.copies_ended = 0
        #: Its copies' tasks (registered as they start).
        self.tasks: list[asyncio.Task[Any]] = []
        #: Several copies only, during a checkpoint: the tasks that hold an item they took.
        self.holders: set[asyncio.Task[Any]] | None = None
        self.known: set[asyncio.Task[Any]] = set()
        self.want = False
        #: Keyed workers: the routers' tasks (they never hold an item: what they took is in
        #: the snapshot), the copies' own queues (released with the inputs), and what completes
        #: the position just before each snapshot (what those queues and routers hold).
        self.routers: set[asyncio.Task[Any]] = set()
        self.own_queues: list[Any] = []
        self.before_snap: Callable[[], None] | None = None

    # -- who holds an item (several copies only) ------------------------------------

    def begin(self, waiting: set[Any]) -> None:
        self.recorded = self.finished
        self.want = False
        if self.workers > 1 and not self.finished:
            # Unknown until they ask for their next item: a copy busy now may hold one.
            self.holders = {t for t in self.tasks if not t.done() and t not in waiting}
            for t in self.holders:
                self._know(t)
        else:
            self.holders = None

    def arrive(self, t: asyncio.Task[Any] | None) -> bool:
        """Task ``t`` asks for an item, so it holds none. False while a recording waits for the others."""
        holders = self.holders
        if holders is not None:
            holders.discard(t)
            if self.want:
                if self._quiet():
                    self.record()
                    return True
                return False
        return True

    def took(self, t: asyncio.Task[Any] | None) -> None:
        if self.holders is not None and t is not None and self.ck.active and t not in self.routers:
            self.holders.add(t)
            self._know(t)

    def _know(self, t: asyncio.Task[Any]) -> None:
        if t not in self.known:
            self.known.add(t)
            t.add_done_callback(self._task_done)

    def _task_done(self, t: asyncio.Task[Any]) -> None:
        if self.holders is not None:
            self.holders.discard(t)
            if self.want and self._quiet():
                self.record()

    def _quiet(self) -> bool:
        return not self.holders

    def request(self) -> bool:
        """Record now if no copy holds an item; else once the last one asks for its next. True if recorded."""
        if self.recorded:
            return True
        if self._quiet():
            self.record()
            return True
        self.want = True
        return False

    def inputs_complete(self) -> bool:
        return all(lane.complete for lane in self.ins)

    # -- recording -----------------------------------------------------------------

    def record(self) -> None:
        """Take this stream's part of the current checkpoint and send the barrier on."""
        ck = self.ck
        if self.recorded or not ck.active:
            self._release()
            return
        self.recorded = True
        if self.before_snap is not None:
            self.before_snap()
        self.snap = ck.pickle_state(self)
        for lane in self.ins:
            lane.consumer_recorded()
        for lane in self.outs:
            lane.barrier_from(self)
        ck.part_done()
        self._release()

    def _release(self) -> None:
        if self.want:
            self.want = False
            for lane in self.ins:
                lane.release()
            for q in self.own_queues:
                q.release()

    def copy_ended(self) -> None:
        """A copy ended cleanly; after the last one, the stream's final state stands for every later checkpoint."""
        self.copies_ended += 1
        if self.copies_ended < self.workers:
            return
        ck = self.ck
        self.finished = True
        if not ck.active or not self.recorded:
            if self.before_snap is not None:
                self.before_snap()
            self.snap = ck.pickle_state(self)
        if ck.active:
            if not self.recorded:
                self.recorded = True
                ck.part_done()
            for lane in self.outs:
                lane.mark(self.id)  # no more items from it: as good as its barrier
            for lane in self.ins:
                lane.consumer_finished()
        self._release()


class _Lane:
    """One queue's part in the checkpoints.

    The queue stays a plain :class:`Channel` (so the ports keep their inline
    fast paths); only while a checkpoint is being taken, and until its
    barriers have left the queue, are its buffer and class swapped for ones
    that carry barriers and keep them from the stream.
    """

    __slots__ = (
        "ck",
        "ch",
        "node",
        "producers",
        "marked",
        "recorded",
        "log",
        "complete",
        "specials",
        "barriers",
        "fake",
    )

    def __init__(self, ck: Checkpointer, ch: Channel[Any], node: _NodeCk, producers: set[int]) -> None:
        self.ck = ck
        self.ch = ch
        self.node = node
        self.producers = producers
        self.marked: set[int] = set()
        self.recorded = False
        self.log: list[Any] = []
        self.complete = True
        self.specials = 0  # barriers and tagged items in the buffer
        self.barriers = 0  # barriers in the buffer: they take no room (a producer checked for room before one came)
        self.fake = False  # holds the closed queue open while its stream waits to record

    def begin(self, finished: set[int]) -> None:
        self.marked = self.producers & finished
        self.recorded = self.node.finished
        self.log = []
        self.complete = len(self.marked) >= len(self.producers)
        ch = self.ch
        if not ch._detached and type(ch._buf) is not _CkBuf:
            ch._buf = _CkBuf(self, deque.__iter__(ch._buf))
            ch.__class__ = _WindowChannel

    def done(self) -> bool:
        return self.recorded and self.complete

    def uninstall(self) -> None:
        ch = self.ch
        if self.specials or self.fake or self.ck.active:
            return
        buf = ch._buf
        if type(buf) is _CkBuf:
            ch._buf = deque(deque.__iter__(buf))
        ch.__class__ = Channel

    def consumer_recorded(self) -> None:
        k = self.ck.k
        self.recorded = True
        buf = self.ch._buf
        # Queued before its producer's barrier and not yet taken: part of the cut.
        for x in deque.__iter__(buf):
            tx = type(x)
            if tx is _Barrier:
                continue
            if tx is _After:
                if x.k != k:
                    self.log.append(x.item)
            else:
                self.log.append(x)
        if self.complete:
            self.ck.part_done()

    def consumer_finished(self) -> None:
        if not self.recorded:
            self.recorded = True
            self.log = []
            if self.complete:
                self.ck.part_done()

    def barrier_from(self, node: _NodeCk) -> None:
        if node.id in self.marked:
            return
        ch = self.ch
        if not ch._detached and ch._producers > 0 and type(ch._buf) is _CkBuf:
            deque.append(ch._buf, _Barrier(self.ck.k))
            self.specials += 1
            self.barriers += 1
            if ch._getters:
                # Soon, not now: a waiting consumer is what lets a push hand an item over at
                # capacity 0, and the push whose source this barrier cut is not done yet.
                asyncio.get_running_loop().call_soon(ch._wake_getter)
        self.mark(node.id)

    def mark(self, nid: int) -> None:
        if nid in self.marked or nid not in self.producers:
            return
        self.marked.add(nid)
        if not self.complete and len(self.marked) >= len(self.producers):
            self.complete = True
            if self.recorded:
                self.ck.part_done()

    def release(self) -> None:
        ch = self.ch
        if self.fake:
            self.fake = False
            ch._producers -= 1
        ch._wake_all_getters()

    def settle(self, buf: _CkBuf) -> bool:
        """True if the stream can take a real item now; meets the barriers at the head first."""
        node = self.node
        if _CURRENT.get() is not node:
            # Asked by a producer (is the queue empty?): look, change nothing.
            for x in deque.__iter__(buf):
                if type(x) is not _Barrier:
                    return True
            return False
        if self.ch._shut:
            # The run is being torn down: no more recording, and no wait may last.
            while deque.__len__(buf) and type(deque.__getitem__(buf, 0)) is _Barrier:
                deque.popleft(buf)
                self.specials -= 1
                self.barriers -= 1
            return bool(deque.__len__(buf))
        ck = self.ck
        if not node.arrive(_current_task()):
            return self._wait()
        if ck.active and not node.recorded and node.inputs_complete() and not node.request():
            return self._wait()
        while deque.__len__(buf):
            head = deque.__getitem__(buf, 0)
            if type(head) is not _Barrier:
                return True
            if ck.active and head.k == ck.k and not node.recorded and not node.request():
                return self._wait()
            deque.popleft(buf)
            self.specials -= 1
            self.barriers -= 1
            if self.ch._putters:
                self.ch._room_freed()
        return False

    def _wait(self) -> bool:
        ch = self.ch
        if ch._producers <= 0 and not self.fake:
            # Closed but not drained: without this the stream would see its end while it waits.
            self.fake = True
            ch._producers += 1
        return False


class _CkBuf(deque[Any]):
    """A queue's buffer while a checkpoint is taken: producers' items are sorted around the cut."""

    __slots__ = ("lane",)

    def __init__(self, lane: _Lane, items: Any) -> None:
        super().__init__(items)
        self.lane = lane

    def append(self, item: Any) -> None:
        lane = self.lane
        ck = lane.ck
        if ck.active:
            p = _CURRENT.get()
            if p is not None and p is not lane.node:
                if p.source and not p.recorded:
                    p.record()  # a source is cut when it is about to push
                if not lane.recorded:
                    if p.id in lane.marked:
                        # After its producer's barrier, before the consumer recorded: not in the cut.
                        item = _After(item, ck.k)
                        lane.specials += 1
                elif not lane.complete and p.id not in lane.marked:
                    lane.log.append(item)  # before its producer's barrier, after the consumer recorded
        deque.append(self, item)

    def extend(self, items: Any) -> None:
        for item in items:
            self.append(item)

    def __bool__(self) -> bool:
        return self.lane.settle(self)

    def __len__(self) -> int:
        return deque.__len__(self) - self.lane.barriers

    def popleft(self) -> Any:
        lane = self.lane
        lane.settle(self)
        item = deque.popleft(self)
        if type(item) is _After:
            item = item.item
            lane.specials -= 1
        lane.node.took(_current_task())
        if not lane.specials and not lane.ck.active:
            lane.uninstall()
        return item


class _WindowChannel(Channel[Any]):
    """A queue's class while its buffer is a :class:`_CkBuf`: batched pops and peeks skip barriers."""

    __slots__ = ()

    def _pop_many(self, limit: int) -> list[Any]:
        buf = self._buf
        if type(buf) is not _CkBuf:
            return super()._pop_many(limit)
        lane = buf.lane
        node = lane.node
        out: list[Any] = []
        while len(out) < limit:
            if out and (node.want or (lane.ck.active and not node.recorded)):
                break  # the stream may record at its next pop: it deals with these items first
            if not buf:
                break
            out.append(buf.popleft())
            if self._buf is not buf:
                break  # back to a plain queue: the next call takes the rest
        if out:
            self._popped += len(out)
            if self._putters:
                self._room_freed()
            return out
        if self._producers <= 0:
            raise self._end()
        return []

    def _try_peek(self) -> Any:
        buf = self._buf
        if type(buf) is not _CkBuf:
            return super()._try_peek()
        if buf:
            head = deque.__getitem__(buf, 0)
            return head.item if type(head) is _After else head
        if self._producers <= 0:
            raise self._end()
        return EMPTY


class Checkpointer:
    """Takes a run's checkpoints and resumes it from the last one."""

    def __init__(self, graph: Graph, store: object, every: float, workers: Any, monitor: Any = None) -> None:
        check_checkpointed(graph, every)
        self.graph = graph
        self.every = float(every)
        self.fingerprint = fingerprint(graph, workers)
        self.nodes: dict[Node, _NodeCk] = {}
        for i, node in enumerate(graph.nodes):
            self.nodes[node] = _NodeCk(self, i, node, workers(node))
        self.lanes: dict[tuple[str, str], _Lane] = {}
        #: The run's deadlock monitor: it knows which tasks wait on a pop.
        self.monitor = monitor
        if monitor is not None:
            _BY_MONITOR[monitor] = self
        self.k = 0
        self.active = False
        self.error: BaseException | None = None
        self.taken = 0
        self.last_size = 0
        self._pending = 0
        self._complete: asyncio.Future[None] | None = None
        self._saving: asyncio.Future[None] | None = None
        self._resume: dict[str, Any] | None = None
        ray = (fingerprint_on(graph, workers, "ray"), "on Ray (executor=RayExecutor(...))")
        self.store, self._resume, self.k = open_checkpoint(store, self.fingerprint, ray)

    @property
    def resumed(self) -> bool:
        """True if this run goes on from a saved checkpoint."""
        return self._resume is not None

    def make_channel(self, node: Node, port: str, cap: int, **kw: Any) -> Channel[Any]:
        """A plain queue, with its part in the checkpoints on the side."""
        me = self.nodes[node]
        ch: Channel[Any] = Channel(cap, **kw)
        srcs = [self.nodes[e.src] for e in self.graph.inputs_of(node, port)]
        lane = _Lane(self, ch, me, {s.id for s in srcs})
        me.ins.append(lane)
        for src in srcs:
            if lane not in src.outs:
                src.outs.append(lane)
        self.lanes[(node.name, port)] = lane
        return ch

    def prepare(self) -> None:
        """Once the queues exist: find the sources and restore the saved checkpoint, if any."""
        for n in self.nodes.values():
            n.source = all(not lane.producers for lane in n.ins)
        data = self._resume
        if data is None:
            return
        for n in self.nodes.values():
            entry = data["nodes"].get(n.name)
            if entry is None:
                continue
            n.local = restore_snapshot(n.node.stream, entry["snap"])
            n.skip = entry["finished"]
        for (name, port), lane in self.lanes.items():
            items = data["channels"].get(f"{name}.{port}")
            if items and not lane.node.skip:
                lane.ch._buf.extend(pickle.loads(items))

    def enter(self, node: Node) -> bool:
        """Called in a stream copy's task before it runs; True if it finished before the checkpoint (skip it)."""
        n = self.nodes[node]
        _CURRENT.set(n)
        _COPY.set(len(n.tasks))  # copies start in order, so a resumed copy finds its own part
        task = _current_task()
        if task is not None:
            n.tasks.append(task)
        return n.skip

    def ended(self, node: Node) -> None:
        self.nodes[node].copy_ended()

    # -- taking checkpoints ---------------------------------------------------------

    def pickle_state(self, n: _NodeCk) -> bytes:
        try:
            return take_snapshot(n.name, n.node.stream.state, n.local)
        except CheckpointError as err:
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
        waiting: set[Any] = set()
        pushing: set[Any] = set()
        if self.monitor is not None:
            waiting = {t for t, _, kind in self.monitor.waits.values() if kind == "pop"} | self.monitor.delegating
            pushing = {t for t, _, kind in self.monitor.waits.values() if kind == "push"}
        for n in self.nodes.values():
            n.begin(waiting)
            if not n.finished:
                self._pending += 1
        finished = {n.id for n in self.nodes.values() if n.finished}
        for lane in self.lanes.values():
            lane.begin(finished)
            if not lane.done():
                self._pending += 1
        for n in self.nodes.values():
            if n.source and not n.finished and not any(not lane.ch._detached for lane in n.outs):
                n.record()  # nothing flows out of it: any moment is a cut
            elif n.source and not n.finished and n.workers == 1 and n.tasks and n.tasks[-1] in pushing:
                # Waiting for room (its consumer may not read that input for long, as a chain does):
                # the item it waits to push is after the cut, and its position does not count it yet.
                n.record()
        if self._pending <= 0:
            self._complete.set_result(None)

    def assemble(self) -> bytes:
        nodes = {n.name: {"snap": n.snap, "finished": n.finished} for n in self.nodes.values()}
        channels: dict[str, bytes] = {}
        for (name, port), lane in self.lanes.items():
            items = lane.log
            if items:
                channels[f"{name}.{port}"] = pickle_items(items, f"{name}.{port}")
        return pack_cut(nodes, channels)

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
                for lane in self.lanes.values():
                    lane.uninstall()
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
        mark_finished(self.store, self.fingerprint, self.k, self.taken > 0 or self.resumed)


def check_checkpointed(graph: Graph, every: object) -> None:
    """What a checkpointed run refuses before it starts: a bad interval, items fed with ``step.push()``."""
    if isinstance(every, bool) or not isinstance(every, int | float) or not every > 0:
        raise ValueError(f"checkpoint_every must be a number of seconds > 0, not {every!r}")
    if graph.feeds:
        raise ValueError(
            "a checkpointed run cannot resume items fed with step.push(); feed them from a source stream "
            "(lib.from_iterable) instead"
        )


def open_checkpoint(
    spec: object, fingerprint: str, elsewhere: tuple[str, str] | None = None
) -> tuple[CheckpointStore, dict[str, Any] | None, int]:
    """Open the store; the checkpoint to resume from (None: start afresh) and its number.

    A checkpoint of an unfinished run of another graph is a CheckpointError (the store is closed then).
    ``elsewhere`` is (fingerprint, where): the same graph run another way, named in that error.
    """
    store = open_store(spec)
    try:
        saved = store.load()
    except BaseException:
        store.close()
        raise
    if saved is None or saved.done:
        return store, None, 0
    if saved.fingerprint != fingerprint:
        store.close()
        if elsewhere is not None and saved.fingerprint == elsewhere[0]:
            raise CheckpointError(
                f"the checkpoint in {_where(spec)} was taken by this graph run {elsewhere[1]}, and resumes only "
                "there; run it that way again, or delete it (or pass another checkpoint file) to start afresh"
            )
        raise CheckpointError(
            f"the checkpoint in {_where(spec)} was taken by a different graph (its streams, ports or "
            "joins differ), so this run cannot resume from it; delete it or pass another checkpoint file"
        )
    return store, pickle.loads(saved.data), saved.number


def pack_cut(nodes: dict[str, dict[str, Any]], channels: dict[str, bytes]) -> bytes:
    """A complete cut as stored: per stream (or copy) its snapshot and whether it had finished; queued items."""
    return pickle.dumps({"version": _VERSION, "nodes": nodes, "channels": channels})


def mark_finished(store: CheckpointStore, fingerprint: str, k: int, saved: bool) -> None:
    """The run ended cleanly: mark its checkpoint done (storing an empty one first if it never saved one)."""
    if not saved:
        # Never saved: store the end anyway, so a run over a file starts afresh next time.
        store.save(fingerprint, k, pack_cut({}, {}))
    store.mark_done()


def _restore_state(stream: Any, state: Any) -> None:
    # In place where possible: the user (or lib.collect's caller) may hold the object itself.
    old = stream.state
    if isinstance(old, list) and isinstance(state, list):
        old[:] = state
    elif isinstance(old, deque) and isinstance(state, deque):
        old.clear()  # lib.collect into a deque; its maxlen stays
        old.extend(state)
    elif isinstance(old, dict) and isinstance(state, dict) and type(old) is type(state):
        old.clear()
        old.update(state)
    else:
        stream.state = state


def _where(store: object) -> str:
    return repr(getattr(store, "path", store)) if not isinstance(store, str) else repr(store)


def fingerprint_on(graph: Graph, workers: Any, executor: str) -> str:
    """The fingerprint of the graph run by ``executor`` (``"ray"``): its checkpoints resume there only."""
    return hashlib.sha256(f"{fingerprint(graph, workers)}\nexecutor {executor}".encode()).hexdigest()


def fingerprint(graph: Graph, workers: Any) -> str:
    """A digest of the graph's shape: stream names, their ports and copies, and the joins."""
    parts = [f"node {n.name} in={list(n.ins)} out={list(n.outs)} workers={workers(n)}" for n in graph.nodes]
    parts += sorted(f"edge {e.src.name}.{e.out}->{e.dst.name}.{e.in_}" for e in graph.edges)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()
