"""Typed handles on the outputs of many-output stock streams, and upstreams given as arguments.

``lib.split(p).matched`` is a :class:`Branch`: one named output of one
stream, which starts ``|`` chains like a source (``s.matched | lib.map(f)``)
and carries the port's item type statically. :func:`feed` joins upstreams
given as arguments (``lib.merge(a, b)``) to a stream's inputs.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Sequence
from typing import Any, Generic, TypeVar

from mimo._errors import WorkflowError
from mimo._graph import Node
from mimo.dsl import DslStream
from mimo.dsl._build import Joinable, Source, _Group, _join, _result_class, _SourceChain

T = TypeVar("T")


class Branch(Source[T], Generic[T]):
    """One named output of a stream, typed: ``split.matched | lib.map(clean) | lib.collect(kept)``.

    Every branch of one stream stands for that stream's single node in the
    graph being built (its home), so ``s.matched | a`` and ``s.unmatched | b``
    are two consumers of one split, and ``s.matched`` joined twice fans out.
    """

    def __init__(self, stream: DslStream, port: str) -> None:
        self.stream = stream
        self.port = port

    def _span(self) -> tuple[_Group, Node, Node]:
        g, node = self.stream._port_node("output")
        return g, node, node

    def _port_node(self, kind: Any) -> tuple[_Group, Node]:
        return self.stream._port_node(kind)

    def _port_types(self, kind: Any) -> dict[str, Any]:
        return {self.port: self.stream.out_types[self.port]} if kind == "output" else {}

    def _check_port(self, kind: Any, name: str) -> str:
        if kind == "output" and name == self.port:
            return name
        raise WorkflowError(f"{self._label()} is one output; it has no {kind} port {name!r}")

    def _label(self) -> str:
        return f"{self.stream.name!r}.{self.port}"

    def _pipe(self, other: object, capacity: int | None = None) -> Any:
        if not isinstance(other, Joinable):
            return NotImplemented
        ga, node = self.stream._port_node("output")
        gb, first, last = other._span()
        g = _join(ga, node, self.port, gb, first, None, capacity)
        return _result_class(self, other)(g, node, last)

    def __repr__(self) -> str:
        return f"<Branch {self._label()}>"


#: What a stream can take as an upstream argument: a stream or chain with one open output, or an async iterable.
Upstream = Source[T] | AsyncIterable[T]


def is_upstream(value: object) -> bool:
    """Whether ``value`` is an upstream argument rather than a port count or a list of port names."""
    return isinstance(value, Joinable | AsyncIterable)


def spec_or_upstreams(owner: str, args: tuple[Any, ...], inputs: Any) -> tuple[Any, list[Any]]:
    """Split ``owner(*args, inputs=)`` into a port spec and the upstreams given as arguments."""
    if args and all(is_upstream(a) for a in args):
        if inputs is not None:
            raise TypeError(f"{owner}(): give either the upstreams or inputs=, not both")
        return len(args), list(args)
    if len(args) > 1 or (args and inputs is not None):
        bad = next((a for a in args if not is_upstream(a)), args[0])
        raise TypeError(
            f"{owner}(): takes one port spec (a count or a list of names) or upstreams (streams, chains "
            f"with one open output, async iterables), not {bad!r}"
            + ("; wrap a plain iterable in lib.from_iterable()" if hasattr(bad, "__iter__") else "")
        )
    spec = args[0] if args else (inputs if inputs is not None else 2)
    return spec, []


def feed(owner: str, stream: DslStream, upstreams: Sequence[object], ports: Sequence[str]) -> _Group:
    """Join each upstream's open output to ``stream``'s input of the same position; the graph.

    ``stream`` takes its home node (one node per build); an async iterable
    becomes a ``from_async_iterable`` source. Anything else is a ``TypeError``
    naming ``owner`` and the argument's position.
    """
    from mimo.lib.sources import from_async_iterable

    g, home = stream._port_node("input")
    for i, (up, port) in enumerate(zip(upstreams, ports, strict=True)):
        if isinstance(up, AsyncIterable) and not isinstance(up, Joinable):
            up = from_async_iterable(up)
        if not isinstance(up, Joinable):
            hint = "; wrap a plain iterable in lib.from_iterable()" if hasattr(up, "__iter__") else ""
            raise TypeError(
                f"{owner}(): argument {i} must be a stream or chain with one open output, or an async "
                f"iterable, not {up!r}{hint}"
            )
        if isinstance(up, Branch):
            ga, src = up._port_node("output")
            out: str | None = up.port
        else:
            ga, _, src = up._span()
            out = None
        g = _join(ga, src, out, g, home, port)
        g.by_name = True
    return g.find()


def chain_from(g: _Group, stream: DslStream) -> _SourceChain:
    """A ``|`` chain that ends at ``stream``'s home node in ``g``: what ``lib.merge(a, b)`` returns."""
    _, node = stream._port_node("output")
    return _SourceChain(g.find(), node, node)
