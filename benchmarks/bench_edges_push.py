"""The per-item cost of an executor edge's push, with and without the byte bounds.

Pushes small ints through one :class:`~mimo.executors._edges.Outbox` whose
transport answers at once, so only the sending end's own work is timed (no Ray,
no second process). Interleaved runs; the best of each is kept.

    python benchmarks/bench_edges_push.py [--items 1000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from mimo.executors import estimate_size
from mimo.executors._edges import Outbox, Target


def answer_at_once(port: str, link: int, seq: int, items: list[Any], end: bool) -> asyncio.Future[bool]:
    fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    fut.set_result(True)
    return fut


async def push_all(items: int, sized: bool) -> float:
    """Seconds per item for ``items`` pushes."""
    sizes: dict[str, Any] = {"batch_bytes": 1 << 20, "link_bytes": 8 << 20, "sizeof": estimate_size} if sized else {}
    box = Outbox([Target(answer_at_once, "inp", 0)], credits=16, batch_size=1000, linger_s=0.005, **sizes)
    t0 = time.perf_counter()
    for i in range(items):
        if not box.push_nowait(i):
            await box.wait_room()
            box.push_nowait(i)
        if not i % 1000:
            await asyncio.sleep(0)  # let the answers in, as a stream's loop would
    return (time.perf_counter() - t0) / items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    best = {False: float("inf"), True: float("inf")}
    for _ in range(args.repeat):
        for sized in (False, True):
            best[sized] = min(best[sized], asyncio.run(push_all(args.items, sized)))
    for sized, seconds in best.items():
        print(f"byte bounds {'on ' if sized else 'off'}: {seconds * 1e9:.0f} ns per push")
    print(f"the bounds add {(best[True] - best[False]) * 1e9:.0f} ns per item and edge")


if __name__ == "__main__":
    main()
