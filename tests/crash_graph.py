"""The graph the crash test kills and resumes (run as a script: ``python tests/crash_graph.py DB OUT RESULT``).

A source of N numbers (its position in ``state``) fans out to a formatter
feeding ``lib.to_file`` and ``lib.collect``, and to two branches (``square``
with ``workers=2``, and ``negate``) that fan in to ``count``, a stream
counting and summing what it gets in its ``state``. At the end the script
writes the counter and the collected list to RESULT as JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from mimo import Stream, Workflow, lib

N = 3000


async def numbers(ins: Any, outs: Any, state: dict[str, int]) -> None:
    i = state.get("next", 0)
    while i < N:
        await outs.n.push(i)
        i += 1
        state["next"] = i  # after the push: the position counts the items pushed
        if i % 10 == 0:
            await asyncio.sleep(0.002)


async def square(ins: Any, outs: Any) -> None:
    async for x in ins.n:
        await outs.n.push(x * x)


async def negate(ins: Any, outs: Any) -> None:
    async for x in ins.n:
        await outs.n.push(-x)


async def label(ins: Any, outs: Any) -> None:
    async for x in ins.n:
        await outs.line.push(f"item {x}")


async def count(ins: Any, outs: Any, state: dict[str, int]) -> None:
    async for x in ins.n:
        state["count"] = state.get("count", 0) + 1
        state["sum"] = state.get("sum", 0) + x


def expected() -> tuple[str, dict[str, int], list[str]]:
    """What an uninterrupted run gives: the file's text, the counter, the collected list."""
    lines = [f"item {i}" for i in range(N)]
    counter = {"count": 2 * N, "sum": sum(i * i for i in range(N)) - sum(range(N))}
    return "".join(f"{x}\n" for x in lines), counter, lines


def build(out: str) -> tuple[Workflow, Stream, list[str]]:
    wf = Workflow(capacity=8)
    src = wf.add_stream(Stream(outs=["n"], fn=numbers))
    counter = Stream(["n"], fn=count)
    cnt = wf.add_stream(counter)
    src.pipe(Stream(["n"], ["n"], fn=square, workers=2)).pipe(cnt)
    src.pipe(Stream(["n"], ["n"], fn=negate)).pipe(cnt)
    lab = src.pipe(Stream(["n"], ["line"], fn=label))
    got: list[str] = []
    lab.pipe(lib.to_file(out))
    lab.pipe(lib.collect(got))
    return wf, counter, got


def main(db: str, out: str, result: str, every: float = 0.05) -> None:
    wf, counter, got = build(out)
    wf.run(checkpoint=db, checkpoint_every=every)
    with open(result, "w") as f:
        json.dump({"counter": counter.state, "collected": got}, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
