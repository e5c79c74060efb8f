"""The objects ``|`` and ``>>`` work on, and the graphs they build.

Every join lands in one :class:`mimo._graph.Graph`; the DSL only builds graphs,
the one runtime runs them. Identity rule (see ``docs/typing.md``):

* A stream object takes a fixed place (its *home node*) in a graph the first
  time one of its ports is joined by name (``s.out['x'] >> ...``). From then on
  every mention of it, in ``>>`` or ``|``, is that node, and every join that
  touches it adds to the same graph.
* A stream with no home node becomes a new stage wherever it is written in a
  ``|`` chain, so ``nums | inc | inc | keep`` has two ``inc`` stages and one
  module-level stream can start many separate pipelines.
* A chain (the result of ``|`` or ``>>``) is a view on its graph: extending it
  adds to the same graph, and its ports are those of its first stage
  (``chain.in_``) and its last stage (``chain.out``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, Protocol, TypeVar, overload

from typing_extensions import TypeVar as DefaultTypeVar

from mimo._checks import ZERO_HANDS_OVER, check_count
from mimo._errors import WorkflowError
from mimo._graph import Edge, Graph, Node
from mimo._report import RunReport
from mimo._workflow import DashboardSpec, Executor, ProgressSpec, Workflow

if TYPE_CHECKING:
    import os
    from pathlib import Path

    from mimo._store import CheckpointStore

T = TypeVar("T")
U = TypeVar("U")
T_contra = TypeVar("T_contra", contravariant=True)
I_contra = TypeVar("I_contra", contravariant=True)
O_co = TypeVar("O_co", covariant=True)

#: The port set a stream's ``in_`` / ``out`` stand for; ``Any`` unless the mypy plugin fills it in.
P = DefaultTypeVar("P", default=Any)

Kind = Literal["input", "output"]


# -- graphs under construction ------------------------------------------------


class _Group:
    """A graph being built, merged with others as joins connect them (union-find)."""

    __slots__ = ("graph", "parent", "pinned", "by_name")

    def __init__(self, graph: Graph | None = None, *, pinned: bool = False) -> None:
        self.graph: Graph = graph if graph is not None else Graph()
        self.parent: _Group | None = None
        # A pinned graph belongs to a Workflow: merges keep it, so the workflow sees them.
        self.pinned: bool = pinned
        # True once a join by port name (>>) touched it: such graphs are built over many statements.
        self.by_name: bool = False

    def find(self) -> _Group:
        root = self
        while root.parent is not None:
            root = root.parent
        node = self
        while node.parent is not None and node.parent is not root:
            node.parent, node = root, node.parent
        return root


def _merge(a: _Group, b: _Group) -> _Group:
    a, b = a.find(), b.find()
    if a is b:
        return a
    if a.pinned and b.pinned:
        raise WorkflowError("cannot join streams of two different workflows")
    # The bigger graph absorbs the smaller, so streams keep the order they were first joined in.
    if b.pinned or (not a.pinned and len(b.graph.nodes) > len(a.graph.nodes)):
        a, b = b, a
    for nb in b.graph.nodes:
        if not nb.stream.named:
            continue
        for na in a.graph.nodes:
            if na.name == nb.name and na.stream is not nb.stream and na.stream.named:
                raise WorkflowError(f"duplicate stream name {nb.name!r}: two different streams are called that")
    a.graph.absorb(b.graph)
    a.by_name = a.by_name or b.by_name
    b.parent = a
    return a


def release(group: _Group) -> None:
    """Free every stream placed in ``group``'s graph: its next join starts a new graph."""
    root = group.find()
    for node in root.graph.nodes:
        free = getattr(node.stream, "_release_from", None)
        if free is not None:
            free(root)


