"""Memory is bounded by the queues, not by the length of the stream (docs/concepts.md, "Back-pressure")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = textwrap.dedent(
    """
    import json, resource, zlib
    from mimo import Stream, Workflow

    N = 200_000

    async def produce(ins, outs, state):
        for i in range(N):
            await outs.out.push(i.to_bytes(8, "little") * 128)  # a fresh 1 KiB item

    async def sink(ins, outs, state):
        crc = 0
        async for item in ins.inp:
            crc = zlib.crc32(item, crc)  # slower than the producer
            crc = zlib.crc32(item, crc)
        state["n"] = crc

    def peak_kib():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    wf = Workflow(capacity=64)
    s = Stream(["inp"], fn=sink)
    wf.add_stream(Stream(outs=["out"], fn=produce)).pipe(wf.add_stream(Stream(["a"], ["b"]))).pipe(wf.add_stream(s))
    before = peak_kib()
    report = wf.run()
    print(json.dumps({"before": before, "after": peak_kib(), "n": report["sink"].items_in["inp"]}))
    """
)


@pytest.mark.timeout(120)
def test_200k_items_of_1kib_through_a_chain_grow_peak_rss_by_less_than_50mb():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=110, env=env)
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["n"] == 200_000  # 200 MB went through
    assert (figures["after"] - figures["before"]) < 50 * 1024
