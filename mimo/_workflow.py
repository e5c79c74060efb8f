"""Workflow and Step: the classic builder over :mod:`mimo._graph`."""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeAlias

from mimo._channel import check_capacity
from mimo._errors import WorkflowError
from mimo._graph import DEFAULT_CAPACITY, Graph, Node
from mimo._keyed import is_keyed, merge_report, spread
from mimo._report import RunReport, finish
from mimo._runtime import OnStart, run_graph
from mimo._store import CheckpointStore
from mimo._stream import Stream

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path

    from mimo._dashboard import Dashboard

#: What ``run(progress=...)`` takes: ``False`` (no view), ``True`` or ``"auto"``, ``"rich"``, ``"plain"``.
ProgressSpec: TypeAlias = 'bool | Literal["auto", "rich", "plain"]'
#: What ``run(dashboard=...)`` takes: ``False``, ``True`` or a :class:`mimo.Dashboard`.
DashboardSpec: TypeAlias = "bool | Dashboard"


class Step:
    """A stream placed in a workflow; returned by :meth:`Workflow.add_stream`."""

    __slots__ = ("workflow", "node")

    def __init__(self, workflow: Workflow, node: Node) -> None:
        self.workflow: Workflow = workflow
        self.node: Node = node

    @property
    def stream(self) -> Stream:
        """The stream this step runs."""
        return self.node.stream

    @property
    def name(self) -> str:
        """The step's name, unique in its workflow."""
        return self.node.name

    def __repr__(self) -> str:
        return f"<Step {self.node.name!r}>"

    def pipe(
        self, other: Step | Stream, output: str | None = None, input: str | None = None, *, capacity: int | None = None
    ) -> Step:
        """Join this step's ``output`` to ``other``'s ``input`` and return ``other``.

        A name may be left out when the step has exactly one such port;
        otherwise a :class:`WorkflowError` lists the candidates. A plain
        ``Stream`` is added to this workflow first. Returns the target step, so
        ``a.pipe(b).pipe(c)`` chains. ``capacity`` bounds this join's queue in
        every run, instead of the run's capacity.
        """
        if isinstance(other, Stream):
            other = self.workflow.add_stream(other)
        if not isinstance(other, Step):
            raise TypeError(f"pipe() needs a Step or a Stream, not {other!r}")
        if other.workflow is not self.workflow:
            raise WorkflowError(f"cannot pipe {self.name!r} to {other.name!r}: they belong to two different workflows")
        self.workflow.graph.connect(self.node, output, other.node, input, capacity=capacity)
        return other

    def push(self, item: Any, input: str | None = None) -> None:
        """Feed ``item`` to this step's ``input`` before the run.

        Fed items come first, in order; an input fed this way and joined to
        nothing ends after them. Fed items are kept for every later run.
        """
        self.workflow.graph.feed(self.node, input, item)


