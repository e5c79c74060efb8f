"""mimo.lib.routing: chain, zip_latest, partition (and stable_hash)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mimo import In, Out, WorkflowError, lib, stream
from mimo.testing import run_stream, run_workflow
from tests.operator_helpers import cancel_while_running, endless

# -- chain -------------------------------------------------------------------------


def test_chain_pushes_every_item_of_each_input_in_turn() -> None:
    got = run_stream(lib.chain(3), {"in0": [1, 2], "in1": [], "in2": [3, 4]})
    assert got == {"out": [1, 2, 3, 4]}


def test_chain_reads_a_later_input_only_once_the_earlier_ones_ended() -> None:
    got: list[str] = []

    @stream
    async def slow(out: Out[str]) -> None:
        for x in ("a", "b"):
            await asyncio.sleep(0.01)
            await out.push(x)

    c = lib.chain()
    slow.out["out"] >> c.in_["in0"]
    fast = lib.from_iterable(["x", "y"])
    fast.out["out"] >> c.in_["in1"]
    run_workflow(c | lib.collect(got), timeout=5)
    assert got == ["a", "b", "x", "y"]


def test_chain_of_no_inputs_ends_at_once_and_names_are_checked() -> None:
    assert run_stream(lib.chain(0), {}) == {"out": []}
    assert list(lib.chain(["first", "then"]).ins) == ["first", "then"]
    with pytest.raises(TypeError, match=r"chain: inputs must be a count or a list of port names"):
        lib.chain("ab")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"chain: the number of inputs must be >= 0, not -1"):
        lib.chain(-1)


@pytest.mark.timeout(10)
def test_chain_stops_its_producers_when_its_consumer_leaves() -> None:
    finals: list[str] = []
    c = lib.chain()
    endless(finals, "first").out["out"] >> c.in_["in0"]
    endless(finals, "second").out["out"] >> c.in_["in1"]
    got: list[int] = []
    run_workflow(c | lib.take(3) | lib.collect(got), timeout=5)
    assert got == [0, 1, 2] and sorted(finals) == ["first", "second"]


# -- zip_latest --------------------------------------------------------------------


def _stepper(name: str, steps: list[Any]) -> Any:
    """Pushes its items; at each "wait" it lets the rest of the graph run a while."""

    @stream(name=name)
    async def source(out: Out[Any]) -> None:
        for item in steps:
            if item == "wait":
                for _ in range(10):  # loop turns, not time: the same order on a loaded machine
                    await asyncio.sleep(0)
            else:
                await out.push(item)

    return source


@pytest.mark.timeout(10)
def test_zip_latest_pushes_the_latest_of_every_input_each_time_one_gives_an_item() -> None:
    got: list[tuple[Any, ...]] = []
    z = lib.zip_latest()
    # Each "wait" lets the other side and zip_latest move, so the interleaving is fixed.
    _stepper("nums", [1, "wait", "wait", 2, "wait", "wait"]).out["out"] >> z.in_["in0"]
    _stepper("chars", ["wait", "a", "wait", "wait", "b"]).out["out"] >> z.in_["in1"]
    run_workflow(z | lib.collect(got), timeout=5)
    assert got == [(1, "a"), (2, "a"), (2, "b")]


def test_zip_latest_waits_until_every_input_gave_one() -> None:
    got = run_stream(lib.zip_latest(), {"in0": [1, 2, 3], "in1": []})
    assert got == {"out": []}


@pytest.mark.timeout(10)
def test_zip_latest_ends_at_once_when_an_input_ends_without_an_item() -> None:
    finals: list[str] = []
    z = lib.zip_latest()
    endless(finals).out["out"] >> z.in_["in0"]
    lib.from_iterable([]).out["out"] >> z.in_["in1"]
    got: list[tuple[Any, ...]] = []
    run_workflow(z | lib.collect(got), timeout=5)
    assert got == [] and finals == ["source"]


def test_zip_latest_of_no_inputs_ends_at_once() -> None:
    assert run_stream(lib.zip_latest(0), {}) == {"out": []}


def test_zip_latest_output_is_typed_tuple_so_a_mismatched_join_fails_when_built() -> None:
    @stream
    async def ints(inp: In[int]) -> None:
        async for _ in inp:
            pass

    with pytest.raises(WorkflowError, match="tuple"):
        lib.zip_latest().out["out"] >> ints.in_["inp"]


@pytest.mark.timeout(10)
def test_zip_latest_stops_when_its_consumer_leaves() -> None:
    finals: list[str] = []
    z = lib.zip_latest()
    endless(finals, "a").out["out"] >> z.in_["in0"]
    endless(finals, "b").out["out"] >> z.in_["in1"]
    got: list[tuple[int, int]] = []
    report = run_workflow(z | lib.take(5) | lib.collect(got), timeout=5)
    assert len(got) == 5 and sorted(finals) == ["a", "b"] and report["zip_latest"].stopped_early


# -- partition ---------------------------------------------------------------------


def test_partition_routes_by_the_stable_hash_of_the_key() -> None:
    words = ["apple", "avocado", "banana", "blueberry", "cherry", "apricot"]
    got = run_stream(lib.partition(lambda w: w[0], outputs=3), {"inp": words})
    for port, items in got.items():
        for w in items:
            assert port == f"out{lib.stable_hash(w[0]) % 3}"
    assert sorted(x for items in got.values() for x in items) == sorted(words)


@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d", "e"]), st.integers()), max_size=40), st.integers(1, 4))
def test_partition_sends_every_item_once_and_equal_keys_to_one_output(items: list[tuple[str, int]], n: int) -> None:
    got = run_stream(lib.partition(lambda kv: kv[0], outputs=n), {"inp": items})
    seen = [x for items_ in got.values() for x in items_]
    assert sorted(seen) == sorted(items)  # each exactly once
    where: dict[str, set[str]] = {}
    for port, routed in got.items():
        for key, _ in routed:
            where.setdefault(key, set()).add(port)
        assert routed == [kv for kv in items if kv in routed]  # order kept per output
    assert all(len(ports) == 1 for ports in where.values())


async def _first_letter(word: str) -> str:
    return word[0]


def test_partition_takes_an_async_key_and_named_outputs() -> None:
    p = lib.partition(_first_letter, outputs=["left", "right"])
    assert p.name == "_first_letter" and list(p.outs) == ["left", "right"]
    got = run_stream(p, {"inp": ["ab", "cd"]})
    assert sorted(got["left"] + got["right"]) == ["ab", "cd"]


def test_partition_fails_the_run_on_a_key_it_cannot_hash_stably() -> None:
    with pytest.raises(TypeError, match=r"partition 'partition': cannot hash a list stably") as info:
        run_stream(lib.partition(lambda x: x), {"inp": [[1, 2]]})
    assert info.value.mimo_stream == "partition"  # type: ignore[attr-defined]


def test_partition_settings_are_checked_when_made() -> None:
    with pytest.raises(TypeError, match=r"partition\(\) needs a function"):
        lib.partition(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"partition: needs at least one output port"):
        lib.partition(str, outputs=0)
    with pytest.raises(TypeError, match=r"partition: outputs must be a count or a list of port names"):
        lib.partition(str, outputs=True)


def test_a_raising_key_fails_the_run_named() -> None:
    def key(x: int) -> int:
        raise LookupError(f"no key for {x}")

    with pytest.raises(LookupError, match="no key for 7") as info:
        run_stream(lib.partition(key), {"inp": [7]})
    assert info.value.mimo_stream == "key"  # type: ignore[attr-defined]


@pytest.mark.timeout(10)
def test_partition_stops_when_nobody_reads_any_output() -> None:
    finals: list[str] = []
    p = lib.partition(lambda x: x % 2)
    endless(finals).out["out"] >> p.in_["inp"]
    take = lib.take(2)
    p.out["out0"] >> take.in_["inp"]  # out1 feeds nobody
    got: list[int] = []
    report = run_workflow(take | lib.collect(got), timeout=5)
    assert len(got) == 2 and finals == ["source"] and report["partition"].stopped_early


# -- stable_hash -------------------------------------------------------------------


def test_stable_hash_is_pinned_so_routing_never_changes_between_versions() -> None:
    assert lib.stable_hash("a") == 11811545671286753733
    assert lib.stable_hash((1, "a")) == 1372649387921332711


def test_stable_hash_treats_equal_values_alike_and_refuses_other_kinds() -> None:
    assert lib.stable_hash(2) == lib.stable_hash(2.0) and lib.stable_hash(1) == lib.stable_hash(True)
    assert lib.stable_hash(frozenset({1, "x"})) == lib.stable_hash(frozenset({"x", 1}))
    assert lib.stable_hash("1") != lib.stable_hash(1) and lib.stable_hash(b"a") != lib.stable_hash("a")
    assert lib.stable_hash(("ab", "c")) != lib.stable_hash(("a", "bc"))
    for bad in ([1], {"a": 1}, {1}, bytearray(b"x"), object()):
        with pytest.raises(TypeError, match=rf"cannot hash a {type(bad).__name__} stably"):
            lib.stable_hash(bad)


@pytest.mark.timeout(30)
def test_stable_hash_is_the_same_in_a_process_with_another_hash_seed() -> None:
    value = ("key", "é", b"x", 3, 1.5, None)
    code = f"from mimo.lib._hashing import stable_hash; print(stable_hash({value!r}), hash('key'))"
    seed = "1" if os.environ.get("PYTHONHASHSEED") != "1" else "2"
    env = {**os.environ, "PYTHONHASHSEED": seed}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    stable, salted = out.stdout.split()
    assert int(salted) != hash("key")  # Python's own hash of a str differs there
    assert int(stable) == lib.stable_hash(value)


@pytest.mark.timeout(10)
@pytest.mark.parametrize("make", [lambda: lib.chain(1), lambda: lib.zip_latest(1), lambda: lib.partition(str, 1)])
def test_routing_streams_end_cleanly_when_the_run_is_cancelled(make: Any) -> None:
    assert cancel_while_running(make()) == ["source"]