def _same_definition(a: Any, b: Any) -> bool:
    """True if ``a`` and ``b`` are one stream, or copies of one definition with equal settings."""
    if a is b:
        return True
    if type(a) is not type(b) or a.name != b.name or a.named or b.named:
        return False
    fa, fb = getattr(a, "fn", None), getattr(b, "fn", None)
    sa, sb = getattr(a, "settings", None), getattr(b, "settings", None)
    if fa is None or fa is not fb or not isinstance(sa, dict) or not isinstance(sb, dict) or sa.keys() != sb.keys():
        return False
    return all(_same_value(sa[k], sb[k]) for k in sa)


def _same_value(x: Any, y: Any) -> bool:
    # Only plain immutable values compare by value: two lists given to two sinks are two sinks.
    if x is y:
        return True
    return type(x) is type(y) and type(x) in _PLAIN and bool(x == y)


_PLAIN = (int, float, complex, str, bytes, bool, range, type(None))


def _check_twins(ga: _Group, gb: _Group, edge: Edge) -> None:
    """Refuse a join that repeats one already made with an identical stream (a second build)."""
    src, dst = edge.src, edge.dst
    roots = {id(g): g for g in (ga.find(), gb.find())}
    for g in roots.values():
        for e in g.graph.edges:
            if e.out != edge.out or e.in_ != edge.in_:
                continue
            if e.dst is dst and e.src is not src and _same_definition(e.src.stream, src.stream):
                twin, other = e.src, f"{dst.name}.{edge.in_} is already fed by {e.src.name}.{edge.out}"
            elif e.src is src and e.dst is not dst and _same_definition(e.dst.stream, dst.stream):
                twin, other = e.dst, f"{src.name}.{edge.out} already feeds {e.dst.name}.{edge.in_}"
            else:
                continue
            raise WorkflowError(
                f"{other}, an identical stream ({twin.name!r}, same definition and settings), in a graph "
                "that has not run. Building the same graph a second time (a re-run cell, a second test) would "
                "double its items: run the first graph before building again (a graph that has run frees its "
                "streams for the next build), or build from fresh copies (s() copies a decorated stream). "
                "For two identical streams on purpose, give them different names (name=...)."
            )


def _checked_edge(src: Node, out: str | None, dst: Node, in_: str | None, capacity: int | None = None) -> Edge:
    """Every check of a join that needs no graph (port names, counts, item types); the edge it would make."""
    scratch = Graph(nodes=[src] if src is dst else [src, dst])
    return scratch.connect(src, out, dst, in_, capacity=capacity)


def _join(
    ga: _Group, src: Node, out: str | None, gb: _Group, dst: Node, in_: str | None, capacity: int | None = None
) -> _Group:
    edge = _checked_edge(src, out, dst, in_, capacity)
    _check_twins(ga, gb, edge)
    g = _merge(ga, gb)
    g.graph.connect(src, edge.out, dst, edge.in_, capacity=capacity)
    return g


# -- port references -------------------------------------------------------------


class Accepts(Protocol[T_contra]):
    """What ``OutRef[T] >> x`` needs of ``x``: an input that takes items of type T."""

    def _mimo_accepts(self, item: T_contra, /) -> None: ...


class InRef(Generic[T]):
    """A named input port of a stream or chain in the graph being built: ``b.in_['y']``."""

    __slots__ = ("piece", "name", "bound")

    def __init__(self, piece: Joinable, name: str, bound: int | None = None) -> None:
        self.piece: Joinable = piece
        self.name: str = name
        #: The join's own bound on this input's queue (``.capacity(n)``), or None.
        self.bound: int | None = bound

    def _mimo_accepts(self, item: T, /) -> None:
        """Never called: makes ``InRef[B]`` an ``Accepts[A]`` exactly when A is a subtype of B."""

    def capacity(self, capacity: int) -> InRef[T]:
        """This input, for a join whose queue holds at most ``capacity`` items in every run.

        ``a.out['x'] >> b.in_['y'].capacity(4)``: the join's own bound, used
        instead of the run's capacity. Checked here: an int >= 0.
        """
        check_count(f"{self!r}: capacity", capacity, 0, note=ZERO_HANDS_OVER)
        return InRef(self.piece, self.name, capacity)

    def __repr__(self) -> str:
        return f"<input {self.piece._label()}.{self.name}>"


