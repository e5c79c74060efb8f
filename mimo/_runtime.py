"""Lowers a graph to channels and tasks and runs it.

One task per stream (and one per fed input). The first failure cancels every
other task; outside cancellation does the same; a run where every live task
waits on a mimo port ends in :class:`DeadlockError`. In every case each task
has finished, and its ``finally`` blocks have run, before the run returns or
raises. During that teardown every queue is shut: a push raises
:class:`PortClosed` and a pop :class:`EndOfStream` instead of waiting, so a
``finally`` that pushes or drains cannot hold the run.

A stream all of whose connected outputs have lost every consumer is cancelled
at once (its ``finally`` runs) and ends quietly, as if a push had raised
:class:`ConsumersGone`; its own inputs then detach, so its producers follow.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from mimo._channel import Channel, WaitKind
from mimo._checkpoint import Checkpointer
from mimo._errors import CLEAN_EXITS, ConsumersGone, DeadlockError, EndOfStream, PortClosed, name_error
from mimo._fuse import fuse_chains
from mimo._graph import Graph, Node, workers_of
from mimo._keyed import KeyedInputs, is_keyed
from mimo._ports import InputPort, Ins, OutputPort, Outs, PortTimes, WaitClock
from mimo._report import RunReport, merged_report
from mimo._supervision import Supervisor, supervisor_for

log = logging.getLogger("mimo")


class _Side(WaitClock):
    """One side (push or pop) of a stream's :class:`_Clocks`; keeps its own figure too."""

    __slots__ = ("_all", "_push")

    def __init__(self, clocks: _Clocks, push: bool) -> None:
        super().__init__()
        self._all = clocks
        self._push = push

    # WaitClock.start/stop written out: a wait runs them once each, and calls are what it costs.

    def start(self, now: float | None = None) -> None:
        if now is None:
            now = time.perf_counter()
        self._all.turn(self._push, 1, now)
        if not self._on:
            self._t0 = now
        self._on += 1

    def stop(self, now: float | None = None) -> None:
        if now is None:
            now = time.perf_counter()
        self._on -= 1
        if not self._on:
            self.seconds += now - self._t0
        self._all.turn(self._push, -1, now)


class _Clocks(PortTimes):
    """A stream's wait clocks, shared so that no instant is counted twice.

    A stream that waits on a push and a pop at once (its sub-tasks, under
    :func:`run_together`) is *blocked* then: it holds an item it cannot hand
    on. *Starved* is the time it waits on a pop and on no push. So blocked +
    starved never exceeds the stream's life, and busy is the rest.
    """

    __slots__ = ("_pushes", "_pops", "_t", "_blocked", "_starved")

    def __init__(self) -> None:
        self.pushing = _Side(self, True)
        self.popping = _Side(self, False)
        self._pushes = 0
        self._pops = 0
        self._t = 0.0
        self._blocked = 0.0
        self._starved = 0.0
        self.retries = 0

    def turn(self, push: bool, step: int, now: float) -> None:
        """A push (or pop) wait starts (``step`` 1) or ends (-1) at ``now``."""
        if self._pushes:
            self._blocked += now - self._t
        elif self._pops:
            self._starved += now - self._t
        self._t = now
        if push:
            self._pushes += step
        else:
            self._pops += step

    @property
    def blocked_s(self) -> float:
        """Time during which at least one push waited (on a full queue)."""
        return self._blocked + (time.perf_counter() - self._t if self._pushes else 0.0)

    @property
    def starved_s(self) -> float:
        """Time during which a pop waited (on an empty queue) and no push did."""
        return self._starved + (time.perf_counter() - self._t if self._pops and not self._pushes else 0.0)


