"""Concise scripting: lib.join, upstreams as arguments (merge, zip, join), typed branches of split and join."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mimo import WorkflowError, lib
from mimo.testing import run_stream, run_workflow


@dataclass(frozen=True)
class Order:
    id: int
    item: str


@dataclass(frozen=True)
class Payment:
    id: int
    amount: float


ORDERS = [Order(1, "tea"), Order(2, "cake"), Order(3, "jam")]
PAYMENTS = [Payment(2, 3.0), Payment(1, 2.5), Payment(9, 1.0)]


# -- join ------------------------------------------------------------------------


def test_join_pairs_items_by_key_and_sends_the_rest_to_unmatched_at_the_end() -> None:
    out = run_stream(lib.join(key=lambda x: x.id), {"in0": ORDERS, "in1": PAYMENTS})
    assert sorted(out["matched"], key=lambda p: p[0].id) == [(ORDERS[0], PAYMENTS[1]), (ORDERS[1], PAYMENTS[0])]
    assert out["unmatched"] == [ORDERS[2], PAYMENTS[2]]


def test_join_is_one_to_one_in_arrival_order_never_a_cross_product() -> None:
    out = run_stream(
        lib.join(key=lambda x: x[0]), {"in0": [("k", 1), ("k", 2), ("k", 3)], "in1": [("k", "a"), ("k", "b")]}
    )
    assert out["matched"] == [(("k", 1), ("k", "a")), (("k", 2), ("k", "b"))]
    assert out["unmatched"] == [("k", 3)]


def test_join_takes_one_key_per_input_and_named_inputs_and_async_keys() -> None:
    async def order_id(o: Order) -> int:
        return o.id

    j = lib.join(["orders", "payments"], key=[order_id, lambda p: p.id])
    assert j.ins == ("orders", "payments") and j.outs == ("matched", "unmatched")
    out = run_stream(j, {"orders": ORDERS[:1], "payments": PAYMENTS[1:2]})
    assert out == {"matched": [(ORDERS[0], PAYMENTS[1])], "unmatched": []}


@pytest.mark.timeout(10)
def test_join_pushes_a_match_at_once_not_at_the_end() -> None:
    released = asyncio.Event()
    seen: list[Any] = []

    async def later() -> AsyncIterator[int]:
        yield 1
        await released.wait()  # would hang if the match waited for the end of input
        yield 2

    async def see(pair: Any) -> None:
        seen.append(pair)
        released.set()

    j = lib.join(lib.from_async_iterable(later()), lib.from_iterable([1, 2]), key=lambda x: x)
    run_workflow(j.matched | lib.for_each(see))
    assert seen == [(1, 1), (2, 2)]


@given(
    left=st.lists(st.integers(0, 4), max_size=12),
    right=st.lists(st.integers(0, 4), max_size=12),
    capacity=st.integers(1, 3),
)
def test_join_gives_every_item_once_paired_by_key_or_unmatched(
    left: list[int], right: list[int], capacity: int
) -> None:
    # Items are (input, position, key): each is told apart, and its key is the third field.
    a = [("a", i, k) for i, k in enumerate(left)]
    b = [("b", i, k) for i, k in enumerate(right)]
    out = run_stream(lib.join(key=lambda x: x[2]), {"in0": a, "in1": b}, capacity=capacity)
    paired = [x for pair in out["matched"] for x in pair]
    assert sorted(paired + out["unmatched"]) == sorted(a + b)
    assert all(x[2] == y[2] and x[0] == "a" and y[0] == "b" for x, y in out["matched"])
    for k in range(5):  # one-to-one: as many pairs as the smaller side has items with that key
        assert sum(x[2] == k for x, _ in out["matched"]) == min(left.count(k), right.count(k))
    # the i-th item of a key on one input pairs with the i-th of that key on the other
    for side in (0, 1):
        order = [pair[side][1] for pair in out["matched"] if pair[side][2] == 0]
        assert order == sorted(order)


def test_join_arguments_are_checked_when_made() -> None:
    with pytest.raises(ValueError, match="join: needs at least two inputs, not 1"):
        lib.join(1, key=id)
    with pytest.raises(ValueError, match="join: key has 3 functions for 2 inputs"):
        lib.join(key=[id, id, id])
    with pytest.raises(TypeError, match=r"join\(\) needs a function"):
        lib.join(key=42)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="missing 1 required keyword-only argument: 'key'"):
        lib.join(2)  # type: ignore[call-overload]


def test_a_key_function_that_raises_fails_the_run_naming_the_join() -> None:
    def bad(x: int) -> int:
        raise KeyError("no id")

    j = lib.join(lib.range(3), lib.range(3), key=bad)
    with pytest.raises(KeyError, match="no id") as info:
        run_workflow(j.matched | lib.collect())
    assert "join" in str(getattr(info.value, "__notes__", ""))


def test_join_with_every_consumer_gone_ends_quietly() -> None:
    got: list[Any] = []
    j = lib.join(lib.range(10**6), lib.range(10**6), key=lambda x: x)
    run_workflow(j.matched | lib.map(lambda p: p[0]) | lib.filter(lambda n: n < 3) | _take3(got))
    assert got == [0, 1, 2]


def _take3(into: list[Any]) -> Any:
    from mimo import In, stream

    @stream
    async def take3(inp: In[Any]) -> None:
        async for x in inp:
            into.append(x)
            if len(into) == 3:
                return

    return take3


@pytest.mark.timeout(10)
def test_a_cancelled_run_through_a_join_leaves_no_task() -> None:
    async def forever() -> AsyncIterator[int]:
        i = 0
        while True:
            yield i
            i += 1
            await asyncio.sleep(0)

    async def main() -> None:
        j = lib.join(forever(), forever(), key=lambda x: x)
        task = asyncio.ensure_future((j.matched | lib.collect()).run_async())
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())


# -- upstreams as arguments ------------------------------------------------------


def test_merge_takes_streams_chains_and_async_iterables() -> None:
    async def letters() -> AsyncIterator[str]:
        for c in "ab":
            yield c

    got: list[Any] = []
    run_workflow(lib.merge(lib.range(2), lib.from_iterable("xy") | lib.map(str.upper), letters()) | lib.collect(got))
    assert sorted(map(str, got)) == ["0", "1", "X", "Y", "a", "b"]


def test_zip_takes_streams_and_gives_tuples_in_argument_order() -> None:
    got: list[tuple[int, str]] = []
    run_workflow(lib.zip(lib.range(5), lib.from_iterable("xyz")) | lib.collect(got))
    assert got == [(0, "x"), (1, "y"), (2, "z")]


def test_chain_takes_its_upstreams_and_concatenates_them_in_argument_order() -> None:
    async def late() -> AsyncIterator[str]:
        await asyncio.sleep(0.01)
        yield "z"

    assert lib.chain(late(), lib.range(2), lib.from_iterable("ab")).to_list() == ["z", 0, 1, "a", "b"]


def test_a_port_spec_and_upstreams_cannot_be_mixed() -> None:
    with pytest.raises(TypeError, match=r"merge\(\): takes one port spec .* not \[1, 2\]; wrap a plain iterable"):
        lib.merge(lib.range(2), [1, 2])  # type: ignore[call-overload]
    with pytest.raises(TypeError, match=r"zip\(\): give either the upstreams or inputs=, not both"):
        lib.zip(lib.range(2), lib.range(2), inputs=2)  # type: ignore[call-overload]


def test_a_branch_is_an_upstream_too() -> None:
    s = lib.split(lambda n: n % 2 == 0)
    lib.range(6) | s
    got: list[tuple[int, int]] = []
    run_workflow(lib.zip(s.matched, s.unmatched) | lib.collect(got))
    assert got == [(0, 1), (2, 3), (4, 5)]


# -- typed branches ---------------------------------------------------------------


def test_split_branches_start_chains_whatever_the_order_of_the_joins() -> None:
    evens: list[int] = []
    odds: list[int] = []
    s = lib.split(lambda n: n % 2 == 0)
    s.matched | lib.collect(evens)  # a branch first, the input after: one split
    lib.range(6) | s
    run_workflow(s.unmatched | lib.map(lambda n: n * 10) | lib.collect(odds))
    assert evens == [0, 2, 4] and odds == [10, 30, 50]


def test_a_branch_joined_twice_fans_out() -> None:
    a: list[int] = []
    b: list[int] = []
    s = lib.split(lambda n: n > 0)
    lib.range(3) | s
    s.matched | lib.collect(a)
    run_workflow(s.matched | lib.collect(b))
    assert a == b == [1, 2]


def test_a_branch_has_only_its_own_port() -> None:
    s = lib.split(bool)
    assert list(s.matched.out) == ["matched"]
    with pytest.raises(WorkflowError, match="'bool'.matched is one output; it has no output port 'unmatched'"):
        s.matched.out["unmatched"]


def test_broadcast_and_balance_outputs_are_branches_in_port_order() -> None:
    evens, odds = lib.balance(lib.range(6)).branches
    got: list[int] = []
    evens | lib.collect(got)
    assert odds.to_list() == [1, 3, 5] and got == [0, 2, 4]
    copies = lib.broadcast(outputs=["a", "b", "c"])
    lib.range(2) | copies
    assert [b.port for b in copies.branches] == ["a", "b", "c"]
    copies.branches[0] | lib.collect(got)
    copies.branches[1] | lib.collect(got)
    assert copies.branches[2].to_list() == [0, 1] and sorted(got[3:]) == [0, 0, 1, 1]


def test_a_fan_out_takes_one_upstream_or_one_port_spec() -> None:
    with pytest.raises(TypeError, match=r"broadcast\(\): takes one upstream or one port spec"):
        lib.broadcast(lib.range(2), lib.range(2))  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="balance: needs at least one output port, not 0"):
        lib.balance(lib.range(2), outputs=0)


# -- to_list ----------------------------------------------------------------------


def test_to_list_runs_the_chain_and_returns_what_its_open_output_gave() -> None:
    assert (lib.range(4) | lib.map(lambda n: n * n)).to_list() == [0, 1, 4, 9]
    assert lib.range(3).to_list() == [0, 1, 2]


def test_to_list_runs_the_whole_graph_the_chain_is_part_of() -> None:
    other: list[int] = []
    numbers = lib.range(3)
    numbers | lib.collect(other)
    assert (numbers | lib.map(lambda n: -n)).to_list() == [0, -1, -2]
    assert other == [0, 1, 2]


def test_to_list_of_a_flow_collects_the_last_streams_only_unjoined_output() -> None:
    s = lib.split(lambda n: n > 1)
    flow = lib.range(4).out["out"] >> s.in_["inp"]
    kept: list[int] = []
    s.out["matched"] >> lib.collect(kept).in_["inp"]
    assert flow.to_list() == [0, 1]
    assert kept == [2, 3]


def test_to_list_of_a_flow_with_several_unjoined_outputs_says_which_to_join() -> None:
    flow = lib.range(4).out["out"] >> lib.split(bool).in_["inp"]
    with pytest.raises(WorkflowError, match="'bool' has 2 unjoined outputs of 2, so there is no one output to collect"):
        flow.to_list()


def test_to_list_raises_what_the_run_raises() -> None:
    def boom(n: int) -> int:
        raise ValueError(f"bad {n}")

    with pytest.raises(ValueError, match="bad 0"):
        (lib.range(3) | lib.map(boom)).to_list()


def test_to_list_async_runs_in_the_running_loop() -> None:
    async def main() -> list[str]:
        return await lib.merge(lib.from_iterable("ab"), lib.from_iterable("c")).to_list_async()

    assert sorted(asyncio.run(main())) == ["a", "b", "c"]
