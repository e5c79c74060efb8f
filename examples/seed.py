"""The original description's examples, as written there (its one typo fixed).

A source defined two ways (inheritance and constructor), and a three-step
workflow of default streams piped together, printed as DOT and run.
"""

from mimo import Ins, Outs, Stream, Workflow


# Method 1 (inheritance)
class MyStream(Stream):
    IN = []
    OUT = ["entity"]

    async def run(self, ins: Ins, outs: Outs) -> None:
        for item in iter(range(100)):
            await outs.entity.push(item)


# Method 2 (constructor)
async def my_stream_fn(ins: Ins, outs: Outs, state: dict[str, object]) -> None:
    for item in iter(range(100)):
        await outs.entity.push(item)


my_stream = Stream(outs=["entity"], fn=my_stream_fn)


def main() -> int:
    workflow = Workflow()
    step1 = workflow.add_stream(Stream(outs=["a"]))
    step2 = workflow.add_stream(Stream(["b"], ["c"]))
    step3 = workflow.add_stream(Stream(["d"]))
    step1.pipe(step2).pipe(step3)
    print(str(workflow))
    workflow.run()
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