@dataclass(eq=False)
class _StreamRun:
    node: Node
    ins: Ins
    outs: Outs
    times: PortTimes
    monitor: _Monitor
    copy: int = 0
    start: float = 0.0
    end: float = 0.0
    task: asyncio.Task[None] | None = field(default=None, repr=False)
    #: Its outputs that were joined to something when the run began.
    connected: list[OutputPort[Any]] = field(default_factory=list, repr=False)
    #: The run asked it to stop: every consumer of its outputs has gone.
    stop_asked: bool = False
    #: It ended quietly because the run stopped it early.
    stopped_early: bool = False
    #: The stream's restart record under ``on_error=Restart(...)``, shared by its copies.
    supervisor: Supervisor | None = field(default=None, repr=False)
    #: The run's checkpoints (``run(checkpoint=...)``), or None.
    checkpoints: Checkpointer | None = field(default=None, repr=False)

    def abandoned(self) -> bool:
        """True while every connected output (not closed by the stream itself) has lost every consumer."""
        return bool(self.connected) and all(not p.closed and not p.consumers for p in self.connected)


#: How long the deadlock monitor waits before it looks again at a run that moved.
_LOOK_AGAIN_S = 0.002


class _Monitor:
    """Watches waits on channels to tell a deadlock from slow progress.

    Cheap while the run moves: each wait costs O(1) bookkeeping, and the full
    look (O(waiters)) is taken only when every live task has a wait on and no
    wait has ended since the look was asked for.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, stop: asyncio.Future[None]) -> None:
        self.loop = loop
        self.stop = stop
        self.live: dict[asyncio.Task[Any], str] = {}
        self.waits: dict[asyncio.Future[None], tuple[asyncio.Task[Any] | None, Channel[Any], WaitKind]] = {}
        # asyncio.current_task is written in Python up to 3.11: the dict it reads, read directly.
        self._current_task: Callable[[], asyncio.Task[Any] | None] = (
            functools.partial(asyncio.tasks._current_tasks.get, loop)  # type: ignore[attr-defined]
            if sys.version_info < (3, 12)
            else asyncio.current_task
        )
        self.error: DeadlockError | None = None
        #: Tasks a stream's code started, each with the task that started it.
        self.children: dict[asyncio.Task[Any], asyncio.Task[Any] | None] = {}
        self.kids: dict[asyncio.Task[Any] | None, set[asyncio.Task[Any]]] = {}
        #: Tasks inside run_together(): waiting on their sub-tasks and nothing else.
        self.delegating: set[asyncio.Task[Any]] = set()
        #: Set once the run tears down: the run's own cancellations follow.
        self.tearing_down = False
        self._scheduled = False
        self._moved = 0  # waits ended so far
        self._mark = 0  # ... when the pending look was asked for

    def wait_started(self, channel: Channel[Any], kind: WaitKind, fut: asyncio.Future[None]) -> None:
        waits = self.waits
        waits[fut] = (self._current_task(), channel, kind)
        # Counts waits, not tasks: a task with two waits on makes the run look
        # stuck sooner, and check() then looks at tasks.
        if len(waits) + len(self.delegating) >= len(self.live):
            self.schedule()

    def wait_ended(self, channel: Channel[Any], kind: WaitKind, fut: asyncio.Future[None], seconds: float) -> None:
        self._moved += 1
        self.waits.pop(fut, None)

    def adopt(self, task: asyncio.Task[Any]) -> None:
        """A task that a stream started counts as part of it: while it can move, so can the run."""
        parent = asyncio.current_task()
        self.children[task] = parent
        self.kids.setdefault(parent, set()).add(task)
        self.live[task] = f"{self.live.get(parent, 'a stream') if parent else 'a stream'} (its sub-task)"
        task.add_done_callback(self._child_done)

    def _child_done(self, task: asyncio.Task[Any]) -> None:
        self.live.pop(task, None)
        parent = self.children.pop(task, None)
        kids = self.kids.get(parent)
        if kids is not None:
            kids.discard(task)
            if not kids:
                del self.kids[parent]
        self.schedule()

    def schedule(self, later: bool = False) -> None:
        if not self._scheduled:
            self._scheduled = True
            self._mark = self._moved
            if later:
                self.loop.call_later(_LOOK_AGAIN_S, self.check)
            else:
                self.loop.call_soon(self.check)

    def _maybe_stuck(self) -> bool:
        # Every stuck live task has a wait on or delegates; fewer means one moves.
        return len(self.waits) + len(self.delegating) >= len(self.live)

    def check(self) -> None:
        self._scheduled = False
        if not self.live or self.stop.done() or not self._maybe_stuck():
            return
        if self._moved != self._mark:
            # A task came out of a wait since the look was asked for: the run
            # moves. Look again a little later: in a busy run every task is
            # counted as waiting at each switch (the woken one has not run
            # yet), and a look at every turn of the loop would cost a callback
            # per wait. A deadlock is then found within a few milliseconds.
            self.schedule(later=True)
            return
        stuck: dict[asyncio.Task[Any], tuple[Channel[Any], WaitKind] | None] = {}
        for f, (t, ch, kind) in self.waits.items():
            if f.done():
                return  # woken: its task moves, and its next wait asks again
            if t is not None:
                stuck[t] = (ch, kind)
        # A task that only waits on its sub-tasks is stuck when all of them are.
        grew = True
        while grew:
            grew = False
            for task in self.delegating:
                if task in stuck or task not in self.live:
                    continue
                kids = [k for k in self.kids.get(task, ()) if k in self.live]
                if kids and all(k in stuck for k in kids):
                    stuck[task] = None
                    grew = True
        if not all(t in stuck for t in self.live):
            return
        lines = []
        for task, name in self.live.items():
            entry = stuck[task]
            if entry is None:
                continue  # its sub-tasks say what they wait on
            ch, kind = entry
            st = ch.statistics()
            if kind == "push":
                why = f"waits to push into {st.label} (full: {st.buffered} of {st.capacity})"
            else:
                why = f"waits to pop from {st.label} (empty; {st.open_producers} producer(s) still open)"
            lines.append(f"  {name!r} {why}")
        self.error = DeadlockError("every stream is waiting on another and none can move:\n" + "\n".join(lines))
        self.stop.set_result(None)


#: Called once the run's tasks exist, with a function that reports the run so far.
OnStart = Callable[[Callable[[], RunReport]], None]


async def run_graph(
    graph: Graph,
    *,
    capacity: int | None = None,
    on_start: OnStart | None = None,
    checkpoint: object = None,
    checkpoint_every: float = 5.0,
) -> RunReport:
    """Run every stream of ``graph`` to completion and report on it.

    ``on_start`` (for progress displays) receives a snapshot function that
    returns a :class:`RunReport` of the run so far; it may call it any time
    from the event loop's thread while the run goes on. ``checkpoint`` (a
    file name or a store) takes a checkpoint every ``checkpoint_every``
    seconds and resumes from the last one (see :mod:`mimo._checkpoint`).
    """
    return await _GraphRun(graph, capacity, checkpoint, checkpoint_every).run(on_start)


class _GraphRun:
    """One run of a graph in this event loop: its queues, its streams' copies and their tasks."""

    def __init__(self, graph: Graph, capacity: int | None, checkpoint: object, checkpoint_every: float) -> None:
        self.graph = graph
        self.loop = asyncio.get_running_loop()
        self.stop: asyncio.Future[None] = self.loop.create_future()
        self.monitor = _Monitor(self.loop, self.stop)
        self.cap = graph.capacity if capacity is None else capacity
        self.ck = (
            None if checkpoint is None else Checkpointer(graph, checkpoint, checkpoint_every, workers_of, self.monitor)
        )
        self.chans = self._make_channels()
        self.keyed = KeyedInputs(graph, self.chans, self.monitor)
        self._warn_unjoined()
        self.runs = self._make_runs()
        # Chains of stock one-to-one stages run as one loop each; their records stay, for the report.
        self.fused = fuse_chains(graph, self.runs, self.chans) if self.ck is None else []
        if self.ck is not None:
            self.ck.prepare()
        # Stopping early: when a consumer leaves, look at the streams feeding it.
        # (Registered after the ports' own callbacks, so the ports are up to date.)
        self.feeding = self._feeding()
        for ch in self.feeding:
            ch.on_detach.append(self._consumer_left)
        self.tasks: list[asyncio.Task[None]] = []
        self.remaining = 0
        self.ctx = contextvars.copy_context()

    def _make_channels(self) -> dict[tuple[Node, str], Channel[Any]]:
        graph, ck = self.graph, self.ck
        chans: dict[tuple[Node, str], Channel[Any]] = {}
        for node in graph.nodes:
            for p in node.ins:
                edges = graph.inputs_of(node, p)
                fed = (node, p) in graph.feeds
                sources = [f"{e.src.name}.{e.out}" for e in edges] + (["fed items"] if fed else [])
                label = f"{', '.join(sources) or 'nothing'} -> {node.name}.{p}"
                # Each copy of a multi-worker stream is a producer and a consumer of its own.
                producers = sum(workers_of(e.src) for e in edges) + fed
                make: Any = Channel if ck is None else functools.partial(ck.make_channel, node, p)
                chans[(node, p)] = make(
                    graph.input_capacity(node, p, self.cap),
                    producers=producers,
                    # Keyed workers' copies read queues of their own, fed by one router.
                    consumers=1 if is_keyed(node) else workers_of(node),
                    label=label,
                    end=EndOfStream,
                    observer=self.monitor,
                )
        return chans

    def _warn_unjoined(self) -> None:
        for node in self.graph.nodes:
            for p in node.outs:
                if not self.graph.outputs_of(node, p):
                    # Never silently: say once per run that these items go nowhere.
                    log.warning("output %s.%s is joined to nothing; what it pushes is discarded", node.name, p)

    def _make_runs(self) -> list[_StreamRun]:
        runs: list[_StreamRun] = []
        for node in self.graph.nodes:
            supervisor = supervisor_for(node.stream, node.name)
            for copy in range(workers_of(node)):
                runs.append(self._stream_run(node, copy, supervisor))
        return runs

    def _stream_run(self, node: Node, copy: int, supervisor: Supervisor | None) -> _StreamRun:
        graph, chans = self.graph, self.chans
        times = _Clocks()
        ins = Ins(node.name, {p: InputPort(p, node.name, self.keyed.channel(node, p, copy), times) for p in node.ins})
        outs = Outs(
            node.name,
            {
                p: OutputPort(p, node.name, [chans[(e.dst, e.in_)] for e in graph.outputs_of(node, p)], times)
                for p in node.outs
            },
        )
        connected = [outs[p] for p in node.outs if graph.outputs_of(node, p)]
        return _StreamRun(
            node, ins, outs, times, self.monitor, copy, connected=connected, supervisor=supervisor, checkpoints=self.ck
        )

    def _feeding(self) -> dict[Channel[Any], list[_StreamRun]]:
        feeding: dict[Channel[Any], list[_StreamRun]] = {}
        for r in self.runs:
            for out in r.connected:
                for e in self.graph.outputs_of(r.node, out.name):
                    feeding.setdefault(self.chans[(e.dst, e.in_)], []).append(r)
        return feeding

    def _consumer_left(self, ch: Channel[Any]) -> None:
        if self.stop.done():
            return
        me = asyncio.current_task()
        for r in self.feeding.get(ch, ()):
            if r.end or r.stop_asked or not r.abandoned():
                continue
            r.stop_asked = True
            # A copy not started yet sees stop_asked when it starts; one
            # running now is ending or will meet ConsumersGone at its next push.
            if r.start and r.task is not None and r.task is not me:
                r.task.cancel()

    def _on_done(self, task: asyncio.Task[None]) -> None:
        self.remaining -= 1
        self.monitor.live.pop(task, None)
        if self.stop.done():
            return
        if (not task.cancelled() and task.exception() is not None) or self.remaining == 0:
            self.stop.set_result(None)
        else:
            self.monitor.schedule()

    def _start(self, coro: Any, name: str) -> asyncio.Task[None]:
        task = self.loop.create_task(coro, name=f"mimo:{name}", context=self.ctx.copy())
        self.tasks.append(task)
        self.monitor.live[task] = name
        self.remaining += 1
        task.add_done_callback(self._on_done)
        return task

    def _start_all(self) -> None:
        firsts = {chain.runs[0]: chain for chain in self.fused}
        fused = {r for chain in self.fused for r in chain.runs}
        for r in self.runs:
            if r in firsts:
                firsts[r].started(self._start(firsts[r].run(), firsts[r].name))
            if r in fused:
                continue
            r.task = self._start(_run_stream(r), r.node.name if workers_of(r.node) == 1 else f"{r.node.name}[{r.copy}]")
        for (node, p), items in self.graph.feeds.items():
            self._start(_feed(self.chans[(node, p)], list(items)), f"items fed to {node.name}.{p}")
        for router, label in self.keyed.routers():
            self._start(router, label)

    async def run(self, on_start: OnStart | None) -> RunReport:
        _adopt_sub_tasks(self.loop)
        self.ctx.run(_RUN.set, self.monitor)
        t0 = time.perf_counter()
        self._start_all()
        if not self.tasks:
            return RunReport({}, time.perf_counter() - t0, self.cap)
        coordinator = None
        if self.ck is not None:
            # Not one of the run's tasks: the run ends when its streams do.
            coordinator = self.loop.create_task(self.ck.coordinate(self.stop), name="mimo:checkpoints")
        if on_start is not None:
            on_start(lambda: _report(self.runs, time.perf_counter() - t0, self.cap))
        failed_before = await self._wait(coordinator)
        elapsed = time.perf_counter() - t0
        await self._raise_failures(failed_before)
        return _report(self.runs, elapsed, self.cap)

    async def _wait(self, coordinator: asyncio.Task[None] | None) -> set[asyncio.Task[None]]:
        """Wait for the run to end, tear down what is left; the tasks that had ended before."""
        try:
            await self.stop
        finally:
            # Reached on success, failure, deadlock and outside cancellation alike.
            failed_before = {t for t in self.tasks if t.done()}
            # Cancelling this task cancels the future it awaits: stop.
            outside = not self.stop.done() or self.stop.cancelled()
            if not self.stop.done():
                self.stop.cancel()  # cancelled from outside: no future of the run stays pending
            if coordinator is not None:
                coordinator.cancel()
                await asyncio.wait([coordinator])
            torn = await _tear_down(self.monitor, self.tasks, [*self.chans.values(), *self.keyed.channels()])
            if self.ck is not None and (outside or torn):
                self.ck.store.close()
            if outside:
                _log_lost_errors(self.tasks)
            if torn:
                # Cancelled while tearing down: after a clean end, that still wins.
                raise asyncio.CancelledError
        return failed_before

    def _stream_errors(self, failed_before: set[asyncio.Task[None]]) -> list[BaseException]:
        errors: list[BaseException] = []
        for t in self.tasks:
            if t.cancelled():
                continue
            exc = t.exception()
            # What a stream raised because its queues were shut under it is a
            # consequence of the teardown, not a failure of its own.
            if exc is not None and (t in failed_before or not isinstance(exc, _SHUT_ERRORS)):
                errors.append(exc)
        return errors

    async def _raise_failures(self, failed_before: set[asyncio.Task[None]]) -> None:
        errors = self._stream_errors(failed_before)
        if self.ck is not None:
            await self.ck.finish(not errors and self.monitor.error is None and self.ck.error is None)
            if self.ck.error is not None and not errors:
                raise self.ck.error
        if errors:
            if len(errors) == 1:
                raise errors[0]
            raise BaseExceptionGroup(f"{len(errors)} streams failed", errors)
        if self.monitor.error is not None:
            raise self.monitor.error


