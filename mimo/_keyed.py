"""Keyed workers: ``workers=N, key=fn`` sends items with the same key to the same copy.

The input queues joined in the graph stay as they are, with one consumer: a
router per input port. Each copy gets a queue of its own per input port, and
the router pushes each item to copy ``stable_hash(fn(item)) % N``. A full copy
queue blocks the router (back-pressure reaches the producers as usual), one
router keeps each key's items in order, and the end of input reaches every copy.

In a checkpointed run the routers pop the graph's queues on the stream's
behalf, so a barrier they meet records the stream; it records when no copy
holds an item (copies that ask for one meanwhile wait), and its snapshot
keeps what sits between the graph's queues and the copies: the items in the
copies' queues and those a router took and has not yet handed over. A
resumed run's routers hand those over first, by the same hash, so each key's
items keep their order.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections import deque
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

from mimo._channel import Channel
from mimo._checkpoint import _current_task, checkpointer_of, enter_router
from mimo._errors import ConsumersGone, EndOfStream, name_error
from mimo._graph import Graph, Node, workers_of
from mimo._ports import Ins, Outs
from mimo._report import RunReport
from mimo._stream import KeyFn, Stream


class CopyChannel(Channel[Any]):
    """One copy's own input queue; ``source`` is the graph's queue it is routed from (for the report)."""

    __slots__ = ("source",)

    def __init__(self, source: Channel[Any], copy: int, capacity: int, observer: Any) -> None:
        super().__init__(
            capacity,
            producers=1,
            consumers=1,
            label=f"{source.label} [copy {copy}]",
            end=EndOfStream,
            observer=observer,
        )
        self.source = source

    def _pop_many(self, limit: int) -> list[Any]:
        out = super()._pop_many(limit)
        buf = self._buf
        if out and type(buf) is _CopyBuf:
            buf.took()  # taken in one go, past its popleft
        return out

    def release(self) -> None:
        """A checkpoint's recording is done: a copy kept waiting may take its items (checkpointed runs)."""
        buf = self._buf
        if type(buf) is _CopyBuf and buf.fake:
            buf.fake = False
            self._producers -= 1
        self._wake_all_getters()


#: Where a keyed stream's snapshot keeps, per input port, the items between its queue and its copies.
_HELD = "mimo.keyed"


class _CopyBuf(deque[Any]):
    """A copy's queue's buffer in a checkpointed run: a copy asking for an item holds none.

    While a checkpoint is taken, a copy that asks is no longer among those
    holding an item, and sees an empty queue while the stream waits for the
    others to finish theirs; one that takes an item holds it.
    """

    __slots__ = ("node", "ch", "fake")

    def __init__(self, node: Any, ch: CopyChannel) -> None:
        super().__init__()
        self.node = node
        self.ch = ch
        self.fake = False  # holds the closed queue open while its copy waits

    def __bool__(self) -> bool:
        node = self.node
        if (node.ck.active or node.want) and not self.ch._shut:
            t = _current_task()
            if t not in node.routers and not node.arrive(t):
                ch = self.ch
                if ch._producers <= 0 and not self.fake:
                    # Closed but not drained: without this the copy would see its end while it waits.
                    self.fake = True
                    ch._producers += 1
                return False
        return deque.__len__(self) > 0

    def popleft(self) -> Any:
        item = deque.popleft(self)
        if self.node.ck.active:
            self.took()
        return item

    def took(self) -> None:
        self.node.took(_current_task())


def is_keyed(node: Node) -> bool:
    """True if ``node``'s stream runs as keyed workers (a key and more than one copy)."""
    return workers_of(node) > 1 and getattr(node.stream, "key", None) is not None


