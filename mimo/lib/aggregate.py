"""Aggregate: stages that fold their items into a running value.

:func:`scan` pushes each running value, :func:`reduce` only the last. Both
take ``fn(acc, item)``, plain or ``async`` (a plain ``fn`` returning an
awaitable is awaited too), and an ``initial`` value; the output's item type
is the accumulator's.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

from mimo._checkpoint import position
from mimo.dsl import In, Out, StageStream, stream
from mimo.lib._arguments import check_callable
from mimo.lib._calls import per_item
from mimo.lib._naming import fn_name, named

__all__ = ["reduce", "scan"]

T = TypeVar("T")
Acc = TypeVar("Acc")


def _check_fold(owner: str, fn: object) -> None:
    check_callable(owner, "fn", fn)
    if inspect.isasyncgenfunction(fn):
        raise TypeError(f"{owner}(): fn {fn!r} is an async generator function; it must return the new value")


@stream(name="scan")
async def _scan(inp: In[Any], out: Out[Any], *, fn: Callable[[Any, Any], Any], initial: Any) -> None:
    pos = position()  # checkpointed runs keep the running value there
    acc = initial if pos is None else pos.get("acc", initial)
    call = per_item(fn)
    async for item in inp:
        acc = await call(acc, item)
        if pos is not None:
            pos["acc"] = acc
        await out.push(acc)


@overload
def scan(fn: Callable[[Acc, T], Awaitable[Acc]], initial: Acc, *, name: str | None = None) -> StageStream[T, Acc]: ...
@overload
def scan(fn: Callable[[Acc, T], Acc], initial: Acc, *, name: str | None = None) -> StageStream[T, Acc]: ...
def scan(fn: Callable[[Acc, T], Any], initial: Acc, *, name: str | None = None) -> StageStream[T, Acc]:
    """A stage that pushes each running value ``acc = fn(acc, item)``, starting from ``initial``.

    One output per input item (``initial`` itself is not pushed), so
    ``scan(operator.add, 0)`` on ``1, 2, 3`` gives ``1, 3, 6``: as
    ``itertools.accumulate(items, fn, initial=initial)`` without its first
    value. ``initial`` is shared by every run of the stage: ``fn`` should
    return a new value rather than change ``acc`` in place. An exception from
    ``fn`` fails the run. Named after ``fn``.
    """
    _check_fold("scan", fn)
    return named(_scan(fn=fn, initial=initial), name, fn_name(fn, "scan"))


@stream(name="reduce")
async def _reduce(inp: In[Any], out: Out[Any], *, fn: Callable[[Any, Any], Any], initial: Any) -> None:
    pos = position()
    acc = initial if pos is None else pos.get("acc", initial)
    call = per_item(fn)
    async for item in inp:
        acc = await call(acc, item)
        if pos is not None:
            pos["acc"] = acc
    await out.push(acc)


@overload
def reduce(fn: Callable[[Acc, T], Awaitable[Acc]], initial: Acc, *, name: str | None = None) -> StageStream[T, Acc]: ...
@overload
def reduce(fn: Callable[[Acc, T], Acc], initial: Acc, *, name: str | None = None) -> StageStream[T, Acc]: ...
def reduce(fn: Callable[[Acc, T], Any], initial: Acc, *, name: str | None = None) -> StageStream[T, Acc]:
    """A stage that pushes one value when its input ends: ``functools.reduce(fn, items, initial)``.

    With no items it pushes ``initial``. Nothing is pushed if the run stops
    before the input ends. ``initial`` is shared by every run, as for
    :func:`scan`. An exception from ``fn`` fails the run. Named after ``fn``.
    """
    _check_fold("reduce", fn)
    return named(_reduce(fn=fn, initial=initial), name, fn_name(fn, "reduce"))
