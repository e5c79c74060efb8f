"""The Ray executor: items/s through a 3-stream chain, and a CPU-bound map on Ray workers.

1. numbers -> double -> count on Ray, for batch sizes 1, 100 and 1000 (every
   join sends batches of that many items). Small ints, so this measures the
   per-batch cost of the edges.
   Each batch size runs with the byte bounds on (the defaults: 1 MiB per
   batch, 8 MiB in flight per link) and off (``batch_bytes=None,
   link_bytes=None``), interleaved, so that their ratio is from the same run.
2. numbers -> burn (about 1 ms of CPU per item, workers=1 or 2) -> count: the
   speed-up of two Ray actors over one.
3. Large items: 1,000 items of 1 MiB through blobs -> relay -> measure, with
   the byte bounds on and off, each on a fresh local Ray (200 MB object
   store): every actor's peak memory above what it used when its stream
   started, and the object store's peak use (the growth of /dev/shm).

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
from pathlib import Path
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


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _memory_mark(state: Any) -> None:
    state["rss_start_kib"] = _status_kib("VmRSS")


def _memory_peak(state: Any) -> None:
    state["peak_kib"] = _status_kib("VmHWM")


async def blobs(ins: Any, outs: Any, state: Any) -> None:
    _memory_mark(state)
    size = state["size"]
    for i in range(state["n"]):
        # A fresh, fully written buffer each time, as a real producer's would be.
        await outs.out.push(bytes([i % 256]) * size)
    _memory_peak(state)


async def relay(ins: Any, outs: Any, state: Any) -> None:
    _memory_mark(state)
    async for x in ins.inp:
        await outs.out.push(x)
    _memory_peak(state)


async def measure(ins: Any, outs: Any, state: Any) -> None:
    _memory_mark(state)
    n = total = 0
    async for x in ins.inp:
        n += 1
        total += len(x)
    state.update(n=n, bytes=total)
    _memory_peak(state)


def shm_used() -> int:
    """Bytes in use on /dev/shm, where a local Ray keeps its object store.

    The store touches its shared memory as objects are written and does not
    give it back, so the growth over a run is the store's peak use in it.
    """
    st = os.statvfs("/dev/shm")
    return (st.f_blocks - st.f_bfree) * st.f_frsize


def large_items(ex: RayExecutor, items: int, size: int) -> dict[str, Any]:
    """blobs -> relay -> measure with ``items`` items of ``size`` bytes: memory figures in MiB."""
    wf = Workflow()
    states = {name: {"n": items, "size": size} for name in ("blobs", "relay", "measure")}
    src = Stream(outs=["out"], fn=blobs, name="blobs", state=states["blobs"])
    mid = Stream(["inp"], ["out"], fn=relay, name="relay", state=states["relay"])
    sink = Stream(ins=["inp"], fn=measure, name="measure", state=states["measure"])
    wf.add_stream(src).pipe(mid).pipe(sink)
    shm0 = shm_used()
    t0 = time.perf_counter()
    report = wf.run(executor=ex)
    wall = time.perf_counter() - t0
    shm1 = shm_used()
    assert sink.state["n"] == items and sink.state["bytes"] == items * size, sink.state
    mib = 1 << 20
    return {
        "seconds": round(report.elapsed_s, 3),
        "wall_s": round(wall, 3),
        "mib_per_s": round(items * size / mib / report.elapsed_s, 1),
        "producer_blocked_s": round(report["blobs"].blocked_s, 3),
        "actor_peak_above_start_mib": {
            s.name: round((s.state["peak_kib"] - s.state["rss_start_kib"]) / 1024) for s in (src, mid, sink)
        },
        "actor_start_rss_mib": {s.name: round(s.state["rss_start_kib"] / 1024) for s in (src, mid, sink)},
        "store_peak_mib": round((shm1 - shm0) / mib),
    }


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
    parser.add_argument("--large-items", type=int, default=1000, help="items of 1 MiB in part 3")
    parser.add_argument("--only-large", action="store_true", help="run part 3 only")
    parser.add_argument("--only-chain", action="store_true", help="run part 1 only")
    parser.add_argument("--bounds", choices=["on", "off", "both"], default="both", help="part 3's settings")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    interfaces = sorted(name for _, name in socket.if_nameindex())
    if interfaces != ["lo"]:
        print(f"refusing to start Ray with network interfaces {interfaces}; see the docstring", file=sys.stderr)
        return 2

    out: dict[str, Any] = {"cores": os.cpu_count(), "load_1min_before": os.getloadavg()[0]}
    large: dict[str, Any] = {}
    for bounds in () if args.only_chain else ("on", "off") if args.bounds == "both" else (args.bounds,):
        # A fresh Ray each: the store's shared memory, once touched, stays in use.
        sizes = {} if bounds == "on" else {"batch_bytes": None, "link_bytes": None}
        with RayExecutor(init_options={"num_cpus": 2, "object_store_memory": 200 << 20}, **sizes) as ex:
            # Warm up, so that the figures are the run's own.
            large_items(ex, 2, 1 << 20)
            large[bounds] = large_items(ex, args.large_items, 1 << 20)
    out["large"] = {"items": args.large_items, "item_bytes": 1 << 20, **large}
    if args.only_large:
        return _print(out, args)
    t0 = time.perf_counter()
    with RayExecutor(init_options={"num_cpus": 2, "object_store_memory": 200 << 20}) as ex:
        out["ray_start_s"] = round(time.perf_counter() - t0, 2)
        # A first run warms up worker processes, imports and code shipping.
        chain(100, Stream(["inp"], ["out"], fn=double, name="double"), ex)

        empty = []
        for _ in range(args.repeat):
            empty.append(chain(0, Stream(["inp"], ["out"], fn=double, name="double"), ex)[1])
        out["empty_run_wall_s"] = round(min(empty), 3)

        rows: dict[str, dict[str, Any]] = {}
        for batch, items in CHAIN_ITEMS.items():
            ex.batch_size = batch
            best: dict[str, tuple[float, float]] = {}
            # Interleaved, so that a busy spell hurts both settings alike.
            for _ in range(args.repeat):
                for bounds in ("on", "off"):
                    ex.batch_bytes, ex.link_bytes = (1 << 20, 8 << 20) if bounds == "on" else (None, None)
                    r = chain(items, Stream(["inp"], ["out"], fn=double, name="double"), ex)
                    if bounds not in best or r[0] < best[bounds][0]:
                        best[bounds] = r
            ex.batch_bytes, ex.link_bytes = 1 << 20, 8 << 20
            for bounds, (seconds, wall) in best.items():
                rows[f"{batch} bytes {bounds}"] = {
                    "batch_size": batch,
                    "byte_bounds": bounds,
                    "items": items,
                    "seconds": round(seconds, 3),
                    "wall_s": round(wall, 3),
                    "items_per_s": round(items / seconds),
                    "batches_per_s": round(items / batch / seconds, 1),
                }
            on, off = rows[f"{batch} bytes on"]["items_per_s"], rows[f"{batch} bytes off"]["items_per_s"]
            rows[f"{batch} ratio"] = {"on_over_off": round(on / off, 3)}
        out["chain"] = rows
        if args.only_chain:
            return _print(out, args)

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
    return _print(out, args)


def _print(out: dict[str, Any], args: argparse.Namespace) -> int:
    out["load_1min_after"] = os.getloadavg()[0]
    out["driver_max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)

    if args.json:
        print(json.dumps(out))
        return 0
    print(f"Ray executor, {out['cores']} cores; Ray started in {out.get('ray_start_s', '?')} s")
    print(f"load (1 min) before {out['load_1min_before']:.2f}, after {out['load_1min_after']:.2f}")
    if "empty_run_wall_s" in out:
        print(f"an empty 3-stream run (actors made, wired, run, killed): {out['empty_run_wall_s']} s wall")
    lg = out["large"]
    if len(lg) > 2:
        print(f"large items: {lg['items']} x 1 MiB through blobs -> relay -> measure")
    for bounds in ("on", "off"):
        if bounds not in lg:
            continue
        r = lg[bounds]
        print(
            f"  byte bounds {bounds:>3}: {r['seconds']:.3f} s ({r['mib_per_s']} MiB/s), producer blocked "
            f"{r['producer_blocked_s']} s; actor peak above start (MiB) {r['actor_peak_above_start_mib']} "
            f"(start RSS {r['actor_start_rss_mib']}); object store peak {r['store_peak_mib']} MiB"
        )
    if "chain" not in out:
        return 0
    print("3-stream chain (2 hops), streaming time from the report, best of", args.repeat)
    for key, r in out["chain"].items():
        if "on_over_off" in r:
            print(f"  {key}: bounds on / off = {r['on_over_off']}")
            continue
        print(
            f"  batch {r['batch_size']:>4} bytes {r['byte_bounds']:>3}: {r['items']:>7} items in {r['seconds']:.3f} s"
            f" = {r['items_per_s']:>9,} items/s ({r['batches_per_s']} batches/s; {r['wall_s']:.3f} s wall with set-up)"
        )
    if "cpu_map" not in out:
        return 0
    m = out["cpu_map"]
    print(f"CPU-bound map, {m['items']} items of ~1 ms, batch {m['batch_size']}, best of {args.repeat}")
    for w in ("1", "2"):
        print(f"  {w} Ray worker(s): {m['seconds'][w]:.3f} s = {m['items_per_s'][w]:,} items/s")
    print(f"  speed-up with 2 workers: {m['speedup_2_over_1']}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
