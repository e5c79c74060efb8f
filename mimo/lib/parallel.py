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
from typing import Any, Literal, TypeVar

from mimo._errors import EndOfStream
from mimo._ports import InputPort, Ins, OutputPort, Outs
from mimo._stream import Stream

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
    name: str | None = None,
    in_port: str = "inp",
    out_port: str = "out",
    in_type: Any = object,
    out_type: Any = object,
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

    ``workers`` (default: the number of CPUs) bounds the items in flight: the
    stream takes no new item while ``workers`` are being computed or wait to
    be pushed, so back-pressure from downstream reaches upstream as usual.
    With ``ordered=True`` results leave in input order (a slow item holds back
    the ones after it); with ``ordered=False`` as they finish. An exception
    raised by ``fn`` (or a broken pool) fails the stream with that exception.
    The ports are ``in_port`` (``"inp"``) and ``out_port`` (``"out"``); the stream
    is called ``name``, by default ``fn``'s name.
    """
    if not callable(fn):
        raise TypeError(f"parallel_map needs a callable, not {fn!r}")
    label = name or getattr(fn, "__name__", None) or "parallel_map"
    n = (os.cpu_count() or 1) if workers is None else workers
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"parallel_map {label!r}: workers must be an int >= 1, not {workers!r}")
    is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None))  # noqa: B004
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
    if executor == "process":
        try:
            pickle.dumps(fn)
        except Exception as exc:
            raise TypeError(
                f"parallel_map {label!r}: a process pool needs a function it can pickle "
                f"(one defined at module level), and {fn!r} is not: {exc}"
            ) from None

    async def run(ins: Ins, outs: Outs, state: Any) -> None:
        inp: InputPort[Any] = ins[in_port]
        out: OutputPort[Any] = outs[out_port]
        if is_async:
            await _pump(inp, out, n, ordered, lambda item: asyncio.ensure_future(fn(item)))  # type: ignore[arg-type]
            return
        loop = asyncio.get_running_loop()
        pool: concurrent.futures.Executor
        if isinstance(executor, concurrent.futures.Executor):
            pool, own = executor, False
        elif executor == "process":
            pool, own = concurrent.futures.ProcessPoolExecutor(max_workers=n), True
        else:
            pool, own = concurrent.futures.ThreadPoolExecutor(max_workers=n, thread_name_prefix=label), True
        try:
            await _pump(inp, out, n, ordered, lambda item: loop.run_in_executor(pool, fn, item))
        finally:
            if own:
                await _shut_down(pool)

    stream = Stream(ins={in_port: in_type}, outs={out_port: out_type}, fn=run, name=label)
    # A default name may be suffixed in a graph, as for any stream named after its function.
    stream.named = name is not None
    return stream


async def _pump(
    inp: InputPort[Any],
    out: OutputPort[Any],
    limit: int,
    ordered: bool,
    submit: Callable[[Any], asyncio.Future[Any]],
) -> None:
    """Keep up to ``limit`` items in flight from ``inp`` and push their results to ``out``."""
    pending: deque[asyncio.Future[Any]] = deque()
    getter: asyncio.Task[Any] | None = None
    ended = False
    try:
        while True:
            # Results first: pushing one frees a place in the window.
            if pending:
                if ordered:
                    if pending[0].done():
                        await out.push(pending.popleft().result())
                        continue
                else:
                    done = next((f for f in pending if f.done()), None)
                    if done is not None:
                        pending.remove(done)
                        await out.push(done.result())
                        continue
            if not ended and len(pending) < limit:
                if getter is None:
                    try:
                        item = inp.pop_nowait()
                    except LookupError:
                        getter = asyncio.ensure_future(inp.pop())
                    except EndOfStream:
                        ended = True
                    else:
                        pending.append(submit(item))
                    continue
                if getter.done():
                    g, getter = getter, None
                    try:
                        item = g.result()
                    except EndOfStream:
                        ended = True
                    else:
                        pending.append(submit(item))
                    continue
            if ended and not pending:
                return
            # Wait for the next result that can leave, or for the next item.
            if getter is None and ordered:
                # Only the oldest result can free the window: wait on it alone, cheaply.
                await _settled(pending[0])
                continue
            waits: set[asyncio.Future[Any]] = set()
            if pending:
                if ordered:
                    waits.add(pending[0])
                else:
                    waits.update(pending)
            if getter is not None:
                waits.add(getter)
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        # A cancelled pop takes no item; the work in flight is abandoned.
        leftovers = list(pending)
        if getter is not None:
            leftovers.append(getter)
        for f in leftovers:
            f.cancel()
        if leftovers:
            await asyncio.wait(leftovers)
        for f in leftovers:
            if not f.cancelled():
                f.exception()  # retrieved, so that asyncio does not log it


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
