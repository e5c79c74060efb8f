"""mimo.lib.aggregate: scan and reduce."""

from __future__ import annotations

import functools
import itertools
import operator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mimo import lib
from mimo.testing import run_stream, run_workflow
from tests.operator_helpers import cancel_while_running, endless


def test_scan_pushes_each_running_value_not_the_initial_one() -> None:
    assert run_stream(lib.scan(operator.add, 0), {"inp": [1, 2, 3]}) == {"out": [1, 3, 6]}


def test_scan_accumulator_may_be_another_type() -> None:
    def count_chars(acc: dict[str, int], word: str) -> dict[str, int]:
        return {**acc, word: acc.get(word, 0) + 1}

    got = run_stream(lib.scan(count_chars, {}), {"inp": ["a", "b", "a"]})
    assert got == {"out": [{"a": 1}, {"a": 1, "b": 1}, {"a": 2, "b": 1}]}


async def _add(acc: int, item: int) -> int:
    return acc + item


def test_scan_and_reduce_take_an_async_function_and_are_named_after_it() -> None:
    assert run_stream(lib.scan(_add, 10), {"inp": [1, 2]}) == {"out": [11, 13]}
    assert run_stream(lib.reduce(_add, 10), {"inp": [1, 2]}) == {"out": [13]}
    assert lib.scan(_add, 0).name == "_add"
    assert lib.reduce(lambda a, b: a, 0).name == "reduce"


def test_reduce_pushes_one_value_at_the_end() -> None:
    assert run_stream(lib.reduce(operator.add, 0), {"inp": [1, 2, 3]}) == {"out": [6]}


def test_reduce_of_nothing_pushes_the_initial_value_and_scan_pushes_nothing() -> None:
    assert run_stream(lib.reduce(operator.add, 7), {"inp": []}) == {"out": [7]}
    assert run_stream(lib.scan(operator.add, 7), {"inp": []}) == {"out": []}


@given(st.lists(st.integers(-100, 100), max_size=30), st.integers(-100, 100))
def test_scan_and_reduce_agree_with_accumulate_and_functools_reduce(items: list[int], initial: int) -> None:
    def fn(acc: int, x: int) -> int:
        return acc * 3 - x  # not commutative: order matters

    assert (
        run_stream(lib.scan(fn, initial), {"inp": items})["out"]
        == list(itertools.accumulate(items, fn, initial=initial))[1:]
    )
    assert run_stream(lib.reduce(fn, initial), {"inp": items})["out"] == [functools.reduce(fn, items, initial)]


@pytest.mark.parametrize("make", [lib.scan, lib.reduce])
def test_a_raising_function_fails_the_run_named(make: Any) -> None:
    def bad(acc: int, item: int) -> int:
        raise ZeroDivisionError(f"at {item}")

    with pytest.raises(ZeroDivisionError, match="at 2") as info:
        run_stream(make(bad, 0), {"inp": [2]})
    assert info.value.mimo_stream == "bad"  # type: ignore[attr-defined]


@pytest.mark.parametrize("make", [lib.scan, lib.reduce])
def test_functions_are_checked_when_made(make: Any) -> None:
    owner = make.__name__
    with pytest.raises(TypeError, match=rf"{owner}\(\): fn must be a function"):
        make(3, 0)

    async def gen(acc: int, item: int) -> Any:
        yield acc

    with pytest.raises(TypeError, match=rf"{owner}\(\): fn .* is an async generator function"):
        make(gen, 0)


@pytest.mark.timeout(10)
def test_scan_stops_when_its_consumer_leaves() -> None:
    finals: list[str] = []
    got: list[int] = []
    report = run_workflow(endless(finals) | lib.scan(operator.add, 0) | lib.take(3) | lib.collect(got), timeout=5)
    assert got == [0, 1, 3] and finals == ["source"]
    assert report["add"].stopped_early


@pytest.mark.timeout(10)
def test_reduce_of_a_cut_short_input_pushes_what_it_has_at_the_end() -> None:
    got: list[int] = []
    run_workflow(lib.range(100) | lib.take(4) | lib.reduce(operator.add, 0) | lib.collect(got), timeout=5)
    assert got == [6]


@pytest.mark.timeout(10)
def test_scan_and_reduce_end_cleanly_when_the_run_is_cancelled() -> None:
    assert cancel_while_running(lib.scan(operator.add, 0)) == ["source"]
    assert cancel_while_running(lib.reduce(operator.add, 0)) == ["source"]
