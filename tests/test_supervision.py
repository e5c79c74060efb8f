"""Supervision per stream: ``on_error=mimo.Stop()`` (the default) and ``mimo.Restart(...)``."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import mimo
import mimo._supervision as supervision
from mimo import In, Out, Restart, Stop, Stream, Workflow, lib, stream
from mimo._progress import Progress
from mimo._runtime import run_graph
from tests.helpers import chain, collector, source


@pytest.fixture
def delays(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """Back-offs happen at once; the list records each one asked for."""
    asked: list[float] = []

    async def instant(seconds: float) -> None:
        asked.append(seconds)

    monkeypatch.setattr(supervision, "sleep", instant)
    monkeypatch.setattr(supervision, "rand", lambda: 0.0)  # no jitter: the base delay
    yield asked


def failing_on(bad: set[int], name: str = "flaky", **kw: Any) -> Stream:
    """A relay that raises on the items in ``bad`` (each once) and counts its attempts in ``state``."""

    async def fn(ins: Any, outs: Any, state: dict[str, Any]) -> None:
        state["attempts"] = state.get("attempts", 0) + 1
        async for x in ins.inp:
            state["seen"] = state.get("seen", 0) + 1
            if x in bad:
                bad.discard(x)
                raise ValueError(f"bad item {x}")
            await outs.out.push(x)

    return Stream(["inp"], ["out"], fn=fn, name=name, **kw)


# -- the default: Stop -----------------------------------------------------------


@pytest.mark.timeout(10)
def test_stop_is_the_default_and_fails_the_run_as_before() -> None:
    plain = failing_on({3})
    assert plain.on_error == Stop()
    stopped = failing_on({3}, on_error=Stop())
    for s in (plain, stopped):
        got: list[int] = []
        with pytest.raises(ValueError, match="bad item 3") as info:
            chain(source(list(range(10))), s, collector(got)).run()
        assert s.state["attempts"] == 1  # never started again
        assert "in mimo stream 'flaky'" in info.value.__notes__
        assert not any("restart" in n for n in info.value.__notes__)


# -- Restart ---------------------------------------------------------------------


@pytest.mark.timeout(10)
def test_restart_keeps_state_and_queued_items_and_does_not_replay_the_popped_one(delays: list[float]) -> None:
    flaky = failing_on({3, 7}, on_error=Restart())
    got: list[int] = []
    report = chain(source(list(range(10))), flaky, collector(got), capacity=4).run()
    # Everything but the two items popped by the attempts that failed, in order.
    assert got == [0, 1, 2, 4, 5, 6, 8, 9]
    assert flaky.state == {"attempts": 3, "seen": 10}  # one state across the three attempts
    r = report["flaky"]
    assert r.restarts == 2
    assert r.restart_causes == ["ValueError: bad item 3", "ValueError: bad item 7"]
    assert r.items_in == {"inp": 10} and r.items_out == {"out": 8}
    assert r.done and not r.backing_off


@pytest.mark.timeout(10)
def test_backoff_doubles_per_restart_and_stops_at_max_backoff(delays: list[float]) -> None:
    policy = Restart(max_restarts=6, backoff=0.1, max_backoff=0.5)
    flaky = failing_on(set(range(6)), on_error=policy)
    chain(source(list(range(8))), flaky, Stream(["inp"])).run()
    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.5, 0.5, 0.5])


def test_jitter_shortens_a_delay_by_at_most_its_share() -> None:
    policy = Restart(backoff=1.0, max_backoff=8.0, jitter=0.25)
    assert policy.delay(3, 0.0) == 4.0
    assert policy.delay(3, 0.5) == 3.5
    assert 3.0 <= policy.delay(3, 0.999) < 4.0
    assert Restart(jitter=0).delay(2, 0.9) == pytest.approx(0.2)
    # Far past the cap, the arithmetic neither overflows nor exceeds it.
    assert Restart(max_backoff=10).delay(5000, 0.0) == 10.0


@pytest.mark.timeout(10)
def test_the_report_counts_backoff_time_and_not_as_busy(delays: list[float]) -> None:
    flaky = failing_on({1, 2}, on_error=Restart(backoff=0.25, max_backoff=1))
    report = chain(source(list(range(4))), flaky, Stream(["inp"])).run()
    r = report["flaky"]
    assert r.backoff_s == pytest.approx(0.25 + 0.5)
    assert r.busy_s < r.elapsed_s  # the (fake) back-off is not work
    assert report.to_dict()["streams"]["flaky"]["restarts"] == 2
    text = str(report)
    assert re.search(r"^flaky .* 2 \(0\.750s\)$", text, re.M)
    assert "restarted: flaky 2 time(s), 0.750 s backing off; last cause: ValueError: bad item 2" in text


@pytest.mark.timeout(10)
def test_a_report_without_restarts_has_no_restart_column() -> None:
    relay = Stream(["inp"], ["out"], name="relay", on_error=Restart())
    report = chain(source([1, 2]), relay, Stream(["inp"])).run()
    assert "restart" not in str(report)
    assert report["relay"].restarts == 0 and report["relay"].items_out == {"out": 2}


@pytest.mark.timeout(10)
def test_when_restarts_run_out_the_run_fails_with_the_last_error_naming_the_stream(delays: list[float]) -> None:
    flaky = failing_on({1, 2, 3, 4}, on_error=Restart(max_restarts=2))
    got: list[int] = []
    with pytest.raises(ValueError, match="bad item 3") as info:
        chain(source(list(range(10))), flaky, collector(got)).run()
    notes = info.value.__notes__
    assert "in mimo stream 'flaky'" in notes
    assert any(
        re.match(r"mimo stream 'flaky' ran out of restarts: .*2 restart\(s\) already in the last 60 s", n)
        for n in notes
    )
    assert flaky.state["attempts"] == 3
    assert len(delays) == 2


@pytest.mark.timeout(10)
def test_max_restarts_zero_fails_at_the_first_error(delays: list[float]) -> None:
    flaky = failing_on({0}, on_error=Restart(max_restarts=0))
    with pytest.raises(ValueError, match="bad item 0"):
        chain(source([0, 1]), flaky, Stream(["inp"])).run()
    assert delays == []


@pytest.mark.timeout(10)
def test_restarts_older_than_the_window_no_longer_count_nor_lengthen_the_backoff(
    delays: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [0.0]
    monkeypatch.setattr(supervision, "clock", lambda: now[0])
    times = {1: 0.0, 2: 5.0, 3: 20.0, 4: 21.0}  # when item i fails

    async def fn(ins: Any, outs: Any, state: Any) -> None:
        async for x in ins.inp:
            if x in times:
                now[0] = times.pop(x)
                raise ValueError(f"bad item {x}")

    flaky = Stream(["inp"], fn=fn, name="flaky", on_error=Restart(max_restarts=2, within=10, backoff=1, max_backoff=8))
    report = chain(source(list(range(6))), flaky).run()
    # Two in [0, 5], then at 20 the window holds none: the count and the back-off start again.
    assert delays == [1, 2, 1, 2]
    assert report["flaky"].restarts == 4


@pytest.mark.timeout(10)
def test_a_clean_end_is_not_restarted() -> None:
    calls = []

    async def reads_until_the_end(ins: Any, outs: Any, state: Any) -> None:
        calls.append(1)
        while True:
            await ins.inp.pop()  # EndOfStream at the end: a clean end

    s = Stream(["inp"], fn=reads_until_the_end, on_error=Restart(backoff=0))
    report = chain(source([1, 2, 3]), s).run()
    assert calls == [1]
    assert report["reads_until_the_end"].restarts == 0


@pytest.mark.timeout(10)
def test_one_copy_restarts_while_the_others_go_on(monkeypatch: pytest.MonkeyPatch) -> None:
    rest_done = asyncio.Event()
    during_backoff: list[int] = []

    async def backoff_until_the_rest_is_through(seconds: float) -> None:
        await rest_done.wait()
        during_backoff.append(len(got))

    monkeypatch.setattr(supervision, "sleep", backoff_until_the_rest_is_through)
    got: list[int] = []

    async def fn(ins: Any, outs: Any, state: dict[str, Any]) -> None:
        async for x in ins.inp:
            if x == 0 and not state.get("failed"):
                state["failed"] = True
                raise ValueError("bad item 0")
            await outs.out.push(x)

    async def sink(ins: Any, outs: Any, state: Any) -> None:
        async for x in ins.inp:
            got.append(x)
            if len(got) == 19:
                rest_done.set()

    work = Stream(["inp"], ["out"], fn=fn, name="work", workers=3, on_error=Restart())
    report = chain(source(list(range(20))), work, Stream(["inp"], fn=sink, name="sink"), capacity=2).run()
    assert sorted(got) == list(range(1, 20))
    assert during_backoff == [19]  # the other two copies moved every other item meanwhile
    r = report["work"]
    assert (r.workers, r.restarts, r.restart_causes) == (3, 1, ["ValueError: bad item 0"])


@pytest.mark.timeout(10)
def test_workers_share_one_budget(delays: list[float]) -> None:
    work = failing_on({1, 2, 3}, name="work", workers=2, on_error=Restart(max_restarts=2))
    with pytest.raises(ValueError, match="ran out|bad item") as info:
        chain(source(list(range(10))), work, Stream(["inp"])).run()
    assert any("ran out of restarts" in n for n in info.value.__notes__)


@pytest.mark.timeout(10)
def test_a_stream_backing_off_is_alive_not_deadlocked() -> None:
    # With queues of 1, the source waits on a full queue and the sink on an empty
    # one while the middle stream sleeps its back-off: no DeadlockError.
    flaky = failing_on({2}, on_error=Restart(backoff=0.1, jitter=0))
    got: list[int] = []
    report = chain(source(list(range(6))), flaky, collector(got), capacity=1).run()
    assert got == [0, 1, 3, 4, 5]
    assert report["flaky"].backoff_s >= 0.09


@pytest.mark.timeout(10)
def test_a_deadlock_is_still_found_after_a_restart(delays: list[float]) -> None:
    async def fn(ins: Any, outs: Any, state: dict[str, Any]) -> None:
        if not state:
            state["failed"] = True
            raise ValueError("first attempt")
        await ins.inp.pop()  # nothing ever comes: its only producer is itself

    wf = Workflow()
    loop = wf.add_stream(Stream(["inp"], ["out"], fn=fn, name="loop", on_error=Restart()))
    loop.pipe(loop)
    with pytest.raises(mimo.DeadlockError, match="'loop' waits to pop"):
        wf.run()


@pytest.mark.timeout(10)
def test_cancelling_the_run_during_a_backoff_ends_it_cleanly() -> None:
    ended: list[str] = []

    async def fn(ins: Any, outs: Any, state: Any) -> None:
        try:
            async for x in ins.inp:
                raise ValueError(f"bad item {x}")
        finally:
            ended.append("attempt")

    s = Stream(["inp"], fn=fn, name="flaky", on_error=Restart(backoff=30, max_backoff=30))

    async def main() -> None:
        wf = chain(source([1, 2]), s)
        async with asyncio.timeout(0.2):
            await wf.run_async()

    async def run() -> list[asyncio.Task[Any]]:
        with pytest.raises(TimeoutError):
            await main()
        return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]

    assert asyncio.run(run()) == []
    assert ended == ["attempt"]


@pytest.mark.timeout(10)
def test_an_error_raised_while_the_run_tears_down_is_not_restarted() -> None:
    attempts: list[int] = []

    async def fails(ins: Any, outs: Any, state: Any) -> None:
        await asyncio.sleep(0.01)
        raise KeyError("the first failure")

    async def errs_when_cancelled(ins: Any, outs: Any, state: Any) -> None:
        attempts.append(1)
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            raise ValueError("failed while cancelled") from None

    wf = Workflow()
    wf.add_stream(Stream(fn=fails, name="fails"))
    wf.add_stream(Stream(fn=errs_when_cancelled, name="other", on_error=Restart(backoff=30, max_backoff=30)))
    with pytest.raises(BaseExceptionGroup, match="2 streams failed") as info:
        wf.run()
    assert info.group_contains(KeyError) and info.group_contains(ValueError, match="failed while cancelled")
    assert attempts == [1]  # not started again (nor made to wait its back-off) during the teardown


@pytest.mark.timeout(10)
def test_a_stream_backing_off_whose_consumers_leave_stops_early() -> None:
    async def fn(ins: Any, outs: Any, state: Any) -> None:
        async for x in ins.inp:
            if x == 1:
                raise ValueError("bad item 1")
            await outs.out.push(x)

    async def first_only(ins: Any, outs: Any, state: Any) -> None:
        await ins.inp.pop()

    flaky = Stream(["inp"], ["out"], fn=fn, name="flaky", on_error=Restart(backoff=30, max_backoff=30))
    report = chain(source([0, 1, 2]), flaky, Stream(["inp"], fn=first_only)).run()
    assert report["flaky"].stopped_early and report["flaky"].restarts == 1


# -- stock streams and the DSL ----------------------------------------------------


@pytest.mark.timeout(10)
def test_a_stock_map_failing_on_one_item_in_a_hundred_keeps_the_run_going() -> None:
    def parse(x: int) -> int:
        if x % 100 == 42:
            raise ValueError(f"cannot parse {x}")
        return x * 2

    policy = Restart(max_restarts=20, within=60, backoff=0.001, max_backoff=0.005)
    out: list[int] = []
    report = (lib.from_iterable(range(1000)) | lib.map(parse).with_options(on_error=policy) | lib.collect(out)).run()
    assert out == [x * 2 for x in range(1000) if x % 100 != 42]
    r = report["parse"]
    assert r.restarts == 10
    assert r.restart_causes[-1] == "ValueError: cannot parse 942"
    assert "restarted: parse 10 time(s)" in str(report)


def test_with_options_gives_a_distinct_copy_and_leaves_the_original_alone() -> None:
    base = lib.map(str)
    supervised = base.with_options(on_error=Restart(max_restarts=1))
    assert supervised is not base and type(supervised) is type(base)
    assert base.on_error == Stop() and supervised.on_error == Restart(max_restarts=1)
    plain = Stream(["a"], ["b"], state=[1])
    copy = plain.with_options(on_error=Restart())
    assert copy.state is plain.state and copy.ins == ("a",)


@pytest.mark.timeout(10)
def test_the_dsl_takes_on_error_in_both_forms(delays: list[float]) -> None:
    @stream(on_error=Restart())
    async def annotated(inp: In[int], out: Out[int]) -> None:
        async for x in inp:
            if x == 2 and not seen:
                seen.append(x)
                raise ValueError("bad item 2")
            await out.push(x)

    @stream(ins=["inp"], outs=["out"], on_error=Restart())
    async def by_name(ins: Any, outs: Any, state: dict[str, int]) -> None:
        async for x in ins.inp:
            if x == 3 and not state:
                state["failed"] = 1
                raise ValueError("bad item 3")
            await outs.out.push(x)

    seen: list[int] = []
    out: list[int] = []
    report = (lib.from_iterable(range(5)) | annotated | by_name | lib.collect(out)).run()
    assert out == [0, 1, 4]
    assert report["annotated"].restarts == 1 and report["by_name"].restarts == 1
    assert annotated().on_error == Restart()  # copies keep it


def test_arguments_are_checked_when_made() -> None:
    with pytest.raises(ValueError, match=r"max_restarts must be an int >= 0, not -1"):
        Restart(max_restarts=-1)
    with pytest.raises(TypeError, match=r"max_restarts must be an int >= 0, not True"):
        Restart(max_restarts=True)
    with pytest.raises(ValueError, match=r"within must be a finite number of seconds > 0, not 0"):
        Restart(within=0)
    with pytest.raises(TypeError, match=r"backoff must be a number of seconds >= 0, not '1'"):
        Restart(backoff="1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"max_backoff \(1\) must be >= backoff \(2\)"):
        Restart(backoff=2, max_backoff=1)
    with pytest.raises(ValueError, match=r"jitter must be a number from 0 to 1, not 2"):
        Restart(jitter=2)
    with pytest.raises(ValueError, match=r"max_backoff must be a finite number of seconds >= 0, not inf"):
        Restart(max_backoff=float("inf"))
    with pytest.raises(
        TypeError,
        match=r"stream 'x': on_error must be mimo.Stop\(\) or mimo.Restart\(...\), not "
        r".*\(call it: Restart\(\)\)",
    ):
        Stream(outs=["a"], name="x", on_error=Restart)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"on_error must be mimo.Stop\(\) or mimo.Restart\(...\), not 'restart'"):
        stream(ins=["a"], on_error="restart")  # type: ignore[call-overload]
    with pytest.raises(TypeError, match=r"on_error must be"):
        lib.map(str).with_options(on_error=None)  # type: ignore[arg-type]


# -- the progress view -------------------------------------------------------------


@pytest.mark.timeout(10)
def test_the_progress_view_shows_restarts_and_a_stream_backing_off() -> None:
    flaky = failing_on({1}, on_error=Restart(backoff=0.3, jitter=0))
    wf = chain(source([0, 1, 2]), flaky, Stream(["inp"], name="sink"))
    buf = io.StringIO()
    view = Progress("plain", interval=0.05, file=buf)

    async def go() -> None:
        async with view:
            await run_graph(wf.graph, on_start=view.start)

    asyncio.run(go())
    lines = buf.getvalue().splitlines()
    flaky_lines = [line for line in lines if " flaky: " in line]
    assert any(line.endswith("restarts=1 (last: ValueError: bad item 1) backing off") for line in flaky_lines)
    assert flaky_lines[-1].endswith("restarts=1 (last: ValueError: bad item 1) done")


# -- on Ray: the copy's coroutine restarts inside its actor --------------------------
# Run with: unshare -n sh -c 'ip link set lo up && RAY_USAGE_STATS_ENABLED=0 \
#     python -m pytest -m ray tests/test_supervision.py'


@pytest.fixture(scope="module")
def ray_executor() -> Iterator[Any]:
    """A RayExecutor on a local Ray (started here unless one already runs in this process)."""
    from mimo.executors import RayExecutor

    ex = RayExecutor(init_options={"num_cpus": 2, "object_store_memory": 200 << 20})
    with ex:
        yield ex


async def _flaky_on_ray(ins: Any, outs: Any, state: dict[str, Any]) -> None:
    state["attempts"] = state.get("attempts", 0) + 1
    async for x in ins.inp:
        if x in state["bad"]:
            state["bad"].remove(x)
            raise ValueError(f"bad item {x}")
        await outs.out.push(x)


async def _keep(ins: Any, outs: Any, state: list[int]) -> None:
    async for x in ins.inp:
        state.append(x)


@pytest.mark.ray
@pytest.mark.timeout(120)
def test_on_ray_a_failing_stream_restarts_inside_its_actor(ray_executor: Any) -> None:
    flaky = Stream(
        ["inp"], ["out"], fn=_flaky_on_ray, name="flaky", state={"bad": [3, 7]}, on_error=Restart(backoff=0.01)
    )
    sink = Stream(["inp"], fn=_keep, name="sink", state=[])
    report = chain(source(list(range(10))), flaky, sink, capacity=4).run(executor=ray_executor)
    assert sink.state == [0, 1, 2, 4, 5, 6, 8, 9]
    assert flaky.state["attempts"] == 3  # the state that came back is the one kept across restarts
    r = report["flaky"]
    assert (r.restarts, r.restart_causes) == (2, ["ValueError: bad item 3", "ValueError: bad item 7"])
    assert r.backoff_s > 0


@pytest.mark.ray
@pytest.mark.timeout(120)
def test_on_ray_restarts_that_run_out_fail_the_run_naming_the_stream(ray_executor: Any) -> None:
    flaky = Stream(
        ["inp"], ["out"], fn=_flaky_on_ray, name="flaky", state={"bad": [1, 2, 3]}, on_error=Restart(max_restarts=1)
    )
    with pytest.raises(ValueError, match="bad item 2") as info:
        chain(source(list(range(10))), flaky, Stream(["inp"], name="sink")).run(executor=ray_executor)
    assert any("flaky" in n and "ran out of restarts" in n for n in info.value.__notes__)


def test_the_live_table_has_a_restarts_column_once_a_stream_restarted() -> None:
    from rich.console import Console

    from mimo import RunReport, StreamReport

    def figures(name: str, **kw: Any) -> StreamReport:
        return StreamReport(name, {}, {}, 1.0, 0.5, 0.0, 0.0, done=False, **kw)

    calm = RunReport({"a": figures("a")}, 1.0, 4)
    restarted = RunReport(
        {
            "a": figures("a"),
            "flaky": figures("flaky", restarts=3, restart_causes=["KeyError: 'x'"], backing_off=True),
        },
        1.0,
        4,
    )
    view = Progress("plain", file=io.StringIO())

    def text(report: RunReport) -> str:
        out = io.StringIO()
        Console(file=out, width=120).print(view.table(report))
        return out.getvalue()

    assert "restarts" not in text(calm)
    shown = text(restarted)
    assert "restarts" in shown
    assert re.search(r"flaky\s+│\s+backing off\s+│.*│\s+3 KeyError: 'x'", shown)


# -- property: whatever fails where, restarts lose exactly the items they held ----------


@pytest.mark.timeout(60)
@given(
    n=st.integers(0, 40),
    bad=st.sets(st.integers(0, 39), max_size=8),
    capacity=st.integers(0, 3),
    workers=st.integers(1, 3),
    fail_before_pop=st.booleans(),
)
def test_restarts_lose_exactly_the_items_the_failed_attempts_held(
    n: int, bad: set[int], capacity: int, workers: int, fail_before_pop: bool
) -> None:
    bad = {b for b in bad if b < n}
    failures = set(bad)
    asked: list[float] = []

    async def instant(seconds: float) -> None:
        asked.append(seconds)

    async def fn(ins: Any, outs: Any, state: dict[str, Any]) -> None:
        if fail_before_pop and state.pop("fail_at_start", False):
            raise RuntimeError("failed before taking anything")  # loses nothing
        async for x in ins.inp:
            if x in failures:
                failures.discard(x)
                state["fail_at_start"] = True
                raise ValueError(f"bad item {x}")
            await outs.out.push(x)

    relay = Stream(["inp"], ["out"], fn=fn, name="relay", workers=workers, on_error=Restart(max_restarts=20))
    got: list[int] = []
    saved = supervision.sleep
    supervision.sleep = instant
    try:
        report = chain(source(list(range(n))), relay, collector(got), capacity=capacity).run()
    finally:
        supervision.sleep = saved
    assert sorted(got) == sorted(set(range(n)) - bad)
    if workers == 1:
        assert got == sorted(got)  # one copy keeps the order
    restarts = len(bad) * (2 if fail_before_pop else 1)
    assert report["relay"].restarts == len(asked) == restarts
    assert report["relay"].items_in == {"inp": n}
