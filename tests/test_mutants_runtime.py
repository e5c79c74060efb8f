"""The runtime: behaviour that mutation testing found untested (see docs/mutation.md)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from mimo import DeadlockError, Stream, Workflow, run_together
from mimo._runtime import run_graph
from mimo.testing import run_workflow
from tests.helpers import chain, source


@pytest.mark.timeout(10)
def test_the_live_report_counts_waits_still_going_on_and_the_final_one_every_wait() -> None:
    """What the progress view and the dashboard show while a stream waits."""

    async def src(ins: Any, outs: Any, state: Any) -> None:
        await outs.out.push(0)
        await outs.out.push(1)  # the queue holds one and the sink reads late: blocked
        await asyncio.sleep(0.4)  # meanwhile the sink waits for the next item: starved
        await outs.out.push(2)

    async def sink(ins: Any, outs: Any, state: Any) -> None:
        await asyncio.sleep(0.3)
        async for _ in ins.inp:
            pass

    wf = chain(Stream(outs=["out"], fn=src, name="src"), Stream(["inp"], fn=sink, name="sink"), capacity=1)

    async def main() -> None:
        snapshot: Any = None

        def on_start(snap: Any) -> None:
            nonlocal snapshot
            snapshot = snap

        run = asyncio.create_task(run_graph(wf.graph, on_start=on_start))
        await asyncio.sleep(0.2)
        live = snapshot()
        assert 0.15 <= live.elapsed_s < 2.0
        assert 0.15 <= live["src"].elapsed_s < 2.0
        assert 0.15 <= live["src"].blocked_s < 2.0
        assert live["src"].starved_s == 0.0
        assert not live["src"].stopped_early and not live["src"].done
        await asyncio.sleep(0.35)
        live = snapshot()
        assert 0.1 <= live["sink"].starved_s < 2.0
        assert live["sink"].blocked_s == 0.0
        report = await asyncio.wait_for(run, 5)
        assert report["sink"].items_in == {"inp": 3}
        assert 0.2 <= report["sink"].starved_s <= report["sink"].elapsed_s
        assert report["sink"].blocked_s == 0.0
        assert 0.15 <= report["src"].blocked_s <= report["src"].elapsed_s
        assert (report["src"].retries, report["sink"].retries) == (0, 0)
        for s in (report["src"], report["sink"]):  # busy, blocked and starved add up to the stream's life
            assert abs(s.busy_s + s.blocked_s + s.starved_s - s.elapsed_s) < 0.02
        assert not report["src"].stopped_early

    asyncio.run(main())


def test_an_output_joined_to_nothing_is_warned_about_when_the_run_starts(caplog: pytest.LogCaptureFixture) -> None:
    async def talks(ins: Any, outs: Any, state: Any) -> None:
        await outs.nowhere.push(1)

    wf = Workflow()
    wf.add_stream(Stream(outs=["nowhere"], fn=talks, name="lone"))
    with caplog.at_level(logging.WARNING, logger="mimo"):
        run_workflow(wf, timeout=5)
    assert "output lone.nowhere is joined to nothing; what it pushes is discarded" in caplog.text


@pytest.mark.timeout(10)
def test_a_deadlock_among_the_streams_left_after_another_finished_is_found() -> None:
    async def quick(ins: Any, outs: Any, state: Any) -> None:
        await asyncio.sleep(0.1)  # a and b are stuck by then: this end is the last thing that happens

    async def wait_first(ins: Any, outs: Any, state: Any) -> None:
        await outs.out.push(await ins.inp.pop())

    wf = Workflow()
    wf.add_stream(Stream(fn=quick, name="quick"))
    a = wf.add_stream(Stream(["inp"], ["out"], fn=wait_first, name="a"))
    b = wf.add_stream(Stream(["inp"], ["out"], fn=wait_first, name="b"))
    a.pipe(b).pipe(a)
    with pytest.raises(DeadlockError, match=r"'a' waits to pop from b\.out -> a\.inp"):
        run_workflow(wf, timeout=5)


@pytest.mark.timeout(10)
def test_a_producer_whose_consumer_left_before_it_began_is_reported_stopped_early() -> None:
    async def endless(ins: Any, outs: Any, state: Any) -> None:
        i = 0
        while True:
            await outs.out.push(i)
            i += 1

    async def leaves(ins: Any, outs: Any, state: Any) -> None:
        return  # reads nothing

    wf = Workflow()
    sink = wf.add_stream(Stream(["inp"], fn=leaves, name="leaves"))
    wf.add_stream(Stream(outs=["out"], fn=endless, name="src")).pipe(sink)
    report = run_workflow(wf, timeout=5)
    assert report["src"].stopped_early
    assert report["src"].items_out == {"out": 0}


def test_an_empty_workflow_runs_at_once_and_reports_nothing() -> None:
    report = Workflow().run()
    assert len(report.streams) == 0
    assert 0.0 <= report.elapsed_s < 1.0


def test_a_failing_run_raises_the_error_and_logs_nothing_as_lost(caplog: pytest.LogCaptureFixture) -> None:
    async def boom(ins: Any, outs: Any, state: Any) -> None:
        raise ValueError("boom")

    wf = Workflow()
    wf.add_stream(Stream(fn=boom, name="boom"))
    with caplog.at_level(logging.ERROR, logger="mimo"), pytest.raises(ValueError, match=r"^boom\n"):
        run_workflow(wf, timeout=5)
    assert "while the run was being cancelled" not in caplog.text


@pytest.mark.timeout(10)
def test_a_run_cancelled_from_outside_logs_no_error_for_streams_that_ended_cleanly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def sleepy(ins: Any, outs: Any, state: Any) -> None:
        async for _ in ins.inp:
            pass
        await asyncio.sleep(60)

    wf = chain(source([1, 2, 3], name="src"), Stream(["inp"], fn=sleepy, name="sleepy"))

    async def main() -> None:
        # asyncio.timeout's own error has no message; mimo's timeouts all have one.
        with pytest.raises(TimeoutError, match="^$"):
            async with asyncio.timeout(0.2):
                await wf.run_async()

    with caplog.at_level(logging.ERROR, logger="mimo"):
        asyncio.run(main())
    assert "failed while the run was being cancelled" not in caplog.text


@pytest.mark.timeout(10)
def test_cancelling_a_run_again_stops_a_stream_that_swallowed_the_first_cancellation() -> None:
    async def stubborn(ins: Any, outs: Any, state: Any) -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            await asyncio.sleep(60)  # ignores the first cancellation

    wf = Workflow()
    wf.add_stream(Stream(fn=stubborn, name="stubborn"))

    async def main() -> None:
        run = asyncio.create_task(wf.run_async())
        await asyncio.sleep(0.1)
        run.cancel()
        await asyncio.sleep(0.1)
        assert not run.done()  # the teardown waits for the stream ...
        run.cancel()  # ... until a second cancellation, which reaches it too
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(run, 2)

    asyncio.run(main())


def test_each_stream_reports_its_own_life_not_the_runs() -> None:
    async def quick(ins: Any, outs: Any, state: Any) -> None:
        return

    async def slow(ins: Any, outs: Any, state: Any) -> None:
        await asyncio.sleep(0.3)

    wf = Workflow()
    wf.add_stream(Stream(fn=quick, name="quick"))
    wf.add_stream(Stream(fn=slow, name="slow"))
    report = run_workflow(wf, timeout=5)
    assert report["quick"].elapsed_s < 0.1
    assert 0.3 <= report["slow"].elapsed_s <= report.elapsed_s


@pytest.mark.timeout(10)
def test_a_chain_whose_sink_left_before_the_rest_began_is_stopped_early_up_to_its_source() -> None:
    async def endless(ins: Any, outs: Any, state: Any) -> None:
        i = 0
        while True:
            await outs.out.push(i)
            i += 1

    async def relay(ins: Any, outs: Any, state: Any) -> None:
        async for item in ins.inp:
            await outs.out.push(item)

    async def leaves(ins: Any, outs: Any, state: Any) -> None:
        return  # reads nothing

    wf = Workflow(capacity=2)
    sink = wf.add_stream(Stream(["inp"], fn=leaves, name="leaves"))
    mid = wf.add_stream(Stream(["inp"], ["out"], fn=relay, name="mid"))
    wf.add_stream(Stream(outs=["out"], fn=endless, name="src")).pipe(mid).pipe(sink)
    report = run_workflow(wf, timeout=5)
    assert report["mid"].stopped_early and report["src"].stopped_early


def test_run_together_also_works_outside_a_run() -> None:
    """A stream's body may be tested alone, with plain asyncio."""
    done: list[str] = []

    async def job(name: str) -> None:
        await asyncio.sleep(0.01)
        done.append(name)

    asyncio.run(run_together(job("a"), job("b")))
    assert sorted(done) == ["a", "b"]


@pytest.mark.timeout(10)
def test_run_together_never_hides_a_failure_behind_a_consumers_gone() -> None:
    from mimo import ConsumersGone

    async def fails() -> None:
        await asyncio.sleep(0.01)
        raise ValueError("bad job")

    async def leaves_when_cancelled() -> None:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            raise ConsumersGone("no consumer left") from None

    with pytest.raises(ExceptionGroup, match="unhandled errors in a TaskGroup") as info:
        asyncio.run(run_together(fails(), leaves_when_cancelled()))
    assert info.group_contains(ValueError, match="^bad job$")
