"""The original description's two code blocks run as written (typo fixed)."""

from __future__ import annotations

import contextlib
import io

SEED_STREAMS = """
from mimo import Stream
# Method 1 (inheritance)
class MyStream(Stream):
    IN = []
    OUT = ['entity']
    async def run(self, ins, outs):
        for item in iter(range(100)):
            await outs.entity.push(item)
# Method 2 (constructor)
async def my_stream_fn(ins, outs, state):
    for item in iter(range(100)):
        await outs.entity.push(item)
my_stream = Stream(outs=['entity'], fn=my_stream_fn)
"""

SEED_WORKFLOW = """
from mimo import Stream, Workflow
def main():
    workflow = Workflow()
    step1 = workflow.add_stream(Stream(outs=['a']))
    step2 = workflow.add_stream(Stream(['b'], ['c']))
    step3 = workflow.add_stream(Stream(['d']))
    step1.pipe(step2).pipe(step3)
    print(str(workflow))
    workflow.run()
if __name__ == '__main__':
    import sys
    sys.exit(main())
"""


def test_seed_streams_block_defines_two_working_sources():
    ns: dict[str, object] = {}
    exec(SEED_STREAMS, ns)
    from mimo import Stream, Workflow

    got: list[int] = []

    async def sink(ins, outs, state):
        async for x in ins.x:
            got.append(x)

    wf = Workflow()
    s = wf.add_stream(Stream(["x"], fn=sink))
    wf.add_stream(ns["MyStream"]()).pipe(s)  # type: ignore[operator]
    wf.add_stream(ns["my_stream"]).pipe(s)  # type: ignore[arg-type]
    wf.run()
    assert sorted(got) == sorted(list(range(100)) * 2)


def test_seed_workflow_block_prints_dot_and_runs_to_completion():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            exec(SEED_WORKFLOW, {"__name__": "__main__"})
        except SystemExit as stop:
            assert stop.code is None
    assert out.getvalue().startswith('digraph "workflow" {')
