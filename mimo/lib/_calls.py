"""How stock streams check and call the per-item functions users give them.

Every operator that takes a per-item function (``map``, ``filter``,
``flat_map``, ``split``, ``for_each``, ``parallel_map``) checks it with
:func:`check_per_item` when the stream is made and calls it through
:func:`per_item` (or, for results that come back from a pool,
:func:`settled`), so "a plain function returning an awaitable is awaited"
holds for all of them in every mode.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any


def is_async(fn: Callable[..., Any]) -> bool:
    """Whether calling ``fn`` always gives a coroutine (an ``async def``, or an object whose ``__call__`` is one)."""
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None))  # noqa: B004


def check_per_item(owner: str, fn: object, *, many: bool = False) -> None:
    """Refuse, when the stream is made, a per-item function that cannot be one.

    ``owner`` names the stream kind in the message. An async generator
    function gives many items per call, so only ``many=True`` (``flat_map``)
    takes one.
    """
    if not callable(fn):
        raise TypeError(f"{owner}() needs a function (plain or async) to call on each item, not {fn!r}")
    if not many and inspect.isasyncgenfunction(fn):
        raise TypeError(f"{owner}(): {fn!r} is an async generator function; use flat_map() for one-to-many")


def per_item(fn: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """``fn`` as an async function: what a plain ``fn`` returns is awaited too if awaitable."""
    if is_async(fn):
        return fn

    async def call(*args: Any) -> Any:
        result = fn(*args)
        if inspect.isawaitable(result):
            result = await result
        return result

    return call


async def settled(results: list[Any]) -> list[Any]:
    """``results``, each awaitable one replaced by what it gives, in order.

    If one fails or the wait is cancelled, the coroutines not yet awaited are
    closed, so none is left "never awaited".
    """
    done: list[Any] = []
    try:
        for r in results:
            done.append((await r) if inspect.isawaitable(r) else r)
    except BaseException:
        for r in results[len(done) + 1 :]:
            if inspect.iscoroutine(r):
                r.close()
        raise
    return done
