"""Helpers shared by the tests of mimo.lib's operators (select, aggregate, timing, routing, buffers)."""

from __future__ import annotations

import asyncio
from typing import Any

from mimo import Out, lib, stream
from mimo.dsl import StageStream
from mimo.testing import run_workflow_async


def endless(finals: list[str], label: str = "source") -> Any:
    """A source pushing 0, 1, 2, ... forever; ``label`` lands in ``finals`` when it stops."""

    @stream(name="endless")
    async def source(out: Out[int]) -> None:
        i = 0
        try:
            while True:
                await out.push(i)
                i += 1
        finally:
            finals.append(label)

    return source


def cancel_while_running(stage: StageStream[Any, Any], *, after: float = 0.05) -> list[str]:
    """Run ``endless | stage | collect``, cancel the run from outside, and say whose ``finally`` ran.

    Asserts the cancellation reached the caller and no task was left running.
    """
    finals: list[str] = []
    got: list[Any] = []

    async def main() -> None:
        run = asyncio.ensure_future(run_workflow_async(endless(finals) | stage | lib.collect(got), timeout=None))
        await asyncio.sleep(after)
        run.cancel()
        try:
            await run
        except asyncio.CancelledError:
            pass
        else:
            raise AssertionError("the run ended before it was cancelled")
        left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert left == [], f"tasks left running: {left}"

    asyncio.run(main())
    return finals
