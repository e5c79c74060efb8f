"""What the dashboard costs: W1 with ``run(dashboard=...)`` and a page reading it, against W1 without.

Each run is a fresh process; the two kinds alternate, in turns that swap which
goes first, and the overhead is the median of the ratios taken within each
round. The "page" is a separate process that reads the live updates (Server-Sent
Events) for the whole run, as an open browser tab does; it is started when the
dashboard prints its address, inside the timed run.

    python benchmarks/bench_dashboard.py            # 7 rounds of 2,000,000 items
    python benchmarks/bench_dashboard.py -n 500000 -r 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
CAPACITY = 100

READER = """
import sys, urllib.request
n = 0
with urllib.request.urlopen(sys.argv[1] + "events", timeout=60) as r:
    for line in r:
        n += line.startswith(b"data: ")
print(n)
"""


def w1(n: int, dashboard: Any) -> int:
    """W1 as benchmarks/mimo_impls.py runs it: source -> x+1 -> x*2 -> sum, queues of 100."""
    from mimo import Stream, Workflow

    async def source(ins: Any, outs: Any, state: Any) -> None:
        out = outs.y
        for i in range(n):
            await out.push(i)

    async def inc(ins: Any, outs: Any, state: Any) -> None:
        out = outs.y
        async for x in ins.x:
            await out.push(x + 1)

    async def dbl(ins: Any, outs: Any, state: Any) -> None:
        out = outs.y
        async for x in ins.x:
            await out.push(x * 2)

    async def total(ins: Any, outs: Any, state: Any) -> None:
        t = 0
        async for x in ins.x:
            t += x
        state["total"] = t

    wf = Workflow(capacity=CAPACITY, name="W1")
    sink = Stream(ins=["x"], fn=total)
    step = wf.add_stream(Stream(outs=["y"], fn=source))
    for fn in (inc, dbl):
        step = step.pipe(Stream(ins=["x"], outs=["y"], fn=fn))
    step.pipe(sink)
    wf.run(dashboard=dashboard)
    return sink.state["total"]  # type: ignore[no-any-return]


def child(kind: str, n: int) -> None:
    import io

    import mimo

    if kind == "dashboard":
        import aiohttp.web  # noqa: F401 - imported before the clock, like the library under test

    readers: list[subprocess.Popen[str]] = []

    def open_page(url: str) -> None:
        readers.append(subprocess.Popen([sys.executable, "-c", READER, url], stdout=subprocess.PIPE, text=True))

    board: Any = mimo.Dashboard(on_url=open_page, file=io.StringIO()) if kind == "dashboard" else False
    ticks: list[float] = []
    if kind == "dashboard":
        # The dashboard's own work in the run's loop: snapshot, figures, JSON, waking the page's stream.
        from mimo import _dashboard

        tick = _dashboard._Server._tick

        def timed(self: Any) -> None:
            t = time.perf_counter()
            tick(self)
            ticks.append(time.perf_counter() - t)

        _dashboard._Server._tick = timed  # type: ignore[method-assign]
    c0, t0 = time.process_time(), time.perf_counter()
    result = w1(n, board)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    events = int(readers[0].communicate(timeout=30)[0]) if readers else 0
    expected = sum(2 * (i + 1) for i in range(n))
    print(json.dumps({"wall_s": wall, "cpu_s": cpu, "events": events, "tick_s": sum(ticks), "ok": result == expected}))


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        child(argv[1], int(argv[2]))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--size", type=int, default=2_000_000, help="items per run (default 2,000,000)")
    ap.add_argument("-r", "--rounds", type=int, default=7, help="rounds, each one run of each kind (default 7)")
    args = ap.parse_args(argv)
    load0 = os.getloadavg()[0]
    runs: dict[str, list[dict[str, Any]]] = {"plain": [], "dashboard": []}
    for r in range(args.rounds):
        order = ("plain", "dashboard") if r % 2 == 0 else ("dashboard", "plain")
        for kind in order:
            out = subprocess.run(
                [sys.executable, __file__, "--child", kind, str(args.size)],
                capture_output=True,
                text=True,
                check=True,
                cwd=HERE,
            )
            res = json.loads(out.stdout.strip().splitlines()[-1])
            runs[kind].append(res)
            print(f"round {r + 1}: {kind:9} {res['wall_s']:.3f} s wall {res['cpu_s']:.3f} s CPU "
                  f"{res['events']} updates {'ok' if res['ok'] else 'WRONG'}", file=sys.stderr)  # fmt: skip
    load1 = os.getloadavg()[0]
    ratio_wall = statistics.median(d["wall_s"] / p["wall_s"] for p, d in zip(runs["plain"], runs["dashboard"]))
    ratio_cpu = statistics.median(d["cpu_s"] / p["cpu_s"] for p, d in zip(runs["plain"], runs["dashboard"]))
    ok = all(x["ok"] for xs in runs.values() for x in xs)
    med = {k: statistics.median(x["wall_s"] for x in v) for k, v in runs.items()}
    updates = statistics.median(x["events"] for x in runs["dashboard"])
    own = statistics.median(x["tick_s"] / x["wall_s"] for x in runs["dashboard"])
    print(
        "| workload | N | rounds | wall, without | wall, with | wall overhead | CPU overhead "
        "| updates read | dashboard's own work | result |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    )
    print(
        f"| W1 | {args.size:,} | {args.rounds} | {med['plain']:.3f} s | {med['dashboard']:.3f} s | "
        f"{ratio_wall - 1:+.1%} | {ratio_cpu - 1:+.1%} | {updates:.0f} | {own:.2%} of the run | "
        f"{'ok' if ok else 'WRONG'} |"
    )
    print(f"load average {load0:.2f} before, {load1:.2f} after", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
