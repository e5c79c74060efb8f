"""The DSL: streams from async functions, joined with `|` into pipelines.

The first pipeline is the one in DESIGN.md §1.4 (dict-form and annotated
streams mixed). The second is fully annotated, so mypy and pyright check every
`|` in it; it also changes a setting and uses one stream twice.
"""

from typing import Any

from mimo import In, Ins, Out, Outs, stream


@stream(outs={"n": int})
async def numbers(ins: Ins, outs: Outs, state: Any) -> None:
    for i in range(100):
        await outs.n.push(i)


@stream(ins={"x": int}, outs={"y": str})
async def fmt(ins: Ins, outs: Outs, state: Any) -> None:
    async for v in ins.x:
        await outs.y.push(f"{v:04d}")


@stream  # ports from annotations
async def shout(text: In[str], loud: Out[str]) -> None:
    async for t in text:
        await loud.push(t.upper())


@stream
async def printer(text: In[str], *, prefix: str = "") -> None:
    async for t in text:
        print(prefix + t)


@stream
async def count(out: Out[int], *, upto: int = 10) -> None:
    for i in range(upto):
        await out.push(i)


@stream
async def scale(x: In[int], y: Out[int], *, factor: int = 2) -> None:
    async for v in x:
        await y.push(v * factor)


@stream
async def hexed(x: In[int], y: Out[str]) -> None:
    async for v in x:
        await y.push(hex(v))


def main() -> int:
    flow = numbers | fmt | shout | printer  # untyped ends: a Flow, checked when built
    report = flow.run()
    print("printed", report["printer"].items_in["text"], "lines")

    # Typed end to end; `scale` appears twice (two stages), once with factor=10.
    chain = count(upto=4) | scale | scale(factor=10) | hexed | printer(prefix="hex: ")
    chain.run()
    print("stages:", ", ".join(node.name for node in chain.graph.nodes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
