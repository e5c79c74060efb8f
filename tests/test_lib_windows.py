"""Windows: tumbling, sliding and session, on processing time (a clock) or event time (timestamps).

Processing-time tests drive a :class:`~mimo.lib.ManualClock` from the source,
so no test sleeps and none depends on how loaded the machine is.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import mimo
from mimo import Out, Window, WorkflowError, lib, stream
from mimo.lib import ManualClock
from mimo.testing import run_stream

#: A step of a scripted source: at time t, push item (or, with WAIT, wait for n windows to arrive).
WAIT = object()


def scripted(clock: ManualClock, steps: Sequence[tuple[float, Any]], seen: list[Any] | None = None) -> Any:
    """A source that sets ``clock`` to each step's time, then pushes its item and waits until the stage took it."""

    @stream
    async def source(out: Out[Any]) -> None:
        for t, item in steps:
            clock.set(t)
            if isinstance(item, tuple) and item and item[0] is WAIT:
                assert seen is not None
                while len(seen) < item[1]:  # the stage pushes windows when the clock passes their end
                    await asyncio.sleep(0.001)
                continue
            await out.push(item)
            await clock.until_sleeping()

    return source


def spans_of(windows: list[Window[Any]]) -> list[tuple[Any, float, float, tuple[Any, ...]]]:
    return [(w.key, w.start, w.end, w.items) for w in windows]


# -- processing time ---------------------------------------------------------------


@pytest.mark.timeout(10)
def test_tumbling_on_processing_time_groups_items_by_the_time_they_arrive() -> None:
    clock = ManualClock()
    got: list[Window[Any]] = []
    steps = [(0.5, "a"), (1.0, "b"), (3.0, "c"), (5.9, "d"), (6.0, "e")]
    (scripted(clock, steps) | lib.tumbling(3.0, clock=clock) | lib.collect(got)).run()
    assert spans_of(got) == [(None, 0.0, 3.0, ("a", "b")), (None, 3.0, 6.0, ("c", "d")), (None, 6.0, 9.0, ("e",))]


@pytest.mark.timeout(10)
def test_a_window_closes_when_its_time_passes_even_if_no_item_comes() -> None:
    clock = ManualClock()
    got: list[Window[Any]] = []
    # At 2.5 nothing arrives: the source waits until the first window was pushed, which only the timer can do.
    steps = [(0.5, "a"), (2.5, (WAIT, 1)), (2.6, "b")]
    (scripted(clock, steps, got) | lib.tumbling(2.0, clock=clock) | lib.collect(got)).run()
    assert spans_of(got) == [(None, 0.0, 2.0, ("a",)), (None, 2.0, 4.0, ("b",))]


@pytest.mark.timeout(10)
def test_the_wall_clock_closes_a_window_without_a_new_item() -> None:
    got: list[Window[int]] = []

    @stream
    async def one_then_wait(out: Out[int]) -> None:
        await out.push(1)
        while not got:  # ends only once the timer pushed the window
            await asyncio.sleep(0.005)

    (one_then_wait | lib.tumbling(0.05) | lib.collect(got)).run()
    assert [w.items for w in got] == [(1,)]
    assert got[0].end - got[0].start == pytest.approx(0.05)


@pytest.mark.timeout(10)
def test_every_open_window_is_pushed_when_the_input_ends() -> None:
    clock = ManualClock(100.0)
    got: list[Window[str]] = []
    (lib.from_iterable(["x", "yy", "z"]) | lib.tumbling(60.0, key=len, clock=clock) | lib.collect(got)).run()
    assert spans_of(got) == [(1, 60.0, 120.0, ("x", "z")), (2, 60.0, 120.0, ("yy",))]


