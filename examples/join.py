"""Join: two sources into one stream with two inputs, read at their own pace."""

from typing import Any

from mimo import EndOfStream, Ins, Outs, Stream, Workflow


async def names(ins: Ins, outs: Outs, state: Any) -> None:
    for name in ["ada", "grace", "edsger"]:
        await outs.name.push(name)


async def years(ins: Ins, outs: Outs, state: Any) -> None:
    for year in [1815, 1906, 1930]:
        await outs.year.push(year)


async def pair(ins: Ins, outs: Outs, state: Any) -> None:
    # Unlike a function, the inputs are not synchronised: pair them by hand,
    # ending at the end of the shorter one.
    while True:
        try:
            name, year = await ins.name.pop(), await ins.year.pop()
        except EndOfStream:
            return
        await outs.pair.push(f"{name} ({year})")


async def show(ins: Ins, outs: Outs, state: list[str]) -> None:
    async for line in ins.line:
        state.append(line)
        print(line)


def main() -> int:
    workflow = Workflow()
    joined = workflow.add_stream(Stream(["name", "year"], ["pair"], fn=pair))
    workflow.add_stream(Stream(outs=["name"], fn=names)).pipe(joined, input="name")
    workflow.add_stream(Stream(outs=["year"], fn=years)).pipe(joined, input="year")
    joined.pipe(workflow.add_stream(Stream(["line"], fn=show, state=[])))
    workflow.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
