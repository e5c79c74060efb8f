"""Fused chains: a run of stock one-to-one stages executed as one loop.

At lowering, a maximal path of stock streams joined one to one (each inner
output feeds exactly one input, which nothing else feeds) becomes one task
instead of one per stream: ``range | map | filter | map | collect`` is then a
loop over the range that calls the three functions and appends to the list,
with no queue in between. A chain fuses when each stream in it is one of
:func:`register`'s kinds with a plain (not ``async def``) function, one copy
(no ``workers``, no ``key``) and ``on_error=Stop()``, in a run without
``checkpoint=``; a source may start it, a sink may end it.

Items move in chunks of at most the smallest capacity of the fused joins, so
every fused run is one that the unfused streams could also have taken (a stage
never gets further ahead of the next than its queue allows). Each stream keeps
its own run record: the report counts its items in and out, an exception from
its function names it, and ``take`` ending leaves the input as the unfused
``take`` would. The graph is untouched, so pictures show every stream.

``MIMO_NO_FUSION=1`` in the environment (or ``ENABLED = False`` here) runs
every stream as a task of its own.
"""

from __future__ import annotations

import asyncio
import builtins
import dataclasses
import inspect
import os
import time
import types
from collections.abc import AsyncIterable, Callable, Iterable
from itertools import compress, islice
from typing import TYPE_CHECKING, Any, cast

from mimo._channel import Channel, ChannelStatistics
from mimo._errors import CLEAN_EXITS, EndOfStream, name_error
from mimo._graph import Edge, Graph, Node
from mimo._ports import InputPort, Ins, OutputPort, Outs, PortTimes

if TYPE_CHECKING:
    from mimo._runtime import _StreamRun

#: False turns fusion off for every run in this process (as ``MIMO_NO_FUSION=1`` does).
ENABLED = True

#: A chunk never holds more items than this, whatever the capacities.
_MAX_CHUNK = 1024
#: A chain with no wait in it (a source to a sink) lets other tasks run this often, in seconds.
_SLICE_S = 0.002

#: The body function of each fusable stock stream -> (its kind, the ``run`` its class must have).
_KINDS: dict[object, tuple[str, object]] = {}

_SOURCES = ("range", "from_iterable")
_SINKS = ("collect",)
_STAGES = ("map", "filter", "flat_map", "take", "skip", "take_while", "drop_while")


def enabled() -> bool:
    """Whether runs fuse chains now."""
    return ENABLED and not os.environ.get("MIMO_NO_FUSION")


def register(stream: Any, kind: str) -> None:
    """Let copies of the ``@stream`` ``stream`` be fused, as a ``kind`` (``'map'``, ``'take'``...)."""
    if kind not in (*_SOURCES, *_SINKS, *_STAGES):
        raise ValueError(f"no fused form for {kind!r}")
    _KINDS[stream.fn] = (kind, type(stream).run)


def _is_async(fn: object) -> bool:
    call = getattr(fn, "__call__", None)  # noqa: B004 - async callable objects
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(fn)


def _kind(node: Node, run: _StreamRun) -> str | None:
    """``node``'s fused kind, or None if it must run as a stream of its own."""
    stream = node.stream
    entry = _KINDS.get(getattr(stream, "fn", None))
    settings = getattr(stream, "settings", None)
    if entry is None or not isinstance(settings, dict) or type(stream).run is not entry[1]:
        return None
    if run.supervisor is not None or getattr(stream, "workers", 1) != 1 or getattr(stream, "key", None) is not None:
        return None
    kind = entry[0]
    fn = settings.get("fn", settings.get("predicate"))
    if kind in ("map", "flat_map", "filter", "take_while", "drop_while") and (not callable(fn) or _is_async(fn)):
        return None
    return kind


# -- steps: what each fused stage does to a chunk ---------------------------------


def _close_rest(items: list[Any]) -> None:
    for r in items:
        if inspect.iscoroutine(r):
            r.close()  # never awaited now: closed, so no "never awaited" warning


