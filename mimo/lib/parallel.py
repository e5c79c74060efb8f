"""An ordered parallel map: a per-item function run N at a time.

:func:`parallel_map` turns a plain or async per-item function into a stream
with one input and one output that keeps up to ``workers`` items in flight,
in the event loop (async functions), in a thread pool or in a process pool.
Results leave in input order unless ``ordered=False``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import os
import pickle
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from mimo._checkpoint import position
from mimo._checks import check_count
from mimo._errors import EndOfStream, WouldBlock
from mimo._ports import InputPort, Ins, OutputPort, Outs
from mimo._stream import Stream
from mimo.lib._calls import check_per_item, settled
from mimo.lib._calls import is_async as _is_async

__all__ = ["parallel_map"]

T = TypeVar("T")
R = TypeVar("R")

ExecutorSpec = Literal["thread", "process"] | concurrent.futures.Executor | None


def parallel_map(
    fn: Callable[[T], R] | Callable[[T], Awaitable[R]],
    *,
    workers: int | None = None,
    executor: ExecutorSpec = None,
    ordered: bool = True,
    chunk_size: int | None = None,
    name: str | None = None,
    in_port: str = "inp",
    out_port: str = "out",
    in_type: Any = Any,
    out_type: Any = Any,
) -> Stream:
    """A stream that pushes ``fn(item)`` for every item, up to ``workers`` at once.

    Where ``fn`` runs:

    * ``executor=None``: an ``async def`` function runs as concurrent tasks in
      the event loop; a plain function runs in a thread pool of ``workers``
      threads.
    * ``'thread'`` / ``'process'``: a :mod:`concurrent.futures` pool of
      ``workers`` threads or processes, made when the stream starts and shut
      down when it ends. A process pool needs ``fn`` and the items to pickle
      (``fn`` defined at module level), and scripts using it need the usual
      ``if __name__ == "__main__":`` guard.
    * a :class:`concurrent.futures.Executor`: your pool, used as it is and
      left running.

    ``workers`` (default: the number of CPUs) bounds the work in flight: the
    stream takes no new item while ``workers`` tasks are being computed or
    their results wait to be pushed, so back-pressure from downstream reaches
    upstream as usual. A task is one item, except in a pool with
    ``chunk_size`` above 1: then a task carries up to that many items, those
    already waiting in the input (it never waits to fill one), which spreads a
    pool's per-task cost over several items. So at most ``workers *
    chunk_size`` items are in flight. ``chunk_size`` defaults to 16 for a
    process pool, where each task costs a round trip between processes, and to
    1 otherwise (and must be 1 for an ``async def`` function).
    With ``ordered=True`` results leave in input order (a slow item holds back
    the ones after it); with ``ordered=False`` as they finish. An exception
    raised by ``fn`` (or a broken pool) fails the stream with that exception.
    A plain ``fn`` that returns an awaitable has it awaited in the event loop
    (a process pool cannot send one back: that is a ``TypeError``). When the
    stream ends early, work already handed to a pool is not cancelled from the
    loop (see gh-107219); a pool the stream made is shut down with
    ``cancel_futures=True``.
    The ports are ``in_port`` (``"inp"``) and ``out_port`` (``"out"``); the stream
    is called ``name``, by default ``fn``'s name.
    """
    check_per_item("parallel_map", fn)
    if name is not None and not isinstance(name, str):
        raise TypeError(f"parallel_map: name must be a str, not {name!r}")
    label = name or getattr(fn, "__name__", None) or "parallel_map"
    job = _Job.checked(fn, label, workers, executor, ordered, chunk_size)
    job.in_port, job.out_port = in_port, out_port
    stream = Stream(ins={in_port: in_type}, outs={out_port: out_type}, fn=job.run, name=label)
    # A default name may be suffixed in a graph, as for any stream named after its function.
    stream.named = name is not None
    return stream


@dataclass
class _Job:
    """What a :func:`parallel_map` stream does, its arguments checked when it is made."""

    fn: Callable[[Any], Any]
    label: str
    workers: int
    executor: ExecutorSpec
    ordered: bool
    chunk: int
    is_async: bool
    in_port: str = "inp"
    out_port: str = "out"

    @classmethod
    def checked(
        cls,
        fn: Callable[[Any], Any],
        label: str,
        workers: int | None,
        executor: ExecutorSpec,
        ordered: bool,
        chunk_size: int | None,
    ) -> _Job:
        """The job, or the error a wrong argument gives at the line that made the stream."""
        n = (os.cpu_count() or 1) if workers is None else workers
        check_count(f"parallel_map {label!r}: workers", n)
        if not isinstance(ordered, bool):
            raise TypeError(f"parallel_map {label!r}: ordered must be True or False, not {ordered!r}")
        is_async = _is_async(fn)
        _check_executor(fn, label, executor, is_async)
        chunk = (16 if executor == "process" else 1) if chunk_size is None else chunk_size
        check_count(f"parallel_map {label!r}: chunk_size", chunk)
        if is_async and chunk != 1:
            raise ValueError(f"parallel_map {label!r}: an async function takes one item per task (chunk_size=1)")
        if executor == "process":
            _check_pickles(fn, label)
        return cls(fn, label, n, executor, ordered, chunk, is_async)

    async def run(self, ins: Ins, outs: Outs, state: Any) -> None:
        inp: InputPort[Any] = ins[self.in_port]
        out: OutputPort[Any] = outs[self.out_port]
        if self.is_async:
            fn = self.fn
            await _pump(
                inp, out, self.workers, 1, self.ordered, lambda items: asyncio.ensure_future(_one(fn, items[0]))
            )
            return
        pool, own = self._pool()
        try:
            await _pump(inp, out, self.workers, self.chunk, self.ordered, self._submitter(pool))
        except concurrent.futures.BrokenExecutor as exc:
            exc.add_note(
                f"parallel_map {self.label!r}: its pool broke (a worker died, or could not send a result "
                "or an exception back); the cause, if known, is shown above"
            )
            raise
        finally:
            if own:
                await _shut_down(pool)

    def _pool(self) -> tuple[concurrent.futures.Executor, bool]:
        """The pool to run ``fn`` in, and whether the stream made it (and so shuts it down)."""
        if isinstance(self.executor, concurrent.futures.Executor):
            return self.executor, False
        if self.executor == "process":
            return concurrent.futures.ProcessPoolExecutor(max_workers=self.workers), True
        return concurrent.futures.ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix=self.label), True

    def _submitter(self, pool: concurrent.futures.Executor) -> Callable[[list[Any]], asyncio.Future[list[Any]]]:
        loop = asyncio.get_running_loop()
        fn, label = self.fn, self.label
        # What a worker process returns crosses a pipe, which an awaitable cannot, so the
        # worker refuses one; from a thread, the loop awaits it, as in-loop streams do.
        if isinstance(pool, concurrent.futures.ProcessPoolExecutor):
            return lambda items: _detached(loop, pool.submit(_apply_in_process, fn, items, label))
        return lambda items: _detached(loop, pool.submit(_apply, fn, items), settle=True)


def _check_executor(fn: Callable[[Any], Any], label: str, executor: ExecutorSpec, is_async: bool) -> None:
    if executor is not None and not isinstance(executor, concurrent.futures.Executor):
        if executor not in ("thread", "process"):
            raise ValueError(
                f"parallel_map {label!r}: executor must be None, 'thread', 'process' or a "
                f"concurrent.futures.Executor, not {executor!r}"
            )
    if is_async and executor is not None:
        raise TypeError(
            f"parallel_map {label!r}: {fn!r} is an async function, which runs in the event loop; "
            "executor= is for plain functions"
        )


def _check_pickles(fn: Callable[[Any], Any], label: str) -> None:
    try:
        pickle.dumps(fn)
    except Exception as exc:
        raise TypeError(
            f"parallel_map {label!r}: a process pool needs a function it can pickle "
            f"(one defined at module level), and {fn!r} is not: {exc}"
        ) from None


async def _pump(
    inp: InputPort[Any],
    out: OutputPort[Any],
    tasks: int,
    chunk: int,
    ordered: bool,
    submit: Callable[[list[Any]], asyncio.Future[list[Any]]],
    *,
    flatten: bool = False,
) -> None:
    """Keep up to ``tasks`` tasks of up to ``chunk`` items in flight; push their results to ``out``.

    With ``flatten``, each item's result is a list whose elements are pushed one by one.
    """
    pos = position()
    if pos is None:
        await _Window(inp, out, tasks, chunk, ordered, submit, flatten).run()
    else:
        await _KeptWindow(inp, out, tasks, chunk, ordered, submit, flatten, pos).run()


@dataclass
class _Window:
    """Keeps up to ``tasks`` tasks of up to ``chunk`` items in flight; pushes their results to ``out``."""

    inp: InputPort[Any]
    out: OutputPort[Any]
    tasks: int
    chunk: int
    ordered: bool
    submit: Callable[[list[Any]], asyncio.Future[list[Any]]]
    flatten: bool
    pending: deque[asyncio.Future[list[Any]]] = field(default_factory=deque, init=False)
    #: The pop waiting for the next item, while there is room for one and none is at hand.
    getter: asyncio.Future[Any] | None = field(default=None, init=False)
    ended: bool = field(default=False, init=False)

    async def run(self) -> None:
        try:
            while True:
                # Results first: pushing them frees a place in the window.
                if await self._push_ready():
                    continue
                if not self.ended and len(self.pending) < self.tasks and self._take():
                    continue
                if self.ended and not self.pending:
                    return
                await self._wait()
        finally:
            await self._abandon()

    async def _push_ready(self) -> bool:
        """Push the results of a finished task that may leave now, if there is one."""
        if not self.pending:
            return False
        if self.ordered:
            done = self.pending[0] if self.pending[0].done() else None
        else:
            done = next((f for f in self.pending if f.done()), None)
        if done is None:
            return False
        self.pending.remove(done)
        results = done.result()
        if self.flatten:
            results = [r for rs in results for r in rs]
        await self._deliver(done, results)
        return True

    async def _deliver(self, done: asyncio.Future[list[Any]], results: list[Any]) -> None:
        """Push the results of the finished task ``done``."""
        for result in results:
            await self.out.push(result)

    def _take(self) -> bool:
        """Take the next item (or the end) if it is at hand; False while waiting for one."""
        if self.getter is None:
            try:
                item = self.inp.pop_nowait()
            except WouldBlock:
                self.getter = asyncio.ensure_future(self.inp.pop())
            except EndOfStream:
                self.ended = True
            else:
                self._start(item)
            return True
        if not self.getter.done():
            return False
        g, self.getter = self.getter, None
        try:
            item = g.result()
        except EndOfStream:
            self.ended = True
        else:
            self._start(item)
        return True

    def _start(self, item: Any) -> None:
        # Whatever is already waiting joins the chunk; never wait to fill it.
        items = [item]
        while len(items) < self.chunk:
            try:
                items.append(self.inp.pop_nowait())
            except WouldBlock:
                break
            except EndOfStream:
                self.ended = True
                break
        self.pending.append(self.submit(items))

    async def _wait(self) -> None:
        """Wait for the next result that can leave, or for the next item."""
        if self.getter is None and self.ordered:
            # Only the oldest task can free the window: wait on it alone, cheaply.
            await _settled(self.pending[0])
            return
        waits: set[asyncio.Future[Any]] = set()
        if self.pending:
            if self.ordered:
                waits.add(self.pending[0])
            else:
                waits.update(self.pending)
        if self.getter is not None:
            waits.add(self.getter)
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)

    async def _abandon(self) -> None:
        # A cancelled pop takes no item; the work in flight is abandoned.
        leftovers: list[asyncio.Future[Any]] = list(self.pending)
        if self.getter is not None:
            leftovers.append(self.getter)
        for f in leftovers:
            f.cancel()
        if leftovers:
            await asyncio.wait(leftovers)
        for f in leftovers:
            if not f.cancelled():
                f.exception()  # retrieved, so that asyncio does not log it


class _KeptWindow(_Window):
    """A :class:`_Window` in a checkpointed run: what is in flight is kept in the stream's position.

    ``pos["flight"]`` maps a task's number ``n`` to ``[items, pushed, n]``: the
    items it took (in input order) and how many of its results have been pushed.
    A checkpoint is taken at a pop, so it holds every item taken whose
    results have not all left; a resumed run hands those to ``fn`` again
    first, in order, and pushes only the results not pushed before.
    """

    def __init__(self, *args: Any) -> None:
        *rest, pos = args
        super().__init__(*rest)
        self.pos = pos
        self.flight: dict[int, list[Any]] = pos.setdefault("flight", {})
        self.entry: dict[asyncio.Future[list[Any]], list[Any]] = {}

    async def run(self) -> None:
        redo = list(self.flight.values())
        self.flight.clear()
        for items, pushed, _ in redo:
            if not self.flatten:  # one result per item: those pushed need no second call
                items, pushed = items[pushed:], 0
            if items:
                self._submit(self._enter(items, pushed), items)
        await super().run()

    def _enter(self, items: list[Any], pushed: int) -> list[Any]:
        n = self.pos["next"] = self.pos.get("next", 0) + 1
        entry = self.flight[n] = [items, pushed, n]
        return entry

    def _submit(self, entry: list[Any], items: list[Any]) -> None:
        fut = self.submit(items)
        self.entry[fut] = entry
        self.pending.append(fut)

    def _start(self, item: Any) -> None:
        # In flight from the moment it is taken: the pops below may take a checkpoint.
        items = [item]
        entry = self._enter(items, 0)
        while len(items) < self.chunk:
            try:
                items.append(self.inp.pop_nowait())
            except WouldBlock:
                break
            except EndOfStream:
                self.ended = True
                break
        self._submit(entry, items)

    async def _deliver(self, done: asyncio.Future[list[Any]], results: list[Any]) -> None:
        # Counting what is pushed, so that a resumed run skips what it had pushed.
        entry = self.entry.pop(done)
        for r in results[entry[1] :]:
            await self.out.push(r)
            entry[1] += 1
        del self.flight[entry[2]]


def _apply(fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
    """``fn`` on each item of a chunk, in a pool worker."""
    return [fn(item) for item in items]


def _apply_in_process(fn: Callable[[Any], Any], items: list[Any], label: str) -> list[Any]:
    """``fn`` on each item of a chunk, in a worker process: an awaitable result is an error."""
    results = [fn(item) for item in items]
    for r in results:
        if inspect.isawaitable(r):
            _close_coroutines(results)
            raise TypeError(
                f"parallel_map {label!r}: {fn!r} returned an awaitable ({type(r).__name__}), which a "
                "process pool can neither await nor send back; give a plain function that returns "
                "the value, or an async function without executor='process'"
            )
    return results


def _close_coroutines(results: list[Any]) -> None:
    """Close the coroutines among ``results``, never to be awaited: no "never awaited" warning."""
    for r in results:
        if inspect.iscoroutine(r):
            r.close()


def _detached(
    loop: asyncio.AbstractEventLoop, done: concurrent.futures.Future[list[Any]], *, settle: bool = False
) -> asyncio.Future[list[Any]]:
    """A loop future that takes ``done``'s outcome, and whose cancelling leaves ``done`` alone.

    With ``settle``, awaitable results are first awaited in the loop (a task
    that cancelling the loop future cancels too).

    The loop never cancels a pool's future: a process pool's manager thread
    may be failing it at that moment, and in CPython 3.11 that race kills the
    manager thread, leaving its workers alive and the interpreter hanging at
    exit (gh-107219). Work not yet started is cancelled by the pool's
    ``shutdown(cancel_futures=True)`` instead, on the pool's side.
    """
    fut: asyncio.Future[list[Any]] = loop.create_future()

    def copy_abandoned() -> None:
        if settle and not done.cancelled() and done.exception() is None:
            _close_coroutines(done.result())

    def copy() -> None:
        if fut.done():  # abandoned by the stream
            copy_abandoned()
            return
        if done.cancelled():
            fut.cancel()
        elif (exc := done.exception()) is not None:
            fut.set_exception(exc)
        elif settle and any(inspect.isawaitable(r) for r in done.result()):
            task = loop.create_task(settled(done.result()))
            task.add_done_callback(lambda t: _copy_outcome(t, fut))
            fut.add_done_callback(lambda f: task.cancel())
        else:
            fut.set_result(done.result())

    def wake(_: object) -> None:
        if fut.done():  # abandoned already (a plain read of a flag: safe from this thread)
            copy_abandoned()
            return
        try:
            loop.call_soon_threadsafe(copy)
        except RuntimeError:  # the loop is closed: the run is over and nobody waits for this result
            copy_abandoned()

    done.add_done_callback(wake)
    return fut


def _copy_outcome(src: asyncio.Future[list[Any]], dst: asyncio.Future[list[Any]]) -> None:
    if dst.done():
        return
    if src.cancelled():
        dst.cancel()
    elif (exc := src.exception()) is not None:
        dst.set_exception(exc)
    else:
        dst.set_result(src.result())


async def _one(fn: Callable[[Any], Awaitable[Any]], item: Any) -> list[Any]:
    return [await fn(item)]


async def _settled(fut: asyncio.Future[Any]) -> None:
    """Wait until ``fut`` is done, whatever its outcome (which is read later)."""
    if not fut.done():
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake(_: object) -> None:
            if not waiter.done():
                waiter.set_result(None)

        fut.add_done_callback(wake)
        await waiter


async def _shut_down(pool: concurrent.futures.Executor) -> None:
    """Stop ``pool`` without blocking the event loop on work still running."""
    # One call does both: a second shutdown() would not join what the first left.
    # If cancelled while joining, the pool still finishes on that thread.
    await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)
