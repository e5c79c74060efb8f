"""A join's own bound, set where the join is made.

``step.pipe(..., capacity=)``, ``a.out['x'] >> b.in_['y'].capacity(n)`` and
``chain.then(stage, capacity=)`` bound the input's queue in every run, on any
executor, instead of the run's capacity.
"""

from __future__ import annotations

from typing import Any

import pytest

from mimo import In, Ins, Out, Outs, Stream, Workflow, WorkflowError, lib, stream
from tests.test_ray import executor, ray_session  # noqa: F401 (fixtures: a local run, and Ray with -m ray)

#: What the consumers below saw: their input queue's bound, then the items.
seen: dict[str, Any] = {}


@stream
async def numbers(out: Out[int]) -> None:
    for i in range(5):
        await out.push(i)


@stream
async def bounds(inp: In[int]) -> None:
    seen["capacity"] = inp.statistics().capacity
    seen["items"] = [x async for x in inp]


def test_a_classic_pipe_sets_its_joins_bound_for_every_run() -> None:
    async def produce(ins: Ins, outs: Outs) -> None:
        for i in range(5):
            await outs.n.push(i)

    async def consume(ins: Ins, outs: Outs) -> None:
        seen["capacity"] = ins.n.statistics().capacity
        seen["items"] = [x async for x in ins.n]

    wf = Workflow(capacity=50)
    wf.add_stream(Stream(outs=["n"], fn=produce)).pipe(Stream(ins=["n"], fn=consume), capacity=2)
    wf.run()
    assert seen == {"capacity": 2, "items": [0, 1, 2, 3, 4]}
    wf.run(capacity=7)  # the run's capacity is for the joins that set none
    assert seen["capacity"] == 2


def test_a_named_join_takes_its_bound_from_the_input_reference() -> None:
    flow = numbers().out["out"] >> bounds().in_["inp"].capacity(3)
    flow.run(capacity=40)
    assert seen == {"capacity": 3, "items": [0, 1, 2, 3, 4]}


@stream
async def forward(inp: In[int], out: Out[int]) -> None:
    seen["stage capacity"] = inp.statistics().capacity
    async for x in inp:
        await out.push(x)


def test_a_pipe_chain_sets_a_joins_bound_with_then() -> None:
    (lib.range(5).then(forward, capacity=1) | bounds).run(capacity=30)
    assert seen == {"stage capacity": 1, "capacity": 30, "items": [0, 1, 2, 3, 4]}
    chain = (lib.range(3) | lib.map(abs)).then(forward, capacity=0) | bounds
    chain.run(capacity=30)
    assert seen == {"stage capacity": 0, "capacity": 30, "items": [0, 1, 2]}


def test_joins_without_a_bound_keep_the_runs_capacity() -> None:
    (numbers() | bounds()).run(capacity=9)
    assert seen["capacity"] == 9


def test_joins_into_one_input_must_agree_on_its_bound() -> None:
    sink = bounds()
    lib.range(5, name="a").out["out"] >> sink.in_["inp"].capacity(2)
    lib.range(5, name="b").out["out"] >> sink.in_["inp"].capacity(2)  # the same bound: one queue of 2
    with pytest.raises(WorkflowError, match=r"with capacity 3: the join from a.out set 2, and an input has one"):
        lib.range(5, name="c").out["out"] >> sink.in_["inp"].capacity(3)
    flow = lib.range(5, name="d").out["out"] >> sink.in_["inp"]  # no bound of its own: the input's
    flow.run(capacity=50)
    assert seen["capacity"] == 2
    assert sorted(seen["items"]) == sorted(list(range(5)) * 3)


@pytest.mark.parametrize("bad", [-1, "4", 2.0, True])
def test_a_joins_bound_is_checked_where_the_join_is_made(bad: Any) -> None:
    with pytest.raises(ValueError, match=r"capacity must be an int >= 0 .*not"):
        bounds().in_["inp"].capacity(bad)
    with pytest.raises(ValueError, match=r"capacity must be an int >= 0"):
        lib.range(3).then(lib.map(abs), capacity=bad)
    wf = Workflow()
    a = wf.add_stream(Stream(outs=["x"]))
    with pytest.raises(ValueError, match=r"capacity must be an int >= 0"):
        a.pipe(Stream(ins=["y"]), capacity=bad)
    assert wf.graph.edges == []


# -- in every executor -----------------------------------------------------------------


async def _produce(ins: Ins, outs: Outs, state: dict[str, Any]) -> None:
    for i in range(5):
        await outs.n.push(i)


async def _consume(ins: Ins, outs: Outs, state: dict[str, Any]) -> None:
    state["capacity"] = ins.n.statistics().capacity
    state["items"] = [x async for x in ins.n]


def test_a_joins_bound_holds_in_every_executor(executor: Any) -> None:  # noqa: F811
    wf = Workflow(capacity=50)
    sink = Stream(ins=["n"], fn=_consume)
    wf.add_stream(Stream(outs=["n"], fn=_produce)).pipe(sink, capacity=2)
    wf.run(executor=executor)
    assert sink.state == {"capacity": 2, "items": [0, 1, 2, 3, 4]}


# -- typing ---------------------------------------------------------------------------

TYPED = """
ok = lib.range(3).then(lib.map(abs), capacity=2) | lib.collect(ints)
assert_type(ok, Closed)
named = lib.range(3).out["out"] >> lib.collect(ints).in_["inp"].capacity(2)
bad_type = lib.range(3).out["out"] >> lib.collect(strs).in_["inp"].capacity(2)  # E
bad_bound = lib.range(3).then(lib.map(abs), capacity="2")  # E
"""
