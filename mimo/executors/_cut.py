"""Checkpoints of a run spread over processes: each copy's part of the cut, and the driver's side.

The cut is the one :mod:`mimo._checkpoint` takes in one process (Chandy and
Lamport's, unaligned), with a stream's snapshot made by the same function,
:func:`~mimo._checkpoint.take_snapshot`, and stored in the same form. Across
processes it goes as follows.

* The driver starts checkpoint *k* by asking every copy for its part; a copy
  also starts it when a barrier of *k* reaches one of its inputs first.
* A copy records at its next safe point: when its stream next asks for an
  item (at once if it is waiting for one), or, for a source, when it next
  pushes (before that item leaves). Recording pickles its ``state`` and
  position, takes the items queued in its inputs as their part of the cut,
  and sends a :class:`~mimo.executors._edges.Barrier` down every output link,
  after every item pushed before it.
* A barrier is heard as soon as its batch comes, ahead of the batches before
  it that still wait for room in the input's queue (it overtakes them, as in
  Flink's unaligned checkpoints): their items are before the cut. So is every
  batch of a link before its end marker.
* On an input link whose barrier came before the copy recorded, the later
  batches wait until it has (at most until its stream's next pop): they are
  after the cut. The items before the cut that the stream has not taken when
  it records (queued, or come and waiting for room) and those that come after
  it recorded are that input's part.
* A copy's part is complete once it has recorded and, on every link into it,
  every batch before its barrier or its end has come; it is the answer to
  the driver's request.
  A copy whose stream has ended answers with its final state, marked
  finished (it is not run again on resume).
* The driver writes the cut to the store once every copy has answered: only
  complete cuts are committed.
"""

from __future__ import annotations

import asyncio
import contextvars
import pickle
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mimo._checkpoint import (
    CheckpointError,
    check_checkpointed,
    fingerprint,
    fingerprint_on,
    mark_finished,
    open_checkpoint,
    pack_cut,
    pickle_items,
    restore_snapshot,
    take_snapshot,
    use_position,
)
from mimo._graph import Graph, workers_of
from mimo._store import CheckpointStore

if TYPE_CHECKING:
    from mimo.executors._host import StreamHost

#: A copy's part of a cut: its snapshot, whether its stream had ended, its inputs' items (pickled, per port).
Part = tuple[bytes, bool, dict[str, bytes]]
#: What a copy resumes from: its snapshot (None: its initial state), whether it had ended, its inputs' items.
Resume = tuple[bytes | None, bool, dict[str, bytes]]

#: The copy whose stream runs in this task (and the tasks it starts): who may record at a pop.
_STREAM: contextvars.ContextVar[CopyCut | None] = contextvars.ContextVar("mimo_copy_cut", default=None)


class _Watch(deque[Any]):
    """An input queue's buffer while its copy has yet to record: the stream's next look at it records."""

    __slots__ = ("cut",)

    def __init__(self, cut: CopyCut, items: Any) -> None:
        super().__init__(items)
        self.cut = cut

    def __bool__(self) -> bool:
        cut = self.cut
        if not cut.recorded and _STREAM.get() is cut:
            cut.record()
        return deque.__len__(self) > 0


