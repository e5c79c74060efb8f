"""Running a graph on Ray: one async actor per stream copy, edges over direct actor calls."""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mimo._errors import WorkflowError
from mimo._graph import Graph, Node
from mimo._report import RunReport
from mimo._runtime import OnStart
from mimo.executors._edges import Target
from mimo.executors._host import Figures, Outcome, StreamHost, Wiring, build_report

#: Actor options mimo sets itself; a stream's options may not override them.
_RESERVED = frozenset(
    {"name", "namespace", "lifetime", "max_restarts", "max_task_retries", "max_concurrency", "get_if_exists"}
)
#: The Ray namespace mimo's actors live in.
NAMESPACE = "mimo"


class RemoteTraceback(Exception):
    """The traceback of an exception raised in another process, as text."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return "\n" + self.text


class StreamActor:
    """Hosts one copy of one stream in a Ray actor (wrapped by ``ray.remote`` when used)."""

    def __init__(
        self,
        stream: Any,
        name: str,
        capacity: int,
        producers: dict[str, int],
        fed: dict[str, list[Any]],
        return_state: bool,
    ) -> None:
        self.host = StreamHost(stream, name, capacity=capacity, producers=producers, fed=fed, return_state=return_state)

    async def connect(
        self,
        wiring: dict[str, dict[int, list[tuple[Any, str, int]]]],
        credits: int,
        batch_size: int,
        linger_s: float,
    ) -> None:
        """Wire the outputs: per port, per edge index, ``(actor, input port, link)`` per consumer copy."""
        ports = {
            port: Wiring(
                {i: [Target(_sender(actor), p, link) for actor, p, link in targets] for i, targets in edges.items()}
            )
            for port, edges in wiring.items()
        }
        self.host.connect(ports, credits=credits, batch_size=batch_size, linger_s=linger_s)

    async def run(self) -> Outcome:
        """Run the stream; its failure comes back in the outcome."""
        outcome = await self.host.run()
        if outcome.error is not None:
            outcome.error = _portable(outcome.error)
        if outcome.has_state and not _pickles(outcome.state):
            outcome.state, outcome.has_state = None, False
        return outcome

    async def push(self, port: str, link: int, seq: int, items: list[Any], end: bool) -> bool:
        """A batch for ``port``; answers once its items are in the input's queue."""
        return await self.host.deliver(port, link, seq, items, end)

    async def figures(self) -> Figures:
        """The counts and clocks so far (for progress displays)."""
        return self.host.figures()


def _sender(actor: Any) -> Any:
    push = actor.push

    def send(port: str, link: int, seq: int, items: list[Any], end: bool) -> asyncio.Future[bool]:
        return asyncio.wrap_future(push.remote(port, link, seq, items, end).future())

    return send


def _pickles(obj: Any) -> bool:
    """True if ``obj`` survives a trip through pickle (both ways: some exceptions only fail to load)."""
    import ray.cloudpickle  # type: ignore[import-not-found, unused-ignore]

    dumps: Callable[[Any], bytes] = ray.cloudpickle.dumps
    loads: Callable[[bytes], Any] = ray.cloudpickle.loads
    try:
        loads(dumps(obj))
    except Exception:
        return False
    return True


