"""Settings are typed from the stream function's keyword-only parameters."""

from mimo import In, Out, lib, stream
from mimo.dsl import StageStream


@stream
async def scale(x: In[int], y: Out[int], *, factor: int = 2) -> None:
    async for v in x:
        await y.push(v * factor)


@stream
async def numbers(out: Out[int], *, n: int = 3, start: int = 0) -> None:
    for i in range(start, start + n):
        await out.push(i)


@stream
async def keep(x: In[int], *, into: list[int] | None = None) -> None:
    async for _ in x:
        pass


@stream
async def pair(a: In[int], b: In[int], out: Out[int], *, offset: int = 0) -> None:
    await out.push(await a.pop() + await b.pop() + offset)


got: list[int] = []
(numbers(n=4, start=1) | scale(factor=3) | lib.collect(got)).run()
(numbers() | scale | keep(into=got)).run()
same: StageStream[int, int] = scale(factor=5)
again = scale(factor=5)(factor=6)
plain = scale()
anything_goes = pair(offset=1, whatever=2)  # several ports: settings untyped (PortStream)
