"""Select: stages that pass on some of their items unchanged.

Each has one input, ``inp``, and one output, ``out``, and returns a fresh
typed stage (:class:`~mimo.dsl.StageStream` ``[T, T]``). A stage that is done
early (``take``, ``take_while``) just returns: its input is left, and every
stream upstream that fed only it is stopped at once by the run.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

from mimo._checkpoint import position
from mimo._errors import EndOfStream
from mimo.dsl import In, Out, StageStream, stream
from mimo.lib._arguments import check_count
from mimo.lib._calls import check_per_item, per_item
from mimo.lib._naming import fn_name, named

__all__ = ["distinct", "drop_while", "skip", "take", "take_while"]

T = TypeVar("T")


# -- take / skip -----------------------------------------------------------------


@stream(name="take")
async def _take(inp: In[Any], out: Out[Any], *, n: int) -> None:
    pos = position()
    if pos is None:
        for _ in range(n):
            await out.push(await inp.pop())  # EndOfStream here ends the stage
        return
    left = pos.get("left", n)  # checkpointed runs keep the count left there
    while left > 0:
        await out.push(await inp.pop())
        left -= 1
        pos["left"] = left


def take(n: int, *, name: str | None = None) -> StageStream[T, T]:
    """A stage that passes on the first ``n`` items, then ends.

    Ending leaves its input, so the streams upstream that feed only it are
    stopped at once (their ``finally`` runs); an endless source is fine.
    ``take(0)`` ends at once, pushing nothing. Fewer than ``n`` items: all of
    them. ``n`` is an int >= 0.
    """
    return named(_take(n=check_count("take", "n", n)), name, "take")


@stream(name="skip")
async def _skip(inp: In[Any], out: Out[Any], *, n: int) -> None:
    pos = position()
    if pos is None:
        for _ in range(n):
            await inp.pop()  # EndOfStream here ends the stage
    else:
        left = pos.get("left", n)  # checkpointed runs keep the count still to drop there
        while left > 0:
            await inp.pop()
            left -= 1
            pos["left"] = left
    async for item in inp:
        await out.push(item)


def skip(n: int, *, name: str | None = None) -> StageStream[T, T]:
    """A stage that drops the first ``n`` items and passes on the rest, in order.

    ``n`` is an int >= 0; with fewer than ``n`` items it pushes nothing.
    """
    return named(_skip(n=check_count("skip", "n", n)), name, "skip")


# -- take_while / drop_while -----------------------------------------------------


@stream(name="take_while")
async def _take_while(inp: In[Any], out: Out[Any], *, predicate: Callable[[Any], Any]) -> None:
    call = per_item(predicate)
    async for item in inp:
        if not await call(item):
            return
        await out.push(item)


def take_while(
    predicate: Callable[[T], object] | Callable[[T], Awaitable[object]], *, name: str | None = None
) -> StageStream[T, T]:
    """A stage that passes on items while ``predicate(item)`` is true, then ends.

    As :func:`itertools.takewhile`: the first item for which the predicate
    is false is dropped and the stage ends, leaving its input (upstream stops
    as for :func:`take`). ``predicate`` may be plain or ``async``; an
    exception from it fails the run. Named after ``predicate``.
    """
    check_per_item("take_while", predicate)
    return named(_take_while(predicate=predicate), name, fn_name(predicate, "take_while"))


@stream(name="drop_while")
async def _drop_while(inp: In[Any], out: Out[Any], *, predicate: Callable[[Any], Any]) -> None:
    call = per_item(predicate)
    pos = position()  # checkpointed runs note there that dropping is over
    while pos is None or not pos.get("passing"):
        try:
            item = await inp.pop()
        except EndOfStream:
            return
        if not await call(item):
            await out.push(item)
            if pos is not None:
                pos["passing"] = True
            break
    async for item in inp:  # the predicate is never called again
        await out.push(item)


def drop_while(
    predicate: Callable[[T], object] | Callable[[T], Awaitable[object]], *, name: str | None = None
) -> StageStream[T, T]:
    """A stage that drops items while ``predicate(item)`` is true, then passes on every item.

    As :func:`itertools.dropwhile`: from the first item for which the
    predicate is false (which is passed on), every item goes through and the
    predicate is not called again. Plain or ``async``; named after it.
    """
    check_per_item("drop_while", predicate)
    return named(_drop_while(predicate=predicate), name, fn_name(predicate, "drop_while"))


# -- distinct --------------------------------------------------------------------


def _identity(item: Any) -> Any:
    return item


def _unhashable(stream_name: str, key: object, err: TypeError) -> TypeError:
    return TypeError(
        f"distinct {stream_name!r}: the key {key!r} is unhashable ({err}); "
        "give distinct a key= function that returns a hashable value (a tuple, say)"
    )


@stream(name="distinct")
async def _distinct(inp: In[Any], out: Out[Any], *, key: Callable[[Any], Any], window: int | None) -> None:
    call = per_item(key)
    pos = position()  # checkpointed runs keep what was seen there (the same objects)
    seen: set[Hashable] = set() if pos is None else pos.setdefault("seen", set())
    recent: deque[Hashable] = deque() if pos is None else pos.setdefault("recent", deque())
    async for item in inp:
        k = await call(item)
        try:
            if k in seen:
                continue
            seen.add(k)
        except TypeError as err:
            raise _unhashable(inp.stream, k, err) from None
        if window is not None:
            recent.append(k)
            if len(recent) > window:
                seen.discard(recent.popleft())
        await out.push(item)


def distinct(
    key: Callable[[T], Hashable] | Callable[[T], Awaitable[Hashable]] | None = None,
    *,
    window: int | None = None,
    name: str | None = None,
) -> StageStream[T, T]:
    """A stage that drops repeats: an item passes only if its key has not passed before.

    The key is ``key(item)`` (plain or ``async``), or the item itself. With
    ``window=None`` every key that passed is remembered (memory grows with
    the number of distinct keys); with ``window=N`` only the keys of the last
    ``N`` items passed on, so ``window=1`` drops consecutive repeats only
    (``a a b a`` gives ``a b a``). An unhashable key fails the run with a
    ``TypeError`` naming the stream. The stage is called ``name``, by
    default ``distinct``.
    """
    if key is not None:
        check_per_item("distinct", key)
    if window is not None:
        check_count("distinct", "window", window, minimum=1)
    return named(_distinct(key=key or _identity, window=window), name, "distinct")
