"""Routing: streams that join several inputs in order, or route items by key.

Like :mod:`mimo.lib.combine`, each is a :class:`~mimo.dsl.PortStream` whose
ports are counted or named (``inputs=2`` gives ``in0``, ``in1``;
``outputs=3`` gives ``out0``, ``out1``, ``out2``), joined by name and
checked when joined.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, Final, TypeVar, overload

from mimo._checkpoint import position
from mimo._ports import InputPort, Ins, OutputPort, Outs
from mimo._runtime import run_together
from mimo.dsl import PortStream, Source, stream
from mimo.lib._branches import Upstream, chain_from, feed, spec_or_upstreams
from mimo.lib._calls import check_per_item, per_item
from mimo.lib._hashing import stable_hash
from mimo.lib._naming import fn_name, named, port_names

__all__ = ["chain", "partition", "stable_hash", "zip_latest"]

_MISSING: Final = object()
T = TypeVar("T")


@overload
def chain(inputs: int | Sequence[str] = 2, *, name: str | None = None) -> PortStream: ...
@overload
def chain(first: Upstream[T], /, *more: Upstream[T], name: str | None = None) -> Source[T]: ...
def chain(*args: Any, inputs: Any = None, name: str | None = None) -> Any:
    """A stream that pushes every item of its first input, then of the second, and so on.

    Concatenation: input *k* is read only once input *k - 1* has ended, so
    its producer waits (back-pressured) meanwhile. Two inputs fed by one
    producer therefore deadlock once the later input's queue is full (a
    :class:`~mimo.DeadlockError`, not a hang). ``chain(0)`` ends at once.
    ``chain(a, b, ...)`` takes the upstreams themselves, as
    :func:`~mimo.lib.combine.merge` does, and returns a chain ending at it.
    """
    spec, ups = spec_or_upstreams("chain", args, inputs)
    names = port_names("chain", "input", spec, "in")

    @stream(ins=names, outs=["out"], name="chain")
    async def body(ins: Ins, outs: Outs) -> None:
        out = outs.out
        for port in ins:
            async for item in port:
                await out.push(item)

    c = named(body, name, "chain")
    return chain_from(feed("chain", c, ups, names), c) if ups else c


class _NeverAll(Exception):
    """An input of zip_latest ended before giving an item: no tuple can ever come."""


def zip_latest(inputs: int | Sequence[str] = 2, *, name: str | None = None) -> PortStream:
    """A stream that pushes a tuple of the latest item of every input, whenever any input gives one.

    Nothing is pushed until every input has given an item; from then on each
    new item, on any input, pushes the tuple (in input order) with it in its
    place. Each input is read at its own pace. It ends when every input has
    ended, or at once if an input ends without ever giving an item (no tuple
    could come). ``zip_latest(0)`` ends at once. ``out`` is typed ``tuple``.
    """
    names = port_names("zip_latest", "input", inputs, "in")

    @stream(ins=names, outs={"out": tuple}, name="zip_latest")
    async def body(ins: Ins, outs: Outs) -> None:
        out = outs.out
        ports = list(ins)
        latest: list[Any] = [_MISSING] * len(ports)
        missing = len(ports)

        async def pump(i: int, port: InputPort[Any]) -> None:
            nonlocal missing
            async for item in port:
                if latest[i] is _MISSING:
                    missing -= 1
                latest[i] = item
                if not missing:
                    await out.push(tuple(latest))  # the row as it is now
            if latest[i] is _MISSING:
                raise _NeverAll

        if not ports:
            return
        pos = position()
        try:
            if pos is None:
                await run_together(*(pump(i, port) for i, port in enumerate(ports)))
            else:
                await run_together(*(_zip_latest_pump(i, port, len(ports), out, pos) for i, port in enumerate(ports)))
        except BaseExceptionGroup as group:
            _, rest = group.split(_NeverAll)
            if rest is not None:
                raise rest from None

    return named(body, name, "zip_latest")


async def _zip_latest_pump(i: int, port: InputPort[Any], n: int, out: OutputPort[Any], pos: dict[str, Any]) -> None:
    """One input of ``zip_latest`` in a checkpointed run: the latest items and the rows being pushed are kept."""
    latest: dict[int, Any] = pos.setdefault("latest", {})
    pushing: dict[int, tuple[Any, ...]] = pos.setdefault("pushing", {})
    if i in pushing:  # resumed: the row left after the checkpoint, if at all
        await out.push(pushing[i])
        del pushing[i]
    async for item in port:
        latest[i] = item
        if len(latest) == n:
            row = pushing[i] = tuple(latest[j] for j in range(n))
            await out.push(row)
            del pushing[i]
    if i not in latest:
        raise _NeverAll


def partition(
    key: Callable[[Any], Hashable] | Callable[[Any], Awaitable[Hashable]],
    outputs: int | Sequence[str] = 2,
    *,
    name: str | None = None,
) -> PortStream:
    """A stream that sends each item of ``inp`` to output ``stable_hash(key(item)) % n``.

    Items with equal keys always go to the same output, in order, in every
    run and every process (:func:`stable_hash`, unlike ``hash``, is not
    salted). ``key`` is plain or ``async`` and must return ``None``, a
    ``bool``, ``int``, ``float``, ``str``, ``bytes``, or a tuple or frozenset
    of these; anything else fails the run with a ``TypeError`` naming the
    stream. Every item goes to exactly one output; an output joined to
    nothing discards its items. At least one output. Named after ``key``.
    """
    check_per_item("partition", key)
    names = port_names("partition", "output", outputs, "out", none_why="every item would be dropped")
    call = per_item(key)

    @stream(ins=["inp"], outs=names, name="partition")
    async def body(ins: Ins, outs: Outs) -> None:
        ports = list(outs)
        n = len(ports)
        inp = ins.inp
        async for item in inp:
            k = await call(item)
            try:
                h = stable_hash(k)
            except TypeError as err:
                raise TypeError(f"partition {inp.stream!r}: {err}") from None
            await ports[h % n].push(item)

    return named(body, name, fn_name(key, "partition"))
