"""mimo.lib.timing: timeout and debounce, on a ManualClock (no real waiting) and on the loop's clock."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

from mimo import In, Out, lib, stream
from mimo.lib import ManualClock
from mimo.testing import run_stream, run_workflow
from tests.operator_helpers import cancel_while_running, endless


def script(clock: ManualClock, *steps: Any) -> Any:
    """A source that follows ``steps``: an item is pushed; a float waits for the stage to sleep, then advances."""

    @stream(name="script")
    async def source(out: Out[Any]) -> None:
        for step in steps:
            if isinstance(step, float):
                await clock.until_sleeping()
                clock.advance(step)
            else:
                await out.push(step)

    return source


# -- timeout -----------------------------------------------------------------------


def test_timeout_passes_items_on_and_ends_with_its_input() -> None:
    assert run_stream(lib.timeout(5), {"inp": [1, 2, 3]}) == {"out": [1, 2, 3]}


@pytest.mark.timeout(10)
def test_timeout_fails_the_run_naming_the_stream_when_the_input_falls_silent() -> None:
    clock = ManualClock()
    got: list[str] = []
    flow = script(clock, "a", 0.9, "b", 0.9, "c", 1.0, "never") | lib.timeout(1.0, clock=clock) | lib.collect(got)
    with pytest.raises(TimeoutError, match=r"timeout 'timeout': no item on its input for 1 s") as info:
        run_workflow(flow, timeout=5)
    assert info.value.mimo_stream == "timeout"  # type: ignore[attr-defined]
    assert got == ["a", "b", "c"]  # 0.9 s gaps are not silences


@pytest.mark.timeout(10)
def test_time_spent_pushing_to_a_slow_consumer_is_not_silence() -> None:
    clock = ManualClock()
    reading = asyncio.Event()
    got: list[int] = []

    @stream
    async def source(out: Out[int]) -> None:
        await out.push(1)
        await out.push(2)
        await reading.wait()
        while not clock.sleeping:  # until the stage, done pushing 2, waits for 3
            await asyncio.sleep(0)
        clock.advance(0.5)
        await out.push(3)

    @stream
    async def late_reader(inp: In[int]) -> None:
        for _ in range(20):  # loop turns: the stage is now stuck pushing 2 (queues of 1)
            await asyncio.sleep(0)
        clock.advance(100.0)  # a long time blocked on a full queue
        reading.set()
        got.extend([x async for x in inp])

    run_workflow(source | lib.timeout(1.0, clock=clock) | late_reader, timeout=5, capacity=1)
    assert got == [1, 2, 3]


@pytest.mark.timeout(10)
def test_timeout_counts_the_wait_for_the_first_item() -> None:
    clock = ManualClock()
    with pytest.raises(TimeoutError, match=r"no item on its input for 2 s"):
        run_workflow(script(clock, 2.0, "late") | lib.timeout(2, clock=clock) | lib.collect([]), timeout=5)


@pytest.mark.timeout(10)
def test_timeout_on_the_loop_clock_fails_a_silent_run_and_stops_the_source() -> None:
    finals: list[str] = []

    @stream
    async def stuck(out: Out[int]) -> None:
        try:
            await out.push(1)
            await asyncio.Event().wait()  # a source that hangs
        finally:
            finals.append("stuck")

    got: list[int] = []
    with pytest.raises(TimeoutError, match=r"timeout 'limit': no item on its input for 0.05 s"):
        run_workflow(stuck | lib.timeout(0.05, name="limit") | lib.collect(got), timeout=5)
    assert got == [1] and finals == ["stuck"]


@pytest.mark.timeout(10)
def test_timeout_stops_when_its_consumer_leaves() -> None:
    finals: list[str] = []
    got: list[int] = []
    report = run_workflow(endless(finals) | lib.timeout(5) | lib.take(3) | lib.collect(got), timeout=5)
    assert got == [0, 1, 2] and finals == ["source"] and report["timeout"].stopped_early


# -- debounce ----------------------------------------------------------------------


@pytest.mark.timeout(10)
def test_debounce_passes_the_last_item_of_each_burst_and_the_pending_one_at_the_end() -> None:
    clock = ManualClock()
    got: list[str] = []
    flow = script(clock, "a", "b", "c", 1.0, "d", "e") | lib.debounce(1.0, clock=clock) | lib.collect(got)
    run_workflow(flow, timeout=5)
    assert got == ["c", "e"]


@pytest.mark.timeout(10)
def test_debounce_waits_for_a_full_quiet_spell_after_the_last_item() -> None:
    clock = ManualClock()
    got: list[int] = []
    # Gaps of 0.6 s under a 1 s debounce: one burst; the end of input lets its last item out.
    flow = script(clock, 1, 0.6, 2, 0.6, 3, 0.6) | lib.debounce(1.0, clock=clock) | lib.collect(got)
    run_workflow(flow, timeout=5)
    assert got == [3]


@pytest.mark.timeout(10)
def test_debounce_passes_items_spaced_wider_than_its_seconds() -> None:
    clock = ManualClock()
    got: list[int] = []
    flow = script(clock, 1, 1.5, 2, 1.0, 3) | lib.debounce(1.0, clock=clock) | lib.collect(got)
    run_workflow(flow, timeout=5)
    assert got == [1, 2, 3]


def test_debounce_of_items_already_queued_keeps_the_last() -> None:
    assert run_stream(lib.debounce(5), {"inp": [1, 2, 3]}) == {"out": [3]}
    assert run_stream(lib.debounce(5), {"inp": []}) == {"out": []}


@pytest.mark.timeout(10)
def test_debounce_on_the_loop_clock_lets_an_item_out_after_a_quiet_spell() -> None:
    finals: list[str] = []

    @stream
    async def one_then_silence(out: Out[int]) -> None:
        try:
            await out.push(1)
            await asyncio.Event().wait()
        finally:
            finals.append("source")

    got: list[int] = []
    run_workflow(one_then_silence | lib.debounce(0.02) | lib.take(1) | lib.collect(got), timeout=5)
    assert got == [1] and finals == ["source"]


@pytest.mark.timeout(10)
def test_debounce_stops_when_its_consumer_leaves() -> None:
    clock = ManualClock()
    finals: list[str] = []

    @stream
    async def bursts(out: Out[int]) -> None:
        try:
            for i in range(10**6):
                await out.push(i)
                await clock.until_sleeping()
                clock.advance(1.0)
        finally:
            finals.append("bursts")

    got: list[int] = []
    report = run_workflow(bursts | lib.debounce(1.0, clock=clock) | lib.take(2) | lib.collect(got), timeout=5)
    assert got == [0, 1] and finals == ["bursts"] and report["debounce"].stopped_early


# -- both --------------------------------------------------------------------------


@pytest.mark.parametrize("make", [lib.timeout, lib.debounce])
def test_seconds_and_clock_are_checked_when_made(make: Any) -> None:
    owner = make.__name__
    for bad in (0, -1, math.nan, math.inf):
        with pytest.raises(ValueError, match=rf"{owner}\(\): seconds must be a finite number of seconds > 0"):
            make(bad)
    for wrong in (True, "1", None):
        with pytest.raises(TypeError, match=rf"{owner}\(\): seconds must be a number of seconds > 0, not"):
            make(wrong)
    with pytest.raises(TypeError, match=rf"{owner}\(\): clock must have now\(\) and sleep\(seconds\)"):
        make(1, clock=3)


@pytest.mark.timeout(10)
@pytest.mark.parametrize("make", [lib.timeout, lib.debounce])
def test_a_cancelled_run_leaves_no_task_behind(make: Any) -> None:
    assert cancel_while_running(make(5)) == ["source"]
    assert cancel_while_running(make(5, clock=ManualClock())) == ["source"]


@pytest.mark.timeout(10)
def test_a_cancelled_run_leaves_no_task_while_the_stage_races_its_clock() -> None:
    clock = ManualClock()
    finals: list[str] = []

    @stream
    async def quiet(out: Out[int]) -> None:
        try:
            await out.push(1)
            await asyncio.Event().wait()
        finally:
            finals.append("quiet")

    async def main() -> None:
        from mimo.testing import run_workflow_async

        run = asyncio.ensure_future(
            run_workflow_async(quiet | lib.timeout(9, clock=clock) | lib.collect([]), timeout=None)
        )
        await clock.until_sleeping()  # the stage is racing a pop against the clock
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        assert clock.sleeping == 0
        assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []

    asyncio.run(main())
    assert finals == ["quiet"]


class _BrokenClock:
    def now(self) -> float:
        return 0.0

    async def sleep(self, seconds: float) -> None:
        raise RuntimeError("the clock broke")


@pytest.mark.timeout(10)
def test_a_clock_that_fails_fails_the_run_with_its_error() -> None:
    @stream
    async def silent(out: Out[int]) -> None:
        await asyncio.Event().wait()

    with pytest.raises(RuntimeError, match="the clock broke"):
        run_workflow(silent | lib.timeout(1, clock=_BrokenClock()) | lib.collect([]), timeout=5)
