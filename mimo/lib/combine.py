"""Combine: streams that join several inputs or feed several outputs.

Their port sets vary, so each is a :class:`~mimo.dsl.PortStream` joined by
name (``m.in_['in0']``, ``s.out['matched']``) and checked when joined; a
single input is ``inp`` and a single output ``out``, as everywhere in
:mod:`mimo.lib`. Where a function takes ``inputs`` or ``outputs``, pass a
count (ports ``in0``, ``in1``, ... / ``out0``, ``out1``, ...) or a list (or
tuple) of port names; a bare string is refused, not split into one-letter ports.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from mimo._errors import EndOfStream
from mimo._ports import InputPort, Ins, Outs
from mimo._runtime import run_together
from mimo.dsl import PortStream, stream
from mimo.lib._calls import check_per_item, per_item
from mimo.lib._naming import fn_name, named, port_names

__all__ = ["balance", "broadcast", "merge", "split", "zip"]

#: Why broadcast and balance refuse zero outputs, where merge and zip take zero inputs.
_DROPS = "with no output every item it reads would be dropped"


def merge(inputs: int | Sequence[str] = 2, *, name: str | None = None) -> PortStream:
    """A stream that pushes every item of every input to ``out``, as they come.

    Each input is read at its own pace, so a slow or idle input never holds
    back the others; items of one input keep their order, and the output
    ends when every input has ended. (Joining several outputs to one input
    with ``>>`` merges too; ``merge`` gives each producer its own named input.)
    The inputs are read by sub-tasks of the stream (through
    :func:`mimo.run_together`), so a deadlock around a merge is still found.
    ``merge(0)`` has no input and ends at once, pushing nothing (a merge of
    an empty list of producers).
    """
    names = port_names("merge", "input", inputs, "in")

    @stream(ins=names, outs=["out"], name="merge")
    async def body(ins: Ins, outs: Outs) -> None:
        out = outs.out

        async def pump(port: InputPort[Any]) -> None:
            async for item in port:
                await out.push(item)

        ports = list(ins)
        if not ports:
            return  # merge(0): nothing to read, so it ends at once
        if len(ports) == 1:
            await pump(ports[0])
            return
        # A pump whose consumer left raises ConsumersGone, which run_together
        # turns into a quiet end of the whole merge.
        await run_together(*(pump(port) for port in ports))

    return named(body, name, "merge")


def zip(inputs: int | Sequence[str] = 2, *, name: str | None = None) -> PortStream:
    """A stream that pushes a tuple of one item from each input, in input order.

    The *n*-th tuple holds the *n*-th item of every input, so inputs move in
    step: a fast input waits (back-pressured) for the slow ones. Like the
    builtin ``zip``, it ends when the first input ends; the other inputs are
    then left, and what is still queued there is dropped. ``zip(0)``, like
    ``builtins.zip()``, has no input and ends at once, pushing nothing.
    """
    names = port_names("zip", "input", inputs, "in")

    @stream(ins=names, outs={"out": tuple}, name="zip")
    async def body(ins: Ins, outs: Outs) -> None:
        ports = list(ins)
        out = outs.out
        while ports:  # zip(0), like the builtin zip(), gives nothing
            try:
                row = [await port.pop() for port in ports]
            except EndOfStream:
                return
            await out.push(tuple(row))

    return named(body, name, "zip")


def broadcast(outputs: int | Sequence[str] = 2, *, name: str | None = None) -> PortStream:
    """A stream that pushes every item of ``inp`` to each of its outputs, in order.

    It is paced by the slowest consumer (each push waits for room). An
    output whose consumers have all finished is skipped from then on; the
    stream ends when its input ends or when nobody reads any output. (An
    output joined to several inputs broadcasts too; ``broadcast`` gives each
    consumer its own named output.) It needs at least one output: with none,
    every item would be dropped.
    """
    names = port_names("broadcast", "output", outputs, "out", none_why=_DROPS)

    @stream(ins=["inp"], outs=names, name="broadcast")
    async def body(ins: Ins, outs: Outs) -> None:
        ports = list(outs)
        async for item in ins.inp:
            for port in ports:
                await port.push(item)

    return named(body, name, "broadcast")


def balance(outputs: int | Sequence[str] = 2, *, name: str | None = None) -> PortStream:
    """A stream that deals the items of ``inp`` to its outputs in turn (round-robin).

    Item *i* goes to output *i* mod *n*, so each consumer gets every *n*-th
    item and a slow consumer holds the others back once its queue is full.
    Use it to spread work over several copies of a stage. An output that
    feeds nobody (its consumers have finished, or it is joined to nothing) is
    skipped, so no item is dealt to nobody while someone still reads; the
    stream ends when its input ends or when nobody reads any output. It
    needs at least one output: with none, every item would be dropped.
    """
    names = port_names("balance", "output", outputs, "out", none_why=_DROPS)

    @stream(ins=["inp"], outs=names, name="balance")
    async def body(ins: Ins, outs: Outs) -> None:
        ports = list(outs)
        n = len(ports)
        i = 0
        async for item in ins.inp:
            port = ports[i]
            for _ in range(n):
                port = ports[i]
                i = (i + 1) % n
                if port.consumers:
                    break
            await port.push(item)

    return named(body, name, "balance")


def split(
    predicate: Callable[[Any], object],
    *,
    name: str | None = None,
) -> PortStream:
    """A stream that sends each item of ``inp`` to ``matched`` or to ``unmatched``.

    Items for which ``predicate(item)`` (plain or ``async``) is true go to
    output ``matched``, the others to ``unmatched``, each in order. An output
    joined to nothing discards its items. The stream is called ``name``, by
    default after ``predicate``.
    """
    check_per_item("split", predicate)
    call = per_item(predicate)

    @stream(ins=["inp"], outs=["matched", "unmatched"], name="split")
    async def body(ins: Ins, outs: Outs) -> None:
        matched, unmatched = outs.matched, outs.unmatched
        async for item in ins.inp:
            await (matched if await call(item) else unmatched).push(item)

    return named(body, name, fn_name(predicate, "split"))
