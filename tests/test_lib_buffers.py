"""mimo.lib.buffers: buffer(size, overflow=...) with Akka's overflow strategies."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mimo import In, Out, lib, stream
from mimo.testing import run_stream, run_workflow
from tests.operator_helpers import cancel_while_running, endless


def gated(gate: asyncio.Event, got: list[Any]) -> Any:
    """A sink that takes nothing until ``gate`` is set (by the test's source), then everything."""

    @stream(name="gated")
    async def sink(inp: In[Any]) -> None:
        await gate.wait()
        async for item in inp:
            got.append(item)

    return sink


def burst(items: list[Any], gate: asyncio.Event) -> Any:
    """A source that pushes ``items`` at once, then lets a few loop turns pass and opens ``gate``."""

    @stream(name="burst")
    async def source(out: Out[Any]) -> None:
        for item in items:
            await out.push(item)
        for _ in range(20):  # loop turns, not time: the buffer has read all it can
            await asyncio.sleep(0)
        gate.set()

    return source


def _run_burst(overflow: Any, n: int = 10, size: int = 3) -> tuple[list[int], Any]:
    gate = asyncio.Event()
    got: list[int] = []
    b = lib.buffer(size, overflow=overflow)
    # Queues of 1: the buffer's own items are all the slack there is.
    report = run_workflow(burst(list(range(n)), gate) | b | gated(gate, got), timeout=5, capacity=1)
    return got, report


@pytest.mark.timeout(10)
def test_drop_oldest_keeps_the_newest_items_and_counts_the_drops() -> None:
    got, report = _run_burst("drop_oldest")
    # 0 waits in the sink's queue and 1 in the buffer's pending push; of the rest the newest three are held.
    assert got == [0, 1, 7, 8, 9]
    assert report["buffer"].dropped == {"inp": 5}
    assert report["buffer"].total_dropped == 5


@pytest.mark.timeout(10)
def test_drop_newest_keeps_the_oldest_items_and_counts_the_drops() -> None:
    got, report = _run_burst("drop_newest")
    assert got == [0, 1, 2, 3, 4]
    assert report["buffer"].dropped == {"inp": 5}
    assert report.to_dict()["streams"]["buffer"]["dropped"] == {"inp": 5}


@pytest.mark.timeout(10)
def test_fail_fails_the_run_naming_the_stream_when_full() -> None:
    with pytest.raises(OverflowError, match=r"buffer 'buffer': 3 items buffered and another came") as info:
        _run_burst("fail")
    assert info.value.mimo_stream == "buffer"  # type: ignore[attr-defined]


@pytest.mark.timeout(10)
def test_block_loses_nothing_and_holds_the_producer_back() -> None:
    pushed: list[int] = []
    seen_by_then: list[int] = []

    @stream
    async def producer(out: Out[int]) -> None:
        for i in range(20):
            await out.push(i)
            pushed.append(i)

    @stream
    async def late(inp: In[int]) -> None:
        for _ in range(50):  # loop turns, not time: the producer pushes all it can meanwhile
            await asyncio.sleep(0)
        seen_by_then.append(len(pushed))
        got.extend([x async for x in inp])

    got: list[int] = []
    report = run_workflow(producer | lib.buffer(3) | late, timeout=5, capacity=1)
    assert got == list(range(20)) and report["buffer"].dropped == {"inp": 0}
    assert seen_by_then[0] < 10  # queues of 1 and 3 held: the producer waited for room


@pytest.mark.parametrize("overflow", ["block", "drop_oldest", "drop_newest", "fail"])
def test_a_buffer_that_keeps_up_passes_every_item_in_order(overflow: Any) -> None:
    got = run_stream(lib.buffer(100, overflow=overflow), {"inp": list(range(50))})
    assert got == {"out": list(range(50))}
    assert got.report["buffer"].dropped == {"inp": 0}


def test_buffer_settings_are_checked_when_made() -> None:
    with pytest.raises(ValueError, match=r"buffer\(\): size must be an int >= 1, not 0"):
        lib.buffer(0)
    with pytest.raises(TypeError, match=r"buffer\(\): size must be an int >= 1, not True"):
        lib.buffer(True)
    with pytest.raises(ValueError, match=r"buffer\(\): overflow must be one of 'block', 'drop_oldest'.*not 'drop'"):
        lib.buffer(3, overflow="drop")  # type: ignore[arg-type]


@pytest.mark.timeout(10)
@pytest.mark.parametrize("overflow", ["block", "drop_oldest"])
def test_buffer_stops_when_its_consumer_leaves(overflow: Any) -> None:
    finals: list[str] = []
    got: list[int] = []
    report = run_workflow(
        endless(finals) | lib.buffer(4, overflow=overflow) | lib.take(3) | lib.collect(got), timeout=5
    )
    assert len(got) == 3 and finals == ["source"] and report["buffer"].stopped_early


@pytest.mark.timeout(10)
@pytest.mark.parametrize("overflow", ["block", "drop_newest"])
def test_buffer_ends_cleanly_when_the_run_is_cancelled(overflow: Any) -> None:
    assert cancel_while_running(lib.buffer(4, overflow=overflow)) == ["source"]


@given(
    st.lists(st.integers(), max_size=40),
    st.integers(1, 5),
    st.sampled_from(["block", "drop_oldest", "drop_newest"]),
)
def test_a_buffer_passes_a_subsequence_in_order_and_counts_every_item_it_drops(
    items: list[int], size: int, overflow: Any
) -> None:
    got = run_stream(lib.buffer(size, overflow=overflow), {"inp": list(enumerate(items))}, capacity=1)
    out = got["out"]
    assert out == sorted(out)  # in order (items are numbered)
    assert set(out) <= set(enumerate(items))
    assert len(out) + got.report["buffer"].dropped["inp"] == len(items)
    if overflow == "block":
        assert out == list(enumerate(items))