class OutRef(Generic[T]):
    """A named output port of a stream or chain: ``a.out['x']``; ``>>`` joins it to an input."""

    __slots__ = ("piece", "name")

    def __init__(self, piece: Joinable, name: str) -> None:
        self.piece: Joinable = piece
        self.name: str = name

    def __rshift__(self, other: Accepts[T]) -> Flow:
        """Join this output to the input ``other`` and return the graph, ending at ``other``'s stream.

        An output joined to several inputs broadcasts (fan-out); an input joined
        from several outputs merges them (fan-in).
        """
        if not isinstance(other, InRef):
            raise TypeError(f"the right side of >> must be an input port such as b.in_['y'], not {other!r}")
        ga, src = self.piece._port_node("output")
        gb, dst = other.piece._port_node("input")
        g = _join(ga, src, self.name, gb, dst, other.name, other.bound)
        g.by_name = True
        return Flow(g, src, dst)

    def to(self, other: Accepts[T]) -> Flow:
        """``self >> other`` as a method call, which type checkers accept as a statement.

        pyright's strict mode reports a bare ``a.out['x'] >> b.in_['y']``
        statement as an unused expression; ``a.out['x'].to(b.in_['y'])`` makes
        the same join, checked the same way, and returns the same graph.
        """
        return self >> other

    def __repr__(self) -> str:
        return f"<output {self.piece._label()}.{self.name}>"


class Only(Generic[T]):
    """The port set of a stream with just one port of a kind, carrying items of type T.

    A type-level marker, never instantiated: ``s.in_[name]`` / ``s.out[name]``
    on such a stream are then ``InRef[T]`` / ``OutRef[T]`` with no plugin.
    """


class _PortNames(Generic[P]):
    """What the input and output port sets share: names, iteration, membership."""

    __slots__ = ("_piece",)
    _kind: ClassVar[Kind]

    def __init__(self, piece: Joinable) -> None:
        self._piece = piece

    def __iter__(self) -> Iterator[str]:
        return iter(self._piece._port_types(self._kind))

    def __len__(self) -> int:
        return len(self._piece._port_types(self._kind))

    def __contains__(self, name: object) -> bool:
        return name in self._piece._port_types(self._kind)

    def __repr__(self) -> str:
        return f"<{self._kind}s of {self._piece._label()}: {', '.join(self)}>"


class InPorts(_PortNames[P]):
    """The input ports of a stream or chain, by name: ``s.in_['y']``.

    Statically the item type is ``Any``, unless the ``mimo.dsl.mypy_plugin``
    mypy plugin knows the stream's ports (then names and types are checked).
    """

    __slots__ = ()
    _kind = "input"

    @overload
    def __getitem__(self: InPorts[Only[T]], name: str) -> InRef[T]: ...
    @overload
    def __getitem__(self, name: str) -> InRef[Any]: ...
    def __getitem__(self, name: str) -> InRef[Any]:
        """The input port called ``name``; an unknown name is a WorkflowError with a suggestion."""
        return InRef(self._piece, self._piece._check_port("input", name))


class OutPorts(_PortNames[P]):
    """The output ports of a stream or chain, by name: ``s.out['x']``.

    Statically the item type is ``Any``, unless the ``mimo.dsl.mypy_plugin``
    mypy plugin knows the stream's ports (then names and types are checked).
    """

    __slots__ = ()
    _kind = "output"

    @overload
    def __getitem__(self: OutPorts[Only[T]], name: str) -> OutRef[T]: ...
    @overload
    def __getitem__(self, name: str) -> OutRef[Any]: ...
    def __getitem__(self, name: str) -> OutRef[Any]:
        """The output port called ``name``; an unknown name is a WorkflowError with a suggestion."""
        return OutRef(self._piece, self._piece._check_port("output", name))


# -- things that join -----------------------------------------------------------


