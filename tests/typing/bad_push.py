"""A push or push_many that is not awaited: both checkers report it (issue 9, case 1)."""

from typing import Any

from mimo import In, Out, OutputPort, Outs, stream


@stream
async def dsl_body(x: In[int], y: Out[int]) -> None:
    async for v in x:
        y.push(v)  # E: mypy=unused-coroutine pyright=reportUnusedCoroutine
        y.push_many([v, v])  # E: mypy=unused-coroutine pyright=reportUnusedCoroutine
        await y.push(v)
        await y.push_many([v])


async def classic_body(ins: Any, outs: Outs, state: Any) -> None:
    port: OutputPort[str] = outs["out"]
    port.push("a")  # E: mypy=unused-coroutine pyright=reportUnusedCoroutine
    port.push_many(["a"])  # E: mypy=unused-coroutine pyright=reportUnusedCoroutine
    await port.push("b")
    later = port.push("c")
    await later
