"""A setting of the wrong type, an unknown setting, or one given positionally: both checkers report it."""

from mimo import In, Out, stream


@stream
async def scale(x: In[int], y: Out[int], *, factor: int = 2) -> None:
    async for v in x:
        await y.push(v * factor)


@stream
async def numbers(out: Out[int], *, n: int = 3) -> None:
    for i in range(n):
        await out.push(i)


@stream
async def show(text: In[str]) -> None:
    async for _ in text:
        pass


a = scale(factor="3")  # E: mypy=arg-type pyright=reportArgumentType
b = scale(facter=3)  # E: mypy=call-arg pyright=reportCallIssue
c = scale(3)  # E: mypy=call-arg pyright=reportCallIssue
d = numbers(n=2.5)  # E: mypy=arg-type pyright=reportArgumentType
e = show(width=3)  # E: mypy=call-arg pyright=reportCallIssue
