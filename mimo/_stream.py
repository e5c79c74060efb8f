"""Stream: a unit of work with named input and output ports."""

from __future__ import annotations

import copy
import inspect
import keyword
import unicodedata
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, ClassVar, Self

from mimo._checks import check_count
from mimo._errors import ConsumersGone
from mimo._ports import Ins, Outs
from mimo._supervision import STOP, OnError, check_on_error

#: ``fn(ins, outs, state)`` or ``fn(ins, outs)``, as given to ``Stream(fn=...)``.
StreamFn = Callable[[Ins, Outs, Any], Awaitable[None]] | Callable[[Ins, Outs], Awaitable[None]]

PortSpec = Iterable[str] | Mapping[str, Any]


def _is_async(fn: object) -> bool:
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004 - async callable objects
    return not inspect.isfunction(fn) and inspect.iscoroutinefunction(call)


def fn_takes_state(owner: str, fn: Callable[..., Any], *, settings: bool = False) -> bool:
    """Check ``fn`` can be called as ``fn(ins, outs, state)`` or ``fn(ins, outs)``; say which.

    Both forms are accepted by ``Stream(fn=...)`` and ``@stream(ins=..., outs=...)``
    alike. Keyword-only parameters need defaults, unless ``settings`` (the DSL,
    which passes them as settings, required ones included); anything else is a
    ``TypeError`` naming the stream.
    """
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # some callables have no readable signature: assume the full form
        return True
    params = list(sig.parameters.values())
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    star = any(p.kind == p.VAR_POSITIONAL for p in params)
    bare = [] if settings else [p.name for p in params if p.kind == p.KEYWORD_ONLY and p.default is p.empty]
    if bare or len(required) > 3 or (len(positional) < 2 and not star):
        names = ", ".join(str(p) for p in params)
        raise TypeError(
            f"stream {owner!r}: its function is called as {owner}(ins, outs, state) or {owner}(ins, outs), "
            f"but its parameters are ({names})" + ("; give keyword-only parameters a default" if bare else "")
        )
    return star or len(positional) >= 3


def _check_run_signature(owner: str, run: Callable[..., Any]) -> None:
    try:
        sig = inspect.signature(run)
    except (TypeError, ValueError):
        return
    try:
        sig.bind(None, None, None)
    except TypeError:
        raise TypeError(
            f"stream {owner!r}: run must be 'async def run(self, ins, outs)', but its parameters are "
            f"({', '.join(str(p) for p in sig.parameters.values())})"
        ) from None


