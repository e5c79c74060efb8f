"""mimo.lib.transforms: behaviour that mutation testing found untested (see docs/mutation.md)."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator

import pytest

from mimo import lib
from mimo.testing import run_stream, run_workflow


def _inc(x: int) -> int:
    return x + 1


def test_map_with_one_worker_is_accepted_and_keeps_the_order() -> None:
    assert run_stream(lib.map(_inc, workers=1), {"inp": range(5)}) == {"out": [1, 2, 3, 4, 5]}


def test_map_with_one_worker_handles_items_in_the_loop_so_chunk_size_is_refused() -> None:
    with pytest.raises(ValueError, match="chunk_size applies only with workers or an executor"):
        lib.map(_inc, workers=1, chunk_size=5)


@pytest.mark.timeout(10)
def test_map_with_two_workers_has_two_items_in_flight() -> None:
    both_started = asyncio.Event()
    started = 0

    async def work(x: int) -> int:
        nonlocal started
        started += 1
        if started == 2:
            both_started.set()
        # Only a second item in flight sets the event: one at a time would wait here for ever.
        await asyncio.wait_for(both_started.wait(), 2)
        return x

    assert run_stream(lib.map(work, workers=2), {"inp": range(4)}) == {"out": [0, 1, 2, 3]}


@pytest.mark.timeout(10)
def test_batch_with_a_timeout_still_fills_batches_when_items_come_in_time() -> None:
    async def steady() -> AsyncIterator[int]:
        for i in range(6):
            await asyncio.sleep(0.01)
            yield i

    out = run_stream(lib.batch(3, timeout=2), {"inp": steady()})
    assert out == {"out": [[0, 1, 2], [3, 4, 5]]}


@pytest.mark.timeout(10)
@pytest.mark.parametrize("timeout", [None, 2.0])
def test_batch_never_exceeds_its_size_when_a_burst_follows_a_single_item(timeout: float | None) -> None:
    async def burst() -> AsyncIterator[int]:
        yield 0
        await asyncio.sleep(0.02)  # the batch has one item and waits for more
        for i in range(1, 8):
            yield i

    out = run_stream(lib.batch(3, timeout=timeout), {"inp": burst()})
    assert out == {"out": [[0, 1, 2], [3, 4, 5], [6, 7]]}


def test_batch_of_one_puts_each_item_in_its_own_list() -> None:
    assert run_stream(lib.batch(1), {"inp": range(3)}) == {"out": [[0], [1], [2]]}


async def _every(seconds: float, n: int) -> AsyncIterator[int]:
    for i in range(n):
        yield i
        await asyncio.sleep(seconds)


def _gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


@pytest.mark.timeout(10)
def test_rate_limit_lets_no_two_items_closer_than_its_rate_allows_by_default() -> None:
    """Items come twice as fast as the rate: with the default burst of 1, each waits its turn."""
    times: list[float] = []
    stamp = lib.for_each(lambda _: times.append(time.monotonic()))
    run_workflow(lib.from_async_iterable(_every(0.05, 6)) | lib.rate_limit(10) | stamp)
    assert len(times) == 6
    assert min(_gaps(times)) >= 0.08


@pytest.mark.timeout(10)
def test_rate_limit_refills_its_burst_after_a_quiet_spell() -> None:
    async def two_bursts() -> AsyncIterator[int]:
        for i in range(3):
            yield i
        await asyncio.sleep(0.5)  # long enough to earn the whole burst back
        for i in range(3, 6):
            yield i

    times: list[float] = []
    stamp = lib.for_each(lambda _: times.append(time.monotonic()))
    run_workflow(lib.from_async_iterable(two_bursts()) | lib.rate_limit(10, burst=3) | stamp)
    assert len(times) == 6
    assert times[5] - times[3] < 0.08  # the second burst passes at once too


def test_flat_map_with_one_worker_is_accepted_and_keeps_the_order() -> None:
    assert run_stream(lib.flat_map(_twice, workers=1), {"inp": range(3)}) == {"out": [0, 0, 1, 1, 2, 2]}


def _twice(x: int) -> list[int]:
    return [x, x]
