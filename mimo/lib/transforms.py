"""Transforms: streams with one input, ``inp``, and one output, ``out``.

Each function returns a fresh typed stream (a :class:`~mimo.dsl.StageStream`)
for the middle of a ``|`` chain. The per-item functions they take may be
plain or ``async def``; a plain function returning an awaitable is awaited
too, so ``map(lambda x: fetch(x))`` works.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from inspect import isawaitable
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from mimo._checkpoint import position
from mimo._errors import EndOfStream
from mimo._ports import Ins, Outs
from mimo._retry import Retry
from mimo._stream import Stream
from mimo.dsl import DslStream, In, Out, PortStream, StageStream, stream
from mimo.lib._calls import check_per_item, is_async, per_item
from mimo.lib._naming import fn_name, named

if TYPE_CHECKING:
    from mimo.lib.parallel import ExecutorSpec

__all__ = ["batch", "filter", "flat_map", "map", "rate_limit", "unbatch"]

A = TypeVar("A")
B = TypeVar("B")
T = TypeVar("T")


# -- map -------------------------------------------------------------------------


@stream(name="map")
async def _map(inp: In[Any], out: Out[Any], *, fn: Callable[[Any], Any]) -> None:
    if is_async(fn):
        async for item in inp:
            await out.push(await fn(item))
        return
    # per_item's rule, inlined for plain functions: this is lib's hottest loop.
    async for item in inp:
        result = fn(item)
        if isawaitable(result):
            result = await result
        await out.push(result)


@stream(name="map")
async def _map_in_parallel(inp: In[Any], out: Out[Any], *, inner: Stream) -> None:
    # The parallel stream is written against bundles: give it this stream's two ports.
    await inner.run(Ins(inner.name, {"inp": inp}), Outs(inner.name, {"out": out}))


# The first overload takes plain and async functions alike, so that mypy, which reports
# a call no overload matches against the first, names the signature the user wrote
# (not "Callable[[int], Awaitable[Never]]"), and so that pyright types a lambda's
# parameter from the left of .then(). mypy solves B through that union for plain
# functions but not for async ones (the second) nor for some overloaded ones (the third).
@overload
def map(
    fn: Callable[[A], B | Awaitable[B]],
    *,
    workers: int | None = None,
    executor: ExecutorSpec = None,
    ordered: bool = True,
    chunk_size: int | None = None,
    retry: Retry | None = None,
    errors: Literal["raise"] = "raise",
    name: str | None = None,
) -> StageStream[A, B]: ...
@overload
def map(
    fn: Callable[[A], Awaitable[B]],
    *,
    workers: int | None = None,
    executor: ExecutorSpec = None,
    ordered: bool = True,
    chunk_size: int | None = None,
    retry: Retry | None = None,
    errors: Literal["raise"] = "raise",
    name: str | None = None,
) -> StageStream[A, B]: ...
@overload
def map(
    fn: Callable[[A], B],
    *,
    workers: int | None = None,
    executor: ExecutorSpec = None,
    ordered: bool = True,
    chunk_size: int | None = None,
    retry: Retry | None = None,
    errors: Literal["raise"] = "raise",
    name: str | None = None,
) -> StageStream[A, B]: ...
@overload
def map(
    fn: Callable[[A], Any],
    *,
    workers: int | None = None,
    executor: ExecutorSpec = None,
    ordered: bool = True,
    chunk_size: int | None = None,
    retry: Retry | None = None,
    errors: Literal["output"],
    name: str | None = None,
) -> PortStream: ...
def map(
    fn: Callable[[A], Any],
    *,
    workers: int | None = None,
    executor: ExecutorSpec = None,
    ordered: bool = True,
    chunk_size: int | None = None,
    retry: Retry | None = None,
    errors: Literal["raise", "output"] = "raise",
    name: str | None = None,
) -> DslStream[Any, Any]:
    """A stage that pushes ``fn(item)`` for every item, in order.

    ``fn`` is a plain or ``async`` per-item function; this is how a plain
    function becomes a stage (``words | map(str.upper) | ...``). By default
    items are handled one at a time in the event loop, so a plain ``fn`` must
    be quick. ``workers=N`` keeps up to N items in flight, and ``executor``
    (``'thread'``, ``'process'`` or a :class:`concurrent.futures.Executor`)
    runs a plain ``fn`` there instead; both delegate to
    :func:`mimo.lib.parallel.parallel_map`, whose results keep the input order
    unless ``ordered=False``; ``chunk_size`` is how many items a process pool
    gets per task (see there). The stage is called ``name``, by default after
    ``fn``. An exception from ``fn`` fails the run.

    ``retry=mimo.Retry(...)`` calls ``fn`` again on an item whose call raised
    one of ``retry.on``, waiting longer each time (the report counts the
    retries in ``retries``); after the last attempt the exception fails the
    run. With ``errors="output"`` it goes instead, as ``(item, exception)``,
    to a second output, ``errors`` (a dead-letter port, joined by name), and
    the stage goes on with the next item. Both call ``fn`` in the event loop:
    with ``workers=N`` they need an ``async def`` ``fn`` (N tasks), and take no
    ``executor``.
    """
    check_per_item("map", fn)
    label = fn_name(fn, "map")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"map {label!r}: workers must be an int >= 1, not {workers!r}")
    if not isinstance(ordered, bool):
        raise TypeError(f"map {label!r}: ordered must be True or False, not {ordered!r}")
    if retry is not None and not isinstance(retry, Retry):
        raise TypeError(f"map {label!r}: retry must be a mimo.Retry(...) or None, not {retry!r}")
    if errors not in ("raise", "output"):
        raise ValueError(f"map {label!r}: errors must be 'raise' or 'output', not {errors!r}")
    if retry is not None or errors == "output":
        n = 1 if workers is None else workers
        if executor is not None or chunk_size is not None or (n != 1 and not is_async(fn)):
            raise ValueError(
                f"map {label!r}: retry= and errors= with workers take an async def function, run as tasks "
                "in the event loop (no executor or chunk_size)"
            )
        from mimo.lib._retrying import map_dead_letter, map_retrying

        body = map_dead_letter if errors == "output" else map_retrying
        return named(body(fn=fn, retry=retry, workers=n, ordered=ordered), name, label)
    if (workers is not None and workers != 1) or executor is not None:
        from mimo.lib.parallel import parallel_map

        inner = parallel_map(
            fn,
            workers=workers,
            executor=executor,
            ordered=ordered,
            chunk_size=chunk_size,
            name=name or label,
            in_port="inp",
            out_port="out",
        )
        return named(_map_in_parallel(inner=inner), name, label)
    if chunk_size is not None:
        raise ValueError(f"map {label!r}: chunk_size applies only with workers or an executor")
    return named(_map(fn=fn), name, label)


# -- filter ----------------------------------------------------------------------


@stream(name="filter")
async def _filter(inp: In[Any], out: Out[Any], *, predicate: Callable[[Any], Any]) -> None:
    call = per_item(predicate)
    async for item in inp:
        if await call(item):
            await out.push(item)


# Plain and async predicates in the first overload, as for map: pyright then types a
# lambda's parameter from the left of .then().
@overload
def filter(predicate: Callable[[T], object | Awaitable[object]], *, name: str | None = None) -> StageStream[T, T]: ...
@overload
def filter(predicate: Callable[[T], Awaitable[object]], *, name: str | None = None) -> StageStream[T, T]: ...
def filter(predicate: Callable[[T], object], *, name: str | None = None) -> StageStream[T, T]:
    """A stage that passes on, in order, the items for which ``predicate(item)`` is true.

    ``predicate`` may be plain or ``async``; its result is taken for its
    truth value. The other items are dropped. The stage is called ``name``,
    by default after ``predicate``.
    """
    check_per_item("filter", predicate)
    return named(_filter(predicate=predicate), name, fn_name(predicate, "filter"))


# -- flat_map --------------------------------------------------------------------


@stream(name="flat_map")
async def _flat_map(inp: In[Any], out: Out[Any], *, fn: Callable[[Any], Any]) -> None:
    call = per_item(fn)
    async for item in inp:
        results = await call(item)
        if isinstance(results, AsyncIterable):
            iterator = aiter(results)
            try:
                async for result in iterator:
                    await out.push(result)
            finally:
                aclose = getattr(iterator, "aclose", None)
                if aclose is not None:
                    await aclose()
        else:
            for result in results:
                await out.push(result)


@overload
def flat_map(
    fn: Callable[[A], AsyncIterable[B]], *, workers: int | None = None, ordered: bool = True, name: str | None = None
) -> StageStream[A, B]: ...
@overload
def flat_map(
    fn: Callable[[A], Awaitable[Iterable[B]]],
    *,
    workers: int | None = None,
    ordered: bool = True,
    name: str | None = None,
) -> StageStream[A, B]: ...
@overload
def flat_map(
    fn: Callable[[A], Iterable[B]], *, workers: int | None = None, ordered: bool = True, name: str | None = None
) -> StageStream[A, B]: ...
def flat_map(
    fn: Callable[[A], Any], *, workers: int | None = None, ordered: bool = True, name: str | None = None
) -> StageStream[A, Any]:
    """A stage that pushes every item of ``fn(item)``, for every item, in order.

    ``fn`` returns an iterable (``lambda line: line.split()``), an async
    iterable (an ``async def`` with ``yield``), or is an ``async def``
    returning an iterable. Each result is pushed as soon as it is produced,
    with back-pressure, so a large expansion never piles up in memory. The
    stage is called ``name``, by default after ``fn``.

    ``workers=N`` expands up to N items at once, by :func:`map`'s rule: an
    ``async def`` function (or async generator function) as N tasks in the
    event loop, a plain one in a pool of N threads. Each item's results are
    then gathered before they are pushed, in input order unless
    ``ordered=False`` (then each item's results leave together as soon as
    they are all there).
    """
    check_per_item("flat_map", fn, many=True)
    label = fn_name(fn, "flat_map")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"flat_map {label!r}: workers must be an int >= 1, not {workers!r}")
    if not isinstance(ordered, bool):
        raise TypeError(f"flat_map {label!r}: ordered must be True or False, not {ordered!r}")
    if workers is not None and workers != 1:
        from mimo.lib._expand import flat_map_parallel

        return named(flat_map_parallel(fn=fn, workers=workers, ordered=ordered), name, label)
    return named(_flat_map(fn=fn), name, label)


# -- batch / unbatch -------------------------------------------------------------


@stream(name="batch")
async def _batch(inp: In[Any], out: Out[list[Any]], *, size: int, timeout: float | None) -> None:
    # In a checkpointed run the list being built is in the position, saved at every checkpoint.
    pos = position()
    if pos is None:
        pos = {}
    loop = asyncio.get_running_loop()
    chunk: list[Any] = pos.setdefault("chunk", [])
    while True:
        if not chunk:  # a resumed run may start with a half-built one
            try:
                chunk.extend(await inp.pop_many(size))
            except EndOfStream:
                return
        # A resumed half-built list waits its timeout afresh: time is not part of a checkpoint.
        deadline = None if timeout is None else loop.time() + timeout
        while len(chunk) < size:
            try:
                if deadline is None:
                    chunk.extend(await inp.pop_many(size - len(chunk)))
                else:
                    left = max(deadline - loop.time(), 0.0)
                    chunk.extend(await inp.pop_many(size - len(chunk), timeout=left))
            except (EndOfStream, TimeoutError):
                break
        await out.push(list(chunk))  # a new list: the consumer may keep it
        chunk.clear()


def batch(size: int, *, timeout: float | None = None, name: str | None = None) -> StageStream[T, list[T]]:
    """A stage that groups items into lists of ``size`` items, in order.

    The last list may be shorter. With ``timeout`` (seconds), a list is also
    pushed, short, once ``timeout`` has passed since its first item arrived,
    so a slow trickle of items still moves on. No item is ever lost or
    reordered. Lists are new objects: a consumer may keep or change them.
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"batch size must be an int >= 1, not {size!r}")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0):
        raise ValueError(f"batch timeout must be a number of seconds > 0 or None, not {timeout!r}")
    return named(_batch(size=size, timeout=timeout), name, "batch")


