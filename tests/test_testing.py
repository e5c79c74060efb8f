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
    wf.add_stream(Stream(outs=["n"], fn=numbers)).pipe(Stream(["x"], ["y"], fn=_double)).pipe(Stream(["y"], fn=keep))
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


# -- issue 9: the helpers' reports, tracebacks, argument checks and resources ---------------------


def _same_fields(got: Any, want: Any) -> None:
    assert got.name == want.name
    assert got.links == want.links
    assert got.capacity == want.capacity
    assert set(got.streams) == set(want.streams)


def test_run_workflow_returns_the_report_run_returns_for_a_workflow_a_chain_and_a_graph() -> None:
    from mimo import lib

    wf, _ = _pipeline()
    wf.name = "sums"
    report = run_workflow(wf)
    assert report.name == "sums"
    assert [str(link) for link in report.links] == ["numbers.n -> _double.x", "_double.y -> keep.y"]
    _same_fields(report, wf.run())

    chain = lib.range(3) | lib.collect()
    _same_fields(run_workflow(chain), chain.run())
    assert len(run_workflow(chain.graph).links) == 1
    _same_fields(run_workflow(chain.graph), Workflow.from_graph(chain.graph).run())


def test_run_stream_reports_like_a_run_named_after_the_stream_with_its_links() -> None:
    out = run_stream(Stream(["x"], ["y"], fn=_double, name="double"), {"x": [1, 2]})
    assert out.report.name == "double"
    assert [str(link) for link in out.report.links] == ["double.y -> output y.items"]


def _failing() -> Workflow:
    async def numbers(ins: Ins, outs: Outs, state: Any) -> None:
        await outs.n.push(1)

    async def boom(ins: Ins, outs: Outs, state: Any) -> None:
        async for _ in ins.n:
            raise ValueError("bad item")

    wf = Workflow()
    wf.add_stream(Stream(outs=["n"], fn=numbers)).pipe(Stream(["n"], fn=boom))
    return wf


def test_a_streams_error_comes_out_of_the_helpers_clean_with_no_chained_plumbing() -> None:
    import traceback

    for run in (lambda: run_workflow(_failing()), lambda: run_stream(_failing().step("boom").stream, {"n": [1]})):
        with pytest.raises(ValueError, match="bad item") as info:
            run()
        assert info.value.__context__ is None
        text = "".join(traceback.format_exception(info.value))
        assert "During handling" not in text and "no running event loop" not in text


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), "5", True])
def test_a_bad_timeout_is_refused_before_anything_runs(timeout: Any) -> None:
    ran: list[int] = []

    async def note(ins: Ins, outs: Outs, state: Any) -> None:
        ran.append(1)

    with pytest.raises(ValueError, match="timeout must be a number of seconds > 0"):
        run_stream(Stream(outs=["y"], fn=note), timeout=timeout)
    wf = Workflow()
    wf.add_stream(Stream(outs=["y"], fn=note))
    with pytest.raises(ValueError, match="timeout must be a number of seconds > 0"):
        run_workflow(wf, timeout=timeout)
    assert ran == []


def test_a_bad_capacity_or_inputs_is_refused_when_called() -> None:
    with pytest.raises(ValueError, match="capacity"):
        run_workflow(_pipeline()[0], capacity=-1)
    with pytest.raises(ValueError, match="capacity"):
        run_stream(Stream(["x"], ["y"], fn=_double), {"x": [1]}, capacity=-1)
    with pytest.raises(TypeError, match="inputs must map input port names to items"):
        run_stream(Stream(["x"], ["y"], fn=_double), [1, 2])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="the items for input 'x' must be iterable"):
        run_stream(Stream(["x"], ["y"], fn=_double), {"x": 5})  # type: ignore[dict-item]


def test_an_async_iterable_input_is_closed_when_the_run_fails() -> None:
    closed: list[str] = []

    async def forever() -> AsyncIterator[int]:
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.append("closed")

    async def boom(ins: Ins, outs: Outs, state: Any) -> None:
        await ins.x.pop()
        raise ValueError("stop")

    async def main() -> None:
        with pytest.raises(ValueError, match="stop"):
            await run_stream_async(Stream(["x"], fn=boom), {"x": forever()})
        # Inside a running loop nothing else would close it: it must be closed already.
        assert closed == ["closed"]

    asyncio.run(main())


@pytest.mark.timeout(10)
def test_an_endless_iterator_input_is_read_only_as_far_as_the_stream_takes() -> None:
    import itertools

    async def take_two(ins: Ins, outs: Outs, state: Any) -> None:
        await outs.y.push(await ins.x.pop())
        await outs.y.push(await ins.x.pop())

    assert run_stream(Stream(["x"], ["y"], fn=take_two), {"x": itertools.count()}, timeout=5) == {"y": [0, 1]}


@pytest.mark.timeout(10)
def test_the_timeout_holds_while_an_endless_input_is_read() -> None:
    import itertools

    async def never_reads(ins: Ins, outs: Outs, state: Any) -> None:
        await asyncio.Event().wait()

    with pytest.raises(TimeoutError, match=r"did not finish within 0\.2 s"):
        run_stream(Stream(["x"], ["y"], fn=never_reads), {"x": itertools.count()}, timeout=0.2)


def test_a_generator_input_is_closed_when_the_stream_stops_early() -> None:
    closed: list[str] = []

    def numbers() -> Any:
        try:
            yield from range(1000)
        finally:
            closed.append("closed")

    async def take_one(ins: Ins, outs: Outs, state: Any) -> None:
        await outs.y.push(await ins.x.pop())

    assert run_stream(Stream(["x"], ["y"], fn=take_one), {"x": numbers()}) == {"y": [0]}
    assert closed == ["closed"]


def test_run_stream_refuses_what_is_not_a_stream_saying_what_to_use() -> None:
    from mimo import lib

    with pytest.raises(TypeError, match="run_stream\\(\\) runs one Stream, not 42"):
        run_stream(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="for a chain or a workflow use run_workflow"):
        run_stream(lib.range(3) | lib.collect())  # type: ignore[arg-type]


@pytest.mark.timeout(30)
def test_200_runs_ok_failing_and_timed_out_leave_no_thread_or_file_descriptor_behind() -> None:
    import os
    import threading

    async def hang(ins: Ins, outs: Outs, state: Any) -> None:
        await asyncio.Event().wait()

    async def boom(ins: Ins, outs: Outs, state: Any) -> None:
        await ins.x.pop()
        raise ValueError("boom")

    def fds() -> int:
        return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 0

    before = (fds(), threading.active_count())
    outcomes = {"ok": 0, "failed": 0, "timed out": 0}
    for i in range(200):
        try:
            if i % 3 == 0:
                run_stream(Stream(["x"], ["y"], fn=_double), {"x": iter(range(5))})
                outcomes["ok"] += 1
            elif i % 3 == 1:
                run_stream(Stream(["x"], fn=boom), {"x": iter(range(5))})
            else:
                run_workflow(Workflow().add_stream(Stream(outs=["y"], fn=hang)).workflow, timeout=0.005)
        except ValueError:
            outcomes["failed"] += 1
        except TimeoutError:
            outcomes["timed out"] += 1
    assert outcomes == {"ok": 67, "failed": 67, "timed out": 66}
    assert (fds(), threading.active_count()) == before
