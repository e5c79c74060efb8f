"""The graph: behaviour that mutation testing found untested (see docs/mutation.md)."""

from __future__ import annotations

import asyncio
from typing import Any, Literal, NewType, Protocol

import pytest

from mimo import Stream, Workflow, WorkflowError, lib
from mimo.testing import run_workflow
from tests.helpers import source


@pytest.mark.timeout(10)
def test_queues_hold_64_items_unless_told_otherwise() -> None:
    seen: list[int] = []

    async def late_reader(ins: Any, outs: Any, state: Any) -> None:
        await asyncio.sleep(0.1)  # the producer fills the queue meanwhile
        seen.append(len(ins.inp))
        async for _ in ins.inp:
            pass

    wf = Workflow()
    assert wf.capacity == 64
    wf.add_stream(source(list(range(100)))).pipe(wf.add_stream(Stream(["inp"], fn=late_reader, name="late")))
    report = run_workflow(wf, timeout=5)
    assert seen == [64]
    assert report.capacity == 64
    assert report["late"].items_in == {"inp": 100}


def test_joining_two_chains_keeps_the_joins_inside_each() -> None:
    got: list[int] = []
    left = lib.range(3) | lib.map(_inc)
    right = lib.map(_tenfold) | lib.collect(got)
    (left | right).run()
    assert got == [10, 20, 30]


def test_a_graph_refuses_to_join_or_feed_a_stream_of_another_workflow() -> None:
    mine, theirs = Workflow(), Workflow()
    a = mine.add_stream(Stream(["inp"], ["out"], name="a"))
    b = theirs.add_stream(Stream(["inp"], ["out"], name="b"))
    with pytest.raises(WorkflowError, match="stream 'b' belongs to another workflow"):
        mine.graph.connect(a.node, None, b.node, None)
    with pytest.raises(WorkflowError, match="stream 'b' belongs to another workflow"):
        mine.graph.connect(b.node, None, a.node, None)
    with pytest.raises(WorkflowError, match="stream 'b' belongs to another workflow"):
        mine.graph.feed(b.node, None, 1)
    assert mine.graph.edges == [] and mine.graph.feeds == {}


def _inc(x: int) -> int:
    return x + 1


def _tenfold(x: int) -> int:
    return x * 10


class _Sized(Protocol):  # not runtime-checkable: issubclass() cannot answer for it
    def __len__(self) -> int: ...


_UserId = NewType("_UserId", int)


@pytest.mark.parametrize("expected", [_Sized, _UserId, Literal[1, 2]], ids=["protocol", "newtype", "literal"])
def test_a_join_whose_item_types_cannot_be_told_apart_is_accepted(expected: Any) -> None:
    wf = Workflow()
    src = wf.add_stream(Stream(outs={"out": int}, name="src"))
    src.pipe(Stream(ins={"inp": expected}, name="dst"))
    assert len(wf.graph.edges) == 1


def test_a_type_mismatch_names_generic_item_types_in_full() -> None:
    wf = Workflow()
    src = wf.add_stream(Stream(outs={"out": list[int]}, name="src"))
    with pytest.raises(WorkflowError, match=r"src\.out produces list\[int\], dst\.inp expects str"):
        src.pipe(Stream(ins={"inp": str}, name="dst"))
