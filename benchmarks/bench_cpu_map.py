"""CPU-bound map on process workers: items/s with 1 and 2 workers.

A per-item function burns about 1 ms of CPU in pure Python; the graph is
numbers -> map(fn, executor='process', workers=W) -> count. The speed-up of 2
workers over 1 shows whether the process pool uses a second core (target on
2 cores: >= 1.7x). Each setting runs ``--repeat`` times, the two interleaved; the best is
kept, since other processes on the machine only ever slow a run down.

    python benchmarks/bench_cpu_map.py [--items 1000] [--repeat 5] [--chunk-size N] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from mimo import Stream, Workflow
from mimo.lib.parallel import parallel_map

#: Loop iterations of burn() that take about 1 ms here; set by calibrate().
SPINS = 10_000


def burn(x: int, spins: int | None = None) -> int:
    """About 1 ms of pure-Python CPU work."""
    acc = x
    for i in range(SPINS if spins is None else spins):
        acc = (acc * 31 + i) % 1_000_003
    return acc


def calibrate(target_s: float = 0.001) -> int:
    """The spin count for which burn() takes ``target_s`` on this machine (best of several)."""
    spins = 10_000
    best = float("inf")
    for _ in range(20):
        t0 = time.perf_counter()
        burn(0, spins)
        best = min(best, time.perf_counter() - t0)
    return max(1, int(spins * target_s / best))


async def numbers(ins: Any, outs: Any, state: Any) -> None:
    for i in range(state["n"]):
        await outs.out.push(i)


async def count(ins: Any, outs: Any, state: Any) -> None:
    n = 0
    async for _ in ins.inp:
        n += 1
    state["n"] = n


def run_once(items: int, workers: int, chunk_size: int | None = None) -> float:
    wf = Workflow(capacity=64)
    sink = Stream(ins=["inp"], fn=count, name="count", state={})
    src = wf.add_stream(Stream(outs=["out"], fn=numbers, name="numbers", state={"n": items}))
    src.pipe(parallel_map(burn, workers=workers, executor="process", chunk_size=chunk_size)).pipe(sink)
    t0 = time.perf_counter()
    wf.run()
    elapsed = time.perf_counter() - t0
    assert sink.state["n"] == items
    return elapsed


def main() -> int:
    global SPINS
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--chunk-size", type=int, default=None, help="items per pool task (default: the library's)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args()

    SPINS = calibrate()
    # Children made by fork inherit SPINS; with another start method they would recompute it.
    t0 = time.perf_counter()
    for i in range(200):
        burn(i)
    per_item_ms = (time.perf_counter() - t0) / 200 * 1000
    load_before = os.getloadavg()[0]
    # Interleaved, so that a busy spell on the machine hurts both settings alike.
    results = {1: float("inf"), 2: float("inf")}
    for _ in range(args.repeat):
        for workers in (1, 2):
            results[workers] = min(results[workers], run_once(args.items, workers, args.chunk_size))
    speedup = results[1] / results[2]
    out = {
        "items": args.items,
        "chunk_size": args.chunk_size or "default (16)",
        "cpu_ms_per_item": round(per_item_ms, 3),
        "cores": os.cpu_count(),
        "load_1min_before": load_before,
        "load_1min_after": os.getloadavg()[0],
        "seconds": {str(w): round(s, 3) for w, s in results.items()},
        "items_per_s": {str(w): round(args.items / s) for w, s in results.items()},
        "speedup_2_over_1": round(speedup, 2),
    }
    if args.json:
        print(json.dumps(out))
    else:
        print(
            f"CPU-bound map, {args.items} items of {per_item_ms:.2f} ms each, {os.cpu_count()} cores, "
            f"chunk_size {out['chunk_size']}"
        )
        print(f"load (1 min) before {load_before:.2f}, after {out['load_1min_after']:.2f}")
        for w, s in results.items():
            print(f"  {w} process worker(s): {s:.3f} s, {args.items / s:,.0f} items/s")
        print(f"  speed-up with 2 workers: {speedup:.2f}x (target >= 1.7x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