@pytest.mark.timeout(10)
def test_sliding_on_processing_time_puts_an_item_in_every_window_holding_its_time() -> None:
    clock = ManualClock()
    got: list[Window[Any]] = []
    steps = [(1.0, "a"), (2.5, "b")]
    (scripted(clock, steps) | lib.sliding(2.0, 1.0, clock=clock) | lib.collect(got)).run()
    assert spans_of(got) == [
        (None, 0.0, 2.0, ("a",)),
        (None, 1.0, 3.0, ("a", "b")),
        (None, 2.0, 4.0, ("b",)),
    ]


@pytest.mark.timeout(10)
def test_a_session_closes_after_gap_seconds_of_quiet() -> None:
    clock = ManualClock()
    got: list[Window[Any]] = []
    steps = [(0.0, "a"), (0.8, "b"), (1.5, "c"), (3.0, (WAIT, 1)), (4.0, "d")]
    (scripted(clock, steps, got) | lib.session(1.0, clock=clock) | lib.collect(got)).run()
    assert spans_of(got) == [(None, 0.0, 2.5, ("a", "b", "c")), (None, 4.0, 5.0, ("d",))]


# -- event time --------------------------------------------------------------------


def ts(item: tuple[float, str]) -> float:
    return item[0]


def test_event_time_windows_follow_the_items_timestamps_not_the_clock() -> None:
    items = [(1, "a"), (7, "b"), (2, "c"), (12, "d")]
    outs = run_stream(lib.tumbling(5, timestamp=ts, allowed_lateness=10), {"inp": items})
    assert spans_of(outs["out"]) == [
        (None, 0, 5, ((1, "a"), (2, "c"))),
        (None, 5, 10, ((7, "b"),)),
        (None, 10, 15, ((12, "d"),)),
    ]
    assert outs["late"] == []


def test_an_item_behind_the_watermark_goes_to_late_and_is_counted() -> None:
    # Watermark = latest timestamp - 1: after (9, ..) it is 8, so (3, ..) and (7, ..) are late.
    items = [(1, "a"), (9, "b"), (3, "c"), (8, "d"), (7, "e")]
    outs = run_stream(lib.tumbling(5, timestamp=ts, allowed_lateness=1, name="w"), {"inp": items})
    assert outs["late"] == [(3, "c"), (7, "e")]
    assert spans_of(outs["out"]) == [(None, 0, 5, ((1, "a"),)), (None, 5, 10, ((9, "b"), (8, "d")))]
    assert outs.report.streams["w"].items_out == {"out": 2, "late": 2}


def test_late_items_are_counted_even_when_late_is_joined_to_nothing() -> None:
    windows: list[Window[Any]] = []
    flow = lib.from_iterable([(5, "a"), (1, "b")]) | lib.tumbling(2, timestamp=ts, name="w")
    report = (flow.out["out"] >> lib.collect(windows).in_["inp"]).run()
    assert [w.items for w in windows] == [((5, "a"),)]
    assert report.streams["w"].items_out["late"] == 1


def test_a_window_closes_when_the_watermark_passes_its_end() -> None:
    pushed: list[Window[Any]] = []
    seen_at: list[int] = []

    @stream
    async def source(out: Out[tuple[float, str]]) -> None:
        for item in [(1, "a"), (4, "b"), (6, "c"), (9, "d")]:
            await out.push(item)
            for _ in range(20):  # let the stage catch up; asyncio's order, not real time
                await asyncio.sleep(0)
            seen_at.append(len(pushed))

    flow = source | lib.tumbling(3, timestamp=ts, allowed_lateness=2)
    flow.out["out"] >> lib.collect(pushed).in_["inp"]
    flow.run()
    # [0, 3) closes at watermark 4 (6 - 2), [3, 6) at 7 (9 - 2); the last one at the end.
    assert seen_at == [0, 0, 1, 2]
    assert [w.items for w in pushed] == [((1, "a"),), ((4, "b"),), ((6, "c"),), ((9, "d"),)]