#: What a push or pop raises on a queue that the teardown shut.
_SHUT_ERRORS = (PortClosed, EndOfStream, ConsumersGone)


def _log_lost_errors(tasks: list[asyncio.Task[None]]) -> None:
    """Log what streams raised while an outside cancellation tore the run down.

    The cancellation is what the caller gets; without this a stream's own
    error (say, in its ``finally``) would vanish into asyncio's garbage-time
    log under a private task's name.
    """
    for t in tasks:
        if t.cancelled():
            continue
        exc = t.exception()
        if exc is not None and not isinstance(exc, _SHUT_ERRORS):
            name = t.get_name().removeprefix("mimo:")
            log.error("stream %r failed while the run was being cancelled", name, exc_info=exc)


async def _tear_down(monitor: _Monitor, tasks: list[asyncio.Task[None]], chans: Any) -> bool:
    """Cancel what is left of a run and wait until all of it has ended.

    Every queue is shut first, so that a ``finally`` that pushes, or a stream
    that reads on after its cancellation, fails fast instead of waiting for
    ever. Returns True if this task was cancelled meanwhile: a further
    cancellation cancels the run's tasks again (a stream that swallowed one
    gets another) and the teardown goes on, so that no task outlives the run.
    """
    monitor.tearing_down = True
    pending = [t for t in (*tasks, *monitor.children) if not t.done()]
    if not pending:
        return False  # a clean end: the queues keep their figures for the report
    for ch in chans:
        ch.shutdown()
    cancelled = False
    for t in pending:
        t.cancel()
    while pending:
        try:
            await asyncio.wait(pending)
        except asyncio.CancelledError:
            cancelled = True
            for t in pending:
                t.cancel()
        # Sub-tasks started during the teardown (in a finally) go too.
        more = [t for t in monitor.children if not t.done() and t not in pending]
        for t in more:
            t.cancel()
        pending = [t for t in (*pending, *more) if not t.done()]
    return cancelled


