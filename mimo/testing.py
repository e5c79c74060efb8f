"""Helpers for testing streams and graphs, the ones mimo's own tests use.

:func:`run_stream` runs one stream on given inputs (a list per input port)
and returns what it pushed on each output port. :func:`run_workflow` runs a
whole graph. Both fail with :class:`TimeoutError` instead of hanging when the
run does not finish in time, and both have ``async`` forms for use inside a
running event loop.

.. code-block:: python

    from mimo.testing import run_stream

    out = run_stream(double, {"x": [1, 2, 3]})
    assert out == {"y": [2, 4, 6]}
"""

from __future__ import annotations

import asyncio
import inspect
import math
from collections.abc import AsyncIterable, Awaitable, Collection, Coroutine, Iterable, Mapping
from typing import Any, TypeVar

from mimo._channel import check_capacity
from mimo._graph import Graph, Node
from mimo._ports import Ins, Outs
from mimo._report import RunReport
from mimo._stream import Stream
from mimo._workflow import Workflow, run_graph_with

__all__ = [
    "DEFAULT_TIMEOUT",
    "StreamOutputs",
    "run_stream",
    "run_stream_async",
    "run_workflow",
    "run_workflow_async",
]

#: Seconds a run may take before the helpers give up (``timeout=None``: no limit).
DEFAULT_TIMEOUT = 10.0

R = TypeVar("R")


class StreamOutputs(dict[str, list[Any]]):
    """What :func:`run_stream` returns: each output port's name mapped to its items.

    Items are in the order the stream pushed them. It compares equal to a
    plain dict, and ``.report`` is the :class:`~mimo.RunReport` of the run, in
    which the stream under test appears under its own name (the report is
    named after it too, and its links are the joins to the helper streams
    that feed and collect it).
    """

    report: RunReport

    def __init__(self, outputs: dict[str, list[Any]], report: RunReport) -> None:
        super().__init__(outputs)
        self.report = report


def run_stream(
    stream: Stream,
    inputs: Mapping[str, Iterable[Any] | AsyncIterable[Any]] | None = None,
    *,
    timeout: float | None = DEFAULT_TIMEOUT,
    capacity: int | None = None,
) -> StreamOutputs:
    """Run ``stream`` alone on ``inputs`` and return its outputs, a list per port.

    ``inputs`` maps input port names to the items that port receives (a list,
    any iterable, or an async iterable); each such input ends after its items,
    and an input left out ends at once. A collection (list, tuple, str, range)
    is fed up front; an iterator or async iterable is read during the run, as
    far as the stream takes (so it may be endless), under the timeout. Every output port is collected, so
    back-pressure never stalls the stream. An unknown port name is a
    :class:`~mimo.WorkflowError` naming the ports; a stream's exception
    propagates as from ``Workflow.run``; a run longer than ``timeout`` seconds
    is a :class:`TimeoutError`. A generator or async generator given as
    input is closed when the run ends, however it ends. Blocks; inside a
    running event loop use :func:`run_stream_async`.
    """
    return _sync(run_stream_async(stream, inputs, timeout=timeout, capacity=capacity), "run_stream")


async def run_stream_async(
    stream: Stream,
    inputs: Mapping[str, Iterable[Any] | AsyncIterable[Any]] | None = None,
    *,
    timeout: float | None = DEFAULT_TIMEOUT,
    capacity: int | None = None,
) -> StreamOutputs:
    """The awaitable form of :func:`run_stream`, for use inside a running event loop."""
    _check(timeout, capacity)
    if not isinstance(stream, Stream):
        hint = "; for a chain or a workflow use run_workflow()" if hasattr(stream, "graph") else ""
        raise TypeError(f"run_stream() runs one Stream, not {stream!r}{hint}")
    if inputs is not None and not isinstance(inputs, Mapping):
        raise TypeError(
            f"inputs must map input port names to items, such as {{'x': [1, 2]}}, not {type(inputs).__name__}"
        )
    graph = Graph() if capacity is None else Graph(capacity)
    node = graph.add(stream)
    for port, items in (inputs or {}).items():
        port = graph.port(node, "input", port)
        if not isinstance(items, (Iterable, AsyncIterable)):
            raise TypeError(f"the items for input {port!r} must be iterable or async iterable, not {items!r}")
        if not isinstance(items, Collection):
            # An iterator may be endless or slow: read it during the run, under
            # the timeout, as far as the stream takes, never all up front.
            src = graph.add(Stream(outs=["items"], fn=_source(items)))
            src.name = _rename(graph, src, f"items for {port}")
            graph.connect(src, "items", node, port)
        else:
            for item in items:
                graph.feed(node, port, item)
    outputs: dict[str, list[Any]] = {}
    for port in node.outs:
        bucket: list[Any] = []
        outputs[port] = bucket
        sink = graph.add(Stream(ins=["items"], fn=_collector(bucket)))
        sink.name = _rename(graph, sink, f"output {port}")
        graph.connect(node, port, sink, "items")
    report = await _within(timeout, run_graph_with(graph, name=node.name), f"stream {node.name!r}")
    return StreamOutputs(outputs, report)


