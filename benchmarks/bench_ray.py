"""The Ray executor: items/s through a 3-stream chain, and a CPU-bound map on Ray workers.

1. numbers -> double -> count on Ray, for batch sizes 1, 100 and 1000 (every
   join sends batches of that many items). Small ints, so this measures the
   per-batch cost of the edges.
2. numbers -> burn (about 1 ms of CPU per item, workers=1 or 2) -> count: the
   speed-up of two Ray actors over one.

Ray starts once, locally, for the whole benchmark. It probes outside addresses
at start-up, so run this only inside a network namespace with nothing but
loopback:

    unshare -n sh -c 'ip link set lo up && RAY_USAGE_STATS_ENABLED=0 \\
        python benchmarks/bench_ray.py [--json]'
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import sys
import time
from typing import Any

from mimo import Stream, Workflow
from mimo.executors import RayExecutor

#: Items per batch size in part 1, chosen so that each run takes a few seconds.
CHAIN_ITEMS = {1: 2_000, 100: 100_000, 1000: 500_000}


async def numbers(ins: Any, outs: Any, state: Any) -> None:
    for i in range(state["n"]):
        await outs.out.push(i)


async def double(ins: Any, outs: Any, state: Any) -> None:
    async for x in ins.inp:
        await outs.out.push(2 * x)


async def count(ins: Any, outs: Any, state: Any) -> None:
    n = 0
    async for _ in ins.inp:
        n += 1
    state["n"] = n


async def burn(ins: Any, outs: Any, state: Any) -> None:
    spins = state["spins"]
    async for x in ins.inp:
        acc = x
        for i in range(spins):
            acc = (acc * 31 + i) % 1_000_003
        await outs.out.push(acc)


def calibrate(target_s: float = 0.001) -> int:
    """Loop iterations of burn's inner loop that take ``target_s`` here (best of several)."""
    spins = 10_000
    best = float("inf")
    for _ in range(20):
        t0 = time.perf_counter()
        acc = 0
        for i in range(spins):
            acc = (acc * 31 + i) % 1_000_003
        best = min(best, time.perf_counter() - t0)
    return max(1, int(spins * target_s / best))


def chain(items: int, middle: Stream, ex: RayExecutor, capacity: int = 16) -> tuple[float, float]:
    """Run numbers -> middle -> count; return (streaming seconds, wall seconds).

    Streaming seconds are the report's ``elapsed_s``: from the moment every
    actor exists and is wired until the last stream ends. The wall time adds
    making, wiring and killing the actors.
    """
    wf = Workflow(capacity=capacity)
    sink = Stream(ins=["inp"], fn=count, name="count", state={})
    wf.add_stream(Stream(outs=["out"], fn=numbers, name="numbers", state={"n": items})).pipe(middle).pipe(sink)
    t0 = time.perf_counter()
    report = wf.run(executor=ex)
    wall = time.perf_counter() - t0
    assert sink.state["n"] == items, sink.state
    assert report["count"].items_in == {"inp": items}
    return report.elapsed_s, wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per setting; the best is kept")
    parser.add_argument("--map-items", type=int, default=3000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    interfaces = sorted(name for _, name in socket.if_nameindex())
    if interfaces != ["lo"]:
        print(f"refusing to start Ray with network interfaces {interfaces}; see the docstring", file=sys.stderr)
        return 2

    out: dict[str, Any] = {"cores": os.cpu_count(), "load_1min_before": os.getloadavg()[0]}
    t0 = time.perf_counter()
    with RayExecutor(init_options={"num_cpus": 2, "object_store_memory": 200 << 20}) as ex:
        out["ray_start_s"] = round(time.perf_counter() - t0, 2)
        # A first run warms up worker processes, imports and code shipping.
        chain(100, Stream(["inp"], ["out"], fn=double, name="double"), ex)

        empty = []
        for _ in range(args.repeat):
            empty.append(chain(0, Stream(["inp"], ["out"], fn=double, name="double"), ex)[1])
        out["empty_run_wall_s"] = round(min(empty), 3)

        rows = {}
        for batch, items in CHAIN_ITEMS.items():
            ex.batch_size = batch
            best = min(
                (chain(items, Stream(["inp"], ["out"], fn=double, name="double"), ex) for _ in range(args.repeat)),
                key=lambda r: r[0],
            )
            seconds, wall = best
            rows[str(batch)] = {
                "items": items,
                "seconds": round(seconds, 3),
                "wall_s": round(wall, 3),
                "items_per_s": round(items / seconds),
                "batches_per_s": round(items / batch / seconds, 1),
            }
        out["chain"] = rows

        spins = calibrate()
        ex.batch_size = 50
        maps = {}
        for workers in (1, 2):
            maps[str(workers)] = float("inf")
        # Interleaved, so that a busy spell on the machine hurts both settings alike.
        for _ in range(args.repeat):
            for workers in (1, 2):
                middle = Stream(["inp"], ["out"], fn=burn, name="burn", state={"spins": spins}, workers=workers)
                seconds, _ = chain(args.map_items, middle, ex)
                maps[str(workers)] = min(maps[str(workers)], seconds)
        out["cpu_map"] = {
            "items": args.map_items,
            "batch_size": 50,
            "seconds": {w: round(s, 3) for w, s in maps.items()},
            "items_per_s": {w: round(args.map_items / s) for w, s in maps.items()},
            "speedup_2_over_1": round(maps["1"] / maps["2"], 2),
        }
    out["load_1min_after"] = os.getloadavg()[0]
    out["driver_max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)

    if args.json:
        print(json.dumps(out))
        return 0
    print(f"Ray executor, {out['cores']} cores; Ray started in {out['ray_start_s']} s")
    print(f"load (1 min) before {out['load_1min_before']:.2f}, after {out['load_1min_after']:.2f}")
    print(f"an empty 3-stream run (actors made, wired, run, killed): {out['empty_run_wall_s']} s wall")
    print("3-stream chain (2 hops), streaming time from the report, best of", args.repeat)
    for batch, r in rows.items():
        print(
            f"  batch {batch:>4}: {r['items']:>7} items in {r['seconds']:.3f} s = {r['items_per_s']:>9,} items/s "
            f"({r['batches_per_s']} batches/s; {r['wall_s']:.3f} s wall with set-up)"
        )
    m = out["cpu_map"]
    print(f"CPU-bound map, {m['items']} items of ~1 ms, batch {m['batch_size']}, best of {args.repeat}")
    for w in ("1", "2"):
        print(f"  {w} Ray worker(s): {m['seconds'][w]:.3f} s = {m['items_per_s'][w]:,} items/s")
    print(f"  speed-up with 2 workers: {m['speedup_2_over_1']}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
