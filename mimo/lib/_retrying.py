"""``map`` with ``retry=`` and ``errors="output"``: retries with back-off, and a dead-letter port.

The bodies here are what :func:`mimo.lib.map` returns when given either; the
per-item function is called in the event loop (one item at a time, or up to
``workers`` async calls at once), so that retries can wait without a thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, cast

from mimo._ports import InputPort, OutputPort
from mimo._retry import Retry
from mimo.dsl import In, Out, stream
from mimo.lib._calls import per_item


class _Failed:
    """A call that failed for good: the item and its exception, on their way to ``errors``."""

    __slots__ = ("item", "exc")

    def __init__(self, item: Any, exc: Exception) -> None:
        self.item = item
        self.exc = exc


def with_retry(
    call: Callable[[Any], Awaitable[Any]], retry: Retry, counted: Callable[[], None]
) -> Callable[[Any], Awaitable[Any]]:
    """``call``, tried again on ``retry.on`` exceptions as ``retry`` says; ``counted()`` once per retry."""
    on = cast(tuple[type[Exception], ...], retry.on)

    async def attempt(item: Any) -> Any:
        tries = 1
        while True:
            try:
                return await call(item)
            except on:
                if tries >= retry.attempts:
                    raise
            counted()
            await retry.sleep(retry.delay(tries))
            tries += 1

    return attempt


def _guarded(call: Callable[[Any], Awaitable[Any]]) -> Callable[[Any], Awaitable[Any]]:
    """``call``, with an exception turned into a :class:`_Failed` result (for the ``errors`` port)."""

    async def guarded(item: Any) -> Any:
        try:
            return await call(item)
        except Exception as exc:
            return _Failed(item, exc)

    return guarded


class _Router:
    """What the parallel pump pushes to: results to ``out``, failures to ``errors``."""

    __slots__ = ("out", "errors")

    def __init__(self, out: OutputPort[Any], errors: OutputPort[Any] | None) -> None:
        self.out = out
        self.errors = errors

    async def push(self, result: Any) -> None:
        if self.errors is not None and type(result) is _Failed:
            await self.errors.push((result.item, result.exc))
        else:
            await self.out.push(result)


async def _run(
    inp: InputPort[Any],
    out: OutputPort[Any],
    errors: OutputPort[Any] | None,
    fn: Callable[[Any], Any],
    retry: Retry | None,
    workers: int,
    ordered: bool,
) -> None:
    call = per_item(fn)
    if retry is not None:
        call = with_retry(call, retry, inp.retried)
    if errors is not None:
        call = _guarded(call)
    router = _Router(out, errors)
    if workers == 1:
        async for item in inp:
            await router.push(await call(item))
        return
    from mimo.lib.parallel import _one, _pump

    def submit(items: list[Any]) -> asyncio.Future[list[Any]]:
        return asyncio.ensure_future(_one(call, items[0]))

    await _pump(inp, cast(OutputPort[Any], router), workers, 1, ordered, submit)


@stream(name="map")
async def map_retrying(
    inp: In[Any],
    out: Out[Any],
    *,
    fn: Callable[[Any], Any],
    retry: Retry | None,
    workers: int,
    ordered: bool,
) -> None:
    """``map`` with ``retry=``: a call that still fails after its retries fails the run."""
    await _run(inp, out, None, fn, retry, workers, ordered)


@stream(name="map")
async def map_dead_letter(
    inp: In[Any],
    out: Out[Any],
    errors: Out[tuple[Any, Exception]],
    *,
    fn: Callable[[Any], Any],
    retry: Retry | None,
    workers: int,
    ordered: bool,
) -> None:
    """``map`` with ``errors="output"``: a call that fails for good sends ``(item, exception)`` to ``errors``."""
    await _run(inp, out, errors, fn, retry, workers, ordered)
