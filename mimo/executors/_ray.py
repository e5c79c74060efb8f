"""Running a graph on Ray: one async actor per stream copy, edges over direct actor calls."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import difflib
import os
import shutil
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mimo._checks import check_count, is_count
from mimo._errors import MimoError, WorkflowError, name_error
from mimo._graph import Graph, Node, workers_of
from mimo._report import RunReport
from mimo._runtime import OnStart
from mimo._supervision import Supervisor, supervisor_for
from mimo.executors._code import by_value, sent_by_value
from mimo.executors._cut import CopyCut, DriverCheckpoints, Part, Resume
from mimo.executors._edges import EdgeError, PeerLost, Sizer, Target, copy_label, estimate_size
from mimo.executors._host import Figures, Outcome, StreamHost, Wiring, build_report

#: Actor options mimo sets itself; a stream's options may not override them.
_RESERVED = frozenset(
    {"name", "namespace", "lifetime", "max_restarts", "max_task_retries", "max_concurrency", "get_if_exists"}
)
#: The Ray namespace mimo's actors live in.
NAMESPACE = "mimo"
#: Seconds after which streams still waiting for resources are named in a warning.
PLACE_WARN_S = 10.0
#: Ray's states of an actor that has no process yet.
_UNPLACED = frozenset({"PENDING_CREATION", "DEPENDENCIES_UNREADY"})


class RemoteTraceback(MimoError):
    """The traceback of an exception raised in another process, as text."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return "\n" + self.text


class PlacementError(WorkflowError):
    """Ray could not place the actors of some streams in time; ``asks`` maps each to its resources."""

    def __init__(self, message: str, asks: dict[str, dict[str, float]]) -> None:
        super().__init__(message)
        self.asks = asks

    def __reduce__(self) -> Any:
        # The default would call __init__ with args alone, which lacks asks.
        return (type(self), (str(self), self.asks), self.__dict__)


class StreamDiedError(MimoError, RuntimeError):
    """A stream's actor died with its process or its node; ``stream`` and ``node`` (Ray's node id) say which."""

    def __init__(self, message: str, stream: str = "", node: str = "") -> None:
        super().__init__(message)
        self.stream = stream
        self.node = node
        self.mimo_stream = stream

    def __reduce__(self) -> Any:
        return (StreamDiedError, (str(self), self.stream, self.node))


class StreamActor:
    """Hosts one copy of one stream in a Ray actor (wrapped by ``ray.remote`` when used)."""

    def __init__(
        self,
        stream: Any,
        name: str,
        capacity: int | dict[str, int],
        producers: dict[str, int],
        fed: dict[str, list[Any]],
        return_state: bool,
        cut: tuple[str, Resume | None] | None = None,
    ) -> None:
        self.host = StreamHost(stream, name, capacity=capacity, producers=producers, fed=fed, return_state=return_state)
        if cut is not None:
            # A checkpointed run: (its label, what it resumes from).
            label, saved = cut
            self.host.cut = CopyCut(self.host, label, producers)
            if saved is not None:
                self.host.cut.resume(saved)

    async def connect(
        self,
        wiring: dict[str, dict[int, list[tuple[Any, str, int, str, int | None, bool]]]],
        credits: int,
        batch_size: int,
        linger_s: float,
        batch_bytes: int | None = None,
        link_bytes: int | None = None,
        sizeof: Sizer | None = None,
    ) -> tuple[str, str]:
        """Wire the outputs; answer where this actor runs, as (node id, node address).

        ``wiring`` gives per port, per edge index, ``(actor, input port, link,
        consumer stream, copy, restartable)`` per consumer copy.
        """
        import ray  # type: ignore[import-not-found, unused-ignore]

        ports = {
            port: Wiring(
                {
                    i: [
                        Target(_sender(actor), p, link, consumer, copy, restartable=again)
                        for actor, p, link, consumer, copy, again in targets
                    ]
                    for i, targets in edges.items()
                }
            )
            for port, edges in wiring.items()
        }
        self.host.connect(
            ports,
            credits=credits,
            batch_size=batch_size,
            linger_s=linger_s,
            batch_bytes=batch_bytes,
            link_bytes=link_bytes,
            sizeof=sizeof,
        )
        return ray.get_runtime_context().get_node_id(), _ray().util.get_node_ip_address()

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

    async def retarget(self, port: str, edge: int, index: int, actor: Any, link: int) -> None:
        """Consumer copy ``index`` of an edge was restarted as ``actor``: send to it along ``link``."""
        self.host.retarget(port, edge, index, _sender(actor), link)

    async def replace_link(self, port: str, old: int, new: int) -> None:
        """The producer of link ``old`` into ``port`` was restarted and sends along ``new``."""
        self.host.replace_link(port, old, new)

    async def consumer_gone(self, port: str, edge: int, index: int) -> None:
        """Consumer copy ``index`` of an edge has finished: stop sending to it (and stop, if it was the last)."""
        self.host.consumer_gone(port, edge, index)

    async def figures(self) -> Figures:
        """The counts and clocks so far (for progress displays)."""
        return self.host.figures()

    async def checkpoint(self, k: int) -> Part:
        """This copy's part of checkpoint ``k``, once complete (see :mod:`mimo.executors._cut`)."""
        cut: CopyCut | None = self.host.cut
        if cut is None:
            raise RuntimeError(f"stream {self.host.name!r} was not made for a checkpointed run")
        return await asyncio.shield(cut.request(k))


