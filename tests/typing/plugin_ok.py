"""Correct named-port wiring, checked by mypy with ``plugins = mimo.dsl.mypy_plugin``."""

from typing import Any

from mimo import In, Out, stream
from mimo.dsl import Flow, InRef, OutRef


@stream(outs={"n": int})
async def numbers(ins: Any, outs: Any, state: Any) -> None:
    for i in range(10):
        await outs.n.push(i)


@stream(ins={"x": int}, outs={"evens": int, "odds": int})
async def split(ins: Any, outs: Any, state: Any) -> None:
    async for v in ins.x:
        await (outs.evens if v % 2 == 0 else outs.odds).push(v)


@stream(ins={"left": int, "right": object}, outs={"pairs": tuple[int, object]})
async def pair(ins: Any, outs: Any) -> None:
    async for a in ins.left:
        await outs.pairs.push((a, await ins.right.pop()))


@stream(ins=["anything"])
async def sink(ins: Any, outs: Any) -> None:
    async for _ in ins.anything:
        pass


@stream(ins={"maybe": int | None}, outs={"out": list[int]})
async def window(ins: Any, outs: Any) -> None:
    pass


@stream
async def flags(a: In[int], b: In[int], yes: Out[bool], no: Out[bool]) -> None:
    async for v in a:
        await yes.push(v > 0)


# The references carry the declared item types (pyright sees Any here).
evens: OutRef[int] = split.out["evens"]
x: InRef[int] = split.in_["x"]
yes: OutRef[bool] = flags.out["yes"]

numbers.out["n"] >> split.in_["x"]
split.out["evens"] >> pair.in_["left"]
split.out["odds"] >> pair.in_["right"]
graph: Flow = pair.out["pairs"] >> sink.in_["anything"]
flags.out["yes"] >> pair.in_["left"]  # bool items into an int input
split.out["odds"] >> flags.in_["b"]

split.out["odds"] >> window.in_["maybe"]  # int items into an int | None input

port = "evens"
split.out[port] >> pair.in_["left"]

graph.run()


@stream(ins={"x": int}, outs={"y": int})
async def scaled(ins: Any, outs: Any, state: Any, *, factor: int = 2) -> None:
    async for v in ins.x:
        await outs.y.push(v * factor)


tripled = scaled(factor=3)  # the plugin types a PortStream's settings too
flags_again = flags()