def test_per_key_windows_are_separate() -> None:
    items = [(1, "x"), (2, "y"), (3, "x"), (11, "y")]
    outs = run_stream(lib.tumbling(10, timestamp=ts, key=lambda i: i[1], allowed_lateness=100), {"inp": items})
    assert spans_of(outs["out"]) == [
        ("x", 0, 10, ((1, "x"), (3, "x"))),
        ("y", 0, 10, ((2, "y"),)),
        ("y", 10, 20, ((11, "y"),)),
    ]


def test_an_event_time_session_merges_when_an_item_bridges_two() -> None:
    items = [(0, "a"), (10, "b"), (5, "c"), (30, "d")]
    outs = run_stream(lib.session(6, timestamp=ts, allowed_lateness=20), {"inp": items})
    assert spans_of(outs["out"]) == [(None, 0, 16, ((0, "a"), (10, "b"), (5, "c"))), (None, 30, 36, ((30, "d"),))]


def test_event_time_windows_have_a_late_port_so_they_are_joined_by_name() -> None:
    with pytest.raises(WorkflowError, match=r"2 output ports.*'out', 'late'"):
        lib.range(3) | lib.tumbling(1, timestamp=float) | lib.collect([])


# -- ending, errors, cancellation --------------------------------------------------------------


def test_a_failing_timestamp_function_fails_the_run() -> None:
    def broken(item: int) -> float:
        raise KeyError(f"no time in {item}")

    with pytest.raises(KeyError, match="no time in 2"):
        run_stream(lib.tumbling(1, timestamp=broken), {"inp": [2]})


def test_a_timestamp_that_is_not_a_number_fails_the_run_saying_so() -> None:
    with pytest.raises(TypeError, match=r"timestamp\(item\) must be a finite number of seconds, not 'x'"):
        run_stream(lib.sliding(2, 1, timestamp=lambda _: "x"), {"inp": [1]})


def test_an_unhashable_key_fails_the_run_saying_so() -> None:
    with pytest.raises(TypeError, match=r"key\(item\) must be hashable, not list"):
        run_stream(lib.session(2, key=lambda i: [i], clock=ManualClock()), {"inp": [1]})


@pytest.mark.timeout(10)
def test_a_consumer_that_leaves_early_ends_the_stage_quietly() -> None:
    first: list[Window[int]] = []

    @stream
    async def one(inp: mimo.In[Window[int]]) -> None:
        first.append(await inp.pop())

    report = (lib.range(1000) | lib.tumbling(1, timestamp=float, name="w")).out["out"] >> one.in_["inp"]
    r = report.run(capacity=2)
    assert [w.items for w in first] == [(0,)]
    assert r.streams["w"].stopped_early


@pytest.mark.timeout(10)
def test_cancelling_the_run_while_the_stage_waits_for_its_timer_leaves_nothing_behind() -> None:
    clock = ManualClock()
    got: list[Window[int]] = []

    @stream
    async def one_then_forever(out: Out[int]) -> None:
        await out.push(1)
        await asyncio.Event().wait()

    async def main() -> set[asyncio.Task[Any]]:
        run = asyncio.create_task((one_then_forever | lib.tumbling(5, clock=clock) | lib.collect(got)).run_async())
        await clock.until_sleeping()
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        return asyncio.all_tasks() - {asyncio.current_task()}  # type: ignore[operator]

    assert asyncio.run(main()) == set()
    assert got == []  # a cancelled run pushes no window
    assert clock.sleeping == 0


# -- the property --------------------------------------------------------------------


@st.composite
def timed_items(draw: st.DrawFn) -> list[tuple[int, int, int]]:
    """(timestamp, key, serial) items, roughly in time order with some stragglers."""
    n = draw(st.integers(0, 30))
    t = 0
    out = []
    for i in range(n):
        t += draw(st.integers(0, 4))
        jitter = draw(st.integers(0, 6)) if draw(st.booleans()) else 0
        out.append((t - jitter, draw(st.integers(0, 2)), i))
    return out