async def _settle(results: list[Any], plain: set[type], start: int = 0) -> None:
    """Await, in order and in place, the awaitable results from ``start`` on (a plain function's, by lib's rule).

    On a failure the list is cut before the failed result, so it holds what was done.
    """
    for i in range(start, len(results)):
        r = results[i]
        t = type(r)
        if t in plain:
            continue
        if inspect.isawaitable(r):
            try:
                results[i] = await r
            except BaseException:
                _close_rest(results[i + 1 :])
                del results[i:]
                raise
        elif t is not types.GeneratorType:  # a generator may be a @types.coroutine one: asked each time
            plain.add(t)


#: What a step's ``apply`` returns when ``await step.finish(xs, ys)`` must do the chunk (something to await).
_LATER = -1


class _Step:
    """One fused stage, applied to a chunk at a time.

    ``apply(xs, ys)`` appends the stage's output for ``xs`` to ``ys`` and
    returns how many of ``xs`` it took, or ``_LATER``: then ``finish(xs, ys)``
    does it (the same, awaiting what must be awaited). On an exception ``ys``
    holds the output of the items before the failing one.
    """

    #: The stage has ended (a ``take`` with nothing left): nothing more goes into it.
    done = False
    #: A flat_map: its chunks go on as they fill, from ``FusedChain._expand``.
    flat = False
    #: Its stream's counts in this run (set by the chain).
    counts: _Counts

    def start(self) -> None:
        """Reset for a new run."""

    def apply(self, xs: list[Any], ys: list[Any]) -> int:
        return _LATER

    async def finish(self, xs: list[Any], ys: list[Any]) -> int:
        raise NotImplementedError

    def taken(self, xs: list[Any], ys: list[Any]) -> int:
        """After ``apply`` or ``finish`` raised: how many of ``xs`` it took, the failed one included."""
        return len(xs)


class _Calls(_Step):
    """A stage calling a plain function per item, batched unless its results must be awaited one by one."""

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn
        self.plain: set[type] = set()
        #: None until the run's first call tells whether results are awaitables (then True: one call at a time).
        self.each: bool | None = None

    def start(self) -> None:
        self.each = None

    def calls(self, xs: list[Any], out: list[Any]) -> bool:
        """``fn`` over ``xs`` into the empty ``out`` at once; False if ``settle(xs, out)`` must finish the work."""
        if self.each is not False:
            return False
        out.extend(map(self.fn, xs))  # extend keeps what came before a failure
        return self.plain.issuperset(map(type, out))

    async def settle(self, xs: list[Any], out: list[Any]) -> None:
        """Finish what ``calls`` left: await awaitable results in order, or call one at a time."""
        if self.each is False:
            await _settle(out, self.plain)
            return
        fn = self.fn
        if self.each is None:
            first = fn(xs[0])
            self.each = inspect.isawaitable(first)
            out.append(await first if self.each else first)
            xs = xs[1:]
            if not self.each:
                out.extend(map(fn, xs))
                await _settle(out, self.plain, 1)
                return
        for x in xs:
            r = fn(x)
            out.append(await r if inspect.isawaitable(r) else r)


class _Map(_Calls):
    def apply(self, xs: list[Any], ys: list[Any]) -> int:
        if self.each is not False:
            return _LATER
        ys.extend(map(self.fn, xs))  # calls() inline: the hottest path
        return len(xs) if self.plain.issuperset(map(type, ys)) else _LATER

    async def finish(self, xs: list[Any], ys: list[Any]) -> int:
        await self.settle(xs, ys)
        return len(xs)

    def taken(self, xs: list[Any], ys: list[Any]) -> int:
        return min(len(ys) + 1, len(xs))


class _Filter(_Calls):
    def __init__(self, fn: Callable[[Any], Any]) -> None:
        super().__init__(fn)
        self.flags: list[Any] = []

    def apply(self, xs: list[Any], ys: list[Any]) -> int:
        flags: list[Any] = []
        self.flags = flags
        try:
            if not self.calls(xs, flags):
                return _LATER
        except BaseException:
            ys.extend(compress(xs, flags))
            raise
        ys.extend(compress(xs, flags))
        return len(xs)

    async def finish(self, xs: list[Any], ys: list[Any]) -> int:
        flags = self.flags
        try:
            await self.settle(xs, flags)
        finally:
            ys.extend(compress(xs, flags))
        return len(xs)

    def taken(self, xs: list[Any], ys: list[Any]) -> int:
        return min(len(self.flags) + 1, len(xs))


