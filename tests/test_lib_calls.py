"""Per-item functions: a plain function that returns an awaitable is awaited, by every operator, in every mode."""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import multiprocessing
import time
import warnings
from collections.abc import Callable
from typing import Any

import pytest

from mimo import In, lib, stream
from mimo._stream import Stream
from mimo.lib.parallel import parallel_map
from mimo.testing import run_stream, run_workflow_async


async def _double(x: int) -> int:
    await asyncio.sleep(0)
    return 2 * x


async def _is_even(x: int) -> bool:
    await asyncio.sleep(0)
    return x % 2 == 0


async def _twice(x: int) -> list[int]:
    await asyncio.sleep(0)
    return [x, x]


def returns_a_coroutine(x: int) -> Any:
    """Plain, at module level (so a process pool can take it), returning a coroutine."""
    return _double(x)


ITEMS = [1, 2, 3, 4]
DOUBLED = {"out": [2, 4, 6, 8]}


def _map_cases() -> list[Any]:
    # (make the stream, what it must give); every function here is plain and returns a coroutine.
    return [
        pytest.param(lambda: lib.map(lambda x: _double(x)), DOUBLED, id="map"),
        pytest.param(lambda: lib.map(lambda x: _double(x), workers=3), DOUBLED, id="map-workers"),
        pytest.param(lambda: lib.map(lambda x: _double(x), executor="thread"), DOUBLED, id="map-thread"),
        pytest.param(lambda: lib.map(lambda x: _double(x), workers=2, ordered=False), None, id="map-unordered"),
        pytest.param(lambda: parallel_map(lambda x: _double(x)), DOUBLED, id="parallel_map"),
        pytest.param(lambda: parallel_map(lambda x: _double(x), workers=3), DOUBLED, id="parallel_map-workers"),
        pytest.param(
            lambda: parallel_map(lambda x: _double(x), executor="thread", chunk_size=2),
            DOUBLED,
            id="parallel_map-thread",
        ),
        pytest.param(lambda: lib.filter(lambda x: _is_even(x)), {"out": [2, 4]}, id="filter"),
        pytest.param(lambda: lib.flat_map(lambda x: _twice(x)), {"out": [1, 1, 2, 2, 3, 3, 4, 4]}, id="flat_map"),
        pytest.param(lambda: lib.split(lambda x: _is_even(x)), {"matched": [2, 4], "unmatched": [1, 3]}, id="split"),
    ]


@pytest.mark.parametrize(("make", "expected"), _map_cases())
@pytest.mark.timeout(20)
def test_a_plain_function_returning_an_awaitable_is_awaited(make: Callable[[], Stream], expected: Any) -> None:
    out = run_stream(make(), {"inp": ITEMS}, timeout=10)
    if expected is None:  # unordered: the same items, in any order
        assert sorted(out["out"]) == DOUBLED["out"]
    else:
        assert out == expected


@pytest.mark.timeout(20)
def test_a_given_thread_pool_gets_its_awaitables_awaited_too() -> None:
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        out = run_stream(lib.map(lambda x: _double(x), executor=pool), {"inp": ITEMS}, timeout=10)
    assert out == DOUBLED


def test_for_each_awaits_what_a_plain_function_returns() -> None:
    seen: list[int] = []

    async def record(x: int) -> None:
        await asyncio.sleep(0)
        seen.append(x)

    run_stream(lib.for_each(lambda x: record(x)), {"inp": ITEMS}, timeout=10)
    assert seen == ITEMS


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: lib.map(returns_a_coroutine, executor="process", name="fetcher"), id="map"),
        pytest.param(lambda: parallel_map(returns_a_coroutine, executor="process", name="fetcher"), id="parallel_map"),
    ],
)
@pytest.mark.timeout(30)
def test_a_process_pool_refuses_an_awaitable_result_naming_the_stream(make: Callable[[], Stream]) -> None:
    with pytest.raises(TypeError, match="'fetcher'.*returned an awaitable .coroutine.*process pool") as info:
        run_stream(make(), {"inp": ITEMS}, timeout=20)
    assert info.value.mimo_stream == "fetcher"  # type: ignore[attr-defined]
    assert multiprocessing.active_children() == []


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda f: lib.map(f), id="map"),
        pytest.param(lambda f: lib.filter(f), id="filter"),
        pytest.param(lambda f: lib.split(f), id="split"),
        pytest.param(lambda f: lib.for_each(f), id="for_each"),
        pytest.param(lambda f: parallel_map(f), id="parallel_map"),
    ],
)
def test_an_async_generator_function_is_refused_where_one_item_is_wanted(make: Callable[[Any], Stream]) -> None:
    async def many(x: int) -> Any:
        yield x

    with pytest.raises(TypeError, match="async generator function; use flat_map"):
        make(many)


@pytest.mark.timeout(20)
def test_awaitables_a_stream_leaves_behind_are_closed_not_left_never_awaited() -> None:
    # The consumer leaves after one item, while the given pool still runs the others.
    def slow_then_coroutine(x: int) -> Any:
        time.sleep(0.02)
        return _double(x)

    @stream
    async def take_one(inp: In[int]) -> None:
        await inp.pop()

    async def main(pool: concurrent.futures.Executor) -> None:
        flow = lib.from_iterable(range(8)) | lib.map(slow_then_coroutine, workers=4, executor=pool) | take_one
        await run_workflow_async(flow, timeout=10)
        await asyncio.sleep(0.1)  # the abandoned items finish while the loop still runs

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            asyncio.run(main(pool))
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)] == []
