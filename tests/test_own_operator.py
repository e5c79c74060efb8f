"""Writing your own operator: required settings, and a user's @stream behaving like a stock stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from mimo import In, Out, Workflow, lib, stream
from mimo.dsl import DslStream, StageStream
from mimo.testing import run_stream


@stream
async def take(inp: In[int], out: Out[int], *, n: int) -> None:
    """The first ``n`` items, then the end."""
    if n <= 0:
        return
    async for item in inp:
        await out.push(item)
        n -= 1
        if n == 0:
            return


@stream(ins=["inp"], outs=["out"])
async def scale(ins: Any, outs: Any, *, factor: int, offset: int = 0) -> None:
    async for x in ins.inp:
        await outs.out.push(x * factor + offset)


def test_a_required_setting_given_at_the_copy_runs() -> None:
    assert (lib.range(10) | take(n=3)).to_list() == [0, 1, 2]
    assert run_stream(scale(factor=2), {"inp": [1, 2]}) == {"out": [2, 4]}


def test_a_copy_without_a_required_setting_is_a_type_error_naming_it() -> None:
    with pytest.raises(
        TypeError, match=r"stream 'take' needs the setting 'n', which has no default: use take\(n=...\)"
    ):
        take()
    with pytest.raises(TypeError, match=r"stream 'scale' needs the setting 'factor'.*scale\(factor=...\)"):
        scale(offset=1)


@pytest.mark.parametrize(
    "build",
    [
        lambda: lib.range(3) | take,
        lambda: lib.range(3).out["out"] >> take.in_["inp"],
        lambda: Workflow().add_stream(scale),
        lambda: take | lib.collect(),
    ],
    ids=["pipe", "by-name", "add_stream", "pipe-from"],
)
def test_the_definition_itself_is_refused_when_the_graph_is_built(build: Any) -> None:
    with pytest.raises(TypeError, match="needs the setting '(n|factor)', which has no default"):
        build()


def test_an_unknown_setting_lists_the_required_ones_too() -> None:
    with pytest.raises(
        TypeError,
        match=r"stream 'scale' has no setting 'factr'; did you mean 'factor'\? \(its settings: offset, factor\)",
    ):
        scale(factr=2)


def test_the_required_setting_is_reported_by_the_definition() -> None:
    assert take.settings == {} and scale.settings == {"offset": 0}
    assert take(n=2).settings == {"n": 2}


def test_a_users_factory_is_suffixed_and_usable_many_times_in_one_graph() -> None:
    got: list[int] = []
    flow = lib.range(10) | take(n=5) | take(n=3) | take(n=2) | lib.collect(got)
    report = flow.run()
    assert got == [0, 1]
    assert {"take", "take_2", "take_3"} <= set(report.streams)


def test_take_written_by_hand_stops_everything_upstream_that_only_feeds_it() -> None:
    pulled: list[int] = []

    async def endless() -> AsyncIterator[int]:
        i = 0
        while True:
            pulled.append(i)
            yield i
            i += 1

    assert (lib.from_async_iterable(endless()) | take(n=3)).to_list() == [0, 1, 2]
    assert len(pulled) < 100  # bounded by the queues, not the whole (endless) source


def test_an_exception_in_a_users_operator_fails_the_run_with_its_name() -> None:
    @stream
    async def explode(inp: In[int], out: Out[int], *, at: int) -> None:
        async for x in inp:
            if x == at:
                raise ValueError(f"at {x}")
            await out.push(x)

    with pytest.raises(ValueError, match="at 2") as info:
        (lib.range(5) | explode(at=2)).to_list()
    assert "explode" in "".join(getattr(info.value, "__notes__", []))


@pytest.mark.timeout(10)
def test_cancelling_a_run_through_a_users_operator_leaves_no_task() -> None:
    async def main() -> None:
        async def slow() -> AsyncIterator[int]:
            while True:
                await asyncio.sleep(0.001)
                yield 1

        task = asyncio.ensure_future((lib.from_async_iterable(slow()) | take(n=10**9)).to_list_async())
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())


# -- the stock streams ------------------------------------------------------------------------


def _stock_bodies() -> list[tuple[str, DslStream]]:
    from mimo.lib import (
        _retrying,
        advanced,
        aggregate,
        buffers,
        combine,
        select,
        sinks,
        sources,
        timing,
        transforms,
        windows,
    )

    found = []
    for module in (
        sources,
        transforms,
        sinks,
        combine,
        select,
        aggregate,
        advanced,
        timing,
        buffers,
        windows,
        _retrying,
    ):
        for attr, value in vars(module).items():
            if isinstance(value, DslStream):
                found.append((f"{module.__name__}.{attr}", value))
    return found


def test_there_are_stock_bodies_to_check() -> None:
    assert len(_stock_bodies()) >= 12


@pytest.mark.parametrize(("where", "body"), _stock_bodies(), ids=[w for w, _ in _stock_bodies()])
def test_no_stock_body_has_a_placeholder_setting_that_could_reach_a_run(where: str, body: DslStream) -> None:
    # Every setting is required (given by the public function), so the bare body cannot join a graph.
    assert body.settings == {}
    if body._required:
        with pytest.raises(TypeError, match="which (has|have) no default"):
            Workflow().add_stream(body)


def test_a_stock_stage_is_typed_like_a_users() -> None:
    stage: StageStream[int, int] = take(n=1)
    assert isinstance(stage, StageStream)
