"""Correct uses of typed `|` chains: mypy --strict and pyright must report nothing."""

from typing import Any, assert_type

from mimo import In, Out, RunReport, Workflow, stream
from mimo.dsl import Closed, Flow, PortStream, Runnable, Sink, SinkStream, Source, SourceStream, Stage, StageStream


@stream
async def numbers(out: Out[int], *, n: int = 10) -> None:
    for i in range(n):
        await out.push(i)


@stream
async def flags(out: Out[bool]) -> None:
    await out.push(True)


@stream
async def inc(x: In[int], y: Out[int]) -> None:
    async for v in x:
        await y.push(v + 1)


@stream
async def fmt(x: In[int], y: Out[str], *, width: int = 4) -> None:
    async for v in x:
        await y.push(f"{v:0{width}d}")


@stream
async def backwards(y: Out[str], x: In[str]) -> None:
    async for v in x:
        await y.push(v[::-1])


@stream
async def show(text: In[str]) -> None:
    async for t in text:
        print(t)


@stream
async def anything(x: In[object]) -> None:
    async for _ in x:
        pass


@stream(name="renamed")
async def named(x: In[str], y: Out[str]) -> None:
    async for v in x:
        await y.push(v)


source: SourceStream[int] = numbers  # its settings are typed too: see ok_settings.py
assert_type(inc, StageStream[int, int, []])  # no settings
assert_type(backwards, StageStream[str, str, []])
assert_type(show, SinkStream[str, []])
assert_type(named, StageStream[str, str, []])
fewer: SourceStream[int] = numbers(n=3)
wider: StageStream[int, str] = fmt(width=8)

assert_type(numbers | inc, Source[int])
assert_type(numbers | fmt, Source[str])
assert_type(inc | fmt, Stage[int, str])
assert_type(fmt | show, Sink[int])
assert_type(numbers | fmt | show, Closed)
assert_type(numbers.then(fmt), Source[str])

closed = numbers | inc | inc | fmt(width=2) | backwards | named | show
report: RunReport = closed.run()
wf: Workflow = closed.workflow()

# Variance: bool items into an int input, anything into an object input.
(flags | inc | fmt | show).run()
(numbers | anything).run()
(flags | anything).run()


def run_it(graph: Runnable) -> RunReport:
    return graph.run()


run_it(numbers | fmt | show)

# The classic API takes decorated streams.
wf2 = Workflow()
wf2.add_stream(numbers).pipe(wf2.add_stream(fmt)).pipe(wf2.add_stream(show))


# Untyped (dict-form) streams mix in and give a Flow.
@stream(ins={"x": int}, outs={"y": str})
async def dict_fmt(ins: Any, outs: Any, state: Any) -> None:
    async for v in ins.x:
        await outs.y.push(str(v))


assert_type(dict_fmt, PortStream)
assert_type(numbers | dict_fmt, Flow)
assert_type(numbers | dict_fmt | show, Flow)
run_it(numbers | dict_fmt | show)
edge = dict_fmt.out["y"] >> show.in_["text"]
assert_type(edge, Flow)
run_it(edge)


async def main() -> None:
    await (numbers | fmt | show).run_async()