def _report(runs: list[_StreamRun], elapsed: float, capacity: int) -> RunReport:
    now = time.perf_counter()
    by_node: dict[Node, list[_StreamRun]] = {}
    for r in runs:
        by_node.setdefault(r.node, []).append(r)
    streams = {}
    for node, copies in by_node.items():
        # A keyed copy's own queue holds only its share: report the graph's queue it is routed from.
        stats = {p.name: getattr(p._ch, "source", p._ch).statistics() for p in copies[0].ins}
        sup = copies[0].supervisor
        streams[node.name] = merged_report(
            node.name,
            [((r.end or now) - r.start) if r.start else 0.0 for r in copies],
            blocked_s=sum(r.times.blocked_s for r in copies),
            starved_s=sum(r.times.starved_s for r in copies),
            items_in={n: st.popped for n, st in stats.items()},
            items_out={p: sum(r.outs[p].count for r in copies) for p in node.outs},
            buffered={n: st.buffered for n, st in stats.items()},
            done=all(r.end for r in copies),
            backpressure_s={n: st.push_wait_s for n, st in stats.items()},
            stopped_early=any(r.stopped_early for r in copies),
            dropped={n: st.dropped for n, st in stats.items()},
            retries=sum(r.times.retries for r in copies),
            **(sup.fields() if sup is not None else {}),
        )
    return RunReport(streams, elapsed, capacity)


