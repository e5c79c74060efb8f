# pyright: strict
"""In strict pyright a bare `>>` join is an unused expression; `.to()` checks item types as `>>` does."""

from mimo import In, Out, stream


@stream
async def numbers(out: Out[int]) -> None:
    await out.push(1)


@stream
async def show(text: In[str]) -> None:
    async for _ in text:
        pass


@stream
async def anything(x: In[object]) -> None:
    async for _ in x:
        pass


numbers.out["out"] >> anything.in_["x"]  # E: pyright=reportUnusedExpression
numbers.out["out"].to(show.in_["text"])  # E: mypy=arg-type pyright=reportArgumentType