def check_name(name: object) -> str:
    """A stream name: a non-empty str (it labels reports, errors and pictures)."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"stream name must be a non-empty str, not {name!r}")
    return name


# Values that are certainly not item types (a string may be a forward reference).
_NOT_TYPES = (bool, int, float, complex, bytes, list, dict, set, tuple)


def check_port_names(owner: str, kind: str, spec: PortSpec) -> dict[str, Any]:
    """Validate port names; return them mapped to their item types (``Any`` if untyped: such a port joins any other)."""
    if isinstance(spec, str):
        raise TypeError(f"stream {owner!r}: {kind} ports must be a list of names, not the string {spec!r}")
    if isinstance(spec, Mapping):
        items = list(spec.items())
    else:
        try:
            items = [(name, Any) for name in spec]
        except TypeError:
            raise TypeError(
                f"stream {owner!r}: {kind} ports must be a list of names or a dict of name to item type, not {spec!r}"
            ) from None
    ports: dict[str, Any] = {}
    for name, typ in items:
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            raise TypeError(
                f"stream {owner!r}: {kind} port name {name!r} is not a valid Python identifier "
                "(ports are reached as attributes, ins.NAME)"
            )
        if unicodedata.normalize("NFKC", name) != name:
            # Python reads the attribute ins.NAME in NFKC form, so such a port could never be reached.
            raise TypeError(
                f"stream {owner!r}: {kind} port name {name!r} changes under Unicode NFKC normalisation, "
                f"as Python applies to identifiers (ins.{name} reads ins.{unicodedata.normalize('NFKC', name)}); "
                f"write {unicodedata.normalize('NFKC', name)!r}"
            )
        if name.startswith("_"):
            raise TypeError(f"stream {owner!r}: {kind} port name {name!r} may not start with '_' (reserved)")
        if name in ports:
            raise TypeError(f"stream {owner!r}: {kind} port {name!r} is declared twice")
        if isinstance(typ, _NOT_TYPES):
            raise TypeError(
                f"stream {owner!r}: the item type of {kind} port {name!r} must be a type (int, list[str], Any), "
                f"not the value {typ!r}"
            )
        ports[name] = typ
    return ports


class _Unset:
    """An option :meth:`Stream.with_options` was not given (None is a value for some)."""


_UNSET = _Unset()


class Stream:
    """A unit of work with named input ports (``IN``) and output ports (``OUT``).

    Define one by subclassing and writing ``async def run(self, ins, outs)``,
    or by passing ``fn``, an ``async def fn(ins, outs, state)``. ``ins`` and
    ``outs`` override the class's ``IN`` and ``OUT``; either may be a list of
    names or a mapping of name to item type. ``name`` defaults to ``fn``'s name
    or the class name. ``state`` is handed to ``fn`` as its third argument and
    kept as ``stream.state`` (a fresh dict by default).

    With neither ``fn`` nor its own ``run``, a stream forwards input *i* to
    output *i*; with no inputs it produces nothing, with no outputs it drains.

    ``workers=N`` runs N copies of the stream at once. They share its input
    queues (each item goes to one copy) and its outputs (which close when the
    last copy finishes), and they share ``state``. Order across copies is not
    kept.

    ``key=fn`` (with ``workers=N``) makes them *keyed workers*: each copy gets
    input queues of its own, and every item (of every input port) goes to copy
    ``stable_hash(fn(item)) % N``, so items with the same key reach the same
    copy, in order, and a copy may keep per-key state. A key is what
    :func:`mimo.lib.stable_hash` takes (a str, int, tuple of these, ...);
    a key function that raises fails the run. With one copy, ``key`` has no
    effect. On an executor (Ray) the router runs as a stream of its own;
    ``checkpoint=`` refuses keyed workers for now.

    ``on_error`` says what an exception from the stream does:
    :class:`~mimo.Stop` (the default) fails the run; :class:`~mimo.Restart`
    starts the stream again, its ``state`` and input queues kept (see
    docs/recovery.md). :meth:`with_options` sets it on a copy of any stream,
    stock ones included.

    A ``Stream`` is a definition: it can be added to many workflows and runs
    afresh, with fresh queues, each time a workflow runs.
    """

    IN: ClassVar[PortSpec] = ()
    OUT: ClassVar[PortSpec] = ()

    def __init__(
        self,
        ins: PortSpec | None = None,
        outs: PortSpec | None = None,
        fn: StreamFn | None = None,
        name: str | None = None,
        state: Any = None,
        *,
        workers: int = 1,
        key: KeyFn | None = None,
        on_error: OnError = STOP,
    ) -> None:
        own_run = type(self).run is not Stream.run
        if name is not None:
            check_name(name)
        default = getattr(fn, "__name__", None)
        self.name: str = name or (default if isinstance(default, str) and default else type(self).__name__)
        #: True if the name was given explicitly (a clash is then an error).
        self.named: bool = name is not None
        if fn is not None:
            if not callable(fn) or not _is_async(fn):
                raise TypeError(
                    f"stream {self.name!r}: fn must be an async function "
                    f"(async def {self.name}(ins, outs, state)), got {fn!r}"
                )
            if inspect.isasyncgenfunction(fn):
                raise TypeError(f"stream {self.name!r}: fn is an async generator; push items with outs.NAME.push")
            # A subclass with its own run calls fn itself, however it likes.
            self._fn_takes_state = own_run or fn_takes_state(self.name, fn)
        elif own_run and not inspect.iscoroutinefunction(type(self).run):
            raise TypeError(f"stream {self.name!r}: {type(self).__name__}.run must be defined with 'async def'")
        elif own_run:
            _check_run_signature(self.name, type(self).run)
        self.fn: StreamFn | None = fn
        self.in_types: dict[str, Any] = check_port_names(self.name, "input", type(self).IN if ins is None else ins)
        self.out_types: dict[str, Any] = check_port_names(self.name, "output", type(self).OUT if outs is None else outs)
        if fn is None and not own_run and self.in_types and self.out_types:
            if len(self.in_types) != len(self.out_types):
                raise TypeError(
                    f"stream {self.name!r} has no fn and no run of its own, so it forwards input i to "
                    f"output i, but it has {len(self.in_types)} inputs and {len(self.out_types)} outputs"
                )
        self.state: Any = {} if state is None else state
        self.workers: int = check_workers(self.name, workers)
        #: Routes items to copies by key (keyed workers), or None: copies share the input queues.
        self.key: KeyFn | None = check_key(self.name, key)
        #: What an exception from the stream does: ``Stop()`` or ``Restart(...)``.
        self.on_error: OnError = check_on_error(self.name, on_error)

    def with_options(
        self,
        *,
        on_error: OnError | _Unset = _UNSET,
        workers: int | _Unset = _UNSET,
        key: KeyFn | _Unset = _UNSET,
    ) -> Self:
        """A copy of this stream with options set: ``lib.map(f).with_options(on_error=mimo.Restart())``.

        ``workers`` and ``key`` as for :class:`Stream` (``workers=4,
        key=lambda o: o.user`` gives keyed workers); options not given are
        kept. The copy is a distinct stream (a node of its own when joined),
        with the same ports, function and settings; it shares ``state`` unless
        the stream was given none (a DSL stream's fresh dict).
        """
        new = self._copy()
        if not isinstance(on_error, _Unset):
            new.on_error = check_on_error(new.name, on_error)
        if not isinstance(workers, _Unset):
            new.workers = check_workers(new.name, workers)
        if not isinstance(key, _Unset):
            new.key = check_key(new.name, key)
        return new

    def _copy(self) -> Self:
        """A distinct copy of this stream's definition (subclasses reset what is bound to one graph)."""
        return copy.copy(self)

    @property
    def ins(self) -> tuple[str, ...]:
        """The input port names, in declaration order."""
        return tuple(self.in_types)

    @property
    def outs(self) -> tuple[str, ...]:
        """The output port names, in declaration order."""
        return tuple(self.out_types)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} ins={list(self.in_types)} outs={list(self.out_types)}>"

    async def run(self, ins: Ins, outs: Outs) -> None:
        """The stream's work. Override it, or pass ``fn``; the default forwards."""
        if self.fn is not None:
            fn: Callable[..., Awaitable[None]] = self.fn
            await (fn(ins, outs, self.state) if self._fn_takes_state else fn(ins, outs))
            return
        await forward(ins, outs)