def _portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling, else a RuntimeError that says what it was."""
    if _pickles(exc):
        return exc
    stand_in = RuntimeError(f"{type(exc).__qualname__}: {exc} (the exception itself could not be pickled)")
    for note in getattr(exc, "__notes__", ()):
        stand_in.add_note(note)
    stand_in.mimo_stream = getattr(exc, "mimo_stream", None)  # type: ignore[attr-defined]
    return stand_in


class RayExecutor:
    """Runs a workflow on Ray: ``workflow.run(executor=RayExecutor())``.

    Each stream copy (``workers=N`` gives N) becomes an async Ray actor
    running the stream's code unchanged; each join becomes batches sent by
    direct actor calls. A join keeps at most the run's ``capacity`` batches in
    flight per consumer copy, of up to ``batch_size`` items each, a batch
    leaving when full or ``linger_s`` seconds after its first item; the
    consumer also has its own bounded queue of ``capacity`` items. Items
    arrive in order per join, and fan-in, fan-out, end of stream, failure and
    cancellation behave as in one process. The report has the same figures.

    ``address=None`` starts a local Ray for the run (no dashboard, usage
    statistics off, a temporary directory of its own) and stops it after;
    with an address (``"ray://host:10001"``, ``"host:6379"``) the run joins
    that cluster and leaves it running. If this process is already connected
    to Ray, that connection is used and left open. Use the executor as a
    context manager to keep one connection over several runs.

    ``options`` maps a stream's name to Ray actor options for its copies
    (``{"embed": {"num_gpus": 1}, "parse": {"num_cpus": 2, "resources": {...}}}``);
    ``default_options`` apply to every stream. ``init_options`` go to
    ``ray.init``. ``grace_s`` is how long cancelled streams get to run their
    ``finally`` blocks before their actors are killed.

    Differences from a local run: stream code runs in other processes, so
    only ``stream.state`` comes back to the driver (for streams that ran as
    one copy), and copies of a ``workers=N`` stream each have their own
    state. A graph in which no stream can move waits (there is no deadlock
    detection across processes).
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        options: Mapping[str, Mapping[str, Any]] | None = None,
        default_options: Mapping[str, Any] | None = None,
        batch_size: int = 1000,
        linger_s: float = 0.005,
        init_options: Mapping[str, Any] | None = None,
        grace_s: float = 5.0,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, not {batch_size!r}")
        if linger_s < 0:
            raise ValueError(f"linger_s must be >= 0, not {linger_s!r}")
        self.address = address
        self.options = {name: dict(opts) for name, opts in (options or {}).items()}
        self.default_options = dict(default_options or {})
        for name, opts in [("default_options", self.default_options), *self.options.items()]:
            clash = _RESERVED.intersection(opts)
            if clash:
                raise ValueError(f"{name}: mimo sets {', '.join(sorted(clash))} itself")
        self.batch_size = batch_size
        self.linger_s = linger_s
        self.init_options = dict(init_options or {})
        self.grace_s = grace_s
        self._started = False
        self._temp_dir: str | None = None
        self._held = 0

    def __repr__(self) -> str:
        where = self.address or "local"
        return f"<RayExecutor {where} batch_size={self.batch_size} linger_s={self.linger_s}>"

    # -- connection ----------------------------------------------------------

    def __enter__(self) -> RayExecutor:
        self._acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release()

    def _acquire(self) -> None:
        import ray  # type: ignore[import-not-found, unused-ignore]

        if self._held == 0 and not ray.is_initialized():
            opts: dict[str, Any] = {"namespace": NAMESPACE, **self.init_options}
            if self.address is None:
                # Set before the local processes start, which read it.
                os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
                if "_temp_dir" not in opts:
                    base = "/tmp" if os.path.isdir("/tmp") else None  # short: socket paths are limited
                    self._temp_dir = tempfile.mkdtemp(prefix="mimo-ray-", dir=base)
                    opts["_temp_dir"] = self._temp_dir
                opts.setdefault("include_dashboard", False)
                try:
                    ray.init(**opts)
                except BaseException:
                    self._remove_temp_dir()
                    raise
            else:
                ray.init(address=self.address, **opts)
            self._started = True
        self._held += 1

    def _release(self) -> None:
        import ray  # type: ignore[import-not-found, unused-ignore]

        self._held -= 1
        if self._held == 0 and self._started:
            self._started = False
            # Disconnects; stops the local Ray only if this process started it.
            ray.shutdown()
            self._remove_temp_dir()

    def _remove_temp_dir(self) -> None:
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None

    # -- running -------------------------------------------------------------

    async def run_async(
        self, graph: Graph, *, capacity: int | None = None, on_start: OnStart | None = None
    ) -> RunReport:
        """Run ``graph`` on Ray and return its report (the executor protocol)."""
        self._check_options(graph)
        cap = graph.capacity if capacity is None else capacity
        self._acquire()
        try:
            return await _Run(self, graph, cap).execute(on_start)
        finally:
            self._release()

    def _check_options(self, graph: Graph) -> None:
        names = [n.name for n in graph.nodes] + [n.stream.name for n in graph.nodes]
        for name in self.options:
            if name not in names:
                msg = f"RayExecutor options name stream {name!r}, which is not in the graph"
                close = difflib.get_close_matches(name, names, n=1)
                raise WorkflowError(msg + (f"; did you mean {close[0]!r}?" if close else ""))

    def actor_options(self, node: Node) -> dict[str, Any]:
        """The Ray actor options for ``node``'s copies (by node name, else stream name)."""
        opts = dict(self.default_options)
        opts.update(self.options.get(node.stream.name, {}))
        opts.update(self.options.get(node.name, {}))
        return opts


def _workers(node: Node) -> int:
    return int(getattr(node.stream, "workers", 1))