class KeyedInputs:
    """The per-copy queues and routers of a run's keyed-worker streams."""

    def __init__(self, graph: Graph, chans: dict[tuple[Node, str], Channel[Any]], observer: Any) -> None:
        self._chans = chans
        self._copies: dict[tuple[Node, str], list[CopyChannel]] = {}
        self._ck = checkpointer_of(observer)
        #: Checkpointed runs: per keyed input, the items its router took and has not handed over.
        self._taken: dict[tuple[Node, str], deque[Any]] = {}
        for node in graph.nodes:
            if not is_keyed(node):
                continue
            for p in node.ins:
                src = chans[(node, p)]
                self._copies[(node, p)] = [CopyChannel(src, i, src.capacity, observer) for i in range(workers_of(node))]
            if self._ck is not None:
                self._checkpointed(node)

    def _checkpointed(self, node: Node) -> None:
        assert self._ck is not None
        nck = self._ck.nodes[node]
        for p in node.ins:
            self._taken[(node, p)] = deque()
            for c in self._copies[(node, p)]:
                c._buf = _CopyBuf(nck, c)
                nck.own_queues.append(c)

        def held() -> None:
            # Per port: the copies' queued items, then what its router took after them.
            nck.local[_HELD] = {
                p: [x for c in self._copies[(node, p)] for x in deque.__iter__(c._buf)] + list(self._taken[(node, p)])
                for p in node.ins
            }

        nck.before_snap = held

    def channel(self, node: Node, port: str, copy: int) -> Channel[Any]:
        """The queue copy ``copy`` of ``node`` reads ``port`` from."""
        own = self._copies.get((node, port))
        return self._chans[(node, port)] if own is None else own[copy]

    def channels(self) -> list[Channel[Any]]:
        """Every per-copy queue (torn down with the graph's queues)."""
        return [c for cs in self._copies.values() for c in cs]

    def routers(self) -> Iterator[tuple[Coroutine[Any, Any, None], str]]:
        """A routing coroutine and a task name per keyed input port."""
        for (node, p), copies in self._copies.items():
            src = self._chans[(node, p)]
            if self._ck is None:
                yield _route(node.name, node.stream.key, src, copies), f"{node.name}.{p} key router"
            else:
                nck = self._ck.nodes[node]
                route = _route_kept(node.name, p, node.stream.key, src, copies, nck, self._taken[(node, p)])
                yield route, f"{node.name}.{p} key router"


async def _route(name: str, key: Any, src: Channel[Any], copies: list[CopyChannel]) -> None:
    from mimo.lib._hashing import stable_hash  # imported here: mimo.lib sits above the runtime

    n = len(copies)
    while True:
        try:
            item = await src.pop()
        except EndOfStream:
            break
        await copies[_pick(name, key, item, n, stable_hash)].push(item)
        if all(c.detached for c in copies):
            # Every copy has left: leave the graph's queue too, so its producers may stop.
            src.close_consumer()
            return
    for c in copies:
        c.close_producer()


async def _route_kept(
    name: str, port: str, key: Any, src: Channel[Any], copies: list[CopyChannel], nck: Any, taken: deque[Any]
) -> None:
    """:func:`_route` in a checkpointed run: ``taken`` holds the item being handed over (and, resumed, those before)."""
    from mimo.lib._hashing import stable_hash

    enter_router(nck)
    taken.extend(nck.local.get(_HELD, {}).pop(port, ()))  # resumed: these come first, as they did
    n = len(copies)
    while True:
        if not taken:
            try:
                taken.append(await src.pop())
            except EndOfStream:
                break
        item = taken[0]
        await copies[_pick(name, key, item, n, stable_hash)].push(item)
        taken.popleft()
        if all(c.detached for c in copies):
            src.close_consumer()
            return
    for c in copies:
        c.close_producer()


# -- on an executor: the graph rewritten, routers as streams of their own ----------


class KeyRouter(Stream):
    """Routes each item of ``inp`` to output ``to{stable_hash(key(item)) % n}`` (keyed workers elsewhere)."""

    def __init__(self, owner: str, port: str, key: KeyFn, n: int) -> None:
        super().__init__(ins=["inp"], outs=[f"to{i}" for i in range(n)], name=router_name(owner, port))
        self.owner = owner
        self.route_key = key

    async def run(self, ins: Ins, outs: Outs) -> None:
        """Push each item to its key's copy; a copy that left drops its keys' items, as its own queue would."""
        from mimo.lib._hashing import stable_hash

        targets = list(outs)
        n = len(targets)
        gone: set[int] = set()
        async for item in ins.inp:
            i = _pick(self.owner, self.route_key, item, n, stable_hash)
            if i in gone:
                continue
            try:
                await targets[i].push(item)
            except ConsumersGone:
                gone.add(i)
                if len(gone) == n:
                    return


def router_name(owner: str, port: str) -> str:
    """The name a keyed stream's router for ``port`` runs under on an executor."""
    return f"{owner}.{port} key router"