def _sender(actor: Any) -> Any:
    import ray.exceptions  # type: ignore[import-not-found, unused-ignore]

    push = actor.push
    lost = ray.exceptions.RayActorError

    def send(port: str, link: int, seq: int, items: list[Any], end: bool) -> asyncio.Future[bool]:
        call = asyncio.wrap_future(push.remote(port, link, seq, items, end).future())
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

        def settle(f: asyncio.Future[bool]) -> None:
            if answer.done():
                return
            if f.cancelled():
                answer.cancel()
                return
            exc = f.exception()
            if exc is None:
                answer.set_result(f.result())
            elif isinstance(exc, lost):
                # The consumer's process (or its node) is gone: say so, so that it is blamed.
                peer = PeerLost(f"{type(exc).__name__}: {_first_line(exc)}")
                peer.__cause__ = exc
                answer.set_exception(peer)
            else:
                answer.set_exception(exc)

        call.add_done_callback(settle)
        # Cancelling the answer (a torn-down run) cancels the call.
        answer.add_done_callback(lambda a: call.cancel() if a.cancelled() else None)
        return answer

    return send


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


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

    Joins are bounded in bytes too: a batch is also sent once it holds
    ``batch_bytes`` (default 1 MiB), and a link takes another batch only while
    its batches in flight hold less than ``link_bytes`` (default 8 MiB; one
    batch larger than that goes alone). Items are sized by ``sizeof``
    (default :func:`estimate_size`: ``len()`` of bytes and ``str``,
    ``.nbytes`` of arrays, containers summed). ``None`` for both turns the
    byte bounds off.

    ``options`` maps a stream's name to Ray actor options for its copies
    (``{"embed": {"num_gpus": 1, "num_cpus": 0}, "parse": {"num_cpus": 2}}``);
    ``default_options`` apply to every stream. ``init_options`` go to
    ``ray.init``. ``grace_s`` is how long cancelled streams get to run their
    ``finally`` blocks before their actors are killed. If some actors are
    still waiting for resources that no node has free after
    ``place_timeout_s`` (default 60 s; ``None`` waits for ever), the run
    fails with :class:`PlacementError` naming each such stream and the
    resources it asks for; a warning names them after 10 s. Actors that
    are only slow to start are waited for.

    Differences from a local run: stream code runs in other processes, so
    only ``stream.state`` comes back to the driver (for streams that ran as
    one copy), and copies of a ``workers=N`` stream each have their own
    state. A graph in which no stream can move waits (there is no deadlock
    detection across processes). If an actor or its node dies, the run fails
    (:class:`StreamDiedError` names the stream and the node); the items in
    flight to it are lost and nothing is retried. Under
    ``on_error=Restart(...)`` the stream's actor is made again instead, under
    that policy, from the stream's initial ``state`` (docs/scaleout.md).

    ``run(checkpoint=..., executor=RayExecutor())`` takes checkpoints as in
    one process, written by the driver; a run that failed because an actor
    died resumes from the last one when run again (dead actors are not made
    again in such a run). See docs/recovery.md, "Checkpointed runs on Ray".
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
        batch_bytes: int | None = 1 << 20,
        link_bytes: int | None = 8 << 20,
        sizeof: Sizer = estimate_size,
        place_timeout_s: float | None = 60.0,
    ) -> None:
        check_count("batch_size", batch_size)
        if linger_s < 0:
            raise ValueError(f"linger_s must be >= 0, not {linger_s!r}")
        for what, value in (("batch_bytes", batch_bytes), ("link_bytes", link_bytes)):
            if value is not None and not is_count(value):
                raise ValueError(f"{what} must be an int >= 1 or None, not {value!r}")
        if place_timeout_s is not None and place_timeout_s <= 0:
            raise ValueError(f"place_timeout_s must be > 0 or None, not {place_timeout_s!r}")
        self.address = address
        self.options: dict[str, dict[str, Any]] = {name: dict(opts) for name, opts in (options or {}).items()}
        self.default_options: dict[str, Any] = dict(default_options or {})
        for name, opts in [("default_options", self.default_options), *self.options.items()]:
            clash = _RESERVED.intersection(opts)
            if clash:
                raise ValueError(f"{name}: mimo sets {', '.join(sorted(clash))} itself")
        self.batch_size = batch_size
        self.linger_s = linger_s
        self.init_options: dict[str, Any] = dict(init_options or {})
        self.grace_s = grace_s
        self.batch_bytes = batch_bytes
        self.link_bytes = link_bytes
        self.sizeof = sizeof
        self.place_timeout_s = place_timeout_s
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
        self,
        graph: Graph,
        *,
        capacity: int | None = None,
        on_start: OnStart | None = None,
        checkpoint: object = None,
        checkpoint_every: float = 5.0,
    ) -> RunReport:
        """Run ``graph`` on Ray and return its report (the executor protocol).

        With ``checkpoint`` (a file name or a store), a checkpoint is taken
        every ``checkpoint_every`` seconds and written by this process; a run
        over an unfinished checkpoint of the same graph resumes from it
        (docs/recovery.md, "On Ray").
        """
        self._check_options(graph)
        cap = graph.capacity if capacity is None else capacity
        ck = None if checkpoint is None else DriverCheckpoints(graph, checkpoint, checkpoint_every)
        try:
            self._acquire()
        except BaseException:
            if ck is not None:
                ck.store.close()
            raise
        try:
            return await _Run(self, graph, cap, ck).execute(on_start)
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
    #: The Ray actor options it was made with.
    options: dict[str, Any] = field(default_factory=dict)
    #: Where it runs (node id, node address), once its actor answered.
    node_id: str = ""
    node_ip: str = ""
    #: Its process or node is known to be gone.
    lost: bool = False
    #: Whether its actor sends its state back at the end.
    return_state: bool = False
    #: Per input port, the next unused link number (a restarted producer gets a fresh one).
    next_link: dict[str, int] = field(default_factory=dict)
    #: How many times its actor was made again after dying, and the figures of the dead ones.
    generation: int = 0
    past: list[Figures] = field(default_factory=list)

    @property
    def copy(self) -> int | None:
        return None if workers_of(self.node) == 1 else self.index

    @property
    def label(self) -> str:
        return copy_label(self.node.name, self.copy)


