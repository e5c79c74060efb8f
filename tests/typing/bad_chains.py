"""Wrong `|` chains: each marked line must be an error in both checkers."""

from mimo import In, Out, stream
from mimo.dsl import Runnable


@stream
async def numbers(out: Out[int]) -> None:
    await out.push(1)


@stream
async def fmt(x: In[int], y: Out[str]) -> None:
    async for v in x:
        await y.push(str(v))


@stream
async def show(text: In[str]) -> None:
    async for _ in text:
        pass


@stream
async def wants_bool(x: In[bool]) -> None:
    async for _ in x:
        pass


def run_it(graph: Runnable) -> None:
    graph.run()


a = numbers | show  # E: mypy=operator pyright=reportOperatorIssue
b = numbers | fmt | fmt  # E: mypy=operator pyright=reportOperatorIssue
c = numbers | wants_bool  # E: mypy=operator pyright=reportOperatorIssue
d = show | fmt  # E: mypy=operator pyright=reportOperatorIssue
e = (numbers | fmt | show) | show  # E: mypy=operator pyright=reportOperatorIssue
f = fmt | numbers  # E: mypy=operator pyright=reportOperatorIssue
(numbers | fmt).run()  # E: mypy=attr-defined pyright=reportAttributeAccessIssue
(fmt | show).run()  # E: mypy=attr-defined pyright=reportAttributeAccessIssue
run_it(numbers | fmt)  # E: mypy=arg-type pyright=reportArgumentType
run_it(fmt)  # E: mypy=arg-type pyright=reportArgumentType
g = numbers.out["out"] >> show.in_["text"]  # E: mypy=operator pyright=reportOperatorIssue
h = fmt.out["y"] >> fmt.in_["x"]  # E: mypy=operator pyright=reportOperatorIssue
i = fmt.in_["x"] >> show.in_["text"]  # E: mypy=operator pyright=reportOperatorIssue