def _pick(name: str, key: KeyFn, item: Any, n: int, hash_: Callable[[object], int]) -> int:
    try:
        return hash_(key(item)) % n
    except Exception as exc:
        # The user's exception, as a stream's would be: its type kept, the stream named on it.
        name_error(exc, name)
        with contextlib.suppress(Exception):
            exc.add_note(f"raised by the key function of {name!r} (keyed workers) on {item!r}")
        raise


def spread(graph: Graph) -> Graph:
    """``graph`` with each keyed stream as a router per input and N one-copy streams ``name[i]``.

    For executors, which run copies as they are: the routing is then streams
    like any other, on any engine. :func:`merge_report` folds the report back.
    """
    if not any(is_keyed(n) for n in graph.nodes):
        return graph
    new = Graph(capacity=graph.capacity)
    # Per old node: the new nodes that produce its outputs, and per input port the node and port that take it.
    makers: dict[Node, list[Node]] = {}
    takers: dict[tuple[Node, str], tuple[Node, str]] = {}
    for node in graph.nodes:
        if not is_keyed(node):
            made = new.add(node.stream, node.name)
            makers[node] = [made]
            takers.update({(node, p): (made, p) for p in node.ins})
            continue
        n = workers_of(node)
        copies = []
        for i in range(n):
            one = node.stream._copy()
            one.workers, one.key = 1, None
            copies.append(new.add(one, f"{node.name}[{i}]"))
        makers[node] = copies
        key = node.stream.key
        assert key is not None
        for p in node.ins:
            router = new.add(KeyRouter(node.name, p, key, n), router_name(node.name, p))
            # A bound set on the joins into the stream bounds each copy's queue; else the run's.
            cap = next((e.capacity for e in graph.inputs_of(node, p) if e.capacity is not None), None)
            for i, c in enumerate(copies):
                new.connect(router, f"to{i}", c, p, capacity=cap)
            takers[(node, p)] = (router, "inp")
    for e in graph.edges:
        dst, port = takers[(e.dst, e.in_)]
        for src in makers[e.src]:
            new.connect(src, e.out, dst, port, capacity=e.capacity)
    for (node, p), items in graph.feeds.items():
        dst, port = takers[(node, p)]
        new.feeds.setdefault((dst, port), []).extend(items)
    return new


def merge_report(graph: Graph, report: RunReport) -> RunReport:
    """The report of a :func:`spread` graph's run, with each keyed stream's routers and copies as the stream."""
    streams = dict(report.streams)
    for node in graph.nodes:
        if not is_keyed(node) or f"{node.name}[0]" not in streams:
            continue
        copies = [streams.pop(f"{node.name}[{i}]") for i in range(workers_of(node))]
        routers = {p: streams.pop(router_name(node.name, p)) for p in node.ins if router_name(node.name, p) in streams}
        first = copies[0]
        streams[node.name] = dataclasses.replace(
            first,
            name=node.name,
            items_in={p: r.items_in.get("inp", 0) for p, r in routers.items()},
            items_out={p: sum(c.items_out.get(p, 0) for c in copies) for p in node.outs},
            elapsed_s=max(c.elapsed_s for c in copies),
            busy_s=sum(c.busy_s for c in copies),
            blocked_s=sum(c.blocked_s for c in copies),
            starved_s=sum(c.starved_s for c in copies),
            buffered={
                p: r.buffered.get("inp", 0) + sum(c.buffered.get(p, 0) for c in copies) for p, r in routers.items()
            },
            done=all(c.done for c in copies),
            workers=len(copies),
            backpressure_s={p: r.backpressure_s.get("inp", 0.0) for p, r in routers.items()},
            stopped_early=any(c.stopped_early for c in copies),
            dropped={p: r.dropped.get("inp", 0) + sum(c.dropped.get(p, 0) for c in copies) for p, r in routers.items()},
            retries=sum(c.retries for c in copies),
            restarts=sum(c.restarts for c in copies),
        )
    # Streams in the graph's order, as a report made without spreading.
    order = {n.name: i for i, n in enumerate(graph.nodes)}
    ordered = dict(sorted(streams.items(), key=lambda kv: order.get(kv[0], len(order))))
    return dataclasses.replace(report, streams=ordered)