@dataclass(eq=False)
class _Copy:
    node: Node
    index: int
    actor: Any = None
    ref: Any = None
    future: asyncio.Future[Outcome] | None = None
    outcome: Outcome | None = None
    figures: Figures | None = None
    producers: dict[str, int] = field(default_factory=dict)
    #: Per input port, per (edge index, producer copy), the link number.
    links: dict[str, dict[tuple[int, int], int]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.node.name if _workers(self.node) == 1 else f"{self.node.name}[{self.index}]"


class _Run:
    """One run of one graph: placement, wiring, supervision, teardown."""

    def __init__(self, executor: RayExecutor, graph: Graph, capacity: int) -> None:
        self.ex = executor
        self.graph = graph
        self.capacity = capacity
        self.id = uuid.uuid4().hex[:12]
        self.copies: dict[Node, list[_Copy]] = {n: [_Copy(n, i) for i in range(_workers(n))] for n in graph.nodes}
        self.edge_index = {id(e): i for i, e in enumerate(graph.edges)}
        self.t0 = 0.0

    def _plan(self) -> None:
        graph = self.graph
        for node, copies in self.copies.items():
            for c in copies:
                for port in node.ins:
                    links: dict[tuple[int, int], int] = {}
                    for e in graph.inputs_of(node, port):
                        for i in range(_workers(e.src)):
                            links[(self.edge_index[id(e)], i)] = len(links)
                    c.links[port] = links
                    c.producers[port] = len(links)

    def _fed(self, node: Node, index: int) -> dict[str, list[Any]]:
        n = _workers(node)
        return {p: list(items)[index::n] for (fed_node, p), items in self.graph.feeds.items() if fed_node is node}

    def _place(self) -> None:
        import ray  # type: ignore[import-not-found, unused-ignore]

        actor_class = ray.remote(StreamActor)
        uses: dict[int, int] = {}
        for node in self.graph.nodes:
            uses[id(node.stream)] = uses.get(id(node.stream), 0) + 1
        for node, copies in self.copies.items():
            opts = self.ex.actor_options(node)
            credits = max(1, self.capacity)
            incoming = sum(copies[0].producers.values())
            for c in copies:
                return_state = len(copies) == 1 and uses[id(node.stream)] == 1
                try:
                    c.actor = actor_class.options(
                        name=f"mimo-{self.id}-{node.name}-{c.index}",
                        namespace=NAMESPACE,
                        max_restarts=0,
                        max_task_retries=0,
                        # Every incoming link may have all its credits waiting at once.
                        max_concurrency=max(1000, incoming * credits + 16),
                        **opts,
                    ).remote(node.stream, node.name, self.capacity, c.producers, self._fed(node, c.index), return_state)
                except TypeError as exc:
                    raise TypeError(f"stream {node.name!r} cannot be sent to Ray: {exc}") from exc

    async def _connect(self) -> None:
        graph = self.graph
        calls = []
        callers: list[_Copy] = []
        for node, copies in self.copies.items():
            for c in copies:
                wiring: dict[str, dict[int, list[tuple[Any, str, int]]]] = {}
                for port in node.outs:
                    edges: dict[int, list[tuple[Any, str, int]]] = {}
                    for e in graph.outputs_of(node, port):
                        index = self.edge_index[id(e)]
                        edges[index] = [(d.actor, e.in_, d.links[e.in_][(index, c.index)]) for d in self.copies[e.dst]]
                    if edges:
                        wiring[port] = edges
                calls.append(
                    c.actor.connect.remote(wiring, max(1, self.capacity), self.ex.batch_size, self.ex.linger_s)
                )
                callers.append(c)
        results = await asyncio.gather(*(asyncio.wrap_future(r.future()) for r in calls), return_exceptions=True)
        for c, result in zip(callers, results):
            if isinstance(result, BaseException):
                # Most often the stream's actor could not be made (its code failed to load there).
                _note(result, c.node.name)
                raise result

    async def execute(self, on_start: OnStart | None) -> RunReport:
        all_copies = [c for cs in self.copies.values() for c in cs]
        self.t0 = time.perf_counter()
        if not all_copies:
            return RunReport({}, 0.0, self.capacity)
        self._plan()
        poller: asyncio.Task[None] | None = None
        clean = False
        try:
            self._place()
            await self._connect()
            self.t0 = time.perf_counter()
            for c in all_copies:
                c.ref = c.actor.run.remote()
                c.future = asyncio.wrap_future(c.ref.future())
            if on_start is not None:
                poller = asyncio.ensure_future(self._poll())
                on_start(self._snapshot)
            failed = await self._supervise(all_copies)
            clean = not failed
        finally:
            if poller is not None:
                poller.cancel()
            await self._tear_down(all_copies, clean)
        elapsed = time.perf_counter() - self.t0
        self._raise_failures(all_copies)
        self._return_states(all_copies)
        return self._report(elapsed)

    async def _supervise(self, copies: list[_Copy]) -> bool:
        """Wait for every copy; stop at the first failure and say so."""
        pending = {c.future: c for c in copies if c.future is not None}
        while pending:
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            failed = False
            for fut in done:
                c = pending.pop(fut)
                if self._settle(c):
                    failed = True
            if failed:
                return True
        return False

    def _settle(self, c: _Copy) -> bool:
        """Record how ``c`` ended; True if it failed."""
        fut = c.future
        if fut is None or not fut.done() or c.outcome is not None:
            return c.outcome is not None and c.outcome.error is not None
        if fut.cancelled():
            return False
        exc = fut.exception()
        if exc is None:
            c.outcome = fut.result()
            c.figures = c.outcome.figures
            return c.outcome.error is not None
        import ray.exceptions  # type: ignore[import-not-found, unused-ignore]

        if isinstance(exc, ray.exceptions.TaskCancelledError):
            return False
        # The actor died or mimo's own code failed: that stream failed.
        error: BaseException = exc
        if isinstance(exc, ray.exceptions.RayTaskError) and isinstance(exc.cause, BaseException):
            error = exc.cause
        _note(error, c.node.name)
        c.outcome = Outcome(c.figures or _no_figures(c.node), error=error)
        return True

    async def _tear_down(self, copies: list[_Copy], clean: bool) -> None:
        """Cancel what still runs, give it ``grace_s`` to finish, then kill every actor."""
        import ray  # type: ignore[import-not-found, unused-ignore]

        cancelled: asyncio.CancelledError | None = None
        running = [c for c in copies if c.future is not None and not c.future.done()]
        for c in running:
            with contextlib.suppress(Exception):
                ray.cancel(c.ref)
        futures = [c.future for c in running if c.future is not None]
        if futures:
            deadline = time.monotonic() + self.ex.grace_s
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    await asyncio.wait(futures, timeout=left)
                    break
                except asyncio.CancelledError as exc:
                    cancelled = exc  # a second Ctrl-C: finish tearing down all the same
        if not clean:
            for c in copies:
                if c.future is not None and c.future.done():
                    self._settle(c)
        for c in copies:
            if c.actor is not None:
                with contextlib.suppress(Exception):
                    ray.kill(c.actor, no_restart=True)
        for fut in futures:
            if not fut.done():
                fut.cancel()
        if cancelled is not None:
            raise cancelled

    def _raise_failures(self, copies: list[_Copy]) -> None:
        errors: list[BaseException] = []
        for c in copies:
            if c.outcome is not None and c.outcome.error is not None:
                error = c.outcome.error
                if c.outcome.traceback and error.__cause__ is None:
                    error.__cause__ = RemoteTraceback(c.outcome.traceback)
                errors.append(error)
        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise BaseExceptionGroup(f"{len(errors)} streams failed", errors)

    def _return_states(self, copies: list[_Copy]) -> None:
        for c in copies:
            if c.outcome is not None and c.outcome.has_state:
                _restore(c.node.stream, c.outcome.state)

    def _report(self, elapsed: float) -> RunReport:
        copies = {node.name: [c.figures or _no_figures(node) for c in cs] for node, cs in self.copies.items()}
        edge_inputs = {i: (e.dst.name, e.in_) for i, e in enumerate(self.graph.edges)}
        outs = {node.name: node.outs for node in self.graph.nodes}
        return build_report(copies, edge_inputs, outs, elapsed, self.capacity)

    def _snapshot(self) -> RunReport:
        return self._report(time.perf_counter() - self.t0)

    async def _poll(self) -> None:
        """Keep the copies' figures fresh for progress displays."""
        while True:
            live = [c for cs in self.copies.values() for c in cs if c.outcome is None]
            refs = [c.actor.figures.remote() for c in live]
            for c, ref in zip(live, refs):
                with contextlib.suppress(Exception):
                    figs = await asyncio.wrap_future(ref.future())
                    if c.outcome is None:
                        c.figures = figs
            for cs in self.copies.values():
                for c in cs:
                    if c.future is not None and c.future.done() and c.outcome is None:
                        self._settle(c)
            await asyncio.sleep(0.25)


def _no_figures(node: Node) -> Figures:
    return Figures(
        items_in={p: 0 for p in node.ins},
        items_out={p: 0 for p in node.outs},
        life_s=0.0,
        blocked_s=0.0,
        starved_s=0.0,
        buffered={p: 0 for p in node.ins},
        edge_wait_s={},
        done=False,
    )


def _note(exc: BaseException, name: str) -> None:
    note = f"in mimo stream {name!r}"
    with contextlib.suppress(AttributeError):
        exc.mimo_stream = name  # type: ignore[attr-defined]
    if note not in getattr(exc, "__notes__", ()):
        exc.add_note(note)


def _restore(stream: Any, new: Any) -> None:
    """Put the state a run ended with back on the driver's stream, in place where possible."""
    old = stream.state
    if type(old) is type(new):
        if isinstance(old, dict):
            old.clear()
            old.update(new)
            return
        if isinstance(old, list | bytearray):
            old[:] = new
            return
        if isinstance(old, set):
            old.clear()
            old.update(new)
            return
    stream.state = new