class Joinable:
    """Anything ``|`` and ``>>`` join: a decorated stream, or a chain built from them."""

    # A chain's graph and end stages; decorated streams compute theirs (see DslStream).
    _group: _Group
    _first: Node | None
    _last: Node | None

    def _span(self) -> tuple[_Group, Node, Node]:
        """The graph, first stage and last stage this object stands for in a ``|``."""
        if self._first is None or self._last is None:
            raise WorkflowError(
                f"{self._label()} has no first or last stage to pipe from; join its steps by name "
                "(flow.step('name').out['x'] >> ...)"
            )
        return self._group.find(), self._first, self._last

    def _port_node(self, kind: Kind) -> tuple[_Group, Node]:
        g, first, last = self._span()
        return g, (first if kind == "input" else last)

    def _port_types(self, kind: Kind) -> dict[str, Any]:
        _, first, last = self._span()
        node = first if kind == "input" else last
        return node.stream.in_types if kind == "input" else node.stream.out_types

    def _check_port(self, kind: Kind, name: str) -> str:
        g, node = self._port_node(kind)
        return g.graph.port(node, kind, name)

    def _label(self) -> str:
        if self._first is None or self._last is None:
            return "graph"
        if self._first is self._last:
            return repr(self._first.name)
        return f"{self._first.name!r}..{self._last.name!r}"

    @property
    def in_(self) -> InPorts[Any]:
        """Input ports by name (of the first stage, for a chain): ``b.in_['y']``."""
        return InPorts(self)

    @property
    def out(self) -> OutPorts[Any]:
        """Output ports by name (of the last stage, for a chain): ``a.out['x']``."""
        return OutPorts(self)

    def _pipe(self, other: object, capacity: int | None = None) -> Any:
        if not isinstance(other, Joinable):
            return NotImplemented
        if capacity is not None:
            check_count("then(): capacity", capacity, 0, note=ZERO_HANDS_OVER)
        ga, first, a_last = self._span()
        gb, b_first, last = other._span()
        try:
            g = _join(ga, a_last, None, gb, b_first, None, capacity)
        except WorkflowError:
            # A | chain that fails leaves no stream placed, so the corrected line starts afresh;
            # graphs joined by name (>>) are built over many statements and keep their places.
            for group in (ga, gb):
                if not group.find().by_name:
                    release(group)
            raise
        return _result_class(self, other)(g, first, last)

    def _free_output(self, last: Node, g: _Group) -> str | None:
        """The output of ``last`` that a collecting sink joins: its only one, else its only unjoined one."""
        if len(last.outs) <= 1:
            return None
        free = [o for o in last.outs if not any(e.src is last and e.out == o for e in g.graph.edges)]
        if len(free) != 1:
            raise WorkflowError(
                f"stream {last.name!r} has {len(free)} unjoined outputs of {len(last.outs)}, so there is no one "
                f"output to collect: join the others first, or collect one by name (.out[...] >> lib.collect(...))"
            )
        return free[0]

    def _collecting(self) -> tuple[Runnable, list[Any]]:
        """This chain closed by a sink that collects its open output into a new list, and the list."""
        from mimo.lib.sinks import collect  # lib builds on dsl: imported when first used

        items: list[Any] = []
        sink = collect(items)
        if not isinstance(self, Dynamic):
            return self._pipe(sink), items
        ga, first, last = self._span()
        gb, sink_node, _ = sink._span()
        g = _join(ga, last, self._free_output(last, ga), gb, sink_node, None)
        return Flow(g, first, sink_node), items


def _result_class(left: Joinable, right: Joinable) -> type[_Chain]:
    if isinstance(left, Dynamic) or isinstance(right, Dynamic):
        return Flow
    opens_in = isinstance(left, Stage) or isinstance(left, Sink)
    opens_out = isinstance(right, Stage) or isinstance(right, Source)
    if opens_in:
        return _StageChain if opens_out else _SinkChain
    return _SourceChain if opens_out else Closed


