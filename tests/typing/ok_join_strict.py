# pyright: strict
"""Joins by port name that strict pyright and mypy --strict accept as statements: `.to()`."""

from typing import assert_type

from mimo import In, Out, stream
from mimo.dsl import Flow


@stream
async def numbers(out: Out[int]) -> None:
    await out.push(1)


@stream
async def fmt(x: In[int], y: Out[str]) -> None:
    async for v in x:
        await y.push(str(v))


@stream
async def show(text: In[object]) -> None:
    async for _ in text:
        pass


numbers.out["out"].to(fmt.in_["x"])  # a statement: no unused value to report
flow = fmt.out["y"].to(show.in_["text"])
assert_type(flow, Flow)
flow.run()
