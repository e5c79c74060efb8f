"""What checkpointing costs: W1 and W3 (benchmarks/run.py's workloads, classic API) with and without it.

Each figure is the median of ``--reps`` runs, each in a fresh process, the
modes interleaved round by round; the cost is the median of the per-round
ratios. Run from the repository root::

    python benchmarks/bench_checkpoint.py --w1 6000000 --w3 600000 --reps 3

Modes: ``off`` (a plain run), ``5s`` (``checkpoint_every=5.0``, the issue's
setting) and ``0.5s`` (ten times as often, to show the cost of taking them).
Each checkpointed run also reports how many checkpoints it took and the
size of the last one (the bytes written to the store per checkpoint).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
MODES = {"off": None, "5s": 5.0, "0.5s": 0.5}


def _child(workload: str, mode: str, n: int) -> None:
    sys.path.insert(0, HERE)
    from mimo_impls import MimoClassic
    from workloads import expected

    import mimo

    every = MODES[mode]
    info: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "run.db")
        if every is not None:
            plain = mimo.Workflow.run

            def run(self: mimo.Workflow, **kw: Any) -> Any:
                return plain(self, checkpoint=db, checkpoint_every=every, **kw)

            mimo.Workflow.run = run  # type: ignore[method-assign]
        t0, c0 = time.perf_counter(), time.process_time()
        result = getattr(MimoClassic, workload)(n)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        if every is not None:
            import sqlite3

            con = sqlite3.connect(db)
            number, size = con.execute("SELECT number, length(data) FROM mimo_checkpoint").fetchone()
            con.close()
            info = {"checkpoints": number, "size_bytes": size}
    want = expected(workload, n)
    ok = (tuple(result) == want) if isinstance(want, tuple) else result == want
    print(json.dumps({"wall_s": wall, "cpu_s": cpu, "ok": ok, **info}))


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--w1", type=int, default=6_000_000, help="W1 items")
    ap.add_argument("--w3", type=int, default=600_000, help="W3 items")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    for workload, n in (("W1", args.w1), ("W3", args.w3)):
        walls: dict[str, list[float]] = {m: [] for m in MODES}
        cpus: dict[str, list[float]] = {m: [] for m in MODES}
        extra: dict[str, dict[str, Any]] = {}
        for _ in range(args.reps):
            for mode in MODES:
                out = subprocess.run(
                    [sys.executable, __file__, "--child", workload, mode, str(n)],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                res = json.loads(out.stdout.strip().splitlines()[-1])
                assert res["ok"], res
                walls[mode].append(res["wall_s"])
                cpus[mode].append(res["cpu_s"])
                if "checkpoints" in res:
                    extra[mode] = res
        for mode in MODES:
            med = statistics.median(walls[mode])
            cpu = statistics.median(cpus[mode])
            cost = statistics.median([w / b for w, b in zip(walls[mode], walls["off"])]) - 1
            cpu_cost = statistics.median([w / b for w, b in zip(cpus[mode], cpus["off"])]) - 1
            e = extra.get(mode, {})
            off = mode == "off"
            print(
                f"| {workload} | {n:,} | {mode} | {med:.2f} s | {cpu:.2f} s | {n / med / 1e6:.2f} M/s | "
                f"{'-' if off else f'{cost:+.1%}'} | {'-' if off else f'{cpu_cost:+.1%}'} | "
                f"{e.get('checkpoints', '-')} | {e.get('size_bytes', '-')} |",
                flush=True,
            )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        main()
