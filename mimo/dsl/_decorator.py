"""``@stream``: turn an async function into a :class:`~mimo.Stream` that ``|`` and ``>>`` join."""

from __future__ import annotations

import copy
import difflib
import inspect
import sys
import typing
import weakref
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Concatenate, Generic, Literal, Self, TypeVar, overload

from typing_extensions import ParamSpec
from typing_extensions import TypeVar as DefaultTypeVar

from mimo._errors import WorkflowError
from mimo._graph import Graph, Node, tick
from mimo._ports import InputPort, Ins, OutputPort, Outs
from mimo._stream import KeyFn, PortSpec, Stream, check_key, check_name, check_port_names, fn_takes_state
from mimo._supervision import STOP, OnError, check_on_error
from mimo.dsl._build import Dynamic, InPorts, Joinable, Kind, Only, OutPorts, Sink, Source, Stage, _Group

A = TypeVar("A")
B = TypeVar("B")
I_contra = TypeVar("I_contra", contravariant=True)
O_co = TypeVar("O_co", covariant=True)
# What the mypy plugin knows of a stream's input and output ports (Any without it).
IP = DefaultTypeVar("IP", default=Any)
OP = DefaultTypeVar("OP", default=Any)
# A stream's settings: the keyword-only parameters of its function, so that
# scale(factor="3") and scale(facter=3) are type errors. Any settings by default.
S = ParamSpec("S", default=...)
Q = ParamSpec("Q")

#: The type of an input port parameter in an annotated stream body: ``x: In[int]``.
In = InputPort
#: The type of an output port parameter in an annotated stream body: ``y: Out[str]``.
Out = OutputPort

_Form = Literal["annotated", "ports"]


