"""Named ports of single-port annotated streams carry their item types, with no plugin."""

from typing import assert_type

from mimo import In, Out, stream
from mimo.dsl import Flow, InRef, OutRef


@stream
async def numbers(out: Out[int]) -> None:
    await out.push(1)


@stream
async def flags(out: Out[bool]) -> None:
    await out.push(True)


@stream
async def fmt(x: In[int], y: Out[str]) -> None:
    async for v in x:
        await y.push(str(v))


@stream
async def show(text: In[str]) -> None:
    async for _ in text:
        pass


@stream
async def anything(x: In[object]) -> None:
    async for _ in x:
        pass


assert_type(numbers.out["out"], OutRef[int])
assert_type(fmt.in_["x"], InRef[int])
assert_type(fmt.out["y"], OutRef[str])
assert_type(show.in_["text"], InRef[str])

first: Flow = numbers.out["out"] >> fmt.in_["x"]
second: Flow = fmt.out["y"] >> show.in_["text"]
widening: Flow = flags.out["out"] >> fmt.in_["x"]  # bool items into an int input
anything_goes: Flow = fmt.out["y"] >> anything.in_["x"]
first.run()