class _Run:
    """One run of one graph: placement, wiring, supervision, teardown."""

    def __init__(self, executor: RayExecutor, graph: Graph, capacity: int, ck: DriverCheckpoints | None = None) -> None:
        self.ex = executor
        self.ck = ck
        #: A checkpoint that could not be taken (a state that cannot be pickled): the run fails with it.
        self.ck_error: BaseException | None = None
        self.graph = graph
        self.capacity = capacity
        self.id = uuid.uuid4().hex[:12]
        self.copies: dict[Node, list[_Copy]] = {n: [_Copy(n, i) for i in range(workers_of(n))] for n in graph.nodes}
        self.edge_index = {id(e): i for i, e in enumerate(graph.edges)}
        self.t0 = 0.0
        #: Modules whose code is sent by value in this run.
        self.by_value: set[str] = set()
        #: Per stream under Restart, the record of its actors that died and were made again. A checkpointed
        #: run makes none again: the items in flight to a dead actor are lost, so the run fails and resumes.
        self.supervisors: dict[Node, Supervisor | None] = {
            n: None if ck is not None else supervisor_for(n.stream, n.name) for n in graph.nodes
        }
        #: Restarts under way, and the copy each makes again.
        self.restarting: dict[asyncio.Task[None], _Copy] = {}
        self.actor_class: Any = None
        self.stopping = False

    def _plan(self) -> None:
        graph = self.graph
        for node, copies in self.copies.items():
            for c in copies:
                for port in node.ins:
                    links: dict[tuple[int, int], int] = {}
                    for e in graph.inputs_of(node, port):
                        for i in range(workers_of(e.src)):
                            links[(self.edge_index[id(e)], i)] = len(links)
                    c.links[port] = links
                    c.producers[port] = len(links)
                    c.next_link[port] = len(links)

    def _fed(self, node: Node, index: int) -> dict[str, list[Any]]:
        n = workers_of(node)
        return {p: list(items)[index::n] for (fed_node, p), items in self.graph.feeds.items() if fed_node is node}

    def _place(self) -> None:
        import ray  # type: ignore[import-not-found, unused-ignore]
        import ray.cloudpickle  # type: ignore[import-not-found, unused-ignore]

        # Code from modules the workers cannot import goes by value (a few fed
        # items stand for all: they are usually alike).
        shipped: list[Any] = [(n.stream, {p: v[:16] for p, v in self._fed(n, 0).items()}) for n in self.graph.nodes]
        shipped.append(self.ex.sizeof)
        try:
            self.by_value = by_value(shipped, ray.cloudpickle.dumps)
        except Exception:
            self.by_value = set()  # unpicklable: the actor's creation below says which stream
        self.actor_class = ray.remote(StreamActor)
        with sent_by_value(self.by_value):
            self._make_actors()

    def _make_actors(self) -> None:
        uses: dict[int, int] = {}
        for node in self.graph.nodes:
            uses[id(node.stream)] = uses.get(id(node.stream), 0) + 1
        for node, copies in self.copies.items():
            opts = self.ex.actor_options(node)
            for c in copies:
                c.options = opts
                c.return_state = len(copies) == 1 and uses[id(node.stream)] == 1
                c.actor = self._new_actor(c, self._fed(node, c.index))

    def _new_actor(self, c: _Copy, fed: dict[str, list[Any]]) -> Any:
        node = c.node
        credits = max(1, self.capacity)
        incoming = sum(c.producers.values())
        # Each input queue takes its joins' own bound, if they set one.
        caps = {p: self.graph.input_capacity(node, p, self.capacity) for p in node.ins}
        suffix = f"-{c.generation}" if c.generation else ""
        try:
            return self.actor_class.options(
                name=f"mimo-{self.id}-{node.name}-{c.index}{suffix}",
                namespace=NAMESPACE,
                max_restarts=0,
                max_task_retries=0,
                # Every incoming link may have all its credits waiting at once.
                max_concurrency=max(1000, incoming * credits + 16),
                **c.options,
            ).remote(node.stream, node.name, caps, c.producers, fed, c.return_state, self._cut_for(c))
        except TypeError as exc:
            raise TypeError(f"stream {node.name!r} cannot be sent to Ray: {exc}") from exc

    def _cut_for(self, c: _Copy) -> tuple[str, Resume | None] | None:
        if self.ck is None:
            return None
        return (c.label, self.ck.resume_for(c.label, c.node.ins))

    def _wiring(self, c: _Copy) -> dict[str, dict[int, list[tuple[Any, str, int, str, int | None, bool]]]]:
        """Where ``c``'s outputs go: per port, per edge index, one target per consumer copy."""
        wiring: dict[str, dict[int, list[tuple[Any, str, int, str, int | None, bool]]]] = {}
        for port in c.node.outs:
            edges: dict[int, list[tuple[Any, str, int, str, int | None, bool]]] = {}
            for e in self.graph.outputs_of(c.node, port):
                index = self.edge_index[id(e)]
                again = self.supervisors[e.dst] is not None
                edges[index] = [
                    (d.actor, e.in_, d.links[e.in_][(index, c.index)], d.node.name, d.copy, again)
                    for d in self.copies[e.dst]
                ]
            if edges:
                wiring[port] = edges
        return wiring

    def _connect_call(self, c: _Copy) -> Any:
        ex = self.ex
        with sent_by_value(self.by_value):  # sizeof may be such code
            return c.actor.connect.remote(
                self._wiring(c),
                max(1, self.capacity),
                ex.batch_size,
                ex.linger_s,
                ex.batch_bytes,
                ex.link_bytes,
                ex.sizeof,
            )

    async def _connect(self) -> None:
        ex = self.ex
        waiting: dict[asyncio.Future[Any], _Copy] = {}
        for copies in self.copies.values():
            for c in copies:
                waiting[asyncio.wrap_future(self._connect_call(c).future())] = c
        # Each answer means that actor was placed, made and wired.
        start = time.monotonic()
        warned = False
        timeout = ex.place_timeout_s
        seen: set[str] | None = None  # the streams found waiting for resources at the last look past the timeout
        while waiting:
            elapsed = time.monotonic() - start
            deadlines = [d for d in (None if warned else PLACE_WARN_S, timeout) if d is not None and d > elapsed]
            # Past every deadline (placed actors still starting), look again each second.
            step = min([d - elapsed for d in deadlines] + [1.0])
            done, _ = await asyncio.wait(waiting, timeout=max(step, 0.01))
            for fut in done:
                c = waiting.pop(fut)
                error = fut.exception()
                if error is not None:
                    # Most often the stream's actor could not be made (its code failed to load there).
                    for other in waiting:
                        other.add_done_callback(_ignore)  # the run fails with this one's error
                    name_error(error, c.node.name)
                    raise error
                c.node_id, c.node_ip = fut.result()
            elapsed = time.monotonic() - start
            late = timeout is not None and elapsed >= timeout
            if done or not waiting or not (late or (not warned and elapsed >= PLACE_WARN_S)):
                continue
            stuck = _stuck(list(waiting.values()))
            if late and timeout is not None:
                # Ray's report of what waits for resources lags a little behind its
                # scheduler: fail only on streams found waiting on two looks in a row.
                confirmed = [c for c in stuck if seen is not None and c.label in seen]
                seen = {c.label for c in stuck}
                if confirmed:
                    for fut in waiting:
                        fut.add_done_callback(_ignore)  # their actors are killed in the teardown
                    raise PlacementError(_placement_message(confirmed, timeout, failed=True), _asks(confirmed))
            if stuck and not warned and not late:  # late: the next look fails the run
                warnings.warn(_placement_message(stuck, elapsed, failed=False), RuntimeWarning, stacklevel=2)
                warned = True

    async def execute(self, on_start: OnStart | None) -> RunReport:
        all_copies = [c for cs in self.copies.values() for c in cs]
        self.t0 = time.perf_counter()
        if not all_copies:
            return RunReport({}, 0.0, self.capacity)
        self._plan()
        poller: asyncio.Task[None] | None = None
        coordinator: asyncio.Future[None] | None = None
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
            if self.ck is not None:
                coordinator = asyncio.ensure_future(self.ck.coordinate([(c.label, c.actor) for c in all_copies]))
            failed = await self._supervise(all_copies, coordinator)
            clean = not failed
        finally:
            if poller is not None:
                poller.cancel()
            if coordinator is not None:
                coordinator.cancel()
                await asyncio.wait([coordinator])
            try:
                await self._tear_down(all_copies, clean)
            finally:
                if self.ck is not None:
                    await self.ck.finish(clean and self.ck_error is None)
        elapsed = time.perf_counter() - self.t0
        self._raise_failures(all_copies)
        if self.ck_error is not None:
            raise self.ck_error
        self._return_states(all_copies)
        return self._report(elapsed)

    async def _supervise(self, copies: list[_Copy], checkpoints: asyncio.Future[None] | None = None) -> bool:
        """Wait for every copy; restart those under Restart whose actor died; stop at the first failure.

        ``checkpoints`` (the checkpoints' coordinator) fails the run if it raises.
        """
        pending: dict[asyncio.Future[Any], _Copy] = {c.future: c for c in copies if c.future is not None}
        while pending:
            watched = [*pending, checkpoints] if checkpoints is not None and not checkpoints.done() else list(pending)
            done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
            failed = False
            if checkpoints is not None and checkpoints in done:
                done.discard(checkpoints)
                if not checkpoints.cancelled() and checkpoints.exception() is not None:
                    self.ck_error = checkpoints.exception()
                    failed = True
            for fut in done:
                c = pending.pop(fut)
                if fut is not c.future:
                    # A restart has finished: wait for the new actor's run, or fail with why it could not start.
                    self.restarting.pop(fut, None)  # type: ignore[call-overload]
                    error = None if fut.cancelled() else fut.exception()
                    if error is None and c.future is not None:
                        pending[c.future] = c
                        continue
                    error = error or RuntimeError(f"stream {c.label!r} could not be restarted")
                    name_error(error, c.node.name)
                    c.outcome = Outcome(c.figures or _no_figures(c.node), error=error)
                    failed = True
                    continue
                delay = self._restart_delay(c)
                if delay is not None:
                    task = asyncio.ensure_future(self._restart(c, delay))
                    self.restarting[task] = c
                    pending[task] = c
                elif self._settle(c):
                    failed = True
                elif c.outcome is not None:
                    self._tell_producers(c)
            if failed:
                return True
        return False

    def _tell_producers(self, c: _Copy) -> None:
        """``c`` has finished: its producers stop sending to it at once (and stop, if it was their last consumer)."""
        for port in c.node.ins:
            for e in self.graph.inputs_of(c.node, port):
                index = self.edge_index[id(e)]
                for p in self.copies[e.src]:
                    if p.outcome is None and p.actor is not None:
                        with contextlib.suppress(Exception):
                            ref = p.actor.consumer_gone.remote(e.out, index, c.index)
                            asyncio.wrap_future(ref.future()).add_done_callback(_ignore)

    def _restart_delay(self, c: _Copy) -> float | None:
        """If ``c``'s actor died and its stream restarts, the back-off before making it again.

        When its restarts have run out, ``c`` is settled as failed with a note saying so.
        """
        sup = self.supervisors[c.node]
        fut = c.future
        if sup is None or fut is None or not fut.done() or fut.cancelled() or self.stopping:
            return None
        import ray.exceptions  # type: ignore[import-not-found, unused-ignore]

        exc = fut.exception()
        if not isinstance(exc, ray.exceptions.RayActorError):
            return None
        died = self._died(c, exc)
        delay = sup.next_delay(died)
        if delay is None:
            sup.ran_out(died)
            name_error(died, c.node.name)
            c.lost = True
            c.outcome = Outcome(c.figures or _no_figures(c.node), error=died)
        return delay

    async def _restart(self, c: _Copy, delay: float) -> None:
        """Make ``c``'s actor again after ``delay`` and wire it in where the dead one was."""
        import ray  # type: ignore[import-not-found, unused-ignore]

        sup = self.supervisors[c.node]
        assert sup is not None
        # The back-off, counted as the supervisor counts its own (so the report reads the same).
        sup._waiting[c.index] = time.perf_counter()
        slept = False
        try:
            await asyncio.sleep(delay)
            slept = True
        finally:
            began = sup._waiting.pop(c.index)
            sup._backoff_done += delay if slept else time.perf_counter() - began
        with contextlib.suppress(Exception):
            ray.kill(c.actor, no_restart=True)
        if c.figures is not None:
            c.past.append(c.figures)
        c.figures = None
        c.generation += 1
        # Fed items were the dead actor's to hand on: they are not fed again.
        with sent_by_value(self.by_value):
            c.actor = self._new_actor(c, {})
        # Its outputs get fresh links, so that nothing in flight from the dead actor is mistaken for them.
        calls: list[Any] = []
        for port in c.node.outs:
            for e in self.graph.outputs_of(c.node, port):
                index = self.edge_index[id(e)]
                for d in self.copies[e.dst]:
                    old = d.links[e.in_][(index, c.index)]
                    new = d.next_link[e.in_]
                    d.next_link[e.in_] += 1
                    d.links[e.in_][(index, c.index)] = new
                    calls.append(d.actor.replace_link.remote(e.in_, old, new))
        connect = asyncio.wrap_future(self._connect_call(c).future())
        # A consumer that died meanwhile is wired afresh when it is made again.
        await asyncio.gather(*(asyncio.wrap_future(r.future()) for r in calls), return_exceptions=True)
        c.node_id, c.node_ip = await connect
        calls = []
        for port in c.node.ins:
            for e in self.graph.inputs_of(c.node, port):
                index = self.edge_index[id(e)]
                for p in self.copies[e.src]:
                    link = c.links[port][(index, p.index)]
                    calls.append(p.actor.retarget.remote(e.out, index, c.index, c.actor, link))
        await asyncio.gather(*(asyncio.wrap_future(r.future()) for r in calls), return_exceptions=True)
        c.lost = False
        c.ref = c.actor.run.remote()
        c.future = asyncio.wrap_future(c.ref.future())

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
        if isinstance(exc, ray.exceptions.RayActorError):
            c.lost = True
            error = self._died(c, exc)
        elif isinstance(exc, ray.exceptions.RayTaskError) and isinstance(exc.cause, BaseException):
            error = exc.cause
        name_error(error, c.node.name)
        c.outcome = Outcome(c.figures or _no_figures(c.node), error=error)
        return True

    def _died(self, c: _Copy, cause: BaseException, why: str = "") -> StreamDiedError:
        """The error for ``c``'s actor having died, naming the stream and its node."""
        where = _node_name(c)
        why = why or f"{type(cause).__name__}: {_first_line(cause)}"
        error = StreamDiedError(
            f"stream {c.label!r} died: its actor on {where} is gone ({why})",
            stream=c.node.name,
            node=c.node_id,
        )
        error.__cause__ = cause
        return error

    def _blame_lost_consumers(self, copies: list[_Copy]) -> None:
        """A sender that failed because its consumer's process died: the consumer failed, not it."""
        by_label = {c.label: c for c in copies}
        for c in copies:
            error = c.outcome.error if c.outcome is not None else None
            if not (isinstance(error, EdgeError) and error.peer_lost and error.consumer in by_label):
                continue
            victim = by_label[error.consumer]
            victim.lost = True
            seen = f"{c.label!r} saw it: {error}"
            if victim.outcome is None or victim.outcome.error is None:
                died = self._died(victim, error, seen)
                name_error(died, victim.node.name)
                victim.outcome = Outcome(victim.figures or _no_figures(victim.node), error=died)
            elif isinstance(victim.outcome.error, StreamDiedError) and seen not in victim.outcome.error.__notes__:
                victim.outcome.error.add_note(seen)
            # The sender only saw it happen.
            c.outcome = Outcome(c.outcome.figures if c.outcome is not None else _no_figures(c.node))

    async def _tear_down(self, copies: list[_Copy], clean: bool) -> None:
        """Cancel what still runs, give it ``grace_s`` to finish, then kill every actor."""
        import ray  # type: ignore[import-not-found, unused-ignore]

        cancelled: asyncio.CancelledError | None = None
        self.stopping = True
        for task in self.restarting:
            task.cancel()
        if self.restarting:
            await asyncio.wait(list(self.restarting))
        for c in self.restarting.values():
            if c.outcome is None and c.future is not None and c.future.done():
                # Its dead actor was being made again: that death is not why the run ends.
                c.outcome = Outcome(c.figures or _no_figures(c.node))
        self.restarting.clear()
        if not clean:
            self._blame_lost_consumers(copies)
        # A copy whose process is gone will not answer: do not wait for it.
        running = [c for c in copies if c.future is not None and not c.future.done() and not c.lost]
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
            self._blame_lost_consumers(copies)
        for c in copies:
            if c.actor is not None:
                with contextlib.suppress(Exception):
                    ray.kill(c.actor, no_restart=True)
        for c in copies:
            if c.future is not None and not c.future.done():
                c.future.cancel()
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
        copies = {node.name: [_fold(c, c.figures or _no_figures(node)) for c in cs] for node, cs in self.copies.items()}
        for node, sup in self.supervisors.items():
            if sup is not None and sup.restarts:
                # Restarts of dead actors, counted on the driver, go with the copies' own.
                figs = copies[node.name]
                fields = sup.fields()
                first = figs[0]
                figs[0] = dataclasses.replace(
                    first,
                    restarts=first.restarts + fields["restarts"],
                    restart_causes=first.restart_causes + fields["restart_causes"],
                    backoff_s=first.backoff_s + fields["backoff_s"],
                    backing_off=first.backing_off or fields["backing_off"],
                )
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
            for node, cs in self.copies.items():
                if self.supervisors[node] is not None:
                    continue  # its actor may be dying to be made again: _supervise decides
                for c in cs:
                    if c.future is not None and c.future.done() and c.outcome is None:
                        self._settle(c)
            await asyncio.sleep(0.25)