class Workflow:
    """A graph of streams joined by bounded queues; a blueprint that can run many times.

    ``capacity`` bounds every queue: a producer is at most that many items
    ahead of each of its consumers (0 hands each item over directly).
    """

    def __init__(self, capacity: int = DEFAULT_CAPACITY, name: str = "workflow") -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"workflow name must be a non-empty str, not {name!r}")
        self.graph: Graph = Graph(check_capacity(capacity))
        self.name = name

    @classmethod
    def from_graph(cls, graph: Graph, name: str = "workflow") -> Workflow:
        """A workflow over an existing graph (shared, not copied)."""
        wf = cls(graph.capacity, name)
        wf.graph = graph
        return wf

    @property
    def capacity(self) -> int:
        """The bound of every queue."""
        return self.graph.capacity

    @property
    def steps(self) -> list[Step]:
        """Every step, in the order added."""
        return [Step(self, n) for n in self.graph.nodes]

    def step(self, name: str) -> Step:
        """The step called ``name``."""
        return Step(self, self.graph.node(name))

    def add_stream(self, stream: Stream, name: str | None = None) -> Step:
        """Place ``stream`` in this workflow and return its :class:`Step`.

        The same stream may be added more than once; each is its own step.
        """
        if not isinstance(stream, Stream):
            raise TypeError(f"add_stream() needs a Stream, not {stream!r}")
        return Step(self, self.graph.add(stream, name))

    def to_dot(self) -> str:
        """The graph in Graphviz DOT; the same graph always gives the same text."""
        return self.graph.to_dot(self.name)

    def to_mermaid(self) -> str:
        """The graph as a Mermaid flowchart."""
        return self.graph.to_mermaid()

    def render(self, path: str | os.PathLike[str], *, report: RunReport | None = None) -> Path:
        """Write a picture of the workflow; the suffix picks the format (``.svg``, ``.png``, ``.dot``, ``.mmd``).

        Pictures need ``mimo[viz]`` and Graphviz's ``dot``. With ``report``
        (what :meth:`run` returned), joins are labelled with the items they
        carried and the bottleneck and back-pressured joins are coloured.
        """
        from mimo._render import render

        return render(self.graph, path, report=report, name=self.name)

    def __str__(self) -> str:
        return self.to_dot()

    def __repr__(self) -> str:
        return f"<Workflow {self.name!r}: {len(self.graph.nodes)} streams, {len(self.graph.edges)} joins>"

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
        """Run every stream to completion in the running event loop; return the report.

        The first stream to raise fails the run: every other stream is
        cancelled, and the exception (with the stream's name in a note and in
        ``exc.mimo_stream``) is raised here; several are raised as an
        ``ExceptionGroup``. A run where no stream can move raises
        :class:`DeadlockError`. ``capacity`` overrides the workflow's bound for
        this run; ``progress=True`` shows a live view (needs ``mimo[progress]``);
        ``executor`` runs the graph elsewhere (see :mod:`mimo.executors`);
        ``dashboard=True`` (or a :class:`mimo.Dashboard`) serves a live web
        view of the run (needs ``mimo[web]``). ``checkpoint`` (a file name,
        for a SQLite store, or a :class:`mimo.CheckpointStore`) saves a
        consistent checkpoint every ``checkpoint_every`` seconds, and a run
        over a checkpoint left by a crashed run resumes from it (see
        docs/recovery.md).
        """
        return await run_graph_with(
            self.graph,
            capacity=capacity,
            progress=progress,
            executor=executor,
            name=self.name,
            dashboard=dashboard,
            checkpoint=checkpoint,
            checkpoint_every=checkpoint_every,
        )

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
        """Run the workflow to completion (see :meth:`run_async`); blocks until done."""
        check_no_running_loop("Workflow.run()", "await workflow.run_async()")
        return asyncio.run(
            self.run_async(
                capacity=capacity,
                progress=progress,
                executor=executor,
                dashboard=dashboard,
                checkpoint=checkpoint,
                checkpoint_every=checkpoint_every,
            )
        )


async def _run_spread(executor: Executor, graph: Graph, **options: Any) -> RunReport:
    # An executor runs copies as they are: keyed streams go to it as routers and one-copy streams.
    return merge_report(graph, await executor.run_async(spread(graph), **options))


