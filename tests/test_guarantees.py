"""The claims of docs/guarantees.md that the docs' own examples do not show.

The local ones run always; the Ray one only with ``-m ray``, inside a network
namespace with nothing but loopback (see tests/test_ray.py).
"""

from __future__ import annotations

import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from mimo import Stream, Workflow, lib
from mimo.testing import run_workflow

pytestmark = pytest.mark.timeout(60)

# Pool processes may import this module afresh (spawn), so the path is fixed.
CALLS = Path(tempfile.gettempdir()) / "mimo-test-guarantees-calls"


class Boom(Exception):
    pass


async def numbers(ins: Any, outs: Any, state: Any) -> None:
    for i in range(state["n"]):
        await outs.out.push(i)


async def fail_at(ins: Any, outs: Any, state: Any) -> None:
    async for x in ins.inp:
        if x == state["at"]:
            raise Boom(f"item {x}")
        await outs.out.push(x)


async def watch(ins: Any, outs: Any, state: Any) -> None:
    try:
        async for x in ins.inp:
            state["got"].append(x)
        state["saw_end"] = True
    finally:
        state["finally"] = True


def test_after_a_failure_a_consumer_has_a_prefix_and_never_sees_an_end() -> None:
    sink = Stream(["inp"], fn=watch, state={"got": []})
    wf = Workflow(capacity=4)
    wf.add_stream(Stream(outs=["out"], fn=numbers, state={"n": 100})).pipe(
        Stream(["inp"], ["out"], fn=fail_at, state={"at": 30})
    ).pipe(sink)
    with pytest.raises(Boom, match="item 30"):
        run_workflow(wf)
    got = sink.state["got"]
    assert got == list(range(len(got))) and len(got) <= 30
    # Cancelled, not shown a truncated stream as if it were complete; its finally ran.
    assert "saw_end" not in sink.state
    assert sink.state["finally"] is True


async def take_three(ins: Any, outs: Any, state: Any) -> None:
    state["port"] = ins.inp
    state["got"] = [await ins.inp.pop() for _ in range(3)]


def test_a_consumer_that_leaves_drops_what_was_queued_for_it_and_the_queue_counts_it() -> None:
    src = Stream(outs=["out"], fn=numbers, state={"n": 1000})
    take = Stream(["inp"], fn=take_three)
    wf = Workflow(capacity=8)
    wf.add_stream(src).pipe(wf.add_stream(take))
    report = run_workflow(wf)
    stats = take.state["port"].statistics()
    pushed = report["numbers"].items_out["out"]
    assert take.state["got"] == [0, 1, 2]
    assert stats.popped == 3
    assert stats.dropped == pushed - 3
    assert 3 <= pushed <= 3 + 8  # a producer is at most `capacity` ahead


def record_call(x: int) -> int:
    """Runs in a pool process: notes each call in a file the test reads."""
    with open(CALLS, "a") as f:
        f.write(f"{x}\n")
    if x == 40:
        raise Boom("item 40")
    return x


def test_a_process_pool_ran_fn_on_at_most_workers_times_chunk_items_beyond_what_was_delivered() -> None:
    CALLS.unlink(missing_ok=True)
    got: list[int] = []
    with pytest.raises(Boom, match="item 40"):
        (lib.range(1000) | lib.map(record_call, executor="process", workers=2) | lib.collect(got)).run()
    calls = [int(x) for x in CALLS.read_text().split()]
    CALLS.unlink()
    assert got == list(range(len(got))) and len(got) <= 40
    assert 40 in calls and len(calls) == len(set(calls))  # once each, no retries
    assert max(calls) < 40 + 2 * 16  # workers * chunk_size beyond the last result that could leave


def collector() -> Stream:
    async def fn(ins: Any, outs: Any, state: Any) -> None:
        async for x in ins.inp:
            state.append(x)

    return Stream(["inp"], fn=fn, name="sink", state=[])


@pytest.mark.ray
def test_on_ray_a_failed_run_brings_no_state_back_and_a_healthy_one_brings_it_in_order() -> None:
    if sorted(name for _, name in socket.if_nameindex()) != ["lo"]:
        pytest.fail("run Ray tests inside unshare -n (see tests/test_ray.py)")
    from mimo.executors import RayExecutor

    with RayExecutor(init_options={"num_cpus": 2, "object_store_memory": 200 << 20}) as ray:
        sink = collector()
        wf = Workflow(capacity=4)
        wf.add_stream(Stream(outs=["out"], fn=numbers, state={"n": 2000})).pipe(
            Stream(["inp"], ["out"], fn=fail_at, state={"at": 500})
        ).pipe(sink)
        with pytest.raises(Boom, match="item 500"):
            wf.run(executor=ray)
        assert sink.state == []  # the actor's list stayed in the actor

        sink = collector()
        wf = Workflow(capacity=4)
        wf.add_stream(Stream(outs=["out"], fn=numbers, state={"n": 2000})).pipe(sink)
        wf.run(executor=ray)
        assert sink.state == list(range(2000))


FAIL_AT: list[int] = [800]


def slow_until(x: int) -> int:
    time.sleep(0.0005)
    if x in FAIL_AT:
        raise Boom(f"item {x}")
    return x


def test_a_checkpointed_run_resumed_after_a_failure_writes_each_line_once(tmp_path: Path) -> None:
    out, ckpt = tmp_path / "out.txt", tmp_path / "run.ckpt"
    FAIL_AT[:] = [800]
    with pytest.raises(Boom, match="item 800"):
        (lib.range(1000) | lib.map(slow_until) | lib.to_file(out)).run(checkpoint=ckpt, checkpoint_every=0.05)
    written = out.read_text().splitlines()
    assert written == [str(i) for i in range(len(written))] and len(written) <= 800
    FAIL_AT[:] = []
    (lib.range(1000) | lib.map(slow_until) | lib.to_file(out)).run(checkpoint=ckpt, checkpoint_every=0.05)
    # The resumed run cut the file back to the checkpoint's offset, then wrote on from there.
    assert out.read_text().splitlines() == [str(i) for i in range(1000)]
