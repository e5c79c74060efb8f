"""The runtime: behaviour that mutation testing found untested (see docs/mutation.md)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from mimo import Stream
from mimo._runtime import run_graph
from tests.helpers import chain


@pytest.mark.timeout(10)
def test_the_live_report_counts_waits_still_going_on_and_the_final_one_every_wait() -> None:
    """What the progress view and the dashboard show while a stream waits."""

    async def src(ins: Any, outs: Any, state: Any) -> None:
        await outs.out.push(0)
        await outs.out.push(1)  # the queue holds one and the sink reads late: blocked
        await asyncio.sleep(0.4)  # meanwhile the sink waits for the next item: starved
        await outs.out.push(2)

    async def sink(ins: Any, outs: Any, state: Any) -> None:
        await asyncio.sleep(0.3)
        async for _ in ins.inp:
            pass

    wf = chain(Stream(outs=["out"], fn=src, name="src"), Stream(["inp"], fn=sink, name="sink"), capacity=1)

    async def main() -> None:
        snapshot: Any = None

        def on_start(snap: Any) -> None:
            nonlocal snapshot
            snapshot = snap

        run = asyncio.create_task(run_graph(wf.graph, on_start=on_start))
        await asyncio.sleep(0.2)
        live = snapshot()
        assert 0.15 <= live["src"].blocked_s < 2.0
        assert live["src"].starved_s == 0.0
        assert not live["src"].stopped_early and not live["src"].done
        await asyncio.sleep(0.35)
        live = snapshot()
        assert 0.1 <= live["sink"].starved_s < 2.0
        assert live["sink"].blocked_s == 0.0
        report = await asyncio.wait_for(run, 5)
        assert report["sink"].items_in == {"inp": 3}
        assert 0.2 <= report["sink"].starved_s <= report["sink"].elapsed_s
        assert report["sink"].blocked_s == 0.0
        assert 0.15 <= report["src"].blocked_s <= report["src"].elapsed_s
        assert (report["src"].retries, report["sink"].retries) == (0, 0)
        assert not report["src"].stopped_early

    asyncio.run(main())
