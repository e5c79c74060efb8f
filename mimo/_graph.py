"""The graph as plain data: nodes, edges, feeds, the checks, DOT and Mermaid.

No asyncio here, and nothing of mimo's but its errors: the classic builder
(:mod:`mimo._workflow`) and the DSL build a :class:`Graph`; the runtime and the
executors consume one.
"""

from __future__ import annotations

import itertools
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from mimo._checks import ZERO_HANDS_OVER, check_count
from mimo._errors import WorkflowError, unknown_name

if TYPE_CHECKING:  # for the annotation only: _graph needs nothing of Stream at run time
    from mimo._stream import Stream

DEFAULT_CAPACITY = 64

# Ticks shared by every graph: when a graph last started running (see Graph.mark_run).
_clock = itertools.count(1)


def tick() -> int:
    """A number larger than every earlier tick: orders joins against runs."""
    return next(_clock)


@dataclass(eq=False)
class Node:
    """One stream in one graph. The same stream may be several nodes."""

    name: str
    stream: Stream
    #: The tick at which the graph holding this node last started to run (0: never).
    last_run: int = field(default=0, compare=False, repr=False)

    @property
    def ins(self) -> tuple[str, ...]:
        return tuple(self.stream.in_types)

    @property
    def outs(self) -> tuple[str, ...]:
        return tuple(self.stream.out_types)

    def __repr__(self) -> str:
        return f"<Node {self.name!r}>"


def workers_of(node: Node) -> int:
    """How many copies of ``node``'s stream run at once (its ``workers``, else 1)."""
    return int(getattr(node.stream, "workers", 1))


@dataclass(frozen=True, eq=False)
class Edge:
    """A join from ``src.out`` to ``dst.in_``."""

    src: Node
    out: str
    dst: Node
    in_: str
    #: The bound this join set on its input's queue (None: the run's capacity).
    capacity: int | None = None

    def __str__(self) -> str:
        return f"{self.src.name}.{self.out} -> {self.dst.name}.{self.in_}"


