"""Fork: one output broadcast to two consumers, paced by the slower one."""

import asyncio
from typing import Any

from mimo import Ins, Outs, Stream, Workflow


async def words(ins: Ins, outs: Outs, state: Any) -> None:
    for word in "the quick brown fox jumps over the lazy dog".split():
        await outs.word.push(word)


async def count(ins: Ins, outs: Outs, state: dict[str, int]) -> None:
    state["n"] = 0
    async for _ in ins.word:
        state["n"] += 1


async def longest(ins: Ins, outs: Outs, state: dict[str, str]) -> None:
    state["word"] = ""
    async for word in ins.word:
        await asyncio.sleep(0.001)  # the slow consumer: the source waits for it
        if len(word) > len(state["word"]):
            state["word"] = word


def main() -> int:
    workflow = Workflow(capacity=2)
    source = workflow.add_stream(Stream(outs=["word"], fn=words))
    counter = Stream(["word"], fn=count)
    longest_word = Stream(["word"], fn=longest)
    source.pipe(workflow.add_stream(counter))
    source.pipe(workflow.add_stream(longest_word))
    workflow.run()
    print("words:", counter.state["n"], "longest:", longest_word.state["word"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