#: A keyed workers' key function: an item to its key (see :func:`mimo.lib.stable_hash`).
KeyFn = Callable[[Any], object]


def check_workers(owner: str, workers: object) -> int:
    """``workers`` as a count of copies, or a ``ValueError`` naming the stream."""
    return check_count(f"stream {owner!r}: workers", workers)


def check_key(owner: str, key: object) -> KeyFn | None:
    """``key`` as a key function (or None), or a ``TypeError`` naming the stream."""
    if key is not None and (not callable(key) or _is_async(key)):
        raise TypeError(f"stream {owner!r}: key must be a plain function of an item (lambda o: o.user), not {key!r}")
    return key


async def forward(ins: Ins, outs: Outs) -> None:
    """Copy input *i* to output *i*; drain inputs if there are no outputs."""
    inputs = list(ins)
    if not inputs:
        return
    outputs = list(outs)
    if not outputs:

        async def drain(port: Any) -> None:
            async for _ in port:
                pass

        jobs = [drain(p) for p in inputs]
    else:

        async def copy(src: Any, dst: Any) -> None:
            try:
                async for item in src:
                    await dst.push(item)
            except ConsumersGone:
                pass

        jobs = [copy(i, o) for i, o in zip(inputs, outputs)]
    if len(jobs) == 1:
        await jobs[0]
        return
    from mimo._runtime import run_together  # imported here: the runtime sits above streams

    # Each pair moves at its own pace, in a sub-task the deadlock check sees.
    await run_together(*jobs)
