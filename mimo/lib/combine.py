"""Combine: streams that join several inputs or feed several outputs.

Their port sets vary, so each is a :class:`~mimo.dsl.PortStream` joined by
name (``m.in_['in0']``, ``s.out['matched']``) and checked when joined; a
single input is ``inp`` and a single output ``out``, as everywhere in
:mod:`mimo.lib`. Where a function takes ``inputs`` or ``outputs``, pass a
count (ports ``in0``, ``in1``, ... / ``out0``, ``out1``, ...) or a list (or
tuple) of port names; a bare string is refused, not split into one-letter ports.

``merge``, ``zip`` and ``join`` also take their upstreams themselves
(``lib.merge(a, b)``: streams or chains with one open output, or async
iterables), and ``split`` and ``join`` give their outputs as typed attributes
(``s.matched | ...``): see :class:`~mimo.lib._branches.Branch`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, Generic, TypeVar, overload

from mimo._checkpoint import position
from mimo._errors import EndOfStream
from mimo._graph import Node
from mimo._ports import InputPort, Ins, OutputPort, Outs
from mimo._runtime import run_together
from mimo.dsl import DslStream, In, Out, PortStream, stream
from mimo.dsl._build import Sink, Source, _Group
from mimo.lib._branches import Branch, Upstream, chain_from, feed, is_upstream, spec_or_upstreams
from mimo.lib._calls import check_per_item, per_item
from mimo.lib._naming import as_kind, fn_name, named, port_names

__all__ = [
    "Branch",
    "FanOutStream",
    "JoinStream",
    "SplitStream",
    "balance",
    "broadcast",
    "join",
    "merge",
    "split",
    "zip",
]

T = TypeVar("T")
A = TypeVar("A")
B = TypeVar("B")
C = TypeVar("C")
M = TypeVar("M")
U = TypeVar("U")

#: Why broadcast and balance refuse zero outputs, where merge and zip take zero inputs.
_DROPS = "with no output every item it reads would be dropped"


@overload
def merge(inputs: int | Sequence[str] = 2, *, name: str | None = None) -> PortStream: ...
@overload
def merge(first: Upstream[T], /, *more: Upstream[T], name: str | None = None) -> Source[T]: ...
def merge(*args: Any, inputs: Any = None, name: str | None = None) -> Any:
    """A stream that pushes every item of every input to ``out``, as they come.

    Each input is read at its own pace, so a slow or idle input never holds
    back the others; items of one input keep their order, and the output
    ends when every input has ended. (Joining several outputs to one input
    with ``>>`` merges too; ``merge`` gives each producer its own named input.)
    The inputs are read by sub-tasks of the stream (through
    :func:`mimo.run_together`), so a deadlock around a merge is still found.
    ``merge(0)`` has no input and ends at once, pushing nothing (a merge of
    an empty list of producers).

    ``merge(a, b, ...)`` takes the upstreams themselves (streams or chains with
    one open output, or async iterables) and returns a chain ending at the
    merge: ``lib.merge(letters(), digits()).to_list()``.
    """
    spec, ups = spec_or_upstreams("merge", args, inputs)
    names = port_names("merge", "input", spec, "in")

    @stream(ins=names, outs=["out"], name="merge")
    async def body(ins: Ins, outs: Outs) -> None:
        out = outs.out

        async def pump(port: InputPort[Any]) -> None:
            async for item in port:
                await out.push(item)

        ports = list(ins)
        if not ports:
            return  # merge(0): nothing to read, so it ends at once
        if (pos := position()) is not None:
            await _merge_kept(ports, out, pos)
            return
        if len(ports) == 1:
            await pump(ports[0])
            return
        # A pump whose consumer left raises ConsumersGone, which run_together
        # turns into a quiet end of the whole merge.
        await run_together(*(pump(port) for port in ports))

    m = named(body, name, "merge")
    return chain_from(feed("merge", m, ups, names), m) if ups else m


async def _merge_kept(ports: list[InputPort[Any]], out: OutputPort[Any], pos: dict[str, Any]) -> None:
    # Each input's item being pushed is kept: a checkpoint is taken at another input's pop.
    pushing: dict[int, Any] = pos.setdefault("pushing", {})

    async def pump(i: int, port: InputPort[Any]) -> None:
        if i in pushing:  # resumed: it left after the checkpoint, if at all
            await out.push(pushing[i])
            del pushing[i]
        async for item in port:
            pushing[i] = item
            await out.push(item)
            del pushing[i]

    await run_together(*(pump(i, port) for i, port in enumerate(ports)))


@overload
def zip(inputs: int | Sequence[str] = 2, *, name: str | None = None) -> PortStream: ...
@overload
def zip(a: Upstream[A], /, *, name: str | None = None) -> Source[tuple[A]]: ...
@overload
def zip(a: Upstream[A], b: Upstream[B], /, *, name: str | None = None) -> Source[tuple[A, B]]: ...
@overload
def zip(a: Upstream[A], b: Upstream[B], c: Upstream[C], /, *, name: str | None = None) -> Source[tuple[A, B, C]]: ...
@overload
def zip(
    a: Upstream[Any],
    b: Upstream[Any],
    c: Upstream[Any],
    d: Upstream[Any],
    /,
    *more: Upstream[Any],
    name: str | None = None,
) -> Source[tuple[Any, ...]]: ...
def zip(*args: Any, inputs: Any = None, name: str | None = None) -> Any:
    """A stream that pushes a tuple of one item from each input, in input order.

    The *n*-th tuple holds the *n*-th item of every input, so inputs move in
    step: a fast input waits (back-pressured) for the slow ones. Like the
    builtin ``zip``, it ends when the first input ends; the other inputs are
    then left, and what is still queued there is dropped. ``zip(0)``, like
    ``builtins.zip()``, has no input and ends at once, pushing nothing.
    ``zip(a, b)`` takes the upstreams themselves, as :func:`merge` does, and
    is typed ``Source[tuple[A, B]]``.
    """
    spec, ups = spec_or_upstreams("zip", args, inputs)
    names = port_names("zip", "input", spec, "in")

    @stream(ins=names, outs={"out": tuple}, name="zip")
    async def body(ins: Ins, outs: Outs) -> None:
        ports = list(ins)
        out = outs.out
        if ports and (pos := position()) is not None:
            # Checkpointed: the items taken for the next tuple are kept in the position.
            row = pos.setdefault("row", [])
            while True:
                try:
                    while len(row) < len(ports):
                        row.append(await ports[len(row)].pop())
                except EndOfStream:
                    return
                await out.push(tuple(row))
                row.clear()
        while ports:  # zip(0), like the builtin zip(), gives nothing
            try:
                row = [await port.pop() for port in ports]
            except EndOfStream:
                return
            await out.push(tuple(row))

    z = named(body, name, "zip")
    return chain_from(feed("zip", z, ups, names), z) if ups else z


class FanOutStream(DslStream[Any, Any], Sink[T]):
    """What :func:`broadcast` and :func:`balance` return: input ``inp`` taking ``T``; outputs as typed branches.

    ``src | b`` is checked statically against ``T``, and ``b.branches`` holds
    one :class:`~mimo.lib._branches.Branch` per output, in order, so that
    ``left, right = lib.balance(src).branches`` then ``left | ...``. Like a
    split, it stands for one node per build wherever it is mentioned.
    """

    @property
    def branches(self) -> tuple[Branch[T], ...]:
        """One branch per output, in port order."""
        return tuple(Branch(self, port) for port in self.outs)

    def _span(self) -> tuple[_Group, Node, Node]:
        g, node = self._place()
        return g, node, node


def _fan_out(
    owner: str, args: tuple[Any, ...], outputs: Any, name: str | None, body: Callable[[Ins, Outs], Awaitable[None]]
) -> FanOutStream[Any]:
    ups = [a for a in args[:1] if is_upstream(a)]
    if len(args) > 1 or (args and not ups and outputs is not None):
        raise TypeError(f"{owner}(): takes one upstream or one port spec (a count or a list of names), not {args!r}")
    spec = args[0] if args and not ups else (outputs if outputs is not None else 2)
    names = port_names(owner, "output", spec, "out", none_why=_DROPS)
    s = named(as_kind(FanOutStream, stream(ins=["inp"], outs=names, name=owner)(body)), name, owner)
    if ups:
        feed(owner, s, ups, ["inp"])
    return s


async def _broadcast(ins: Ins, outs: Outs) -> None:
    ports = list(outs)
    async for item in ins.inp:
        for port in ports:
            await port.push(item)


@overload
def broadcast(outputs: int | Sequence[str] = 2, *, name: str | None = None) -> FanOutStream[Any]: ...
@overload
def broadcast(
    upstream: Upstream[T], /, *, outputs: int | Sequence[str] = 2, name: str | None = None
) -> FanOutStream[T]: ...
def broadcast(*args: Any, outputs: Any = None, name: str | None = None) -> FanOutStream[Any]:
    """A stream that pushes every item of ``inp`` to each of its outputs, in order.

    It is paced by the slowest consumer (each push waits for room). An
    output whose consumers have all finished is skipped from then on; the
    stream ends when its input ends or when nobody reads any output. (An
    output joined to several inputs broadcasts too; ``broadcast`` gives each
    consumer its own named output.) It needs at least one output: with none,
    every item would be dropped. ``broadcast(src, outputs=3)`` takes its
    upstream too; ``.branches`` are its outputs, typed.
    """
    return _fan_out("broadcast", args, outputs, name, _broadcast)


async def _balance(ins: Ins, outs: Outs) -> None:
    ports = list(outs)
    n = len(ports)
    pos = position()
    i = 0 if pos is None else pos.get("turn", 0)  # checkpointed runs keep whose turn it is there
    async for item in ins.inp:
        port = ports[i]
        for _ in range(n):
            port = ports[i]
            i = (i + 1) % n
            if port.consumers:
                break
        if pos is not None:
            pos["turn"] = i
        await port.push(item)


@overload
def balance(outputs: int | Sequence[str] = 2, *, name: str | None = None) -> FanOutStream[Any]: ...
@overload
def balance(
    upstream: Upstream[T], /, *, outputs: int | Sequence[str] = 2, name: str | None = None
) -> FanOutStream[T]: ...
def balance(*args: Any, outputs: Any = None, name: str | None = None) -> FanOutStream[Any]:
    """A stream that deals the items of ``inp`` to its outputs in turn (round-robin).

    Item *i* goes to output *i* mod *n*, so each consumer gets every *n*-th
    item and a slow consumer holds the others back once its queue is full.
    Use it to spread work over several copies of a stage. An output that
    feeds nobody (its consumers have finished, or it is joined to nothing) is
    skipped, so no item is dealt to nobody while someone still reads; the
    stream ends when its input ends or when nobody reads any output. It
    needs at least one output: with none, every item would be dropped.
    ``balance(src, outputs=3)`` takes its upstream too; ``.branches`` are its
    outputs, typed.
    """
    return _fan_out("balance", args, outputs, name, _balance)


class SplitStream(DslStream[Any, Any], Sink[T]):
    """What :func:`split` returns: input ``inp`` taking ``T``; outputs as typed branches.

    ``src | s`` is checked statically against ``T``; ``s.matched`` and
    ``s.unmatched`` are :class:`~mimo.lib._branches.Branch` objects that start
    ``|`` chains. A split stands for one node per build wherever it is
    mentioned (as a source does), so its branches and ``src | s`` meet there.
    """

    @property
    def matched(self) -> Branch[T]:
        """The items for which the predicate is true, as the start of a chain."""
        return Branch(self, "matched")

    @property
    def unmatched(self) -> Branch[T]:
        """The other items, as the start of a chain."""
        return Branch(self, "unmatched")

    def _span(self) -> tuple[_Group, Node, Node]:
        g, node = self._place()
        return g, node, node


@stream(name="split")
async def _split(
    inp: In[Any],
    matched: Out[Any],
    unmatched: Out[Any],
    *,
    predicate: Callable[[Any], Awaitable[object]],
) -> None:
    async for item in inp:
        await (matched if await predicate(item) else unmatched).push(item)


@overload
def split(predicate: Callable[[T], Awaitable[object]], *, name: str | None = None) -> SplitStream[T]: ...
@overload
def split(predicate: Callable[[T], object], *, name: str | None = None) -> SplitStream[T]: ...
def split(predicate: Callable[[T], object], *, name: str | None = None) -> SplitStream[T]:
    """A stream that sends each item of ``inp`` to ``matched`` or to ``unmatched``.

    Items for which ``predicate(item)`` (plain or ``async``) is true go to
    output ``matched``, the others to ``unmatched``, each in order. An output
    joined to nothing discards its items. The stream is called ``name``, by
    default after ``predicate``. The outputs are also typed attributes:
    ``s.matched | lib.map(clean) | lib.collect(kept)``.
    """
    check_per_item("split", predicate)
    s = as_kind(SplitStream, _split(predicate=per_item(predicate)))
    return named(s, name, fn_name(predicate, "split"))


# -- join ------------------------------------------------------------------------


class JoinStream(PortStream, Generic[M, U]):
    """What :func:`join` returns: outputs ``matched`` (tuples, typed ``M``) and ``unmatched`` (``U``)."""

    @property
    def matched(self) -> Branch[M]:
        """A tuple of one item per input for each key met on every input, as the start of a chain."""
        return Branch(self, "matched")

    @property
    def unmatched(self) -> Branch[U]:
        """The items left without a partner when every input has ended, as the start of a chain."""
        return Branch(self, "unmatched")

    def _span(self) -> tuple[_Group, Node, Node]:
        g, node = self._place()
        return g, node, node


Key = Callable[[Any], Hashable]


@overload
def join(
    a: Upstream[A], b: Upstream[B], /, *, key: Callable[[A | B], Hashable], name: str | None = None
) -> JoinStream[tuple[A, B], A | B]: ...
@overload
def join(
    a: Upstream[A],
    b: Upstream[B],
    /,
    *,
    key: tuple[Callable[[A], Hashable], Callable[[B], Hashable]],
    name: str | None = None,
) -> JoinStream[tuple[A, B], A | B]: ...
@overload
def join(
    inputs: int | Sequence[str] = 2, *, key: Key | Sequence[Key], name: str | None = None
) -> JoinStream[tuple[Any, ...], Any]: ...
def join(*args: Any, inputs: Any = None, key: Any, name: str | None = None) -> Any:
    """A keyed join: a tuple of one item per input for each key met on every input.

    ``key`` is one function for every input (``key=lambda x: x.id``) or a
    list (or tuple) of one function per input, plain or ``async``; its
    results must be hashable. Matching is one-to-one, in arrival order: an
    item waits until every other input has given an item with the same key;
    then those items leave together as one tuple on ``matched`` (in input
    order), at once, not at the end. Two items with the same key on one
    input are two separate matches (the first pairs with the other inputs'
    first, and so on), never a cross product.

    When every input has ended, the items still waiting go to ``unmatched``,
    in the order they arrived. Until then they are kept: memory grows with
    the number of items that are still unmatched (bounded by the data, not
    by the queues). Inputs are read at their own pace, as in :func:`merge`.
    Takes a count of inputs (``in0``, ``in1``, ...), a list of names, or the
    upstreams themselves: ``lib.join(orders, payments, key=...)`` returns the
    join, already fed, whose ``.matched`` and ``.unmatched`` start chains.
    """
    spec, ups = spec_or_upstreams("join", args, inputs)
    names = port_names("join", "input", spec, "in")
    if len(names) < 2:
        raise ValueError(f"join: needs at least two inputs, not {spec!r}: a join matches items across inputs")
    keys: list[Any]
    if isinstance(key, list | tuple):
        keys = list(key)
        if len(keys) != len(names):
            raise ValueError(f"join: key has {len(keys)} functions for {len(names)} inputs; give one per input")
    else:
        keys = [key] * len(names)
    for k in keys:
        check_per_item("join", k)
    calls = [per_item(k) for k in keys]

    @stream(ins=names, outs=["matched", "unmatched"], name="join")
    async def body(ins: Ins, outs: Outs) -> None:
        # In a checkpointed run what it holds is in its position, saved at every checkpoint.
        pos = position()
        await _join(list(ins), outs, calls, {} if pos is None else pos)

    j = named(as_kind(JoinStream, body), name, "join")
    if ups:
        feed("join", j, ups, names)
    return j


async def _join(ports: list[InputPort[Any]], outs: Outs, calls: list[Any], pos: dict[str, Any]) -> None:
    """``join``'s work, with everything it holds in ``pos`` (its checkpointed position, or a plain dict).

    A checkpoint is taken at any input's pop, so besides the items waiting
    for a partner the position holds, per input, the item whose key is being
    computed and the tuple being pushed; a resumed run finishes those first.
    """
    # key -> for each input, its waiting (arrival number, item)s
    waiting: dict[Hashable, list[deque[tuple[int, Any]]]] = pos.setdefault("waiting", {})
    taken: dict[int, Any] = pos.setdefault("taken", {})
    pushing: dict[int, tuple[Any, ...]] = pos.setdefault("pushing", {})
    out = outs.matched

    async def place(i: int, item: Any) -> None:
        k = await calls[i](item)
        del taken[i]
        slots = waiting.get(k)
        if slots is None:
            slots = waiting[k] = [deque() for _ in ports]
        n = pos["arrivals"] = pos.get("arrivals", 0) + 1
        slots[i].append((n, item))
        if all(slots):
            row = tuple(q.popleft()[1] for q in slots)
            if not any(slots):
                del waiting[k]
            pushing[i] = row
            await out.push(row)
            del pushing[i]

    async def pump(i: int, port: InputPort[Any]) -> None:
        if i in pushing:
            await out.push(pushing[i])
            del pushing[i]
        if i in taken:
            await place(i, taken[i])
        async for item in port:
            taken[i] = item
            await place(i, item)

    try:
        await run_together(*(pump(i, p) for i, p in enumerate(ports)))
    except BaseExceptionGroup as eg:
        first: BaseException = eg
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from None
    left = sorted((e for slots in waiting.values() for q in slots for e in q), key=lambda e: e[0])
    for _, item in left:
        await outs.unmatched.push(item)
    waiting.clear()