@stream(name="unbatch")
async def _unbatch(inp: In[Iterable[Any]], out: Out[Any]) -> None:
    async for items in inp:
        for item in items:
            await out.push(item)


def unbatch(*, name: str | None = None) -> StageStream[Iterable[T], T]:
    """A stage that pushes, in order, every item of every iterable it receives.

    The inverse of :func:`batch`: lists in, their items out. An empty
    iterable pushes nothing. With pyright, give the item type where it cannot
    be inferred: ``stage: StageStream[list[int], int] = unbatch()``.
    """
    return named(_unbatch(), name, "unbatch")


# -- rate_limit ------------------------------------------------------------------


@stream(name="rate_limit")
async def _rate_limit(inp: In[Any], out: Out[Any], *, per_second: float, burst: int) -> None:
    loop = asyncio.get_running_loop()
    tokens = float(burst)
    last = loop.time()
    async for item in inp:
        now = loop.time()
        tokens = min(float(burst), tokens + (now - last) * per_second)
        last = now
        if tokens < 1.0:
            await asyncio.sleep((1.0 - tokens) / per_second)
            now = loop.time()
            tokens += (now - last) * per_second
            last = now
        tokens -= 1.0
        await out.push(item)


def rate_limit(per_second: float, *, burst: int = 1, name: str | None = None) -> StageStream[T, T]:
    """A stage that passes items on unchanged, at most ``per_second`` items a second.

    A token bucket: up to ``burst`` items may pass at once after a quiet
    spell, and over any longer stretch the rate never exceeds
    ``per_second``. Items wait (in order) rather than being dropped, and the
    wait holds back the producer through back-pressure. The wait is a sleep,
    so the stage is never mistaken for a deadlocked one.
    """
    if isinstance(per_second, bool) or not isinstance(per_second, int | float) or not per_second > 0:
        raise ValueError(f"rate_limit per_second must be a number > 0, not {per_second!r}")
    if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
        raise ValueError(f"rate_limit burst must be an int >= 1, not {burst!r}")
    return named(_rate_limit(per_second=float(per_second), burst=burst), name, "rate_limit")


# -- fusion ----------------------------------------------------------------------

# The stock streams that a run may fuse into one loop when they are joined one to
# one (see mimo._fuse): these, and the simple ones of select, sources and sinks,
# listed in one place. mimo._fuse has each one's fused form; tests/test_fusion.py
# checks every form against its stream run on its own.


def _register_fusable() -> None:
    from mimo._fuse import register
    from mimo.lib.select import _drop_while, _skip, _take, _take_while
    from mimo.lib.sinks import _collect
    from mimo.lib.sources import _from_iterable, _range

    for body, kind in (
        (_map, "map"),
        (_filter, "filter"),
        (_flat_map, "flat_map"),
        (_take, "take"),
        (_skip, "skip"),
        (_take_while, "take_while"),
        (_drop_while, "drop_while"),
        (_range, "range"),
        (_from_iterable, "from_iterable"),
        (_collect, "collect"),
    ):
        register(body, kind)


_register_fusable()