class CopyCut:
    """One stream copy's part in a checkpointed run on an executor."""

    def __init__(self, host: StreamHost, label: str, links: dict[str, int]) -> None:
        self.host = host
        self.label = label
        #: Per input port, how many links feed it (numbered from 0).
        self.links = links
        self.local: dict[str, Any] = {}
        self.k = 0
        self.recorded = True
        #: Its stream had ended at the checkpoint resumed from: it is not run again.
        self.skip = False
        self.final: Part | CheckpointError | None = None
        self.snap = b""
        #: Per input port, what was queued when this copy recorded; per (port, link), by batch number,
        #: the items that had come but were not queued yet, or came after (those before the cut are kept).
        self.logs: dict[str, list[Any]] = {}
        self.later: dict[tuple[str, int], dict[int, list[Any]]] = {}
        #: Per (port, link) still open at the checkpoint: the number of its first batch after the cut, once known.
        self.pending: dict[tuple[str, int], int | None] = {}
        #: Per (port, link), the number of the batch that brought this checkpoint's barrier.
        self.barrier_at: dict[tuple[str, int], int] = {}
        #: Batches after the cut waiting for this copy to record.
        self.gates: list[asyncio.Future[None]] = []
        self.part: asyncio.Future[Part] | None = None
        for inbox in host.inboxes.values():
            inbox.cut = self

    def resume(self, saved: Resume) -> None:
        """Start from a saved part: state and position back, queued items back in the inputs."""
        snap, finished, channels = saved
        if snap is not None:
            self.local = restore_snapshot(self.host.stream, snap)
        self.skip = finished
        if not finished:
            for port, data in channels.items():
                self.host.channels[port]._buf.extend(pickle.loads(data))

    def enter(self) -> None:
        """Called in the stream's task before it runs: its pops may record, its position is this copy's."""
        _STREAM.set(self)
        use_position(self.local)

    # -- the driver's request, barriers, items, ends ----------------------------------

    def request(self, k: int) -> asyncio.Future[Part]:
        """This copy's part of checkpoint ``k`` (starting it here if no barrier of it has come)."""
        if k > self.k:
            self._begin(k)
        assert self.part is not None
        return self.part

    def _begin(self, k: int) -> None:
        self.k = k
        self.part = asyncio.get_running_loop().create_future()
        if self.final is not None:
            self._answer_final()
            return
        host = self.host
        self.recorded = False
        self.logs = {p: [] for p in self.links}
        self.later = {}
        self.pending = {}
        for p, n in self.links.items():
            inbox = host.inboxes[p]
            for link in set(range(n)) - inbox.ended:
                end = inbox.end_seq.get(link)
                self.pending[(p, link)] = None if end is None else end + 1
        self.barrier_at = {}
        for ch in host.channels.values():
            if type(ch._buf) is not _Watch:
                ch._buf = _Watch(self, deque.__iter__(ch._buf))
        if not self.links:
            # A source is cut when it is about to push.
            for box in self._outboxes():
                box.before_push = self.record
        if not host.start or any(ch._popper_waiting() for ch in host.channels.values()):
            self.record()  # not started yet, or waiting for an item: between items now

    def barrier(self, port: str, link: int, seq: int, k: int) -> None:
        """Batch ``seq`` of ``link`` into ``port`` is checkpoint ``k``'s barrier (heard as it comes)."""
        if self.final is not None:
            return
        if k > self.k:
            self._begin(k)
        if self.part is None or self.part.done() or (port, link) not in self.pending:
            return
        self.pending[(port, link)] = seq
        self.barrier_at[(port, link)] = seq
        self._check()

    def arrived(self, port: str, link: int, seq: int, items: list[Any], end: bool) -> None:
        """Batch ``seq`` of ``link`` has come: before the cut and after this copy recorded, it is in the cut."""
        part = self.part
        key = (port, link)
        if part is None or part.done() or key not in self.pending:
            return
        bound = self.pending[key]
        if end and bound is None:
            bound = self.pending[key] = seq + 1
        if self.recorded:
            if bound is None or seq < bound:
                self.later.setdefault(key, {})[seq] = list(items)
            self._check()

    async def admit(self, port: str, link: int, seq: int) -> None:
        """Before a batch enters the input: one after its link's barrier waits until this copy has recorded."""
        at = self.barrier_at.get((port, link))
        if at is not None and seq > at and not self.recorded:
            gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self.gates.append(gate)
            await gate

    # -- recording ----------------------------------------------------------------------

    def record(self) -> None:
        """Take this copy's part now (between two items of its stream) and send the barriers on."""
        if self.recorded:
            return
        self.recorded = True
        host = self.host
        for box in self._outboxes():
            box.before_push = None
        try:
            self.snap = take_snapshot(host.name, host.stream.state, self.local)
        except CheckpointError as err:
            self._release()
            if self.part is not None and not self.part.done():
                self.part.set_exception(err)
            return
        for p, ch in host.channels.items():
            # What the stream has not taken: queued, then come and waiting for room (if before the cut,
            # which _check sees once every barrier has come: batches may come out of order).
            self.logs[p] = list(deque.__iter__(ch._buf))
            inbox = host.inboxes[p]
            for link, seq in inbox.here:
                if (p, link) in self.pending:
                    self.later.setdefault((p, link), {})[seq] = inbox.waiting(link, seq)
        for box in self._outboxes():
            box.barrier(self.k)
        self._release()
        self._check()

    def finish(self) -> None:
        """The stream has ended cleanly: its final state stands for this and every later checkpoint."""
        host = self.host
        try:
            self.final = (take_snapshot(host.name, host.stream.state, self.local), True, {})
        except CheckpointError as err:
            self.final = err
        part = self.part
        if part is not None and not part.done():
            if not self.recorded:
                self.recorded = True
                self._answer_final()
            else:
                # Recorded before it ended: it reads nothing more, so what it has logged is all.
                self._check(ended=True)
        for box in self._outboxes():
            box.before_push = None
        self._release()

    def _answer_final(self) -> None:
        part, final = self.part, self.final
        assert part is not None and final is not None
        if isinstance(final, CheckpointError):
            part.set_exception(final)
        else:
            part.set_result(final)

    def _check(self, ended: bool = False) -> None:
        part = self.part
        if not self.recorded or part is None or part.done():
            return
        inboxes = self.host.inboxes
        for (port, link), bound in self.pending.items():
            if not ended and (bound is None or not inboxes[port].came(link, bound)):
                return
        for (port, link), batches in self.later.items():
            bound = self.pending.get((port, link))
            for seq in sorted(batches):
                if bound is None or seq < bound:
                    self.logs[port] += batches[seq]
        try:
            channels = {p: pickle_items(items, f"{self.label}.{p}") for p, items in self.logs.items() if items}
        except CheckpointError as err:
            part.set_exception(err)
        else:
            part.set_result((self.snap, False, channels))
        self.logs = {}
        self.later = {}

    def _release(self) -> None:
        gates, self.gates = self.gates, []
        for gate in gates:
            if not gate.done():
                gate.set_result(None)
        # Not now: the stream may be between reading its buffer and taking the item from it.
        asyncio.get_running_loop().call_soon(self._unwatch)

    def _unwatch(self) -> None:
        if not self.recorded:
            return  # a new checkpoint has begun meanwhile
        for ch in self.host.channels.values():
            buf = ch._buf
            if type(buf) is _Watch:
                ch._buf = deque(deque.__iter__(buf))

    def _outboxes(self) -> list[Any]:
        return [box for boxes in self.host.outboxes.values() for box in boxes.values()]