def _ray() -> Any:
    """The ray module, untyped (most of its functions are)."""
    import ray  # type: ignore[import-not-found, unused-ignore]

    return ray


def _fold(c: _Copy, now: Figures) -> Figures:
    """``now`` with the counts of ``c``'s dead actors added (as far as the driver saw them)."""
    if not c.past:
        return now
    items_in = dict(now.items_in)
    items_out = dict(now.items_out)
    for f in c.past:
        for p, n in f.items_in.items():
            items_in[p] = items_in.get(p, 0) + n
        for p, n in f.items_out.items():
            items_out[p] = items_out.get(p, 0) + n
    return dataclasses.replace(
        now,
        items_in=items_in,
        items_out=items_out,
        life_s=now.life_s + sum(f.life_s for f in c.past),
        blocked_s=now.blocked_s + sum(f.blocked_s for f in c.past),
        starved_s=now.starved_s + sum(f.starved_s for f in c.past),
        restarts=now.restarts + sum(f.restarts for f in c.past),
        restart_causes=[x for f in c.past for x in f.restart_causes] + now.restart_causes,
        backoff_s=now.backoff_s + sum(f.backoff_s for f in c.past),
    )


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


def _node_name(c: _Copy) -> str:
    if not c.node_ip and not c.node_id:
        return "an unknown node"
    alive = ""
    with contextlib.suppress(Exception):
        for n in _ray().nodes():
            if n.get("NodeID") == c.node_id and not n.get("Alive"):
                alive = ", which has died"
    return f"node {c.node_ip} ({c.node_id[:8]}{alive})"


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


