"""``map`` and ``flat_map`` with ``workers=N``: N calls at once, in input order unless ``ordered=False``.

One rule for both: an ``async def`` function runs as N tasks in the event
loop, a plain function in a pool of N threads.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from mimo import In, lib, stream
from mimo.testing import run_stream


class InFlight:
    """Counts the calls running at once."""

    def __init__(self) -> None:
        self.now = 0
        self.most = 0

    def enter(self) -> None:
        self.now += 1
        self.most = max(self.most, self.now)

    def leave(self) -> None:
        self.now -= 1


@pytest.mark.parametrize("kind", ["map", "flat_map"])
def test_async_workers_run_n_calls_at_once_and_keep_the_input_order(kind: str) -> None:
    flight = InFlight()

    async def slow(item: int) -> Any:
        flight.enter()
        await asyncio.sleep(0.002 * (item % 4))
        flight.leave()
        return item if kind == "map" else [item, -item]

    stage = lib.map(slow, workers=3) if kind == "map" else lib.flat_map(slow, workers=3)
    out = run_stream(stage, {"inp": list(range(12))})["out"]
    expected = list(range(12)) if kind == "map" else [x for i in range(12) for x in (i, -i)]
    assert out == expected
    assert flight.most == 3


@pytest.mark.parametrize("kind", ["map", "flat_map"])
@pytest.mark.timeout(10)
def test_with_ordered_false_results_leave_as_they_finish(kind: str) -> None:
    # Item i waits for gate i; the third call opens gate 2, and each result opens the gate before it.
    gates = [asyncio.Event() for _ in range(3)]
    started: list[int] = []
    got: list[int] = []

    async def gated(item: int) -> Any:
        started.append(item)
        if len(started) == 3:
            gates[2].set()
        await gates[item].wait()
        return item if kind == "map" else [item]

    def seen(item: int) -> None:
        got.append(item)
        if item > 0:
            gates[item - 1].set()

    stage = lib.map(gated, workers=3, ordered=False) if kind == "map" else lib.flat_map(gated, workers=3, ordered=False)
    (lib.range(3) | stage | lib.for_each(seen)).run()
    assert got == [2, 1, 0]


def test_flat_map_workers_take_an_async_generator_function() -> None:
    async def twice(item: str) -> AsyncIterator[str]:
        for _ in range(2):
            await asyncio.sleep(0)
            yield item

    assert run_stream(lib.flat_map(twice, workers=2), {"inp": ["a", "b", "c"]})["out"] == list("aabbcc")


def test_flat_map_workers_run_a_plain_function_in_threads_as_map_does() -> None:
    threads: set[str] = set()

    def words(line: str) -> list[str]:
        threads.add(threading.current_thread().name)
        return line.split()

    out = run_stream(lib.flat_map(words, workers=2, name="split_words"), {"inp": ["a b", "c", "d e f"]})["out"]
    assert out == ["a", "b", "c", "d", "e", "f"]
    assert threading.main_thread().name not in threads


@pytest.mark.parametrize("kind", ["map", "flat_map"])
def test_an_exception_in_one_call_fails_the_run(kind: str) -> None:
    async def broken(item: int) -> Any:
        await asyncio.sleep(0)
        if item == 3:
            raise KeyError("item 3 is broken")
        return [item]

    stage = lib.map(broken, workers=2) if kind == "map" else lib.flat_map(broken, workers=2)
    with pytest.raises(KeyError, match="item 3 is broken"):
        run_stream(stage, {"inp": list(range(6))})


@pytest.mark.parametrize("kind", ["map", "flat_map"])
@pytest.mark.timeout(10)
def test_cancelling_the_run_cancels_the_calls_in_flight(kind: str) -> None:
    cancelled: list[int] = []

    async def forever(item: int) -> Any:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(item)
            raise
        return [item]

    stage: Callable[[], Any] = lambda: (  # noqa: E731
        lib.map(forever, workers=3) if kind == "map" else lib.flat_map(forever, workers=3)
    )

    async def main() -> set[asyncio.Task[Any]]:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.1):
                await (lib.range(10) | stage() | lib.collect()).run_async()
        return asyncio.all_tasks() - {asyncio.current_task()}  # type: ignore[operator]

    assert asyncio.run(main()) == set()
    assert sorted(cancelled) == [0, 1, 2]


@pytest.mark.timeout(10)
def test_a_consumer_that_leaves_early_ends_the_workers_quietly() -> None:
    first: list[int] = []

    async def twice(item: int) -> list[int]:
        await asyncio.sleep(0)
        return [item, item]

    @stream
    async def one(inp: In[int]) -> None:
        first.append(await inp.pop())

    report = (lib.range(10_000) | lib.flat_map(twice, workers=3, name="fm") | one).run(capacity=2)
    assert first == [0]
    assert report.streams["fm"].stopped_early


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: lib.flat_map(str.split, workers=0), ValueError, r"flat_map 'split': workers must be an int >= 1"),
        (lambda: lib.flat_map(str.split, workers=2, ordered="no"), TypeError, r"ordered must be True or False"),
    ],
)
def test_flat_map_checks_workers_when_made(call: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        call()


TYPED_OK = """
assert_type(lib.flat_map(words, workers=2), StageStream[str, str])
assert_type(lib.flat_map(words, workers=2, ordered=False), StageStream[str, str])
assert_type(lib.map(label, workers=4, ordered=False), StageStream[int, str])
"""

TYPED_BAD = """
c = lib.flat_map(words, workers="2")  # E
d = lib.flat_map(words, ordered=None)  # E
"""
