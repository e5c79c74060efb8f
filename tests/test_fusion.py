"""Fused chains (mimo._fuse): a run of stock one-to-one stages runs as one loop, with unchanged results.

Every behaviour is checked against the same graph run with fusion off (each
stream a task of its own) and, where the answer is plain, against plain Python.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import traceback
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mimo
from mimo import EndOfStream, In, Out, RunReport, _fuse, lib, stream


@contextlib.contextmanager
def fusion(on: bool) -> Iterator[None]:
    before = _fuse.ENABLED
    _fuse.ENABLED = on
    try:
        yield
    finally:
        _fuse.ENABLED = before


# -- streams that never fuse, to start, split and end chains ------------------------


@stream
async def emit(out: Out[Any], *, items: list[Any]) -> None:
    for x in items:
        await out.push(x)


@stream
async def drain(inp: In[Any], *, into: list[Any]) -> None:
    async for x in inp:
        into.append(x)


@stream
async def first(inp: In[Any], *, m: int, into: list[Any]) -> None:
    for _ in range(m):
        into.append(await inp.pop())  # EndOfStream ends it early, cleanly


async def _same(x: Any) -> Any:
    return x


# -- the functions chains are built from: (the one given to mimo, its plain equivalent) --


async def _inc_later(x: int) -> int:
    return x + 1


async def _odd_later(x: int) -> bool:
    return x % 2 == 1


async def _twice_async(x: int) -> AsyncIterator[int]:
    yield x
    yield x


MAPS: list[tuple[Callable[[Any], Any], Callable[[Any], Any]]] = [
    (lambda x: x + 1, lambda x: x + 1),
    (lambda x: x * 2, lambda x: x * 2),
    (lambda x: -x, lambda x: -x),
    (lambda x: x // 2, lambda x: x // 2),
    (lambda x: _inc_later(x), lambda x: x + 1),  # a plain function returning an awaitable: awaited
]
PREDICATES: list[tuple[Callable[[Any], Any], Callable[[Any], Any]]] = [
    (lambda x: x % 2 == 0, lambda x: x % 2 == 0),
    (lambda x: x % 3, lambda x: x % 3),  # truth of an int
    (lambda x: x > 3, lambda x: x > 3),
    (lambda x: x < 10, lambda x: x < 10),
    (lambda x: _odd_later(x), lambda x: x % 2 == 1),
]
EXPANSIONS: list[tuple[Callable[[Any], Any], Callable[[Any], Any]]] = [
    (lambda x: range(x % 3), lambda x: range(x % 3)),
    (lambda x: [x, x], lambda x: [x, x]),
    (lambda x: (), lambda x: ()),
    (lambda x: (y for y in range(x % 4)), lambda x: range(x % 4)),
    (lambda x: _twice_async(x), lambda x: [x, x]),  # a plain function returning an async iterable
]


class Boom(Exception):
    pass


def _boom_at(v: int) -> Callable[[Any], Any]:
    def boom(x: Any) -> Any:
        if x == v:
            raise Boom(f"bad item {x}")
        return x

    return boom


@dataclass(frozen=True)
class Spec:
    kind: str
    which: int = 0
    n: int = 0


def _stage(spec: Spec) -> tuple[Any, Callable[[Iterator[Any]], Iterator[Any]]]:
    """The mimo stage for ``spec`` and the same step on a plain iterator."""
    k = spec.kind
    if k == "map":
        f, g = MAPS[spec.which]
        return lib.map(f), lambda it: map(g, it)
    if k == "filter":
        f, g = PREDICATES[spec.which]
        return lib.filter(f), lambda it: filter(g, it)
    if k == "flat_map":
        f, g = EXPANSIONS[spec.which]
        return lib.flat_map(f), lambda it: itertools.chain.from_iterable(map(g, it))
    if k == "take":
        return lib.take(spec.n), lambda it: itertools.islice(it, spec.n)
    if k == "skip":
        return lib.skip(spec.n), lambda it: itertools.islice(it, spec.n, None)
    if k == "take_while":
        f, g = PREDICATES[spec.which]
        return lib.take_while(f), lambda it: itertools.takewhile(g, it)
    if k == "drop_while":
        f, g = PREDICATES[spec.which]
        return lib.drop_while(f), lambda it: itertools.dropwhile(g, it)
    if k == "boom":
        f = _boom_at(spec.n)
        return lib.map(f), lambda it: map(f, it)
    assert k == "barrier"  # an async function: never fused, so it splits the chain
    return lib.map(_same), lambda it: it


ENDS_EARLY = ("take", "take_while")

specs = st.one_of(
    st.builds(Spec, st.sampled_from(["map", "filter", "flat_map", "take_while", "drop_while"]), st.integers(0, 4)),
    st.builds(Spec, st.sampled_from(["take", "skip"]), st.just(0), st.integers(0, 6)),
    st.builds(Spec, st.just("barrier")),
)


@dataclass
class Outcome:
    items: list[Any]
    error: BaseException | None
    report: RunReport | None


def _run(source: str, items: list[int], chain: list[Spec], sink: str, m: int, capacity: int) -> Outcome:
    got: list[Any] = []
    if source == "range":
        head: Any = lib.range(len(items))
    elif source == "list":
        head = lib.from_iterable(items)
    else:
        head = emit(items=items)
    for spec in chain:
        head = head | _stage(spec)[0]
    end = {"collect": lib.collect(got), "drain": drain(into=got), "first": first(m=m, into=got)}[sink]
    try:
        report = (head | end).run(capacity=capacity)
    except Exception as exc:
        return Outcome(got, exc, None)
    return Outcome(got, None, report)


def _plain(items: list[int], chain: list[Spec], sink: str, m: int) -> tuple[list[Any], BaseException | None]:
    it: Iterator[Any] = iter(items)
    for spec in chain:
        it = _stage(spec)[1](it)
    if sink == "first":
        it = itertools.islice(it, m)
    out: list[Any] = []
    try:
        for x in it:
            out.append(x)
    except Boom as exc:
        return out, exc
    return out, None


def _counts(report: RunReport) -> dict[str, tuple[dict[str, int], dict[str, int], dict[str, int]]]:
    return {s.name: (s.items_in, s.items_out, s.dropped) for s in report}


run_settings = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.timeout(240)
@run_settings
@given(
    source=st.sampled_from(["range", "list", "emit"]),
    n=st.integers(0, 40),
    chain=st.lists(specs, max_size=6),
    sink=st.sampled_from(["collect", "drain", "first"]),
    m=st.integers(0, 8),
    capacity=st.sampled_from([0, 1, 3, 64]),
)
def test_a_fused_chain_gives_what_the_unfused_one_and_plain_python_give(
    source: str, n: int, chain: list[Spec], sink: str, m: int, capacity: int
) -> None:
    items = list(range(n))
    want, _ = _plain(items, chain, sink, m)
    with fusion(True):
        fused = _run(source, items, chain, sink, m, capacity)
    with fusion(False):
        unfused = _run(source, items, chain, sink, m, capacity)
    assert fused.error is None and unfused.error is None
    assert fused.items == unfused.items == want
    assert fused.report is not None and unfused.report is not None
    assert list(fused.report.streams) == list(unfused.report.streams)
    if sink != "first":
        # Each stream's own counts are the unfused run's, but for streams upstream of a
        # stage that ends early (how far ahead they got is up to the scheduling there).
        ends = [i + 1 for i, s in enumerate(chain) if s.kind in ENDS_EARLY]
        settled = slice(ends[-1] + 1 if ends else 0, None)
        assert list(_counts(fused.report).items())[settled] == list(_counts(unfused.report).items())[settled]


@pytest.mark.timeout(240)
@run_settings
@given(
    source=st.sampled_from(["range", "list", "emit"]),
    n=st.integers(0, 40),
    before=st.lists(specs.filter(lambda s: s.kind not in ENDS_EARLY), max_size=3),
    after=st.lists(specs.filter(lambda s: s.kind not in ENDS_EARLY), max_size=3),
    bad=st.integers(-5, 40),
    sink=st.sampled_from(["collect", "drain"]),
    capacity=st.sampled_from([0, 1, 3, 64]),
)
def test_an_exception_mid_chain_fails_the_run_naming_its_stage_fused_or_not(
    source: str, n: int, before: list[Spec], after: list[Spec], bad: int, sink: str, capacity: int
) -> None:
    items = list(range(n))
    chain = [*before, Spec("boom", n=bad), *after]
    want, error = _plain(items, chain, sink, 0)
    for on in (True, False):
        with fusion(on):
            got = _run(source, items, chain, sink, 0, capacity)
        if error is None:
            assert got.error is None and got.items == want
        else:
            assert isinstance(got.error, Boom) and str(got.error) == str(error)
            assert getattr(got.error, "mimo_stream", None) == "boom"
            assert got.items == want[: len(got.items)]  # what got out is what came before the bad item


# -- fusion happens, and is seen only where it should be --------------------------


def test_range_map_filter_map_collect_runs_as_one_task() -> None:
    names: list[str] = []

    def f(x: int) -> int:
        task = asyncio.current_task()
        assert task is not None
        names.append(task.get_name())
        return x + 1

    out: list[str] = []
    report = (lib.range(5) | lib.map(f) | lib.filter(lambda x: x % 2 == 0) | lib.map(str) | lib.collect(out)).run()
    assert out == ["2", "4"]
    assert set(names) == {"mimo:range | f | filter | str | collect"}
    assert [s.name for s in report] == ["range", "f", "filter", "str", "collect"]
    assert report["f"].items_in == {"inp": 5} and report["f"].items_out == {"out": 5}
    assert report["filter"].items_in == {"inp": 5} and report["filter"].items_out == {"out": 2}
    assert report["collect"].items_in == {"inp": 2}
    assert report["range"].items_out == {"out": 5}


def test_with_fusion_off_each_stage_is_a_task_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIMO_NO_FUSION", "1")
    names: list[str] = []

    def f(x: int) -> int:
        task = asyncio.current_task()
        assert task is not None
        names.append(task.get_name())
        return x

    (lib.range(3) | lib.map(f) | lib.collect()).run()
    assert set(names) == {"mimo:f"}


@pytest.mark.parametrize(
    "stage",
    [
        pytest.param(lambda f: lib.map(f, workers=2), id="workers"),
        pytest.param(lambda f: lib.map(f).with_options(on_error=mimo.Restart()), id="restart"),
        pytest.param(lambda f: lib.map(f, retry=mimo.Retry(on=(ValueError,))), id="retry"),
    ],
)
def test_a_stage_with_options_is_not_fused(stage: Callable[[Any], Any]) -> None:
    names: list[str] = []

    def f(x: int) -> int:
        try:
            task = asyncio.current_task()
        except RuntimeError:  # in a worker thread
            task = None
        names.append("(thread)" if task is None else task.get_name())
        return x

    out: list[int] = []
    (lib.range(3) | stage(f) | lib.collect(out)).run()
    assert sorted(out) == [0, 1, 2]
    assert not any("|" in n for n in names)


def test_a_fan_out_ends_the_chain_and_every_branch_gets_every_item() -> None:
    wf = mimo.Workflow()
    src = wf.add_stream(lib.range(10))
    inc = wf.add_stream(lib.map(lambda x: x + 1))
    a: list[int] = []
    b: list[int] = []
    src.pipe(inc)
    inc.pipe(wf.add_stream(lib.map(lambda x: x * 2))).pipe(wf.add_stream(lib.collect(a)))
    inc.pipe(wf.add_stream(lib.filter(lambda x: x > 5))).pipe(wf.add_stream(lib.collect(b)))
    report = wf.run()
    assert a == [2 * x for x in range(1, 11)]
    assert b == [6, 7, 8, 9, 10]
    assert report["map"].items_out == {"out": 10}
    assert report["filter"].items_in == {"inp": 10} and report["filter"].items_out == {"out": 5}


# -- stopping early, errors, awaitables -------------------------------------------


def test_take_ends_the_chain_and_stops_an_endless_source_upstream() -> None:
    stopped: list[bool] = []

    @stream
    async def endless(out: Out[int]) -> None:
        try:
            for i in itertools.count():
                await out.push(i)
        finally:
            stopped.append(True)

    out: list[int] = []
    report = (endless | lib.map(lambda x: x * 10) | lib.take(3) | lib.map(lambda x: x + 1) | lib.collect(out)).run()
    assert out == [1, 11, 21]
    assert stopped == [True]
    assert report["endless"].stopped_early
    assert report["take"].items_in == {"inp": 3} and report["take"].items_out == {"out": 3}
    assert not report["take"].stopped_early and not report["collect"].stopped_early


def test_an_endless_expansion_before_a_take_is_fine() -> None:
    out: list[int] = []
    (lib.range(3) | lib.flat_map(lambda x: itertools.count(x * 100)) | lib.take(5) | lib.collect(out)).run()
    assert out == [0, 1, 2, 3, 4]


def test_take_zero_takes_nothing_from_upstream() -> None:
    calls: list[int] = []
    out: list[int] = []

    def f(x: int) -> int:
        calls.append(x)
        return x

    report = (lib.range(10) | lib.map(f) | lib.take(0) | lib.collect(out)).run()
    assert out == [] and calls == []
    assert report["take"].items_in == {"inp": 0}


def test_a_consumer_that_leaves_early_stops_the_fused_chain() -> None:
    got: list[int] = []
    report = (
        lib.range(10**9) | lib.map(lambda x: x + 1) | lib.filter(lambda x: x % 2 == 0) | first(m=3, into=got)
    ).run()
    assert got == [2, 4, 6]
    assert report["range"].stopped_early and report["filter"].stopped_early


def test_an_error_in_a_fused_function_names_its_stage_and_keeps_its_traceback() -> None:
    def parse(x: int) -> int:
        if x == 7:
            raise ValueError("seven")
        return x

    def run() -> BaseException:
        with pytest.raises(ValueError, match="seven") as info:
            (lib.range(20) | lib.map(lambda x: x + 1) | lib.map(parse) | lib.map(str) | lib.collect()).run()
        return info.value

    fused = run()
    with fusion(False):
        unfused = run()
    for exc in (fused, unfused):
        assert getattr(exc, "mimo_stream", None) == "parse"
        assert "in mimo stream 'parse'" in getattr(exc, "__notes__", [])
        assert traceback.extract_tb(exc.__traceback__)[-1].name == "parse"


def test_a_function_raising_cancelled_error_is_a_failure_of_its_stage_fused_or_not() -> None:
    def bad(x: int) -> int:
        raise asyncio.CancelledError

    for on in (True, False):
        with fusion(on), pytest.raises(RuntimeError, match="'bad' raised CancelledError but was not cancelled"):
            (lib.range(3) | lib.map(bad) | lib.collect()).run()


def test_end_of_stream_from_a_function_ends_its_stage_cleanly_fused_or_not() -> None:
    def upto5(x: int) -> int:
        if x == 5:
            raise EndOfStream
        return x

    results = []
    reports = []
    for on in (True, False):
        out: list[int] = []
        with fusion(on):
            reports.append((lib.range(10) | lib.map(upto5) | lib.map(lambda x: -x) | lib.collect(out)).run())
        results.append(out)
    assert results[0] == results[1] == [0, -1, -2, -3, -4]
    fused, unfused = (r["upto5"] for r in reports)
    assert (fused.items_in, fused.items_out) == (unfused.items_in, unfused.items_out) == ({"inp": 6}, {"out": 5})


def test_a_plain_function_returning_an_awaitable_is_awaited_in_a_fused_chain() -> None:
    async def later(x: int) -> int:
        await asyncio.sleep(0)
        return x * 3

    out: list[int] = []
    (lib.range(5) | lib.map(lambda x: later(x)) | lib.filter(lambda x: _odd_later(x)) | lib.collect(out)).run()
    assert out == [3, 9]


def test_a_function_returning_an_awaitable_only_sometimes_is_awaited_then() -> None:
    def sometimes(x: int) -> Any:
        return _inc_later(x) if x % 2 else x

    out: list[int] = []
    (lib.range(6) | lib.map(sometimes) | lib.collect(out)).run()
    assert out == [0, 2, 2, 4, 4, 6]


def test_the_live_report_shows_every_fused_stage_with_its_own_counts() -> None:
    from mimo._runtime import run_graph

    snapshots: list[Callable[[], RunReport]] = []
    seen: list[RunReport] = []

    @stream
    async def watch(inp: In[int]) -> None:
        async for x in inp:
            if x == 100:
                seen.append(snapshots[0]())

    wf = mimo.Workflow(capacity=8)
    stages = [lib.range(1000), lib.map(lambda x: x + 1), lib.filter(lambda x: x % 2 == 0), lib.map(str), lib.map(int)]
    steps = [wf.add_stream(s) for s in [*stages, watch]]
    for a, b in itertools.pairwise(steps):
        a.pipe(b)
    final = asyncio.run(run_graph(wf.graph, on_start=snapshots.append))
    live = seen[0]
    assert [s.name for s in live] == [s.name for s in final] == ["range", "map", "filter", "str", "int", "watch"]
    assert not live["filter"].done and final["filter"].done
    assert 0 < live["filter"].items_out["out"] < final["filter"].items_out["out"] == 500
    assert live["filter"].items_in["inp"] == live["map"].items_out["out"]


def test_a_deadlock_through_a_fused_chain_is_found_fused_or_not() -> None:
    @stream
    async def loop_back(x: In[int], y: Out[int]) -> None:
        async for v in x:  # waits on the chain, which waits on this stream
            await y.push(v)

    for on in (True, False):
        wf = mimo.Workflow()
        a = wf.add_stream(loop_back)
        b = wf.add_stream(lib.map(lambda v: v + 1))
        c = wf.add_stream(lib.filter(lambda v: v > 0))
        a.pipe(b).pipe(c).pipe(a)
        with fusion(on), pytest.raises(mimo.DeadlockError, match="waits to pop"):
            wf.run()


def test_an_endless_fused_chain_with_no_queue_still_lets_a_timeout_end_the_run() -> None:
    from collections import deque

    last: deque[int] = deque(maxlen=1)

    async def main() -> None:
        chain = lib.range(10**15) | lib.map(lambda x: x + 1) | lib.collect(last)
        async with asyncio.timeout(0.2):
            await chain.run_async()

    with pytest.raises(TimeoutError):
        asyncio.run(main())
    assert last and last[0] > 0


def test_the_run_picture_shows_every_fused_stream_and_each_joins_count(tmp_path: Any) -> None:
    wf = mimo.Workflow()
    streams: list[mimo.Stream] = [lib.range(10), lib.map(lambda x: x + 1), lib.filter(lambda x: x % 2 == 0)]
    steps = [wf.add_stream(s) for s in [*streams, lib.collect()]]
    for a, b in itertools.pairwise(steps):
        a.pipe(b)
    wf.render(tmp_path / "run.dot", report=wf.run())
    dot = (tmp_path / "run.dot").read_text()
    for name in ("range", "map", "filter", "collect"):
        assert f"|{name}|" in dot or f"{{{name}|" in dot or f"|{name}}}" in dot
    assert [line.split("label=")[1] for line in dot.splitlines() if "->" in line] == ['"10"];', '"10"];', '"5"];']


def test_a_chain_fed_by_two_producers_and_by_pushed_items_reads_them_all() -> None:
    wf = mimo.Workflow(capacity=2)
    a = wf.add_stream(lib.range(0, 50))
    b = wf.add_stream(lib.range(100, 150))
    m = wf.add_stream(lib.map(lambda x: x + 1))
    out: list[int] = []
    a.pipe(m)
    b.pipe(m)
    m.push(-1)
    m.pipe(wf.add_stream(lib.filter(lambda x: x % 2 == 0))).pipe(wf.add_stream(lib.collect(out)))
    report = wf.run()
    assert sorted(out) == sorted(x + 1 for x in [*range(50), *range(100, 150), -1] if (x + 1) % 2 == 0)
    assert report["map"].items_in == {"inp": 101}