class _TakeWhile(_Step):
    def __init__(self, predicate: Callable[[Any], Any]) -> None:
        self.fn = predicate

    def start(self) -> None:
        self.done = False

    async def finish(self, xs: list[Any], ys: list[Any]) -> int:
        fn = self.fn
        for i, x in enumerate(xs):  # one at a time: the predicate is never called past the first false
            r = fn(x)
            if not (await r if inspect.isawaitable(r) else r):
                self.done = True
                return i + 1
            ys.append(x)
        return len(xs)


class _DropWhile(_Step):
    def __init__(self, predicate: Callable[[Any], Any]) -> None:
        self.fn = predicate
        self.dropping = True

    def start(self) -> None:
        self.dropping = True

    def apply(self, xs: list[Any], ys: list[Any]) -> int:
        if self.dropping:
            return _LATER
        ys.extend(xs)
        return len(xs)

    async def finish(self, xs: list[Any], ys: list[Any]) -> int:
        fn = self.fn
        for i, x in enumerate(xs):
            r = fn(x)
            if not (await r if inspect.isawaitable(r) else r):
                self.dropping = False
                ys.extend(xs[i:])
                break
        return len(xs)


class _Take(_Step):
    def __init__(self, n: int) -> None:
        self.n = self.left = n

    def start(self) -> None:
        self.left = self.n
        self.done = self.n == 0

    def apply(self, xs: list[Any], ys: list[Any]) -> int:
        k = min(self.left, len(xs))
        ys.extend(xs[:k] if k < len(xs) else xs)
        self.left -= k
        self.done = self.left == 0
        return k


class _Skip(_Step):
    def __init__(self, n: int) -> None:
        self.n = self.left = n

    def start(self) -> None:
        self.left = self.n

    def apply(self, xs: list[Any], ys: list[Any]) -> int:
        k = min(self.left, len(xs))
        self.left -= k
        ys.extend(xs[k:] if k else xs)
        return len(xs)


class _FlatMap(_Step):
    """Expands lazily: results go on in chunks as they come, so an endless expansion before a ``take`` is fine."""

    flat = True

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn


def _settings(node: Node) -> dict[str, Any]:
    return cast(dict[str, Any], getattr(node.stream, "settings"))  # noqa: B009 - only DSL streams have it


def _step(kind: str, settings: dict[str, Any]) -> _Step:
    if kind == "map":
        return _Map(settings["fn"])
    if kind == "filter":
        return _Filter(settings["predicate"])
    if kind == "flat_map":
        return _FlatMap(settings["fn"])
    if kind == "take":
        return _Take(settings["n"])
    if kind == "skip":
        return _Skip(settings["n"])
    if kind == "take_while":
        return _TakeWhile(settings["predicate"])
    return _DropWhile(settings["predicate"])


# -- what the report reads of a fused stage ----------------------------------------


class _Counts:
    """A fused stage's figures, kept by the loop (per chunk, not per item)."""

    __slots__ = ("popped", "dropped", "pushed")

    def __init__(self) -> None:
        self.popped = 0
        self.dropped = 0
        self.pushed = 0


class _FusedQueue:
    """Stands for a fused stage's input queue: its statistics, from the loop's counts."""

    def __init__(self, template: Channel[Any], counts: _Counts, real: Channel[Any] | None) -> None:
        self._template = template
        self._counts = counts
        self._real = real
        #: The chain has ended: the first stage's counts are final.
        self.final = False

    def statistics(self) -> ChannelStatistics:
        c = self._counts
        if self._real is not None:
            st = self._real.statistics()
            if not self.final:
                return st
            # The first stage's real queue, after the end: items the loop popped but the stage
            # never took (a take_while's rest) count as left in the queue, as unfused.
            left = max(st.popped - c.popped, 0)
            return dataclasses.replace(st, popped=st.popped - left, dropped=st.dropped + left)
        st = self._template.statistics()
        return dataclasses.replace(st, popped=c.popped, dropped=c.dropped, buffered=0)


class _FusedInput:
    __slots__ = ("name", "_ch")

    def __init__(self, name: str, queue: _FusedQueue) -> None:
        self.name = name
        self._ch = queue