@given(
    items=timed_items(),
    shape=st.sampled_from(["tumbling", "sliding", "session"]),
    size=st.integers(1, 6),
    every=st.integers(1, 6),
    lateness=st.integers(0, 5),
    keyed=st.booleans(),
)
def test_every_item_lands_in_exactly_its_windows_or_in_late(
    items: list[tuple[int, int, int]], shape: str, size: int, every: int, lateness: int, keyed: bool
) -> None:
    every = size if shape == "tumbling" else min(every, size)
    key = (lambda i: i[1]) if keyed else None
    if shape == "tumbling":
        stage = lib.tumbling(size, timestamp=lambda i: i[0], key=key, allowed_lateness=lateness)
    elif shape == "sliding":
        stage = lib.sliding(size, every, timestamp=lambda i: i[0], key=key, allowed_lateness=lateness)
    else:
        stage = lib.session(size, timestamp=lambda i: i[0], key=key, allowed_lateness=lateness)
    outs = run_stream(stage, {"inp": items})

    # The model: an item is late exactly when its time is below (latest time so far - lateness).
    latest = -math.inf
    on_time = []
    late = []
    for item in items:
        if item[0] < latest - lateness:
            late.append(item)
        else:
            on_time.append(item)
            latest = max(latest, item[0])
    assert outs["late"] == late

    windows: list[Window[tuple[int, int, int]]] = outs["out"]
    for w in windows:
        assert w.key == (w.items[0][1] if keyed else None)
        assert list(w.items) == sorted(w.items, key=lambda i: i[2])  # arrival order
        assert all(w.start <= i[0] < w.end and (not keyed or i[1] == w.key) for i in w.items)
    placed = [i for w in windows for i in w.items]
    if shape == "session":
        # One session per on-time item; a session's items are less than gap apart, its span theirs plus the gap.
        assert sorted(placed) == sorted(on_time)
        for w in windows:
            times = sorted(i[0] for i in w.items)
            assert all(b - a < size for a, b in itertools.pairwise(times))
            assert (w.start, w.end) == (times[0], times[-1] + size)
    else:
        # Each on-time item in every window [k*every, k*every + size) that holds its time, and only there.
        def holding(t: int) -> list[tuple[int, int]]:
            ks = range(t // every - size // every - 2, t // every + 2)
            return [(k * every, k * every + size) for k in ks if k * every <= t < k * every + size]

        expected = sorted((i, span) for i in on_time for span in holding(i[0]))
        assert sorted((i, (w.start, w.end)) for w in windows for i in w.items) == expected


# -- typing ---------------------------------------------------------------------------

TYPED_OK = """
from mimo import Window
from mimo.dsl import PortStream


def first(s: str) -> str:
    return s[:1]


def when(n: int) -> float:
    return float(n)


windows: list[Window[int]] = []
w_flow = lib.range(10) | lib.tumbling(3.0) | lib.collect(windows)
assert_type(w_flow, Closed)
by_letter: list[Window[str]] = []
keyed = lib.from_iterable(["ab"]) | lib.sliding(2.0, 1.0, key=first) | lib.collect(by_letter)
assert_type(keyed, Closed)
s: StageStream[int, Window[int]] = lib.session(1.0)
assert_type(lib.tumbling(1.0, timestamp=when), PortStream)
"""

TYPED_BAD = """
from mimo import Window


def first(s: str) -> str:
    return s[:1]


a = lib.range(3) | lib.tumbling(1.0) | lib.collect(ints)  # E
b = lib.range(3) | lib.sliding(2.0, 1.0, key=first)  # E
c = lib.tumbling(1.0, clock=5)  # E
"""

# pyright does not carry a chain's item type into an unparameterized right-hand stage (see docs/streams.md).
TYPED_BAD_MYPY_ONLY = """
from mimo import Window

texts: list[Window[str]] = []
a = lib.range(3) | lib.tumbling(1.0) | lib.collect(texts)  # E
"""
