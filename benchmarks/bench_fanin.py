"""Deadlock detection's cost: many waiters at once (issue 9 case 19).

Two workloads, each timed best-of ``--repeat``:

* ``blocked``: one stream pushes N items at once from N sub-tasks (under
  ``mimo.run_together``) into a queue of 1; a sink reads them. Up to N pushes
  wait at the same time. Linear cost means N x4 costs about x4.
* ``fanin``: P producer streams each push ``--items`` / P items into one sink
  (queues of 64); items/s for P = 10 and P = 1000.

    python benchmarks/bench_fanin.py [--repeat 3] [--items 200000] [--json]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from mimo import Stream, Workflow, run_together


def blocked(n: int) -> float:
    """Seconds for ``n`` concurrently blocked pushes to drain through a queue of 1."""

    async def many(ins: Any, outs: Any, state: Any) -> None:
        async def one(i: int) -> None:
            await outs.out.push(i)

        await run_together(*(one(i) for i in range(n)))

    async def sink(ins: Any, outs: Any, state: Any) -> None:
        async for _ in ins.inp:
            pass

    wf = Workflow(capacity=1)
    wf.add_stream(Stream(outs=["out"], fn=many)).pipe(Stream(["inp"], fn=sink))
    t0 = time.perf_counter()
    wf.run()
    return time.perf_counter() - t0


def fanin(producers: int, items: int) -> float:
    """Items/s through one sink fed by ``producers`` streams."""
    each = items // producers

    async def produce(ins: Any, outs: Any, state: Any) -> None:
        for i in range(each):
            await outs.out.push(i)

    async def sink(ins: Any, outs: Any, state: Any) -> None:
        async for _ in ins.inp:
            pass

    wf = Workflow(capacity=64)
    s = wf.add_stream(Stream(["inp"], fn=sink))
    for p in range(producers):
        wf.add_stream(Stream(outs=["out"], fn=produce, name=f"p{p}")).pipe(s)
    t0 = time.perf_counter()
    wf.run()
    return each * producers / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--items", type=int, default=200_000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    out: dict[str, float] = {}
    for n in (2_000, 8_000, 10_000):
        out[f"blocked_{n}_s"] = min(blocked(n) for _ in range(args.repeat))
    out["blocked_8000_over_2000"] = out["blocked_8000_s"] / out["blocked_2000_s"]
    for p in (10, 1000):
        out[f"fanin_{p}_items_per_s"] = max(fanin(p, args.items) for _ in range(args.repeat))
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for k, v in out.items():
            print(f"{k:28} {v:12.3f}")


if __name__ == "__main__":
    main()