def _stuck(copies: list[_Copy]) -> list[_Copy]:
    """Those of ``copies`` whose actors wait because no node has what they ask for free.

    An actor Ray has placed but whose worker process is still starting (slow on a
    loaded machine, or with a runtime_env) shows as ``PENDING_CREATION`` too, and
    already holds its resources, so neither its state nor the free resources tell
    it apart: the scheduler's own count of the requests waiting for resources does.
    """
    free = _free_per_node()
    # Without a worker yet, and no node has its ask free: placed-and-starting or waiting.
    maybe = [c for c in copies if _unplaced(c.actor) and not _fits(_ask(c.options), free)]
    demand = _waiting_for_resources()
    if demand is None or not maybe:
        return maybe  # cannot ask the scheduler: as stuck as it looks
    # Ray does not say which of the same ask got the resources; it places in the order
    # asked, so the last ones made are named.
    stuck = []
    for c in reversed(maybe):
        ask = _ask(c.options)
        for i, (shape, count) in enumerate(demand):
            if count > 0 and _same_ask(ask, shape):
                demand[i] = (shape, count - 1)
                stuck.append(c)
                break
    return stuck[::-1]


def _waiting_for_resources() -> list[tuple[dict[str, float], int]] | None:
    """The cluster's requests waiting for resources (feasible or not), by shape; None if unknown."""
    try:
        from ray._private import worker  # type: ignore[import-not-found, unused-ignore]
        from ray.autoscaler.v2.sdk import get_cluster_resource_state  # type: ignore[import-not-found, unused-ignore]

        driver: Any = worker.global_worker
        state: Any = get_cluster_resource_state(driver.gcs_client)
        return [
            ({str(k): float(v) for k, v in r.request.resources_bundle.items()}, int(r.count))
            for r in state.pending_resource_requests
        ]
    except Exception:
        return None


