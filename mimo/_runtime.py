"""Lowers a graph to channels and tasks and runs it.

One task per stream (and one per fed input). The first failure cancels every
other task; outside cancellation does the same; a run where every live task
waits on a mimo port ends in :class:`DeadlockError`. In every case each task
has finished, and its ``finally`` blocks have run, before the run returns or
raises.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from mimo._channel import Channel, WaitKind
from mimo._errors import CLEAN_EXITS, DeadlockError, EndOfStream
from mimo._graph import Graph, Node
from mimo._ports import InputPort, Ins, OutputPort, Outs, PortTimes
from mimo._report import RunReport, StreamReport

log = logging.getLogger("mimo")


@dataclass(eq=False)
class _StreamRun:
    node: Node
    ins: Ins
    outs: Outs
    times: PortTimes
    copy: int = 0
    start: float = 0.0
    end: float = 0.0
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class _Monitor:
    """Watches waits on channels to tell a deadlock from slow progress."""

    def __init__(self, loop: asyncio.AbstractEventLoop, stop: asyncio.Future[None]) -> None:
        self.loop = loop
        self.stop = stop
        self.live: dict[asyncio.Task[Any], str] = {}
        self.waits: dict[asyncio.Future[None], tuple[asyncio.Task[Any] | None, Channel[Any], WaitKind]] = {}
        self.error: DeadlockError | None = None
        #: Tasks a stream's code started, each with the task that started it.
        self.children: dict[asyncio.Task[Any], asyncio.Task[Any] | None] = {}
        #: Tasks inside run_together(): waiting on their sub-tasks and nothing else.
        self.delegating: set[asyncio.Task[Any]] = set()
        self._scheduled = False

    def wait_started(self, channel: Channel[Any], kind: WaitKind, fut: asyncio.Future[None]) -> None:
        self.waits[fut] = (asyncio.current_task(), channel, kind)
        if len(self.waits) + len(self.delegating) >= len(self.live):
            self.schedule()

    def wait_ended(self, channel: Channel[Any], kind: WaitKind, fut: asyncio.Future[None], seconds: float) -> None:
        self.waits.pop(fut, None)

    def adopt(self, task: asyncio.Task[Any]) -> None:
        """A task that a stream started counts as part of it: while it can move, so can the run."""
        parent = asyncio.current_task()
        self.children[task] = parent
        self.live[task] = f"{self.live.get(parent, 'a stream') if parent else 'a stream'} (its sub-task)"
        task.add_done_callback(self._child_done)

    def _child_done(self, task: asyncio.Task[Any]) -> None:
        self.live.pop(task, None)
        self.children.pop(task, None)
        self.schedule()

    def schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            self.loop.call_soon(self.check)

    def check(self) -> None:
        self._scheduled = False
        if not self.live or self.stop.done():
            return
        # A future that is done has been woken: its task can move.
        stuck: dict[asyncio.Task[Any], tuple[Channel[Any], WaitKind] | None] = {
            t: (ch, kind) for f, (t, ch, kind) in self.waits.items() if not f.done() and t is not None
        }
        # A task that only waits on its sub-tasks is stuck when all of them are.
        grew = True
        while grew:
            grew = False
            for task in self.delegating:
                if task in stuck or task not in self.live:
                    continue
                kids = [k for k, parent in self.children.items() if parent is task and k in self.live]
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


async def run_graph(graph: Graph, *, capacity: int | None = None, on_start: OnStart | None = None) -> RunReport:
    """Run every stream of ``graph`` to completion and report on it.

    ``on_start`` (for progress displays) receives a snapshot function that
    returns a :class:`RunReport` of the run so far; it may call it any time
    from the event loop's thread while the run goes on.
    """
    loop = asyncio.get_running_loop()
    stop: asyncio.Future[None] = loop.create_future()
    monitor = _Monitor(loop, stop)
    cap = graph.capacity if capacity is None else capacity

    chans: dict[tuple[Node, str], Channel[Any]] = {}
    for node in graph.nodes:
        for p in node.ins:
            edges = graph.inputs_of(node, p)
            fed = (node, p) in graph.feeds
            sources = [f"{e.src.name}.{e.out}" for e in edges] + (["fed items"] if fed else [])
            label = f"{', '.join(sources) or 'nothing'} -> {node.name}.{p}"
            # Each copy of a multi-worker stream is a producer and a consumer of its own.
            producers = sum(_workers(e.src) for e in edges) + fed
            chans[(node, p)] = Channel(
                cap,
                producers=producers,
                consumers=_workers(node),
                label=label,
                end=EndOfStream,
                observer=monitor,
            )

    for node in graph.nodes:
        for p in node.outs:
            if not graph.outputs_of(node, p):
                # Never silently: say once per run that these items go nowhere.
                log.warning("output %s.%s is joined to nothing; what it pushes is discarded", node.name, p)

    runs: list[_StreamRun] = []
    for node in graph.nodes:
        for copy in range(_workers(node)):
            times = PortTimes()
            ins = Ins(node.name, {p: InputPort(p, node.name, chans[(node, p)], times) for p in node.ins})
            outs = Outs(
                node.name,
                {
                    p: OutputPort(p, node.name, [chans[(e.dst, e.in_)] for e in graph.outputs_of(node, p)], times)
                    for p in node.outs
                },
            )
            runs.append(_StreamRun(node, ins, outs, times, copy))

    tasks: list[asyncio.Task[None]] = []
    remaining = 0

    def on_done(task: asyncio.Task[None]) -> None:
        nonlocal remaining
        remaining -= 1
        monitor.live.pop(task, None)
        if stop.done():
            return
        if (not task.cancelled() and task.exception() is not None) or remaining == 0:
            stop.set_result(None)
        else:
            monitor.schedule()

    _adopt_sub_tasks(loop)
    ctx = contextvars.copy_context()
    ctx.run(_RUN.set, monitor)

    def start(coro: Any, name: str) -> None:
        nonlocal remaining
        task = loop.create_task(coro, name=f"mimo:{name}", context=ctx.copy())
        tasks.append(task)
        monitor.live[task] = name
        remaining += 1
        task.add_done_callback(on_done)

    t0 = time.perf_counter()
    for r in runs:
        start(_run_stream(r), r.node.name if _workers(r.node) == 1 else f"{r.node.name}[{r.copy}]")
    for (node, p), items in graph.feeds.items():
        start(_feed(chans[(node, p)], list(items)), f"items fed to {node.name}.{p}")
    if not tasks:
        return RunReport({}, time.perf_counter() - t0, cap)
    if on_start is not None:
        on_start(lambda: _report(runs, time.perf_counter() - t0, cap))

    try:
        await stop
    finally:
        # Reached on success, failure, deadlock and outside cancellation alike;
        # the tasks the streams started go too, so that none outlives the run.
        leftover = [*tasks, *monitor.children]
        for t in leftover:
            t.cancel()
        while True:
            try:
                await asyncio.wait(leftover)
                break
            except asyncio.CancelledError:
                continue  # a second Ctrl-C: finish tearing down all the same
    elapsed = time.perf_counter() - t0

    errors = [t.exception() for t in tasks if not t.cancelled() and t.exception() is not None]
    if errors:
        if len(errors) == 1:
            raise errors[0]  # type: ignore[misc]
        raise BaseExceptionGroup(f"{len(errors)} streams failed", errors)  # type: ignore[type-var]
    if monitor.error is not None:
        raise monitor.error

    return _report(runs, elapsed, cap)


def _report(runs: list[_StreamRun], elapsed: float, capacity: int) -> RunReport:
    now = time.perf_counter()
    by_node: dict[Node, list[_StreamRun]] = {}
    for r in runs:
        by_node.setdefault(r.node, []).append(r)
    streams = {}
    for node, copies in by_node.items():
        lives = [((r.end or now) - r.start) if r.start else 0.0 for r in copies]
        blocked = sum(r.times.blocked_s for r in copies)
        starved = sum(r.times.starved_s for r in copies)
        stats = {p.name: p._ch.statistics() for p in copies[0].ins}
        streams[node.name] = StreamReport(
            name=node.name,
            items_in={n: st.popped for n, st in stats.items()},
            items_out={p: sum(r.outs[p].count for r in copies) for p in node.outs},
            elapsed_s=max(lives),
            busy_s=max(0.0, sum(lives) - blocked - starved),
            blocked_s=blocked,
            starved_s=starved,
            buffered={n: st.buffered for n, st in stats.items()},
            done=all(r.end for r in copies),
            workers=len(copies),
            backpressure_s={n: st.push_wait_s for n, st in stats.items()},
        )
    return RunReport(streams, elapsed, capacity)


def _workers(node: Node) -> int:
    return int(getattr(node.stream, "workers", 1))


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
    try:
        await r.node.stream.run(r.ins, r.outs)
        for out in r.outs:
            out._check_awaited()  # a push not awaited may have lost its item
    except CLEAN_EXITS:
        pass
    except asyncio.CancelledError as exc:
        me = asyncio.current_task()
        if me is not None and me.cancelling() == 0:
            # Nobody cancelled this stream: its own code let a CancelledError
            # out. That is a failure of the stream, not a quiet stop.
            err = RuntimeError(f"stream {r.node.name!r} raised CancelledError but was not cancelled")
            _name_error(err, r.node.name)
            raise err from exc
        raise
    except BaseException as exc:
        _name_error(exc, r.node.name)
        raise
    finally:
        r.end = time.perf_counter()
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
    """
    monitor = _RUN.get()
    me = asyncio.current_task()
    tracked = monitor is not None and me is not None and me in monitor.live
    if monitor is not None and me is not None and tracked:
        monitor.delegating.add(me)
    try:
        async with asyncio.TaskGroup() as group:
            for job in jobs:
                group.create_task(job)
    finally:
        if monitor is not None and me is not None:
            monitor.delegating.discard(me)


async def _feed(ch: Channel[Any], items: list[Any]) -> None:
    for item in items:
        await ch.push(item)
    ch.close_producer()


def _name_error(exc: BaseException, name: str) -> None:
    try:
        exc.mimo_stream = name  # type: ignore[attr-defined]
    except AttributeError:
        pass
    if not any(n == f"in mimo stream {name!r}" for n in getattr(exc, "__notes__", ())):
        exc.add_note(f"in mimo stream {name!r}")