class _Chain(Joinable):
    """Shared constructor of chain results."""

    _shape = "Chain"

    def __init__(self, group: _Group, first: Node | None, last: Node | None) -> None:
        self._group = group
        self._first = first
        self._last = last

    @property
    def graph(self) -> Graph:
        """The graph this chain is part of (shared with everything joined to it)."""
        return self._group.find().graph

    def __repr__(self) -> str:
        g = self.graph
        return f"<{self._shape} {self._label()}: {len(g.nodes)} streams, {len(g.edges)} joins>"

    if not TYPE_CHECKING:  # checkers already report .run on an open chain

        def __getattr__(self, name):
            if name in ("run", "run_async"):
                ends = {"Source": "an open output", "Stage": "an open input and output", "Sink": "an open input"}
                hint = " or take its items with .to_list()" if self._shape == "Source" else ""
                raise AttributeError(
                    f"this chain has {ends.get(self._shape, 'open ports')}, so it cannot run: "
                    f"end it with a sink (| lib.collect(xs)){hint}, and start it with a source"
                )
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


class Runnable:
    """A graph ready to run: ``.run()``, ``await .run_async()``, ``.workflow()``."""

    @property
    def graph(self) -> Graph:
        """The graph that runs."""
        raise NotImplementedError

    def workflow(self, name: str = "workflow") -> Workflow:
        """The same graph as a classic :class:`~mimo.Workflow` (shared, not copied)."""
        return Workflow.from_graph(self.graph, name)

    def run(
        self,
        *,
        capacity: int | None = None,
        progress: ProgressSpec = False,
        executor: Executor | None = None,
        dashboard: DashboardSpec = False,
        checkpoint: str | os.PathLike[str] | CheckpointStore | None = None,
        checkpoint_every: float = 5.0,
    ) -> RunReport:
        """Run every stream to completion and return the report (see :meth:`mimo.Workflow.run`)."""
        return self.workflow().run(
            capacity=capacity,
            progress=progress,
            executor=executor,
            dashboard=dashboard,
            checkpoint=checkpoint,
            checkpoint_every=checkpoint_every,
        )

    async def run_async(
        self,
        *,
        capacity: int | None = None,
        progress: ProgressSpec = False,
        executor: Executor | None = None,
        dashboard: DashboardSpec = False,
        checkpoint: str | os.PathLike[str] | CheckpointStore | None = None,
        checkpoint_every: float = 5.0,
    ) -> RunReport:
        """Run in the running event loop and return the report (see :meth:`mimo.Workflow.run_async`)."""
        return await self.workflow().run_async(
            capacity=capacity,
            progress=progress,
            executor=executor,
            dashboard=dashboard,
            checkpoint=checkpoint,
            checkpoint_every=checkpoint_every,
        )

    def to_dot(self) -> str:
        """The graph in Graphviz DOT."""
        return self.graph.to_dot()

    def to_mermaid(self) -> str:
        """The graph as a Mermaid flowchart."""
        return self.graph.to_mermaid()

    def render(self, path: str | os.PathLike[str], *, report: RunReport | None = None) -> Path:
        """Write a picture of the graph (see :meth:`mimo.Workflow.render`)."""
        return self.workflow().render(path, report=report)


class Source(Joinable, Generic[O_co]):
    """A chain with an open output of item type ``O`` and no open input."""

    if TYPE_CHECKING:

        @overload
        def __or__(self, other: Stage[O_co, U]) -> Source[U]: ...
        @overload
        def __or__(self, other: Sink[O_co]) -> Closed: ...
        @overload
        def __or__(self, other: Dynamic) -> Flow: ...
        def __or__(self, other: Joinable) -> Joinable: ...

    else:

        def __or__(self, other):
            return self._pipe(other)

    def then(self, other: Stage[O_co, U], *, capacity: int | None = None) -> Source[U]:
        """``self | other`` as a method: checkers infer generic right-hand stages better here.

        ``capacity`` bounds this join's queue in every run, instead of the run's capacity.
        """
        return self._pipe(other, capacity)  # type: ignore[no-any-return]

    def to_list(self, *, capacity: int | None = None) -> list[O_co]:
        """Run the graph, collecting what this chain's open output gives; the list, in order.

        ``(src | lib.map(f)).to_list()`` is ``(src | lib.map(f) | lib.collect(xs)).run()``
        returning ``xs``; every other stream joined to the graph runs too. An
        exception from the run is raised as by :meth:`Runnable.run`.
        """
        flow, items = self._collecting()
        flow.run(capacity=capacity)
        return items

    async def to_list_async(self, *, capacity: int | None = None) -> list[O_co]:
        """:meth:`to_list` in the running event loop."""
        flow, items = self._collecting()
        await flow.run_async(capacity=capacity)
        return items