class _FusedOutput:
    __slots__ = ("name", "_counts", "_chans")

    def __init__(self, name: str, counts: _Counts) -> None:
        self.name = name
        self._counts = counts
        self._chans: list[Channel[Any]] = []

    @property
    def count(self) -> int:
        return self._counts.pushed


class _FusedTimes(PortTimes):
    """A fused chain's stages share their loop's time: starved on the first's pops, blocked on the last's pushes."""

    __slots__ = ("_head", "_tail")

    def __init__(self, head: PortTimes | None, tail: PortTimes | None) -> None:
        super().__init__()
        self._head = head
        self._tail = tail

    @property
    def blocked_s(self) -> float:
        return self._tail.blocked_s if self._tail is not None else 0.0

    @property
    def starved_s(self) -> float:
        return self._head.starved_s if self._head is not None else 0.0


# -- the fused chain --------------------------------------------------------------


#: Where an exception came from, when not from a stage's function.
_HEAD, _TAIL = -1, -2


class FusedChain:
    """One fused chain in one run: its streams' run records and the loop that replaces their tasks."""

    def __init__(
        self, graph: Graph, runs: list[_StreamRun], kinds: list[str], chans: dict[tuple[Node, str], Channel[Any]]
    ) -> None:
        self.runs = runs
        self.name = " | ".join(r.node.name for r in runs)
        nodes = [r.node for r in runs]
        joins: list[Edge] = [graph.outputs_of(a, a.outs[0])[0] for a in nodes[:-1]]
        self.chunk = max(1, min([_MAX_CHUNK, *(chans[(e.dst, e.in_)].statistics().capacity for e in joins)]))
        first, last = runs[0], runs[-1]
        self.source: Iterable[Any] | None = None
        self.into: Any = None
        self.head: InputPort[Any] | None = None
        self.tail: OutputPort[Any] | None = None
        if kinds[0] in _SOURCES:
            settings = _settings(first.node)
            if kinds[0] == "range":
                self.source = builtins.range(settings["start"], settings["stop"], settings["step"])
            else:
                self.source = settings["items"]
        else:
            self.head = first.ins[first.node.ins[0]]
        if kinds[-1] in _SINKS:
            self.into = _settings(last.node)["into"]
        else:
            self.tail = last.outs[last.node.outs[0]]
        self.steps = [_step(k, _settings(r.node)) for k, r in zip(kinds, runs) if k in _STAGES]
        self.counts = [_Counts() for _ in runs]
        self.offset = 1 if self.source is not None else 0  # steps[i] is runs[i + offset]
        for i, step in enumerate(self.steps):
            step.counts = self.counts[i + self.offset]
        times = _FusedTimes(
            first.times if self.head is not None else None, last.times if self.tail is not None else None
        )
        self.queues: list[_FusedQueue] = []
        for i, r in enumerate(runs):
            r.times = times
            if i > 0 or self.head is not None:
                p = r.node.ins[0]
                real = self.head._ch if (i == 0 and self.head is not None) else None
                queue = _FusedQueue(chans[(r.node, p)], self.counts[i], real)
                self.queues.append(queue)
                r.ins = Ins(r.node.name, {p: cast(InputPort[Any], _FusedInput(p, queue))})
            if i < len(runs) - 1:
                p = r.node.outs[0]
                r.outs = Outs(r.node.name, {p: cast(OutputPort[Any], _FusedOutput(p, self.counts[i]))})
                r.connected = []
        self.cut = -1  # the index (in steps) of the furthest stage that has ended; those before it stop
        self.blamed: BaseException | None = None
        self.blamed_at = _TAIL
        self.head_ended = False

    # -- the loop -------------------------------------------------------------

    def _blame(self, where: int, exc: BaseException) -> None:
        if exc is not self.blamed:
            self.blamed, self.blamed_at = exc, where

    def _name_of(self, exc: BaseException | None) -> str:
        if exc is not None and exc is self.blamed:
            if self.blamed_at == _HEAD:
                return self.runs[0].node.name
            if self.blamed_at >= 0:
                return self.runs[self.blamed_at + self.offset].node.name
        return self.runs[-1].node.name

    async def _pump(self) -> None:
        for step in self.steps:
            step.start()
            if step.done:
                self.cut = max(self.cut, self.steps.index(step))
        if self.source is not None:
            await self._pump_source(self.source)
        else:
            await self._pump_port()

    async def _pump_source(self, source: Iterable[Any]) -> None:
        size = self.chunk
        counts = self.counts[0]
        # With no queue to wait on, the loop lets other tasks run every few milliseconds.
        slicing = self.tail is None
        clock = time.perf_counter
        due = clock() + _SLICE_S
        try:
            items = iter(source)
        except BaseException as exc:
            self._blame(_HEAD, exc)
            raise
        while self.cut < 0:
            try:
                xs = list(islice(items, size))
            except BaseException as exc:
                self._blame(_HEAD, exc)
                raise
            if not xs:
                self.head_ended = True
                return
            counts.pushed += len(xs)
            await self._through(0, xs)
            if len(xs) < size:
                self.head_ended = True  # as a for loop does, the first StopIteration ends it
                return
            if slicing and clock() >= due:
                await asyncio.sleep(0)
                due = clock() + _SLICE_S

    async def _pump_port(self) -> None:
        head = self.head
        assert head is not None
        size = self.chunk
        first = self.steps[0] if self.steps else None
        while self.cut < 0:
            # A take first takes no more than it needs: the rest stays queued, as unfused.
            limit = min(size, first.left) if isinstance(first, _Take) else size
            try:
                xs = await head.pop_many(limit)
            except EndOfStream:
                self.head_ended = True
                return
            except BaseException as exc:
                self._blame(_HEAD, exc)
                raise
            await self._through(0, xs)

    async def _through(self, k: int, xs: list[Any]) -> None:
        """Take ``xs`` through the steps from ``k`` on, and out."""
        steps = self.steps
        n = len(steps)
        while k < n:
            if not xs:
                return
            step = steps[k]
            counts = step.counts
            if step.flat:
                counts.popped += len(xs)
                await self._expand(k, cast(_FlatMap, step), xs)
                return
            ys: list[Any] = []
            try:
                took = step.apply(xs, ys)
                if took < 0:
                    took = await step.finish(xs, ys)
            except BaseException as exc:
                took = step.taken(xs, ys)
                counts.popped += took
                counts.dropped += len(xs) - took
                counts.pushed += len(ys)
                if exc is self.blamed:
                    raise
                self._blame(k, exc)
                if not isinstance(exc, CLEAN_EXITS):
                    raise
                # Its function ended the stage (EndOfStream): what it gave goes on, as unfused.
                self.cut = max(self.cut, k)
                xs, k = ys, k + 1
                continue
            counts.popped += took
            if took != len(xs):
                counts.dropped += len(xs) - took
            counts.pushed += len(ys)
            if step.done:
                self.cut = max(self.cut, k)
            xs, k = ys, k + 1
        if not xs:
            return
        if self.tail is not None:
            try:
                await self.tail.push_many(xs)
            except BaseException as exc:
                self._blame(_TAIL, exc)
                raise
            return
        try:
            into = self.into
            if isinstance(into, list):
                into.extend(xs)
            else:
                for x in xs:
                    into.append(x)
        except BaseException as exc:
            self._blame(_TAIL, exc)
            raise
        self.counts[-1].popped += len(xs)

    async def _expand(self, k: int, step: _FlatMap, xs: list[Any]) -> None:
        fn, size = step.fn, self.chunk
        counts = self.counts[k + self.offset]
        buf: list[Any] = []

        async def flush() -> None:
            nonlocal buf
            out, buf = buf, []
            counts.pushed += len(out)
            await self._through(k + 1, out)

        try:
            for x in xs:
                results = fn(x)
                if inspect.isawaitable(results):
                    results = await results
                if isinstance(results, AsyncIterable):
                    iterator = aiter(results)
                    try:
                        async for r in iterator:
                            buf.append(r)
                            if len(buf) >= size:
                                await flush()
                                if self.cut > k:
                                    return
                    finally:
                        aclose = getattr(iterator, "aclose", None)
                        if aclose is not None:
                            await aclose()
                    continue
                it = iter(results)
                while True:
                    room = size - len(buf)
                    buf.extend(islice(it, room))  # extend keeps what came before a failure
                    if len(buf) < size:
                        break  # the results ran out
                    await flush()
                    if self.cut > k:
                        return
        except BaseException as exc:
            if exc is self.blamed:
                raise
            self._blame(k, exc)
            if not isinstance(exc, CLEAN_EXITS):
                raise
            self.cut = max(self.cut, k)
        if buf:
            await flush()

    # -- as the runtime runs a stream -------------------------------------------

    def started(self, task: asyncio.Task[None]) -> None:
        """The loop runs as ``task``: the run stops it through any of the chain's records."""
        for r in self.runs:
            r.task = task

    async def run(self) -> None:
        """Run the loop as ``_run_stream`` runs a stream: the same clean ends, failures and stops."""
        runs, last = self.runs, self.runs[-1]
        start = time.perf_counter()
        for r in runs:
            r.start = start
        if last.stop_asked:  # its consumers left before it began
            for r in runs:
                r.stopped_early = True
                r.end = start
            self._end_cleanly()
            return
        stopped = False
        try:
            await self._pump()
        except CLEAN_EXITS:
            stopped = last.stop_asked
        except asyncio.CancelledError as exc:
            me = asyncio.current_task()
            name = self._name_of(exc)
            if me is not None and me.cancelling() == 0:
                err = RuntimeError(
                    f"stream {name!r} raised CancelledError but was not cancelled: a cancellation "
                    "from inside its own code (a cancelled sub-task or future it awaited), not by the run"
                )
                name_error(err, name)
                raise err from exc
            if last.monitor.tearing_down:
                raise
            if not last.stop_asked:
                err = RuntimeError(
                    f"stream {name!r} was cancelled from inside (by its own code or a task "
                    "outside the run), not by the run"
                )
                name_error(err, name)
                raise err from exc
            if me is not None:
                me.uncancel()
            stopped = True
        except BaseException as exc:
            name_error(exc, self._name_of(exc))
            raise
        finally:
            end = time.perf_counter()
            for r in runs:
                r.end = end
            for q in self.queues:
                q.final = True
        self._mark_stopped(stopped)
        if last.monitor.tearing_down:
            return
        self._end_cleanly()

    def _mark_stopped(self, stopped: bool) -> None:
        """Which streams ended early: all when the consumers left; those before an ended ``take`` otherwise."""
        if stopped:
            for r in self.runs:
                r.stopped_early = True
            return
        if self.cut >= 0 and not self.head_ended:
            for r in self.runs[: self.cut + self.offset]:
                r.stopped_early = True

    def _end_cleanly(self) -> None:
        if self.tail is not None:
            self.tail.close()
        if self.head is not None:
            self.head._ch.close_consumer()