@dataclass(eq=False)
class Graph:
    """Nodes, edges and fed items; every check that needs no running."""

    capacity: int = DEFAULT_CAPACITY
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    feeds: dict[tuple[Node, str], list[Any]] = field(default_factory=dict)
    #: The tick at which this graph last started to run (0: never). The DSL
    #: frees the streams placed in a graph once it has run (docs/typing.md).
    last_run: int = 0

    def mark_run(self) -> None:
        """Record that this graph starts to run now."""
        self.last_run = tick()
        for node in self.nodes:
            node.last_run = self.last_run

    # -- building -----------------------------------------------------------

    def add(self, stream: Stream, name: str | None = None) -> Node:
        """Add ``stream`` as a new node, with a name unique in this graph.

        A name given explicitly (to the stream or here) that another stream
        already uses is a :class:`WorkflowError`; a default name gets a suffix.
        """
        if name is not None and (not isinstance(name, str) or not name):
            raise TypeError(f"stream name must be a non-empty str, not {name!r}")
        ready = getattr(stream, "check_settings", None)
        if ready is not None:
            ready()  # a @stream with a required setting not given: refused here, naming it
        explicit = name is not None or stream.named
        base = name if name is not None else stream.name
        for n in self.nodes:
            if n.name == base and explicit and n.stream is not stream:
                # A name asked for is never silently changed, even when the
                # other stream only has it by default.
                raise WorkflowError(f"duplicate stream name {base!r}: two different streams are called that")
        node = Node(self._free_name(base), stream)
        self.nodes.append(node)
        return node

    def _free_name(self, base: str) -> str:
        taken = {n.name for n in self.nodes}
        if base not in taken:
            return base
        i = 2
        while f"{base}_{i}" in taken:
            i += 1
        return f"{base}_{i}"

    def node(self, name: str) -> Node:
        """The node called ``name``."""
        for n in self.nodes:
            if n.name == name:
                return n
        raise WorkflowError(unknown_name("graph", "stream", name, [n.name for n in self.nodes]))

    def port(self, node: Node, kind: Literal["input", "output"], name: str | None, *, role: str = "") -> str:
        """Resolve a port name, or the only port when ``name`` is None."""
        names = node.ins if kind == "input" else node.outs
        if name is None:
            if len(names) == 1:
                return names[0]
            what = f" {role}" if role else ""
            if not names:
                raise WorkflowError(f"stream {node.name!r} has no {kind} ports to use as{what} {kind}")
            raise WorkflowError(
                f"stream {node.name!r} has {len(names)} {kind} ports, so the{what} {kind} must be named: "
                f"one of {', '.join(repr(n) for n in names)}"
            )
        if name not in names:
            raise WorkflowError(unknown_name(f"stream {node.name!r}", kind, name, list(names)))
        return name

    def connect(self, src: Node, out: str | None, dst: Node, in_: str | None, *, capacity: int | None = None) -> Edge:
        """Join ``src.out`` to ``dst.in_``, checking names, duplicates and item types.

        ``capacity`` bounds ``dst.in_``'s queue for every run, instead of the
        run's capacity. An input has one queue, so joins into it (a fan-in) that
        set a capacity must set the same one.
        """
        if capacity is not None:
            check_count("a join's capacity", capacity, 0, note=ZERO_HANDS_OVER)
        self._own(src)
        self._own(dst)
        out = self.port(src, "output", out, role="source")
        in_ = self.port(dst, "input", in_, role="target")
        for e in self.edges:
            if e.src is src and e.out == out and e.dst is dst and e.in_ == in_:
                raise WorkflowError(
                    f"{src.name}.{out} is already joined to {dst.name}.{in_} (if this is a second build of "
                    "a graph that has not run, run the first one before building again, or build from fresh copies)"
                )
        t_out = src.stream.out_types[out]
        t_in = dst.stream.in_types[in_]
        if not compatible(t_out, t_in):
            raise WorkflowError(
                f"cannot join {src.name}.{out} to {dst.name}.{in_}: "
                f"{src.name}.{out} produces {type_name(t_out)}, {dst.name}.{in_} expects {type_name(t_in)}"
            )
        if capacity is not None:
            for e in self.inputs_of(dst, in_):
                if e.capacity is not None and e.capacity != capacity:
                    raise WorkflowError(
                        f"cannot join {src.name}.{out} to {dst.name}.{in_} with capacity {capacity}: the join "
                        f"from {e.src.name}.{e.out} set {e.capacity}, and an input has one queue"
                    )
        edge = Edge(src, out, dst, in_, capacity)
        self.edges.append(edge)
        return edge

    def feed(self, node: Node, in_: str | None, item: Any) -> None:
        """Queue ``item`` for ``node``'s input before the run."""
        self._own(node)
        in_ = self.port(node, "input", in_)
        self.feeds.setdefault((node, in_), []).append(item)

    def absorb(self, other: Graph) -> None:
        """Take every node, edge and feed of ``other`` (whose nodes are distinct)."""
        if other is self:
            return
        for n in other.nodes:
            n.name = self._free_name(n.name)
            self.nodes.append(n)
        self.edges.extend(other.edges)
        for key, items in other.feeds.items():
            self.feeds.setdefault(key, []).extend(items)

    def _own(self, node: Node) -> None:
        if not any(n is node for n in self.nodes):
            raise WorkflowError(f"stream {node.name!r} belongs to another workflow; add it to this one first")

    # -- reading ------------------------------------------------------------

    def inputs_of(self, node: Node, port: str) -> list[Edge]:
        return [e for e in self.edges if e.dst is node and e.in_ == port]

    def input_capacity(self, node: Node, port: str, default: int) -> int:
        """The bound of ``node.port``'s queue: the one its joins set, else ``default`` (the run's)."""
        for e in self.inputs_of(node, port):
            if e.capacity is not None:
                return e.capacity
        return default

    def outputs_of(self, node: Node, port: str) -> list[Edge]:
        return [e for e in self.edges if e.src is node and e.out == port]

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def to_dot(
        self,
        name: str = "workflow",
        edge_labels: Mapping[Edge, str] | None = None,
        *,
        node_attrs: Mapping[Node, Mapping[str, str]] | None = None,
        edge_attrs: Mapping[Edge, Mapping[str, str]] | None = None,
        graph_attrs: Mapping[str, str] | None = None,
    ) -> str:
        """Graphviz DOT: one record per stream with its ports; deterministic.

        The optional mappings add DOT attributes (``color``, ``label``, ...)
        to chosen nodes, edges and the graph itself.
        """
        ids = {id(n): f"n{i}" for i, n in enumerate(self.nodes)}
        lines = [
            f"digraph {_dot_id(name)} {{",
            "  rankdir=LR;",
            '  node [shape=Mrecord, fontname="Helvetica"];',
            '  edge [fontname="Helvetica", fontsize=10];',
        ]
        for k, v in (graph_attrs or {}).items():
            lines.append(f"  {k}={_dot_id(v)};")
        for n in self.nodes:
            ins = "|".join(f"<i_{p}> {p}" for p in n.ins)
            outs = "|".join(f"<o_{p}> {p}" for p in n.outs)
            parts = [f"{{{ins}}}"] if ins else []
            parts.append(_record_escape(n.name))
            if outs:
                parts.append(f"{{{outs}}}")
            extra = "".join(f", {k}={_dot_id(v)}" for k, v in (node_attrs or {}).get(n, {}).items())
            lines.append(f'  {ids[id(n)]} [label="{{{"|".join(parts)}}}"{extra}];')
        for e in self.edges:
            pairs = dict(edge_attrs.get(e, {})) if edge_attrs else {}
            if edge_labels and e in edge_labels:
                pairs = {"label": edge_labels[e], **pairs}
            attrs = " [" + ", ".join(f"{k}={_dot_id(v)}" for k, v in pairs.items()) + "]" if pairs else ""
            lines.append(f"  {ids[id(e.src)]}:o_{e.out} -> {ids[id(e.dst)]}:i_{e.in_}{attrs};")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def to_mermaid(self) -> str:
        """A Mermaid flowchart of the graph; deterministic."""
        ids = {id(n): f"n{i}" for i, n in enumerate(self.nodes)}
        lines = ["flowchart LR"]
        for n in self.nodes:
            label = n.name.replace('"', "#quot;")
            lines.append(f'  {ids[id(n)]}["{label}"]')
        for e in self.edges:
            lines.append(f'  {ids[id(e.src)]} -- "{e.out} → {e.in_}" --> {ids[id(e.dst)]}')
        return "\n".join(lines) + "\n"


def compatible(produced: Any, expected: Any) -> bool:
    """False only when the item types certainly cannot match."""
    if expected is object or expected is Any or produced is Any:
        return True
    # Unions (int | None, Optional[int]): every produced member must fit some expected member.
    if _is_union(produced):
        return all(compatible(p, expected) for p in typing.get_args(produced))
    if _is_union(expected):
        return any(compatible(produced, e) for e in typing.get_args(expected))
    a = typing.get_origin(produced) or produced
    b = typing.get_origin(expected) or expected
    if isinstance(a, type) and isinstance(b, type):
        try:
            return issubclass(a, b)
        except TypeError:
            return True
    return True


def _is_union(t: Any) -> bool:
    return typing.get_origin(t) in (typing.Union, types.UnionType)


def type_name(t: Any) -> str:
    if isinstance(t, type) and not typing.get_args(t):
        return t.__qualname__
    return repr(t).replace("typing.", "")


def _dot_id(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _record_escape(s: str) -> str:
    out = s.replace("\\", "\\\\")
    for ch in '{}|<>"':
        out = out.replace(ch, "\\" + ch)
    return out.replace(" ", "\\ ")