class Stage(Joinable, Generic[I_contra, O_co]):
    """A chain with an open input taking ``I`` and an open output giving ``O``."""

    if TYPE_CHECKING:

        @overload
        def __or__(self, other: Stage[O_co, U]) -> Stage[I_contra, U]: ...
        @overload
        def __or__(self, other: Sink[O_co]) -> Sink[I_contra]: ...
        @overload
        def __or__(self, other: Dynamic) -> Flow: ...
        def __or__(self, other: Joinable) -> Joinable: ...

    else:

        def __or__(self, other):
            return self._pipe(other)

    def then(self, other: Stage[O_co, U], *, capacity: int | None = None) -> Stage[I_contra, U]:
        """``self | other`` as a method: checkers infer generic right-hand stages better here.

        ``capacity`` bounds this join's queue in every run, instead of the run's capacity.
        """
        return self._pipe(other, capacity)  # type: ignore[no-any-return]


class Sink(Joinable, Generic[I_contra]):
    """A chain with an open input taking ``I`` and no open output; pipe a Source into it."""

    if not TYPE_CHECKING:

        def __or__(self, other):
            # Statically a Sink has no ``|``; at run time the port check explains why.
            return self._pipe(other)


class Dynamic(Joinable):
    """A stream or chain whose item types only the run-time checks know (dict form, ``>>``)."""

    def __or__(self, other: Joinable) -> Flow:
        """Join this object's only output to ``other``'s only input."""
        return self._pipe(other)  # type: ignore[no-any-return]

    def to_list(self, *, capacity: int | None = None) -> list[Any]:
        """Run the graph, collecting what the last stream's open output gives (its only one, or only unjoined one)."""
        flow, items = self._collecting()
        flow.run(capacity=capacity)
        return items

    async def to_list_async(self, *, capacity: int | None = None) -> list[Any]:
        """:meth:`to_list` in the running event loop."""
        flow, items = self._collecting()
        await flow.run_async(capacity=capacity)
        return items


class Closed(_Chain, Runnable):
    """A complete ``Source | ... | Sink`` chain: nothing open, ready to run."""

    _shape = "Closed"

    if not TYPE_CHECKING:

        def __or__(self, other):
            return self._pipe(other)


class Flow(_Chain, Dynamic, Runnable):
    """A graph built with ``>>`` or from untyped streams: runnable, and extendable with ``|`` and ``>>``.

    Its ``in_`` and ``out`` are the ports of its first and last stage (for
    ``a.out['x'] >> b.in_['y']``, those of ``a`` and ``b``).
    """

    _shape = "Flow"

    @classmethod
    def from_workflow(cls, workflow: Workflow) -> Flow:
        """The workflow's graph as a Flow (shared: later joins show in the workflow too)."""
        return cls(_Group(workflow.graph, pinned=True), None, None)

    def step(self, name: str) -> Flow:
        """The stream called ``name`` in this graph, as a Flow whose ports are its ports."""
        g = self._group.find()
        node = g.graph.node(name)
        return Flow(g, node, node)


class _SourceChain(_Chain, Source[Any]):
    """A ``|`` chain open at its end."""

    _shape = "Source"


class _StageChain(_Chain, Stage[Any, Any]):
    """A ``|`` chain open at both ends."""

    _shape = "Stage"


class _SinkChain(_Chain, Sink[Any]):
    """A ``|`` chain open at its start."""

    _shape = "Sink"
