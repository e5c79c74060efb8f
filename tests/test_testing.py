"""mimo.testing: run one stream on given inputs; run a graph with a timeout."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from mimo import Ins, Outs, Stream, Workflow, WorkflowError
from mimo.testing import StreamOutputs, run_stream, run_stream_async, run_workflow, run_workflow_async


async def _double(ins: Ins, outs: Outs, state: Any) -> None:
    async for x in ins.x:
        await outs.y.push(2 * x)


async def _split(ins: Ins, outs: Outs, state: Any) -> None:
    """Two inputs, two outputs: evens and odds of both inputs, a first then b."""
    for port in (ins.a, ins.b):
        async for v in port:
            await (outs.even if v % 2 == 0 else outs.odd).push(v)


def test_run_stream_returns_each_output_as_a_list() -> None:
    out = run_stream(Stream(["x"], ["y"], fn=_double), {"x": [1, 2, 3]})
    assert out == {"y": [2, 4, 6]}
    assert isinstance(out, StreamOutputs)


def test_run_stream_handles_several_inputs_and_outputs() -> None:
    out = run_stream(Stream(["a", "b"], ["even", "odd"], fn=_split), {"a": [1, 2], "b": [3, 4, 5]})
    assert out == {"even": [2, 4], "odd": [1, 3, 5]}


def test_an_input_left_out_ends_at_once() -> None:
    out = run_stream(Stream(["a", "b"], ["even", "odd"], fn=_split), {"b": [7, 8]})
    assert out == {"even": [8], "odd": [7]}


def test_an_output_nothing_is_pushed_to_is_an_empty_list() -> None:
    out = run_stream(Stream(["x"], ["y"], fn=_double), {"x": []})
    assert out == {"y": []}


def test_inputs_may_be_any_iterable_or_an_async_iterable() -> None:
    async def agen() -> AsyncIterator[int]:
        for i in range(3):
            await asyncio.sleep(0)
            yield i

    assert run_stream(Stream(["x"], ["y"], fn=_double), {"x": iter(range(3))}) == {"y": [0, 2, 4]}
    assert run_stream(Stream(["x"], ["y"], fn=_double), {"x": agen()}) == {"y": [0, 2, 4]}


def test_many_more_items_than_capacity_do_not_stall() -> None:
    out = run_stream(Stream(["x"], ["y"], fn=_double), {"x": range(1000)}, capacity=2)
    assert out["y"] == [2 * i for i in range(1000)]


def test_the_report_counts_the_stream_under_its_own_name() -> None:
    out = run_stream(Stream(["x"], ["y"], fn=_double, name="double"), {"x": [1, 2, 3]})
    assert out.report["double"].items_in == {"x": 3}
    assert out.report["double"].items_out == {"y": 3}


def test_a_source_needs_no_inputs() -> None:
    async def count(ins: Ins, outs: Outs, state: Any) -> None:
        for i in range(4):
            await outs.n.push(i)

    assert run_stream(Stream(outs=["n"], fn=count)) == {"n": [0, 1, 2, 3]}


def test_a_sink_has_no_outputs_and_its_state_is_readable_after() -> None:
    async def keep(ins: Ins, outs: Outs, state: list[int]) -> None:
        async for v in ins.x:
            state.append(v)

    sink = Stream(["x"], fn=keep, state=[])
    assert run_stream(sink, {"x": [5, 6]}) == {}
    assert sink.state == [5, 6]


def test_an_unknown_input_port_is_a_workflow_error_with_a_suggestion() -> None:
    with pytest.raises(WorkflowError, match="did you mean 'x'"):
        run_stream(Stream(["x"], ["y"], fn=_double), {"xx": [1]})


def test_an_unknown_input_port_is_an_error_even_with_no_items() -> None:
    with pytest.raises(WorkflowError, match="'nope'"):
        run_stream(Stream(["x"], ["y"], fn=_double), {"nope": []})


def test_the_streams_exception_propagates_with_its_name() -> None:
    async def boom(ins: Ins, outs: Outs, state: Any) -> None:
        async for v in ins.x:
            if v == 2:
                raise ValueError("two")

    with pytest.raises(ValueError, match="two") as info:
        run_stream(Stream(["x"], fn=boom, name="boom"), {"x": [1, 2, 3]})
    assert info.value.mimo_stream == "boom"  # type: ignore[attr-defined]


@pytest.mark.timeout(10)
def test_a_hanging_stream_is_a_timeout_error_and_is_torn_down() -> None:
    cleaned: list[str] = []

    async def hang(ins: Ins, outs: Outs, state: Any) -> None:
        try:
            await asyncio.Event().wait()  # not a mimo port: never a deadlock
        finally:
            cleaned.append("finally")

    with pytest.raises(TimeoutError, match=r"'hang' did not finish within 0\.2 s"):
        run_stream(Stream(outs=["y"], fn=hang), timeout=0.2)
    assert cleaned == ["finally"]


def test_a_timeout_error_raised_by_the_stream_itself_is_not_relabelled() -> None:
    async def own(ins: Ins, outs: Outs, state: Any) -> None:
        raise TimeoutError("the stream's own")

    with pytest.raises(TimeoutError, match="the stream's own"):
        run_stream(Stream(outs=["y"], fn=own), timeout=5)


def _pipeline() -> tuple[Workflow, list[int]]:
    got: list[int] = []

    async def numbers(ins: Ins, outs: Outs, state: Any) -> None:
        for i in range(5):
            await outs.n.push(i)

    async def keep(ins: Ins, outs: Outs, state: Any) -> None:
        async for v in ins.y:
            got.append(v)

    wf = Workflow()
    wf.add_stream(Stream(outs=["n"], fn=numbers)).pipe(Stream(["x"], ["y"], fn=_double)).pipe(
        Stream(["y"], fn=keep)
    )
    return wf, got


def test_run_workflow_runs_a_workflow_and_returns_its_report() -> None:
    wf, got = _pipeline()
    report = run_workflow(wf)
    assert got == [0, 2, 4, 6, 8]
    assert report["numbers"].items_out == {"n": 5}


def test_run_workflow_accepts_a_graph_or_anything_holding_one() -> None:
    wf, got = _pipeline()
    run_workflow(wf.graph)

    class Holder:
        graph = wf.graph

    run_workflow(Holder())
    assert got == [0, 2, 4, 6, 8] * 2


def test_run_workflow_rejects_what_is_not_a_graph() -> None:
    with pytest.raises(TypeError, match="expected a Workflow"):
        run_workflow(42)


@pytest.mark.timeout(10)
def test_a_hanging_workflow_is_a_timeout_error() -> None:
    async def hang(ins: Ins, outs: Outs, state: Any) -> None:
        await asyncio.sleep(3600)

    wf = Workflow()
    wf.add_stream(Stream(outs=["n"], fn=hang)).pipe(Stream(["x"]))
    with pytest.raises(TimeoutError, match=r"did not finish within 0\.1 s"):
        run_workflow(wf, timeout=0.1)


def test_the_async_forms_run_inside_a_loop_and_the_sync_forms_refuse_to() -> None:
    async def main() -> None:
        out = await run_stream_async(Stream(["x"], ["y"], fn=_double), {"x": [1]})
        assert out == {"y": [2]}
        wf, got = _pipeline()
        await run_workflow_async(wf)
        assert got == [0, 2, 4, 6, 8]
        with pytest.raises(RuntimeError, match="run_stream_async"):
            run_stream(Stream(["x"], ["y"], fn=_double), {"x": [1]})
        with pytest.raises(RuntimeError, match="run_workflow_async"):
            run_workflow(wf)

    asyncio.run(main())


def test_helper_streams_never_take_the_name_of_the_stream_under_test() -> None:
    out = run_stream(Stream(["x"], ["y"], fn=_double, name="output y"), {"x": [1]})
    assert out == {"y": [2]}
    assert out.report["output y"].items_out == {"y": 1}


def test_run_stream_feeds_a_typed_stream():
    from mimo import In, Out, stream

    @stream
    async def double(x: In[int], y: Out[int]) -> None:
        async for v in x:
            await y.push(2 * v)

    from mimo.testing import run_stream

    assert run_stream(double, {"x": [1, 2]}) == {"y": [2, 4]}
