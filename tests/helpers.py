"""Small graph-building helpers for the core tests."""

from __future__ import annotations

import itertools
from typing import Any

from mimo import Stream, Workflow


def source(items: list[Any], name: str = "source", port: str = "out") -> Stream:
    async def fn(ins: Any, outs: Any, state: Any) -> None:
        for item in items:
            await outs[port].push(item)

    return Stream(outs=[port], fn=fn, name=name)


def collector(bucket: list[Any], name: str = "sink", port: str = "inp") -> Stream:
    async def fn(ins: Any, outs: Any, state: Any) -> None:
        async for item in ins[port]:
            bucket.append(item)

    return Stream(ins=[port], fn=fn, name=name)


def chain(*streams: Stream, capacity: int = 64) -> Workflow:
    wf = Workflow(capacity=capacity)
    steps = [wf.add_stream(s) for s in streams]
    for a, b in itertools.pairwise(steps):
        a.pipe(b)
    return wf