def ray_fingerprint(graph: Graph) -> str:
    """The graph's fingerprint for a run on Ray: a checkpoint taken there resumes there only."""
    return fingerprint_on(graph, workers_of, "ray")


class DriverCheckpoints:
    """The driver's side: asks the copies for their parts, writes each complete cut, resumes from the last."""

    def __init__(self, graph: Graph, spec: object, every: float) -> None:
        check_checkpointed(graph, every)
        self.every = float(every)
        self.fingerprint = ray_fingerprint(graph)
        elsewhere = (fingerprint(graph, workers_of), "in one process (without an executor)")
        self.store: CheckpointStore
        self.store, self.saved, self.k = open_checkpoint(spec, self.fingerprint, elsewhere)
        self.taken = 0
        self.last_size = 0
        self._saving: asyncio.Future[None] | None = None

    @property
    def resumed(self) -> bool:
        return self.saved is not None

    def resume_for(self, label: str, ports: Sequence[str]) -> Resume | None:
        """What copy ``label`` starts from, or None for a fresh run."""
        data = self.saved
        if data is None:
            return None
        entry = data["nodes"].get(label)
        channels = {p: data["channels"][f"{label}.{p}"] for p in ports if f"{label}.{p}" in data["channels"]}
        if entry is None:
            return (None, False, channels)
        return (entry["snap"], bool(entry["finished"]), channels)

    async def coordinate(self, copies: Sequence[tuple[str, Any]]) -> None:
        """Take a checkpoint every ``every`` seconds until cancelled; a part that cannot be saved raises."""
        import ray.exceptions  # type: ignore[import-not-found, unused-ignore]

        while True:
            await asyncio.sleep(self.every)
            self.k += 1
            calls = [asyncio.wrap_future(actor.checkpoint.remote(self.k).future()) for _, actor in copies]
            try:
                parts: list[Part] = await asyncio.gather(*calls)
            except ray.exceptions.RayTaskError as exc:
                for call in calls:
                    call.add_done_callback(_ignore)
                cause = exc.cause if isinstance(exc.cause, BaseException) else exc
                raise cause from None
            except ray.exceptions.RayActorError:
                for call in calls:
                    call.add_done_callback(_ignore)
                return  # a copy died: the run fails with that, and this cut is never complete
            nodes = {label: {"snap": snap, "finished": done} for (label, _), (snap, done, _) in zip(copies, parts)}
            channels = {
                f"{label}.{port}": data
                for (label, _), (_, _, queued) in zip(copies, parts)
                for port, data in queued.items()
            }
            data = pack_cut(nodes, channels)
            # Shielded: a run that ends meanwhile lets the write finish before the store closes.
            self._saving = asyncio.ensure_future(asyncio.to_thread(self.store.save, self.fingerprint, self.k, data))
            await asyncio.shield(self._saving)
            self.taken += 1
            self.last_size = len(data)

    async def finish(self, ok: bool) -> None:
        """The run is over: a clean end marks the checkpoint done; the store is closed either way."""
        try:
            if self._saving is not None:
                await asyncio.wait([self._saving])
            if ok:
                await asyncio.to_thread(
                    mark_finished, self.store, self.fingerprint, self.k, self.taken > 0 or self.resumed
                )
        finally:
            self.store.close()


def _ignore(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()