def check_no_running_loop(what: str, instead: str) -> None:
    """Refuse to block inside a running event loop.

    The probe's own ``RuntimeError`` is handled and gone before the run starts,
    so a stream's exception leaves ``run()`` with no chained context.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(f"{what} was called inside a running event loop; use '{instead}' there")


class Executor(Protocol):
    """Runs a graph somewhere other than this event loop (a Ray cluster, say).

    Anything with this ``run_async`` method can be passed as
    ``workflow.run(executor=...)`` (or to a DSL chain's ``run``);
    :class:`mimo.executors.RayExecutor` is one. mimo calls it once per run,
    after the graph is complete, and wraps it with the progress view and the
    dashboard itself. One whose ``run_async`` also takes ``checkpoint`` and
    ``checkpoint_every`` (as :func:`mimo._runtime.run_graph` does) is given
    ``run(checkpoint=...)``; any other is refused it.
    """

    async def run_async(
        self, graph: Graph, *, capacity: int | None = None, on_start: OnStart | None = None
    ) -> RunReport:
        """Run every stream of ``graph`` to completion and return the run's report.

        ``graph.nodes`` are the streams (each ``node.name`` and
        ``node.stream``, a :class:`mimo.Stream` or a DSL stream, whose
        ``run(ins, outs, state)`` is the body), ``graph.edges`` the joins
        (``edge.src``, ``edge.out`` to ``edge.dst``, ``edge.in_``) and
        ``graph.feeds`` the items given to unjoined inputs. ``capacity``, when
        not None, overrides ``graph.capacity``, the bound of every queue.
        ``on_start``, when given, must be called once the run has started,
        with a function that returns a :class:`mimo.RunReport` of the run so
        far (the progress view and the dashboard poll it). A stream's
        exception fails the run and is raised from here, as with a local run.
        """
        ...


async def run_graph_with(
    graph: Graph,
    *,
    capacity: int | None = None,
    progress: ProgressSpec = False,
    executor: Executor | None = None,
    name: str = "workflow",
    dashboard: DashboardSpec = False,
    on_start: OnStart | None = None,
    checkpoint: str | os.PathLike[str] | CheckpointStore | None = None,
    checkpoint_every: float = 5.0,
) -> RunReport:
    """Run ``graph`` here or on ``executor``, with an optional progress view and dashboard.

    Shared by :class:`Workflow` and the DSL, so that both run the same way.
    ``on_start`` also receives the live report (see :func:`run_graph`).
    """
    if capacity is not None:
        check_capacity(capacity)
    if executor is not None and not callable(getattr(executor, "run_async", None)):
        raise TypeError(f"executor must be a mimo.Executor (an object with an async run_async), not {executor!r}")
    if checkpoint is not None and executor is not None and not _takes_checkpoints(executor):
        raise NotImplementedError(f"{executor!r} takes no checkpoints: its run_async has no checkpoint parameter")
    keyed = [n.name for n in graph.nodes if is_keyed(n)]
    if keyed and checkpoint is not None and executor is not None:
        raise NotImplementedError(
            f"keyed workers (workers=N, key=...) take checkpoints only in a local run for now: {', '.join(keyed)}"
        )
    graph.mark_run()
    if dashboard:
        from mimo._dashboard import watch

        def watched(hook: OnStart) -> Awaitable[RunReport]:
            hooks = hook if on_start is None else _both(hook, on_start)
            return run_graph_with(
                graph,
                capacity=capacity,
                progress=progress,
                executor=executor,
                name=name,
                on_start=hooks,
                checkpoint=checkpoint,
                checkpoint_every=checkpoint_every,
            )

        return await watch(dashboard, graph, name, watched)
    runner: Any = executor.run_async if executor is not None else run_graph
    if executor is not None and keyed:
        runner = functools.partial(_run_spread, executor)
    if checkpoint is not None:
        run: Any = run_graph if executor is None else executor.run_async
        runner = functools.partial(
            run,
            checkpoint=checkpoint,
            checkpoint_every=checkpoint_every,
        )
    if not progress:
        return finish(await runner(graph, capacity=capacity, on_start=on_start), graph, name)
    from mimo._progress import Progress

    async with Progress(progress, name=name) as view:
        hooks = view.start if on_start is None else _both(view.start, on_start)
        report = await runner(graph, capacity=capacity, on_start=hooks)
    return finish(report, graph, name)


def _takes_checkpoints(executor: Executor) -> bool:
    """True if the executor's ``run_async`` takes ``checkpoint=`` (RayExecutor's does)."""
    return "checkpoint" in inspect.signature(executor.run_async).parameters


def _both(first: OnStart, second: OnStart) -> OnStart:
    def both(snapshot: Callable[[], RunReport]) -> None:
        first(snapshot)
        second(snapshot)

    return both