def _same_ask(ask: Mapping[str, float], shape: Mapping[str, float]) -> bool:
    # Ray may add resources of its own to a request (an accelerator type's marker).
    return all(abs(shape.get(k, 0.0) - v) <= 1e-6 * max(1.0, v) for k, v in ask.items())


def _unplaced(actor: Any) -> bool:
    """True if no worker process has been given to ``actor`` yet."""
    try:
        from ray._private import state  # type: ignore[import-not-found, unused-ignore]

        info = state.actors(actor_id=actor._actor_id.hex())
    except Exception:
        return True  # cannot tell: it has not answered, which is what the caller saw
    if not info or info.get("State") not in _UNPLACED:
        return not info
    # A worker leased to it has an address (and a pid) while it still starts up.
    address = info.get("Address") or {}
    return not (info.get("Pid") or address.get("Port"))


def _free_per_node() -> list[dict[str, float]]:
    """The resources free now on each alive node (or, failing that, in the whole cluster)."""
    ray = _ray()
    try:
        per_node: Any = ray._private.state.available_resources_per_node()
        return [dict(r) for r in per_node.values()]
    except Exception:
        with contextlib.suppress(Exception):
            return [dict(ray.available_resources())]
    return []


def _fits(ask: Mapping[str, float], free: list[dict[str, float]]) -> bool:
    # A small tolerance: Ray's fractional resources come back as floats.
    return any(all(node.get(k, 0.0) >= v - 1e-9 for k, v in ask.items()) for node in free)


