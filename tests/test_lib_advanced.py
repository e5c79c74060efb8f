"""mimo.lib.advanced: switch_map."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from mimo import Out, lib, stream
from mimo.testing import run_stream, run_workflow, run_workflow_async
from tests.operator_helpers import cancel_while_running, endless


def test_switch_map_pushes_the_items_of_the_last_sub_stream_to_the_end() -> None:
    async def count(n: int) -> AsyncIterator[int]:
        for i in range(n):
            yield i

    assert run_stream(lib.switch_map(count), {"inp": [3]}) == {"out": [0, 1, 2]}
    assert run_stream(lib.switch_map(count), {"inp": []}) == {"out": []}


@pytest.mark.timeout(10)
def test_a_new_item_abandons_and_closes_the_sub_stream_before_it() -> None:
    events: list[str] = []
    second = asyncio.Event()

    async def ticks(label: str) -> AsyncIterator[str]:
        try:
            for i in range(3):
                yield f"{label}{i}"
                if label == "a" and i == 0:
                    second.set()  # let the next item come
                    await asyncio.Event().wait()  # and wait here until abandoned
        finally:
            events.append(f"closed {label}")

    @stream
    async def items(out: Out[str]) -> None:
        await out.push("a")
        await second.wait()
        await out.push("b")

    got: list[str] = []
    run_workflow(items | lib.switch_map(ticks) | lib.collect(got), timeout=5)
    assert got == ["a0", "b0", "b1", "b2"]
    assert events == ["closed a", "closed b"]


async def _later(n: int) -> AsyncIterator[int]:
    yield n


async def _async_returning(n: int) -> Any:
    return _later(n)


def test_switch_map_takes_an_async_function_returning_an_async_iterable_and_is_named_after_it() -> None:
    assert run_stream(lib.switch_map(_async_returning), {"inp": [4]}) == {"out": [4]}
    assert lib.switch_map(_later).name == "_later"


def test_a_failing_sub_stream_fails_the_run_with_its_own_error_named() -> None:
    async def broken(n: int) -> AsyncIterator[int]:
        yield n
        raise ArithmeticError(f"broke after {n}")

    with pytest.raises(ArithmeticError, match="broke after 1") as info:
        run_stream(lib.switch_map(broken), {"inp": [1]})
    assert info.value.mimo_stream == "broken"  # type: ignore[attr-defined]


def test_fn_must_give_an_async_iterable() -> None:
    with pytest.raises(TypeError, match=r"switch_map 'switch_map': fn must return an async iterable.*not list"):
        run_stream(lib.switch_map(lambda n: [n]), {"inp": [1]})
    with pytest.raises(TypeError, match=r"switch_map\(\) needs a function"):
        lib.switch_map(None)  # type: ignore[call-overload]


@pytest.mark.timeout(10)
def test_switch_map_stops_and_closes_its_sub_stream_when_its_consumer_leaves() -> None:
    closed: list[int] = []
    finals: list[str] = []

    async def forever(n: int) -> AsyncIterator[int]:
        try:
            while True:
                yield n
        finally:
            closed.append(n)

    got: list[int] = []
    report = run_workflow(
        endless(finals) | lib.take(1) | lib.switch_map(forever) | lib.take(3) | lib.collect(got), timeout=5
    )
    assert got == [0, 0, 0] and closed == [0] and report["forever"].stopped_early


@pytest.mark.timeout(10)
def test_switch_map_ends_cleanly_and_closes_its_sub_stream_when_the_run_is_cancelled() -> None:
    closed: list[int] = []
    started = asyncio.Event()

    async def slow(n: int) -> AsyncIterator[int]:
        try:
            yield n
            started.set()
            await asyncio.sleep(3600)
        finally:
            closed.append(n)

    async def main() -> None:
        flow = lib.from_iterable([7]) | lib.switch_map(slow) | lib.collect([])
        run = asyncio.ensure_future(run_workflow_async(flow, timeout=None))
        await started.wait()
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []

    asyncio.run(main())
    assert closed == [7]


@pytest.mark.timeout(10)
def test_switch_map_of_a_flood_ends_cleanly_when_the_run_is_cancelled() -> None:
    async def one(n: int) -> AsyncIterator[int]:
        yield n

    assert cancel_while_running(lib.switch_map(one)) == ["source"]
