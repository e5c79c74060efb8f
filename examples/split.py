"""Split: one stream with two outputs, each piped to its own consumer."""

from typing import Any

from mimo import Ins, Outs, Stream, Workflow


async def numbers(ins: Ins, outs: Outs, state: Any) -> None:
    for i in range(20):
        await outs.n.push(i)


async def split(ins: Ins, outs: Outs, state: Any) -> None:
    async for n in ins.n:
        await (outs.even if n % 2 == 0 else outs.odd).push(n)


async def collect(ins: Ins, outs: Outs, state: list[int]) -> None:
    async for n in ins.n:
        state.append(n)


def main() -> int:
    workflow = Workflow()
    splitter = workflow.add_stream(Stream(["n"], ["even", "odd"], fn=split))
    workflow.add_stream(Stream(outs=["n"], fn=numbers)).pipe(splitter)
    evens = Stream(["n"], fn=collect, name="evens", state=[])
    odds = Stream(["n"], fn=collect, name="odds", state=[])
    splitter.pipe(workflow.add_stream(evens), output="even")
    splitter.pipe(workflow.add_stream(odds), output="odd")
    workflow.run()
    print("evens:", evens.state)
    print("odds:", odds.state)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