def run_workflow(
    target: Workflow | Graph | Any,
    *,
    timeout: float | None = DEFAULT_TIMEOUT,
    capacity: int | None = None,
) -> RunReport:
    """Run a graph to completion and return its report, or fail within ``timeout`` seconds.

    ``target`` is a :class:`~mimo.Workflow`, a graph, or anything holding one
    as ``.graph`` (such as a DSL chain). A run that takes longer than
    ``timeout`` is torn down (every stream cancelled, every ``finally`` run)
    and a :class:`TimeoutError` says so; ``timeout=None`` waits forever.
    Errors of the run propagate unchanged. The report is the one ``.run()``
    returns, the same fields filled: the workflow's name (``"workflow"`` for
    a bare graph or a DSL chain, as their ``.run()`` gives) and its links.
    Blocks; inside a running event loop use :func:`run_workflow_async`.
    """
    return _sync(run_workflow_async(target, timeout=timeout, capacity=capacity), "run_workflow")


async def run_workflow_async(
    target: Workflow | Graph | Any,
    *,
    timeout: float | None = DEFAULT_TIMEOUT,
    capacity: int | None = None,
) -> RunReport:
    """The awaitable form of :func:`run_workflow`, for use inside a running event loop."""
    _check(timeout, capacity)
    graph = _graph_of(target)
    name = target.name if isinstance(target, Workflow) else "workflow"
    return await _within(timeout, run_graph_with(graph, capacity=capacity, name=name), f"workflow {name!r}")


def _check(timeout: float | None, capacity: int | None) -> None:
    # Checked before anything runs, so a typo fails at the call, not as a late or silent oddity.
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0 or math.isnan(timeout)
    ):
        raise ValueError(f"timeout must be a number of seconds > 0, or None for no limit, not {timeout!r}")
    if capacity is not None:
        check_capacity(capacity)


def _graph_of(target: object) -> Graph:
    if isinstance(target, Graph):
        return target
    graph = getattr(target, "graph", None)
    if isinstance(graph, Graph):
        return graph
    raise TypeError(f"expected a Workflow, a graph or an object with a .graph, not {target!r}")


def _rename(graph: Graph, node: Node, base: str) -> str:
    # Helper nodes get readable names in the report, never clashing with the stream's.
    taken = {n.name for n in graph.nodes if n is not node}
    name, i = base, 2
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    return name


def _collector(bucket: list[Any]) -> Any:
    async def collect(ins: Ins, outs: Outs, state: Any) -> None:
        async for item in ins.items:
            bucket.append(item)

    return collect


def _source(items: Iterable[Any] | AsyncIterable[Any]) -> Any:
    async def produce(ins: Ins, outs: Outs, state: Any) -> None:
        try:
            if isinstance(items, AsyncIterable):
                async for item in items:
                    await outs.items.push(item)
            else:
                for item in items:
                    await outs.items.push(item)
        finally:
            # A generator left open would outlive the run (asyncio closes an async
            # one only when the loop shuts down, never inside a running loop).
            # Other iterators (an open file, say) stay the caller's to close.
            if inspect.isasyncgen(items):
                await items.aclose()
            elif inspect.isgenerator(items):
                items.close()

    return produce


async def _within(timeout: float | None, run: Awaitable[R], what: str) -> R:
    if timeout is None:
        return await run
    scope = asyncio.timeout(timeout)
    try:
        async with scope:
            return await run
    except TimeoutError:
        # Only our own deadline is relabelled; a stream's TimeoutError passes as is.
        if scope.expired():
            raise TimeoutError(f"{what} did not finish within {timeout} s (timeout=...)") from None
        raise


def _sync(run: Coroutine[Any, Any, R], name: str) -> R:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass  # no loop: the usual case. The run starts outside this handler, so its errors chain to nothing.
    else:
        run.close()
        raise RuntimeError(f"{name}() was called inside a running event loop; use 'await {name}_async(...)' there")
    return asyncio.run(run)
