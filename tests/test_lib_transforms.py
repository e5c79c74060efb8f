"""mimo.lib.transforms: map, filter, flat_map, batch, unbatch, rate_limit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from mimo import In, lib, stream
from mimo.dsl import StageStream
from mimo.testing import run_stream, run_workflow, run_workflow_async


def _double(x: int) -> int:
    return 2 * x


async def _slow_double(x: int) -> int:
    await asyncio.sleep(0.001)
    return 2 * x


# -- map -------------------------------------------------------------------------


def test_map_applies_a_plain_function_in_order() -> None:
    assert run_stream(lib.map(_double), {"inp": [1, 2, 3]}) == {"out": [2, 4, 6]}


def test_map_awaits_an_async_function() -> None:
    assert run_stream(lib.map(_slow_double), {"inp": [1, 2, 3]}) == {"out": [2, 4, 6]}


def test_map_awaits_what_a_plain_function_returns_if_awaitable() -> None:
    assert run_stream(lib.map(lambda x: _slow_double(x)), {"inp": [5]}) == {"out": [10]}


def test_map_is_named_after_its_function_or_as_given() -> None:
    assert lib.map(_double).name == "_double"
    assert lib.map(lambda x: x).name == "map"
    assert lib.map(_double, name="twice").name == "twice"


def test_the_same_function_twice_in_a_chain_gives_two_stages() -> None:
    got: list[int] = []
    flow = lib.range(3) | lib.map(_double) | lib.map(_double) | lib.collect(got)
    assert [n.name for n in flow.graph.nodes] == ["range", "_double", "_double_2", "collect"]
    flow.run()
    assert got == [0, 4, 8]


def test_an_exception_in_the_function_fails_the_run_named() -> None:
    def boom(x: int) -> int:
        raise KeyError(x)

    with pytest.raises(KeyError) as info:
        run_stream(lib.map(boom), {"inp": [1]})
    assert info.value.mimo_stream == "boom"  # type: ignore[attr-defined]


def test_map_rejects_what_it_cannot_call() -> None:
    with pytest.raises(TypeError, match="needs a function"):
        lib.map(3)  # type: ignore[call-overload]

    async def gen(x: int) -> AsyncIterator[int]:
        yield x

    with pytest.raises(TypeError, match="flat_map"):
        lib.map(gen)


@pytest.mark.timeout(20)
def test_map_with_workers_keeps_several_items_in_flight_in_order() -> None:
    active = 0
    most = 0

    async def work(x: int) -> int:
        nonlocal active, most
        active += 1
        most = max(most, active)
        await asyncio.sleep(0.02 if x % 2 else 0.001)
        active -= 1
        return x * 10

    stage = lib.map(work, workers=4)
    assert isinstance(stage, StageStream)
    assert stage.name == "work"
    out = run_stream(stage, {"inp": range(12)})
    assert out == {"out": [x * 10 for x in range(12)]}
    assert most == 4


@pytest.mark.timeout(20)
def test_map_with_an_executor_runs_a_plain_function_in_it() -> None:
    import threading

    def where(x: int) -> str:
        return threading.current_thread().name

    out = run_stream(lib.map(where, executor="thread", workers=2), {"inp": range(4)})
    assert len(out["out"]) == 4  # all() over no results would pass
    assert all(name != threading.main_thread().name for name in out["out"])


def test_map_with_workers_unordered_delivers_every_result() -> None:
    out = run_stream(lib.map(_slow_double, workers=3, ordered=False), {"inp": range(10)})
    assert sorted(out["out"]) == [2 * x for x in range(10)]


def test_map_rejects_a_bad_worker_count() -> None:
    with pytest.raises(ValueError, match="workers"):
        lib.map(_double, workers=0)
    with pytest.raises(ValueError, match="workers"):
        lib.map(_double, workers=True)


# -- filter ----------------------------------------------------------------------


def test_filter_keeps_the_items_whose_predicate_is_true() -> None:
    assert run_stream(lib.filter(lambda x: x % 3 == 0), {"inp": range(10)}) == {"out": [0, 3, 6, 9]}


def test_filter_takes_an_async_predicate_and_truthy_results() -> None:
    async def nonempty(s: str) -> int:
        return len(s)

    assert run_stream(lib.filter(nonempty), {"inp": ["a", "", "bc"]}) == {"out": ["a", "bc"]}


# -- flat_map --------------------------------------------------------------------


def test_flat_map_pushes_every_item_of_each_result() -> None:
    out = run_stream(lib.flat_map(str.split), {"inp": ["a b", "", "c"]})
    assert out == {"out": ["a", "b", "c"]}


def test_flat_map_takes_an_async_generator_or_an_async_function() -> None:
    async def repeat(x: int) -> AsyncIterator[int]:
        for _ in range(x):
            await asyncio.sleep(0)
            yield x

    async def pair(x: int) -> list[int]:
        return [x, -x]

    assert run_stream(lib.flat_map(repeat), {"inp": [1, 2, 0, 3]}) == {"out": [1, 2, 2, 3, 3, 3]}
    assert run_stream(lib.flat_map(pair), {"inp": [1, 2]}) == {"out": [1, -1, 2, -2]}


def test_flat_map_streams_a_large_expansion_under_back_pressure() -> None:
    out = run_stream(lib.flat_map(range), {"inp": [5000]}, capacity=2)
    assert out["out"] == list(range(5000))


@pytest.mark.timeout(10)
def test_flat_map_closes_an_async_generator_as_soon_as_its_consumer_leaves() -> None:
    events: list[str] = []
    kept: list[Any] = []  # a live reference: only flat_map's aclose() can run the finally in time

    async def endless(x: int) -> AsyncIterator[int]:
        try:
            while True:
                yield x
        finally:
            events.append("generator closed")

    def expand(x: int) -> AsyncIterator[int]:
        gen = endless(x)
        kept.append(gen)
        return gen

    @stream
    async def take_two(inp: In[int]) -> None:
        events.append(f"took {await inp.pop()}")
        events.append(f"took {await inp.pop()}")

    async def main() -> list[str]:
        await run_workflow_async(lib.from_iterable([7]) | lib.flat_map(expand) | take_two, timeout=5)
        return list(events)  # before asyncio.run closes what is left at loop shutdown

    assert asyncio.run(main()) == ["took 7", "took 7", "generator closed"]
    assert len(kept) == 1


# -- batch / unbatch -------------------------------------------------------------


def test_batch_groups_items_in_order_with_a_short_last_batch() -> None:
    out = run_stream(lib.batch(3), {"inp": range(8)})
    assert out == {"out": [[0, 1, 2], [3, 4, 5], [6, 7]]}


def test_batch_of_nothing_pushes_nothing() -> None:
    assert run_stream(lib.batch(3), {"inp": []}) == {"out": []}


def test_batch_with_a_timeout_pushes_a_short_batch_when_items_trickle() -> None:
    async def trickle() -> AsyncIterator[int]:
        yield 1
        yield 2
        await asyncio.sleep(0.3)  # longer than the batch timeout
        yield 3

    out = run_stream(lib.batch(10, timeout=0.05), {"inp": trickle()})
    assert out == {"out": [[1, 2], [3]]}


def test_batch_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="size"):
        lib.batch(0)
    with pytest.raises(ValueError, match="timeout"):
        lib.batch(2, timeout=0)


def test_unbatch_pushes_every_item_of_every_batch() -> None:
    assert run_stream(lib.unbatch(), {"inp": [[1, 2], [], (3,), "ab"]}) == {"out": [1, 2, 3, "a", "b"]}


def test_batch_then_unbatch_gives_back_the_items() -> None:
    got: list[int] = []
    (lib.range(100) | lib.batch(7) | lib.unbatch() | lib.collect(got)).run()
    assert got == list(range(100))


# -- rate_limit ------------------------------------------------------------------


@pytest.mark.timeout(20)
def test_rate_limit_spaces_items_out() -> None:
    t0 = time.perf_counter()
    out = run_stream(lib.rate_limit(100), {"inp": range(21)})
    elapsed = time.perf_counter() - t0
    assert out == {"out": list(range(21))}
    assert elapsed >= 0.19  # 20 gaps of 10 ms after the first item


@pytest.mark.timeout(20)
def test_rate_limit_lets_a_burst_through_at_once() -> None:
    stamps: list[float] = []
    sink = lib.for_each(lambda _: stamps.append(time.perf_counter()))
    run_workflow(lib.range(6) | lib.rate_limit(10, burst=5) | sink)
    assert stamps[4] - stamps[0] < 0.09  # the burst, within one token's time
    assert stamps[5] - stamps[0] >= 0.09  # then the rate (0.1 s a token)


def test_rate_limit_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="per_second"):
        lib.rate_limit(0)
    with pytest.raises(ValueError, match="burst"):
        lib.rate_limit(5, burst=0)


# -- what all transforms share ---------------------------------------------------


@pytest.mark.parametrize(
    "stage",
    [
        lib.map(_double),
        lib.filter(bool),
        lib.flat_map(list),
        lib.batch(2),
        lib.unbatch(),
        lib.rate_limit(1000),
    ],
    ids=lambda s: s.name,
)
def test_every_transform_is_a_stage_from_inp_to_out(stage: Any) -> None:
    assert isinstance(stage, StageStream)
    assert stage.ins == ("inp",) and stage.outs == ("out",)


def test_stock_streams_are_classic_streams_too() -> None:
    from mimo import Workflow

    got: list[str] = []
    wf = Workflow(capacity=2)
    wf.add_stream(lib.range(4)).pipe(lib.map(_double)).pipe(lib.map(str)).pipe(lib.collect(got))
    report = wf.run()
    assert got == ["0", "2", "4", "6"]
    assert [s.name for s in report] == ["range", "_double", "str", "collect"]


def test_map_passes_chunk_size_to_the_pool_and_refuses_it_alone():
    from mimo import lib
    from mimo.testing import run_stream

    out = run_stream(lib.map(abs, executor="thread", workers=2, chunk_size=4), {"inp": [-1, -2, 3]})
    assert out == {"out": [1, 2, 3]}
    with pytest.raises(ValueError, match="chunk_size"):
        lib.map(abs, chunk_size=4)


def test_parallel_map_in_a_classic_workflow_feeds_a_typed_stream():
    from mimo import lib
    from mimo.lib.parallel import parallel_map

    got: list[int] = []

    @stream
    async def keep(x: In[int]) -> None:
        async for v in x:
            got.append(v)

    from mimo import Workflow

    wf = Workflow()
    wf.add_stream(lib.range(3)).pipe(wf.add_stream(parallel_map(abs, workers=2))).pipe(wf.add_stream(keep))
    wf.run()
    assert got == [0, 1, 2]
