"""mimo.lib.combine: merge, zip, broadcast, round-robin balance, split by predicate."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from mimo import In, WorkflowError, lib, stream
from mimo.dsl import PortStream
from mimo.testing import run_stream, run_workflow

# -- merge -----------------------------------------------------------------------


def test_merge_pushes_every_item_of_every_input_keeping_each_inputs_order() -> None:
    out = run_stream(lib.merge(3), {"in0": [1, 2, 3], "in1": ["a", "b"], "in2": []})
    assert sorted(map(str, out["out"])) == ["1", "2", "3", "a", "b"]
    assert [x for x in out["out"] if isinstance(x, int)] == [1, 2, 3]
    assert [x for x in out["out"] if isinstance(x, str)] == ["a", "b"]


@pytest.mark.timeout(10)
def test_merge_does_not_let_an_idle_input_hold_back_the_others() -> None:
    released = asyncio.Event()
    seen: list[Any] = []

    async def late() -> AsyncIterator[str]:
        await released.wait()
        yield "late"

    async def see(x: Any) -> None:
        seen.append(x)
        if len(seen) == 3:
            released.set()  # only once the busy input got through

    m = lib.merge(["busy", "idle"])
    lib.from_iterable([1, 2, 3]).out["out"] >> m.in_["busy"]
    lib.from_async_iterable(late()).out["out"] >> m.in_["idle"]
    run_workflow(m.out["out"] >> lib.for_each(see).in_["inp"], timeout=5)
    assert seen == [1, 2, 3, "late"]


def test_merge_with_one_input_forwards_it() -> None:
    assert run_stream(lib.merge(1), {"in0": [1, 2]}) == {"out": [1, 2]}


def test_merge_ends_quietly_when_nobody_reads_its_output() -> None:
    got: list[tuple[Any, ...]] = []
    m = lib.merge()
    lib.range(10_000).out["out"] >> m.in_["in0"]
    lib.range(10_000).out["out"] >> m.in_["in1"]
    z = lib.zip()
    m.out["out"] >> z.in_["in0"]
    lib.from_iterable("ab").out["out"] >> z.in_["in1"]
    run_workflow(z.out["out"] >> lib.collect(got).in_["inp"], timeout=5)
    assert [b for _, b in got] == ["a", "b"]


# -- zip -------------------------------------------------------------------------


def test_zip_pairs_the_nth_items_and_ends_with_the_shortest_input() -> None:
    out = run_stream(lib.zip(["n", "s"]), {"n": [1, 2, 3], "s": "ab"})
    assert out == {"out": [(1, "a"), (2, "b")]}


def test_zip_of_three_inputs_gives_triples_in_input_order() -> None:
    out = run_stream(lib.zip(3), {"in2": "xyz", "in0": [0, 1], "in1": [True, False]})
    assert out == {"out": [(0, True, "x"), (1, False, "y")]}


def test_zip_output_is_typed_tuple_so_a_mismatched_join_fails_when_built() -> None:
    @stream
    async def ints(inp: In[int]) -> None:
        async for _ in inp:
            pass

    with pytest.raises(WorkflowError, match="tuple"):
        lib.zip().out["out"] >> ints.in_["inp"]


# -- broadcast -------------------------------------------------------------------


def test_broadcast_sends_every_item_to_every_output() -> None:
    out = run_stream(lib.broadcast(["left", "right"]), {"inp": [1, 2, 3]})
    assert out == {"left": [1, 2, 3], "right": [1, 2, 3]}


def test_broadcast_goes_on_for_the_consumers_that_remain() -> None:
    first: list[tuple[int, str]] = []
    everything: list[int] = []
    b = lib.broadcast()
    lib.range(50).out["out"] >> b.in_["inp"]
    z = lib.zip()
    b.out["out0"] >> z.in_["in0"]  # this consumer stops after two items
    lib.from_iterable("ab").out["out"] >> z.in_["in1"]
    z.out["out"] >> lib.collect(first).in_["inp"]
    flow = b.out["out1"] >> lib.collect(everything).in_["inp"]
    run_workflow(flow, timeout=5)
    assert first == [(0, "a"), (1, "b")]
    assert everything == list(range(50))


# -- balance ---------------------------------------------------------------------


def test_balance_deals_items_round_robin() -> None:
    out = run_stream(lib.balance(3), {"inp": range(8)})
    assert out == {"out0": [0, 3, 6], "out1": [1, 4, 7], "out2": [2, 5]}


def test_balance_spreads_work_over_copies_of_a_stage() -> None:
    got: list[int] = []
    bal = lib.balance(2)
    m = lib.merge(2)
    lib.range(20).out["out"] >> bal.in_["inp"]
    for i in range(2):
        worker = lib.map(lambda x: x + 1, name=f"worker{i}")
        bal.out[f"out{i}"] >> worker.in_["inp"]
        worker.out["out"] >> m.in_[f"in{i}"]
    flow = m.out["out"] >> lib.collect(got).in_["inp"]
    report = run_workflow(flow)
    assert sorted(got) == list(range(1, 21))
    assert report["worker0"].items_in == {"inp": 10}
    assert report["worker1"].items_in == {"inp": 10}


def test_balance_skips_an_output_whose_consumer_has_left() -> None:
    rest: list[int] = []

    @stream
    async def take_one(inp: In[int]) -> None:
        await inp.pop()

    bal = lib.balance(2)
    lib.range(20).out["out"] >> bal.in_["inp"]
    bal.out["out0"] >> take_one.in_["inp"]
    flow = bal.out["out1"] >> lib.collect(rest).in_["inp"]
    run_workflow(flow, capacity=1)
    # Only what was queued for take_one when it left (at most 1) is lost;
    # everything after goes to out1, not to nobody.
    assert rest == sorted(rest) and len(rest) >= 20 - 1 - 1


# -- split -----------------------------------------------------------------------


def test_split_sends_items_to_matched_or_unmatched_in_order() -> None:
    out = run_stream(lib.split(lambda x: x % 2 == 0), {"inp": range(7)})
    assert out == {"matched": [0, 2, 4, 6], "unmatched": [1, 3, 5]}


def test_split_takes_an_async_predicate_and_is_named_after_it() -> None:
    async def is_upper(s: str) -> bool:
        return s.isupper()

    s = lib.split(is_upper)
    assert s.name == "is_upper"
    assert run_stream(s, {"inp": "aBcD"}) == {"matched": ["B", "D"], "unmatched": ["a", "c"]}


def test_split_with_one_output_unjoined_discards_those_items() -> None:
    got: list[int] = []
    s = lib.split(lambda x: x > 2)
    flow = lib.range(5).out["out"] >> s.in_["inp"]
    s.out["matched"] >> lib.collect(got).in_["inp"]
    run_workflow(flow)
    assert got == [3, 4]


# -- what all combiners share ----------------------------------------------------


def test_port_counts_and_names_are_checked_when_made() -> None:
    with pytest.raises(ValueError, match="at least one output port, not 0: with no output every item"):
        lib.balance(0)
    with pytest.raises(ValueError, match="at least one output port, not \\[\\]: with no output every item"):
        lib.broadcast([])
    with pytest.raises(ValueError, match="number of inputs must be >= 0, not -1"):
        lib.merge(-1)
    with pytest.raises(TypeError, match="not a valid Python identifier"):
        lib.zip(["a", "not valid"])
    with pytest.raises(TypeError, match="declared twice"):
        lib.balance(["a", "a"])
    with pytest.raises(TypeError, match="split.. needs a function"):
        lib.split(42)  # type: ignore[arg-type]


def test_combiners_are_port_streams_with_their_ports() -> None:
    for s in (lib.merge(), lib.zip(), lib.join(key=id)):
        assert isinstance(s, PortStream)
    # one input: typed on it (a Sink[T] for |), outputs reached by port name or as typed branches
    assert isinstance(lib.split(bool), lib.combine.SplitStream)
    assert isinstance(lib.broadcast(), lib.combine.FanOutStream)
    assert isinstance(lib.balance(), lib.combine.FanOutStream)
    assert lib.merge(["a", "b"]).ins == ("a", "b") and lib.merge().outs == ("out",)
    assert lib.broadcast(3).outs == ("out0", "out1", "out2") and lib.broadcast().ins == ("inp",)
    assert lib.split(bool).outs == ("matched", "unmatched")


def test_a_combiner_pipes_with_bar_where_it_has_one_port_on_that_side() -> None:
    got: list[int] = []
    (lib.range(4) | lib.broadcast(1) | lib.collect(got)).run()
    assert got == [0, 1, 2, 3]


@pytest.mark.parametrize("make", [lib.merge, lib.zip, lib.broadcast, lib.balance])
@pytest.mark.parametrize("spec", ["line", b"ab", {"a", "b"}, 2.0, True, None])
def test_ports_are_a_count_or_a_list_of_names_never_a_string(make: Any, spec: Any) -> None:
    with pytest.raises(TypeError, match="must be a count or a list of port names"):
        make(spec)


@pytest.mark.parametrize("make", [lib.merge, lib.zip])
@pytest.mark.parametrize("spec", [0, []])
@pytest.mark.timeout(10)
def test_merge_and_zip_of_no_inputs_end_at_once_pushing_nothing(make: Any, spec: Any) -> None:
    # As aiostream's merge() and builtins.zip(): a merge of a possibly empty list of producers.
    stream = make(spec)
    assert stream.ins == ()
    assert run_stream(stream, {}, timeout=5) == {"out": []}


def test_a_tuple_of_names_is_taken_like_a_list() -> None:
    assert lib.zip(("a", "b")).ins == ("a", "b")