#: The monitor of the run whose stream is running in this context.
_RUN: contextvars.ContextVar[_Monitor | None] = contextvars.ContextVar("mimo_run", default=None)


def _adopt_sub_tasks(loop: asyncio.AbstractEventLoop) -> None:
    """Make tasks created by a stream's code known to its run's deadlock check.

    Without this, a stream waiting on a port while its own sub-task sleeps
    before pushing would look stuck. Installed once per loop, over any task
    factory already there.
    """
    previous = loop.get_task_factory()
    if getattr(previous, "_mimo", False):
        return

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kw: Any) -> asyncio.Future[Any]:
        task = previous(loop, coro, **kw) if previous is not None else asyncio.Task(coro, loop=loop, **kw)
        monitor = _RUN.get()
        if monitor is not None and isinstance(task, asyncio.Task) and asyncio.current_task() in monitor.live:
            monitor.adopt(task)
        return task

    factory._mimo = True  # type: ignore[attr-defined]
    loop.set_task_factory(factory)


async def _run_stream(r: _StreamRun) -> None:
    r.start = time.perf_counter()
    if r.checkpoints is not None and r.checkpoints.enter(r.node):
        r.end = r.start  # it had finished when the checkpoint resumed from was taken
        _end_cleanly(r)
        return
    if r.stop_asked:  # its consumers left before it began
        r.stopped_early = True
        r.end = r.start
        _end_cleanly(r)
        return
    try:
        if r.supervisor is None:
            await r.node.stream.run(r.ins, r.outs)
        else:
            await r.supervisor.run(lambda: r.node.stream.run(r.ins, r.outs), r.copy, lambda: r.monitor.tearing_down)
        for out in r.outs:
            out._check_awaited()  # a push not awaited may have lost its item
        r.stopped_early = r.stop_asked  # it may have caught the cancellation and returned
    except CLEAN_EXITS:
        r.stopped_early = r.stop_asked
    except asyncio.CancelledError as exc:
        me = asyncio.current_task()
        if me is not None and me.cancelling() == 0:
            # Nobody cancelled this stream: its own code let a CancelledError
            # out. That is a failure of the stream, not a quiet stop.
            err = RuntimeError(
                f"stream {r.node.name!r} raised CancelledError but was not cancelled: a cancellation "
                "from inside its own code (a cancelled sub-task or future it awaited), not by the run"
            )
            name_error(err, r.node.name)
            raise err from exc
        if r.monitor.tearing_down:
            raise
        if not r.stop_asked:
            # Not the run: the stream's own code (or a task outside the run)
            # cancelled it. Said as such, rather than left to look like a
            # deadlock of whoever waits on it.
            err = RuntimeError(
                f"stream {r.node.name!r} was cancelled from inside (by its own code or a task "
                "outside the run), not by the run"
            )
            name_error(err, r.node.name)
            raise err from exc
        if me is not None:
            me.uncancel()
        r.stopped_early = True  # every consumer left: a quiet end, like ConsumersGone
    except BaseException as exc:
        name_error(exc, r.node.name)
        raise
    finally:
        r.end = time.perf_counter()
    if r.monitor.tearing_down:
        return  # the run is over and its queues are shut: nothing to close
    _end_cleanly(r)