def fuse_chains(graph: Graph, runs: list[_StreamRun], chans: dict[tuple[Node, str], Channel[Any]]) -> list[FusedChain]:
    """Find the fusable chains among ``runs`` (one per node) and set their records up for fused running."""
    if not enabled():
        return []
    by_node: dict[Node, _StreamRun] = {}
    copies: dict[Node, int] = {}
    for r in runs:
        by_node[r.node] = r
        copies[r.node] = copies.get(r.node, 0) + 1
    kinds = {n: k for n, r in by_node.items() if copies[n] == 1 and (k := _kind(n, r)) is not None}
    after: dict[Node, Node] = {}
    for a, kind in kinds.items():
        if kind in _SINKS:
            continue
        edges = graph.outputs_of(a, a.outs[0])
        if len(edges) != 1:
            continue
        b, port = edges[0].dst, edges[0].in_
        if b not in kinds or kinds[b] in _SOURCES or b is a:
            continue
        if len(graph.inputs_of(b, port)) != 1 or (b, port) in graph.feeds:
            continue
        after[a] = b
    has_before = set(after.values())
    chains = []
    for a in kinds:
        if a not in after or a in has_before:
            continue  # not a chain's first node (nodes in a loop of such joins have none: left alone)
        path = [a]
        while path[-1] in after:
            path.append(after[path[-1]])
        chains.append(FusedChain(graph, [by_node[n] for n in path], [kinds[n] for n in path], chans))
    return chains