class DslStream(Stream, Joinable, Generic[IP, OP, S]):
    """A stream made by ``@stream``: a :class:`~mimo.Stream` that ``|`` and ``>>`` can join.

    Calling it with keywords, ``scale(factor=3)``, returns a copy with those
    settings; calling it with none returns a plain copy (a distinct stream, so
    a distinct node when joined by name).
    """

    def __init__(
        self,
        fn: Callable[..., Awaitable[None]],
        *,
        form: _Form,
        ins: Mapping[str, Any],
        outs: Mapping[str, Any],
        params: list[tuple[str, Kind]],
        settings: dict[str, Any],
        required: tuple[str, ...] = (),
        takes_state: bool,
        name: str | None,
        state: Any,
        workers: int = 1,
    ) -> None:
        super().__init__(ins=ins, outs=outs, fn=fn, name=name, state=state, workers=workers)
        self._form = form
        self._params = params
        self._takes_state = takes_state
        #: The values of the keyword-only parameters, passed to every call of the body.
        self.settings: dict[str, Any] = dict(settings)
        # Settings without a default: every copy that runs must have been given them.
        self._required = required
        self._fresh_state = state is None
        # A name given to @stream names the definition, as a stock stream's kind
        # does: copies share it and are suffixed in a graph (every_nth, every_nth_2).
        self.named = False
        # Where this stream object stands in the graph being built, and the tick it was placed at.
        self._home: tuple[_Group, Node, int] | None = None
        # Stages a | chain made of this stream, held weakly: a chain nobody holds is gone.
        self._stages: list[weakref.ref[Node]] = []

    async def run(self, ins: Ins, outs: Outs) -> None:
        """Call the decorated function with this stream's ports and settings."""
        self.check_settings()
        fn: Callable[..., Awaitable[None]] = self.fn  # type: ignore[assignment]
        if self._form == "annotated":
            args = [ins[p] if kind == "input" else outs[p] for p, kind in self._params]
            await fn(*args, **self.settings)
        elif self._takes_state:
            await fn(ins, outs, self.state, **self.settings)
        else:
            await fn(ins, outs, **self.settings)

    def _copy(self) -> Self:
        # A plain copy, as s() gives: no place in a graph, a fresh state if it had one.
        # Typed with its settings, self() might require some; a plain copy never does.
        return typing.cast(Self, typing.cast(Any, self)())

    def __getstate__(self) -> dict[str, Any]:
        # Where the stream stands in a graph being built is this process's business:
        # a copy or a pickle (a process pool, a Ray actor) starts with no place.
        return {**self.__dict__, "_home": None, "_stages": []}

    def __call__(self, *args: S.args, **settings: S.kwargs) -> Self:
        """A copy of this stream with the given settings changed; ``s()`` is a plain copy."""
        if args:
            raise TypeError(
                f"stream {self.name!r} takes its settings by keyword "
                f"({', '.join(self.settings) or 'it has none'}), not positionally"
            )
        names = [*self.settings, *(r for r in self._required if r not in self.settings)]
        for key in settings:
            if key not in names:
                close = difflib.get_close_matches(key, names, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                known = ", ".join(names) or "none"
                raise TypeError(f"stream {self.name!r} has no setting {key!r}{hint} (its settings: {known})")
        new = copy.copy(self)
        new.settings = {**self.settings, **settings}
        new.check_settings()
        new.in_types = dict(self.in_types)
        new.out_types = dict(self.out_types)
        new._home = None
        new._stages = []
        if self._fresh_state:
            new.state = {}
        return new

    def check_settings(self) -> None:
        """Raise ``TypeError`` naming the required settings (keyword-only, no default) not given yet.

        Called when a copy is made (``take()``), when the stream joins a graph
        (``|``, ``>>``, ``add_stream``) and when it would run.
        """
        missing = [r for r in self._required if r not in self.settings]
        if missing:
            given = ", ".join(f"{m}=..." for m in missing)
            s = "s" if len(missing) > 1 else ""
            raise TypeError(
                f"stream {self.name!r} needs the setting{s} {', '.join(map(repr, missing))}, which "
                f"{'have' if s else 'has'} no default: use {self.name}({given})"
            )

    if TYPE_CHECKING:

        @property
        def in_(self) -> InPorts[IP]: ...
        @property
        def out(self) -> OutPorts[OP]: ...

    # -- how a stream takes part in joins (see mimo.dsl._build) ------------------

    def _live_home(self) -> tuple[_Group, Node] | None:
        if self._home is None:
            return None
        group, node, placed = self._home
        root = group.find()
        if root.graph.last_run > placed:
            # That graph has run since: its build is over, and this stream is free for the next.
            self._home = None
            return None
        return root, node

    def _place(self) -> tuple[_Group, Node]:
        home = self._live_home()
        if home is None:
            self._refuse_if_a_stage()
            g = _Group()
            node = g.graph.add(self)
            self._home = (g, node, tick())
            return g, node
        return home

    def _live_stages(self) -> list[Node]:
        """The stages | chains made of this stream that still exist and have not run (the others are forgotten)."""
        live = [n for n in (ref() for ref in self._stages) if n is not None and n.last_run == 0]
        if len(live) != len(self._stages):
            self._stages = [weakref.ref(n) for n in live]
        return live

    def _refuse_if_a_stage(self) -> None:
        """A stream a | chain being built holds as a stage cannot also start a node by name: say which to use."""
        live = self._live_stages()
        if live:
            names = ", ".join(repr(n.name) for n in live)
            raise WorkflowError(
                f"stream {self.name!r} is already a stage ({names}) of a | chain that has not run, so "
                f"{self.name}.in_/.out would be a second, unjoined node: join that chain's ports "
                f"(chain.out[...] >> ...) or its step (flow.step({live[-1].name!r})), or use a copy "
                f"({self.name}()) for a node of its own"
            )

    def _release_from(self, root: _Group) -> None:
        if self._home is not None and self._home[0].find() is root:
            self._home = None
        mine = root.graph.nodes
        self._stages = [ref for ref in self._stages if not any(ref() is n for n in mine)]

    def _span(self) -> tuple[_Group, Node, Node]:
        home = self._live_home()
        if home is None and not self.in_types:
            # A source stands for one node per build in | as in >>: two chains from it are a fan-out.
            home = self._place()
        if home is not None:
            return home[0], home[1], home[1]
        g = _Group()
        node = g.graph.add(self)
        self._live_stages()  # keeps the list to the stages that matter, however often the stream is used
        self._stages.append(weakref.ref(node))
        return g, node, node

    def _port_node(self, kind: Kind) -> tuple[_Group, Node]:
        return self._place()

    def _port_types(self, kind: Kind) -> dict[str, Any]:
        return self.in_types if kind == "input" else self.out_types

    def _check_port(self, kind: Kind, name: str) -> str:
        return _PORT_CHECK.port(Node(self.name, self), kind, name)

    def _label(self) -> str:
        return repr(self.name)

    def __repr__(self) -> str:
        return Stream.__repr__(self)


class SourceStream(DslStream[Any, Any, S], Source[O_co], Generic[O_co, S]):
    """A decorated stream with one output, of item type ``O``, and no input."""

    if TYPE_CHECKING:

        @property
        def out(self) -> OutPorts[Only[O_co]]: ...


class StageStream(DslStream[Any, Any, S], Stage[I_contra, O_co], Generic[I_contra, O_co, S]):
    """A decorated stream with one input taking ``I`` and one output giving ``O``."""

    if TYPE_CHECKING:

        @property
        def in_(self) -> InPorts[Only[I_contra]]: ...
        @property
        def out(self) -> OutPorts[Only[O_co]]: ...


class SinkStream(DslStream[Any, Any, S], Sink[I_contra], Generic[I_contra, S]):
    """A decorated stream with one input, taking ``I``, and no output."""

    if TYPE_CHECKING:

        @property
        def in_(self) -> InPorts[Only[I_contra]]: ...


class PortStream(DslStream[IP, OP, S], Dynamic):
    """A decorated stream joined by port name; its item types are checked when joined.

    Streams declared with ``@stream(ins=..., outs=...)``, and annotated streams
    with several inputs or outputs, are of this kind. Statically their ports
    are untyped unless the ``mimo.dsl.mypy_plugin`` mypy plugin is enabled.
    """


# Graph.port needs no graph state: one instance serves to resolve names.
_PORT_CHECK = Graph()


# -- the decorator -----------------------------------------------------------------


class _PortsDecorator(Generic[IP, OP]):
    """What ``stream(ins=..., outs=...)`` returns: applied to the body, gives a PortStream."""

    def __init__(
        self,
        ins: PortSpec | None,
        outs: PortSpec | None,
        name: str | None,
        state: Any,
        workers: int,
        on_error: OnError = STOP,
        key: KeyFn | None = None,
    ) -> None:
        self.key = key
        self.ins = ins
        self.outs = outs
        self.name = name
        self.state = state
        self.workers = workers
        self.on_error = on_error

    def __call__(self, fn: Callable[..., Awaitable[None]]) -> PortStream[IP, OP]:
        made = _make_ports_stream(fn, self.ins, self.outs, self.name, self.state, self.workers)
        made.on_error = check_on_error(made.name, self.on_error)
        made.key = check_key(made.name, self.key)
        return made


# Bodies with several ports of a kind are PortStreams: these come before the one-port
# forms, whose settings (Q) would otherwise take the extra ports for settings.
_SeveralIns = Callable[Concatenate[InputPort[Any], InputPort[Any], ...], Awaitable[None]]
_SeveralOuts = Callable[Concatenate[OutputPort[Any], OutputPort[Any], ...], Awaitable[None]]
_ThreeIn = Callable[Concatenate[InputPort[Any], OutputPort[Any], InputPort[Any], ...], Awaitable[None]]
_ThreeOut = Callable[Concatenate[InputPort[Any], OutputPort[Any], OutputPort[Any], ...], Awaitable[None]]
_ThreeInRev = Callable[Concatenate[OutputPort[Any], InputPort[Any], InputPort[Any], ...], Awaitable[None]]
_ThreeOutRev = Callable[Concatenate[OutputPort[Any], InputPort[Any], OutputPort[Any], ...], Awaitable[None]]


class _AnnotatedDecorator:
    """What ``stream(name=...)`` returns: a decorator for the annotation form."""

    def __init__(self, name: str | None, workers: int, on_error: OnError = STOP, key: KeyFn | None = None) -> None:
        self.key = key
        self.name = name
        self.workers = workers
        self.on_error = on_error

    @overload
    def __call__(self, fn: _SeveralIns | _SeveralOuts, /) -> PortStream: ...
    @overload
    def __call__(self, fn: _ThreeIn | _ThreeOut | _ThreeInRev | _ThreeOutRev, /) -> PortStream: ...
    @overload
    def __call__(
        self, fn: Callable[Concatenate[InputPort[A], OutputPort[B], Q], Awaitable[None]], /
    ) -> StageStream[A, B, Q]: ...
    @overload
    def __call__(  # pyright: ignore[reportOverlappingOverload]
        self, fn: Callable[Concatenate[OutputPort[B], InputPort[A], Q], Awaitable[None]], /
    ) -> StageStream[A, B, Q]: ...
    @overload
    def __call__(self, fn: Callable[Concatenate[OutputPort[B], Q], Awaitable[None]], /) -> SourceStream[B, Q]: ...  # pyright: ignore[reportOverlappingOverload]
    @overload
    def __call__(self, fn: Callable[Concatenate[InputPort[A], Q], Awaitable[None]], /) -> SinkStream[A, Q]: ...
    @overload
    def __call__(self, fn: Callable[..., Awaitable[None]], /) -> PortStream: ...  # pyright: ignore[reportOverlappingOverload]
    def __call__(self, fn: Callable[..., Awaitable[None]], /) -> DslStream:
        made = _make_annotated_stream(fn, self.name, self.workers)
        made.on_error = check_on_error(made.name, self.on_error)
        made.key = check_key(made.name, self.key)
        return made


@overload
def stream(fn: _SeveralIns | _SeveralOuts, /) -> PortStream: ...
@overload
def stream(fn: _ThreeIn | _ThreeOut | _ThreeInRev | _ThreeOutRev, /) -> PortStream: ...
@overload
def stream(fn: Callable[Concatenate[InputPort[A], OutputPort[B], Q], Awaitable[None]], /) -> StageStream[A, B, Q]: ...
@overload
def stream(fn: Callable[Concatenate[OutputPort[B], InputPort[A], Q], Awaitable[None]], /) -> StageStream[A, B, Q]: ...  # pyright: ignore[reportOverlappingOverload]
@overload
def stream(fn: Callable[Concatenate[OutputPort[B], Q], Awaitable[None]], /) -> SourceStream[B, Q]: ...  # pyright: ignore[reportOverlappingOverload]
@overload
def stream(fn: Callable[Concatenate[InputPort[A], Q], Awaitable[None]], /) -> SinkStream[A, Q]: ...
@overload
def stream(fn: Callable[..., Awaitable[None]], /) -> PortStream: ...  # pyright: ignore[reportOverlappingOverload]
@overload
def stream(
    *,
    ins: PortSpec,
    outs: PortSpec | None = None,
    name: str | None = None,
    state: Any = None,
    workers: int = 1,
    on_error: OnError = STOP,
    key: KeyFn | None = None,
) -> _PortsDecorator: ...
@overload
def stream(
    *,
    outs: PortSpec,
    name: str | None = None,
    state: Any = None,
    workers: int = 1,
    on_error: OnError = STOP,
    key: KeyFn | None = None,
) -> _PortsDecorator: ...
@overload
def stream(
    *, name: str | None = None, workers: int = 1, on_error: OnError = STOP, key: KeyFn | None = None
) -> _AnnotatedDecorator: ...
def stream(
    fn: Callable[..., Awaitable[None]] | None = None,
    /,
    *,
    ins: PortSpec | None = None,
    outs: PortSpec | None = None,
    name: str | None = None,
    state: Any = None,
    workers: int = 1,
    on_error: OnError = STOP,
    key: KeyFn | None = None,
) -> DslStream | _PortsDecorator | _AnnotatedDecorator:
    """Make a :class:`~mimo.Stream` from an async function.

    Two forms:

    * ``@stream`` on ``async def f(x: In[int], y: Out[str], *, factor: int = 2)``:
      the ports are the parameters annotated ``In[T]`` / ``Out[T]`` (their
      names are the port names, ``T`` the item type); keyword-only parameters
      are settings, and ``f(factor=3)`` is a copy with another setting. One
      input and one output give a typed ``StageStream[int, str]`` that ``|``
      checks statically; one output a ``SourceStream``, one input a
      ``SinkStream``; other port sets a :class:`PortStream`.
    * ``@stream(ins=..., outs=...)`` on ``async def f(ins, outs, state)`` or
      ``async def f(ins, outs)``: ports by name, as a list of names or a dict
      of name to item type; gives a :class:`PortStream`.

    ``name`` overrides the function's name; ``state`` is the dict form's third
    argument (a fresh dict by default); ``workers``, ``key`` (keyed workers)
    and ``on_error`` as for :class:`~mimo.Stream`.
    Mistakes in the declaration are a ``TypeError`` here, not at run time.
    """
    if name is not None:
        check_name(name)
    # Checked here, where the decorator is written, naming what it decorates once known.
    check_on_error(name or "@stream", on_error)
    check_key(name or "@stream", key)
    if fn is not None:
        extra = ins is not None or outs is not None or name is not None or state is not None or workers != 1
        if extra or on_error != STOP or key is not None:
            raise TypeError("use either @stream or @stream(ins=..., outs=..., name=...), not both")
        return _make_annotated_stream(fn, None, 1)
    if ins is not None or outs is not None:
        return _PortsDecorator(ins, outs, name, state, workers, on_error, key)
    if state is not None:
        raise TypeError("state= needs the dict form, @stream(ins=..., outs=..., state=...)")
    return _AnnotatedDecorator(name, workers, on_error, key)


# -- building streams from functions ------------------------------------------------


def _check_fn(fn: object, owner: str) -> None:
    if isinstance(fn, Stream):
        raise TypeError(f"stream {owner!r} is already a stream; apply @stream to the async function itself")
    if inspect.isasyncgenfunction(fn):
        raise TypeError(
            f"stream {owner!r}: {owner} is an async generator (it uses 'yield'); "
            "push items to an output port instead (await out.push(item))"
        )
    if not callable(fn) or not inspect.iscoroutinefunction(fn):
        raise TypeError(f"stream {owner!r}: @stream needs an 'async def' function, got {fn!r}")


def _settings(params: list[inspect.Parameter]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The settings' defaults, and the names of the required ones (no default: given at each copy)."""
    out = {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}
    return out, tuple(p.name for p in params if p.default is inspect.Parameter.empty)


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except NameError:
        # Annotations naming locals of the defining function (with postponed
        # evaluation): look them up in the frames of the caller chain.
        pass
    hints: dict[str, Any] = {}
    frame = sys._getframe(1)
    local_ns: dict[str, Any] = {}
    while frame is not None:
        for k, v in frame.f_locals.items():
            local_ns.setdefault(k, v)
        frame = frame.f_back  # type: ignore[assignment]
    glob = getattr(fn, "__globals__", {})
    for key, ann in inspect.get_annotations(fn).items():
        if isinstance(ann, str):
            try:
                ann = eval(ann, glob, local_ns)
            except Exception:
                ann = object
        hints[key] = ann
    return hints


def _port_kind(ann: Any) -> tuple[Kind, Any] | None:
    origin = typing.get_origin(ann) or ann
    if origin is InputPort or origin is OutputPort:
        args = typing.get_args(ann)
        item = args[0] if args else Any
        return ("input" if origin is InputPort else "output"), item
    return None


def _make_annotated_stream(fn: Callable[..., Awaitable[None]], name: str | None, workers: int) -> DslStream:
    owner: str = name or str(getattr(fn, "__name__", None) or repr(fn))
    _check_fn(fn, owner)
    hints = _hints(fn)
    ins: dict[str, Any] = {}
    outs: dict[str, Any] = {}
    params: list[tuple[str, Kind]] = []
    setting_params: list[inspect.Parameter] = []
    for p in inspect.signature(fn).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise TypeError(f"stream {owner!r}: *{p.name} / **{p.name} is not allowed; declare each port and setting")
        if p.kind == p.KEYWORD_ONLY:
            setting_params.append(p)
            continue
        port = _port_kind(hints.get(p.name))
        if port is None:
            hint = f" (annotated {_ann_name(hints[p.name])})" if p.name in hints else " (not annotated)"
            raise TypeError(
                f"stream {owner!r}: parameter {p.name!r}{hint} is neither a port nor a setting: "
                f"annotate it In[T] or Out[T], or put it after '*' to make it a keyword-only setting"
            )
        if p.default is not p.empty:
            raise TypeError(f"stream {owner!r}: port parameter {p.name!r} may not have a default value")
        kind, item = port
        (ins if kind == "input" else outs)[p.name] = item
        params.append((p.name, kind))
    check_port_names(owner, "input", ins)
    check_port_names(owner, "output", outs)
    settings, required = _settings(setting_params)
    kinds = [k for _, k in params]
    cls: type[DslStream]
    if kinds == ["output"]:
        cls = SourceStream
    elif kinds == ["input"]:
        cls = SinkStream
    elif sorted(kinds) == ["input", "output"]:
        cls = StageStream
    else:
        cls = PortStream
    return cls(
        fn,
        form="annotated",
        ins=ins,
        outs=outs,
        params=params,
        settings=settings,
        required=required,
        takes_state=False,
        name=name,
        state=None,
        workers=workers,
    )


def _make_ports_stream(
    fn: Callable[..., Awaitable[None]],
    ins: PortSpec | None,
    outs: PortSpec | None,
    name: str | None,
    state: Any,
    workers: int,
) -> PortStream[Any, Any]:
    owner: str = name or str(getattr(fn, "__name__", None) or repr(fn))
    _check_fn(fn, owner)
    in_types = check_port_names(owner, "input", ins if ins is not None else ())
    out_types = check_port_names(owner, "output", outs if outs is not None else ())
    both = [n for n in in_types if n in out_types]
    if both:
        raise TypeError(
            f"stream {owner!r}: port {both[0]!r} is declared both as an input and as an output; "
            "give them different names"
        )
    positional: list[inspect.Parameter] = []
    setting_params: list[inspect.Parameter] = []
    hints = _hints(fn)
    for p in inspect.signature(fn).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise TypeError(f"stream {owner!r}: *{p.name} / **{p.name} is not allowed")
        if p.kind == p.KEYWORD_ONLY:
            setting_params.append(p)
        else:
            positional.append(p)
            if _port_kind(hints.get(p.name)) is not None:
                raise TypeError(
                    f"stream {owner!r}: parameter {p.name!r} is annotated as a port, but the ports are "
                    "already declared in stream(ins=..., outs=...); use one form: either "
                    "'async def f(ins, outs, state)' with ins=/outs=, or In[T]/Out[T] parameters with plain @stream"
                )
    settings, required = _settings(setting_params)
    if len(positional) > 3:
        names = ", ".join(p.name for p in positional)
        raise TypeError(
            f"stream {owner!r}: a stream declared with ins=/outs= is called as "
            f"{owner}(ins, outs, state) or {owner}(ins, outs), but its parameters are ({names}); "
            "make any other parameter keyword-only (after '*') to use it as a setting"
        )
    # The same rule as Stream(fn=...): (ins, outs) or (ins, outs, state).
    takes_state = fn_takes_state(owner, fn, settings=True)
    return PortStream(
        fn,
        form="ports",
        ins=in_types,
        outs=out_types,
        params=[],
        settings=settings,
        required=required,
        takes_state=takes_state,
        name=name,
        state=state,
        workers=workers,
    )


def _ann_name(ann: Any) -> str:
    if isinstance(ann, type):
        return ann.__qualname__
    return repr(ann).replace("typing.", "")