def _end_cleanly(r: _StreamRun) -> None:
    if r.checkpoints is not None:
        r.checkpoints.ended(r.node)
    # Only a clean end closes outputs: after a failure nothing downstream
    # should mistake a truncated stream for a complete one.
    for out in r.outs:
        out.close()
    for inp in r.ins:
        inp._ch.close_consumer()


async def run_together(*jobs: Coroutine[Any, Any, Any]) -> None:
    """Run ``jobs`` as sub-tasks of the calling stream and wait for them all.

    For streams that read or write several ports at once. While every job
    waits on a mimo port, the stream counts as waiting on ports too, so a
    deadlock through its jobs is found rather than hanging the run.

    Clean endings stay clean: a job that raises :class:`EndOfStream` (its
    input ended) ends alone while the others go on; a job that raises
    :class:`ConsumersGone` ends them all, and ``run_together`` raises that
    ``ConsumersGone`` (not a group), which ends the stream quietly. Any other
    failure cancels the other jobs and is raised in an ``ExceptionGroup``, as
    :class:`asyncio.TaskGroup` does.
    """
    monitor = _RUN.get()
    me = asyncio.current_task()
    tracked = monitor is not None and me is not None and me in monitor.live
    if monitor is not None and me is not None and tracked:
        monitor.delegating.add(me)
    try:
        async with asyncio.TaskGroup() as group:
            for job in jobs:
                group.create_task(_job(job))
    except BaseExceptionGroup as eg:
        gone, rest = eg.split(ConsumersGone)
        if rest is not None or gone is None:
            raise
        first: BaseException = gone
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from None
    finally:
        if monitor is not None and me is not None:
            monitor.delegating.discard(me)


async def _job(job: Coroutine[Any, Any, Any]) -> None:
    try:
        await job
    except EndOfStream:
        pass  # this job's input ended; the others go on


async def _feed(ch: Channel[Any], items: list[Any]) -> None:
    for item in items:
        await ch.push(item)
    ch.close_producer()


# A public name for mimo.executors, which feeds streams the same way in other processes.
feed = _feed
