"""Linear: a source, a transform and a sink piped in a line."""

from typing import Any

from mimo import Ins, Outs, Stream, Workflow


class Numbers(Stream):
    OUT = ["entity"]

    async def run(self, ins: Ins, outs: Outs) -> None:
        for item in range(100):
            await outs.entity.push(item)


async def square(ins: Ins, outs: Outs, state: Any) -> None:
    async for x in ins.x:
        await outs.y.push(x * x)


async def total(ins: Ins, outs: Outs, state: dict[str, int]) -> None:
    state["sum"] = 0
    async for x in ins.x:
        state["sum"] += x


def main() -> int:
    workflow = Workflow(capacity=8)
    sink = Stream(["x"], fn=total)
    workflow.add_stream(Numbers()).pipe(workflow.add_stream(Stream(["x"], ["y"], fn=square))).pipe(
        workflow.add_stream(sink)
    )
    report = workflow.run()
    print("sum of squares:", sink.state["sum"])
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