def _ask(options: Mapping[str, Any]) -> dict[str, float]:
    """The resources Ray needs free to place an actor made with ``options``, as Ray counts them."""
    named = any(options.get(k) is not None for k in ("num_cpus", "num_gpus", "resources", "accelerator_type"))
    ask: dict[str, float] = {}
    if options.get("num_cpus") is not None:
        ask["CPU"] = float(options["num_cpus"])
    if options.get("num_gpus") is not None:
        ask["GPU"] = float(options["num_gpus"])
    if options.get("memory") is not None:
        ask["memory"] = float(options["memory"])
    for name, amount in (options.get("resources") or {}).items():
        ask[str(name)] = float(amount)
    ask = {k: v for k, v in ask.items() if v}
    if not named or options.get("num_cpus") is None:
        # Without resource options, an actor needs a free CPU to be placed (and
        # holds none after); naming any makes Ray hold one CPU for its whole life.
        ask["CPU"] = 1.0
    return ask


def _ignore(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()


def _asks(copies: list[_Copy]) -> dict[str, dict[str, float]]:
    return {c.label: _ask(c.options) for c in copies}


def _placement_message(copies: list[_Copy], waited: float, *, failed: bool) -> str:
    ray = _ray()
    lines = [
        f"{len(copies)} stream{'s' if len(copies) != 1 else ''} could not be placed on the Ray cluster "
        + (f"within place_timeout_s={waited:g} s" if failed else f"after {waited:.0f} s")
        + ("" if failed else " (the run fails at place_timeout_s)")
        + ":"
    ]
    try:
        totals = [dict(n.get("Resources", {})) for n in ray.nodes() if n.get("Alive")]
        free: dict[str, float] = dict(ray.available_resources())
        everything: dict[str, float] = dict(ray.cluster_resources())
    except Exception:
        totals, free, everything = [], {}, {}
    for c in copies:
        shown = _ask(c.options)
        why = []
        if not set(c.options) & {"num_cpus", "num_gpus", "resources", "accelerator_type"}:
            why.append("Ray needs one free CPU to place an actor without resource options")
        elif c.options.get("num_cpus") is None:
            why.append("1 CPU of it reserved by Ray because its options name resources but not num_cpus")
        if totals and not any(all(t.get(k, 0.0) >= v for k, v in shown.items()) for t in totals):
            why.append("no node has that much")
        lines.append(f"  stream {c.label!r} asks for {_fmt(shown)}" + (f" ({'; '.join(why)})" if why else ""))
    if everything:
        if not any("memory" in _ask(c.options) for c in copies):
            free.pop("memory", None)
            everything.pop("memory", None)
        lines.append(f"The cluster has {_fmt(free)} free of {_fmt(everything)}.")
    lines.append(
        "Ray keeps one CPU for the whole life of an actor whose options name resources (num_gpus, "
        'resources, ...) unless num_cpus is given: add "num_cpus": 0 for streams that need no CPU of their own.'
    )
    return "\n".join(lines)


def _fmt(resources: Mapping[str, float]) -> str:
    shown = {k: (int(v) if float(v).is_integer() else round(v, 2)) for k, v in sorted(resources.items())}
    shown = {k: v for k, v in shown.items() if not k.startswith("node:") and k != "object_store_memory"}
    return "{" + ", ".join(f"{k!r}: {v}" for k, v in shown.items()) + "}"
