"""mimo.lib.select: take, skip, take_while, drop_while, distinct."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mimo import lib
from mimo.testing import run_stream, run_workflow
from tests.operator_helpers import cancel_while_running, endless

# -- take / skip -------------------------------------------------------------------


def test_take_passes_the_first_n_items_then_ends() -> None:
    assert run_stream(lib.take(2), {"inp": [5, 6, 7, 8]}) == {"out": [5, 6]}


def test_take_of_a_short_input_passes_all_of_it() -> None:
    assert run_stream(lib.take(5), {"inp": [1, 2]}) == {"out": [1, 2]}


def test_take_zero_ends_at_once_pushing_nothing() -> None:
    assert run_stream(lib.take(0), {"inp": [1, 2]}) == {"out": []}


@pytest.mark.timeout(10)
def test_take_stops_an_endless_source_at_once() -> None:
    finals: list[str] = []
    got: list[int] = []
    report = run_workflow(endless(finals) | lib.map(str) | lib.take(3) | lib.collect(got), timeout=5)
    assert got == ["0", "1", "2"]
    assert finals == ["source"]
    assert report["endless"].stopped_early and report["str"].stopped_early
    assert not report["take"].stopped_early


def test_skip_drops_the_first_n_items() -> None:
    assert run_stream(lib.skip(2), {"inp": [1, 2, 3, 4]}) == {"out": [3, 4]}
    assert run_stream(lib.skip(0), {"inp": [1]}) == {"out": [1]}
    assert run_stream(lib.skip(5), {"inp": [1, 2]}) == {"out": []}


@given(st.lists(st.integers(), max_size=30), st.integers(0, 35))
def test_take_and_skip_are_slices(items: list[int], n: int) -> None:
    assert run_stream(lib.take(n), {"inp": items})["out"] == items[:n]
    assert run_stream(lib.skip(n), {"inp": items})["out"] == items[n:]


@pytest.mark.parametrize("make", [lib.take, lib.skip])
def test_counts_are_checked_when_made(make: Any) -> None:
    owner = make.__name__
    with pytest.raises(TypeError, match=rf"{owner}\(\): n must be an int >= 0, not True"):
        make(True)
    with pytest.raises(TypeError, match=rf"{owner}\(\): n must be an int >= 0, not 2.0"):
        make(2.0)
    with pytest.raises(ValueError, match=rf"{owner}\(\): n must be an int >= 0, not -1"):
        make(-1)


@pytest.mark.timeout(10)
def test_take_and_skip_end_cleanly_when_the_run_is_cancelled() -> None:
    assert cancel_while_running(lib.skip(3)) == ["source"]
    assert cancel_while_running(lib.take(10**9)) == ["source"]


# -- take_while / drop_while -------------------------------------------------------


def test_take_while_ends_at_the_first_false_item_which_it_drops() -> None:
    assert run_stream(lib.take_while(lambda x: x < 3), {"inp": [1, 2, 3, 1]}) == {"out": [1, 2]}


def test_drop_while_passes_everything_from_the_first_false_item() -> None:
    calls: list[int] = []

    def small(x: int) -> bool:
        calls.append(x)
        return x < 3

    assert run_stream(lib.drop_while(small), {"inp": [1, 2, 3, 1, 5]}) == {"out": [3, 1, 5]}
    assert calls == [1, 2, 3]  # never called again once false


async def _small(x: int) -> bool:
    return x < 3


def test_take_while_and_drop_while_take_async_predicates_and_are_named_after_them() -> None:
    assert run_stream(lib.take_while(_small), {"inp": [1, 5, 1]}) == {"out": [1]}
    assert run_stream(lib.drop_while(_small), {"inp": [1, 5, 1]}) == {"out": [5, 1]}
    assert lib.take_while(_small).name == "_small"
    assert lib.drop_while(lambda x: True).name == "drop_while"


@given(st.lists(st.integers(-5, 5), max_size=30), st.integers(-5, 5))
def test_take_while_and_drop_while_agree_with_itertools(items: list[int], bound: int) -> None:
    def pred(x: int) -> bool:
        return x < bound

    assert run_stream(lib.take_while(pred), {"inp": items})["out"] == list(itertools.takewhile(pred, items))
    assert run_stream(lib.drop_while(pred), {"inp": items})["out"] == list(itertools.dropwhile(pred, items))


@pytest.mark.timeout(10)
def test_take_while_stops_an_endless_source() -> None:
    finals: list[str] = []
    got: list[int] = []
    run_workflow(endless(finals) | lib.take_while(lambda x: x < 4) | lib.collect(got), timeout=5)
    assert got == [0, 1, 2, 3] and finals == ["source"]


@pytest.mark.parametrize(
    ("make", "named"), [(lib.take_while, "picky"), (lib.drop_while, "picky"), (lib.distinct, "distinct")]
)
def test_a_raising_function_fails_the_run_named(make: Any, named: str) -> None:
    def picky(x: int) -> bool:
        raise KeyError(x)

    with pytest.raises(KeyError, match="1") as info:
        run_stream(make(picky), {"inp": [1]})
    assert info.value.mimo_stream == named  # type: ignore[attr-defined]


@pytest.mark.parametrize("make", [lib.take_while, lib.drop_while])
def test_predicates_are_checked_when_made(make: Any) -> None:
    with pytest.raises(TypeError, match=rf"{make.__name__}\(\) needs a function"):
        make(3)


# -- distinct ----------------------------------------------------------------------


def test_distinct_drops_every_repeat() -> None:
    assert run_stream(lib.distinct(), {"inp": [1, 2, 1, 3, 2]}) == {"out": [1, 2, 3]}


def test_distinct_compares_keys() -> None:
    got = run_stream(lib.distinct(str.lower), {"inp": ["a", "B", "A", "b", "c"]})
    assert got == {"out": ["a", "B", "c"]}


def test_distinct_with_a_window_remembers_only_the_last_keys_passed_on() -> None:
    assert run_stream(lib.distinct(window=1), {"inp": [1, 1, 2, 1, 1]}) == {"out": [1, 2, 1]}
    assert run_stream(lib.distinct(window=2), {"inp": [1, 2, 1, 3, 1, 2]}) == {"out": [1, 2, 3, 1, 2]}


def _distinct_model(items: list[int], window: int | None) -> list[int]:
    out: list[int] = []
    for x in items:
        recent = out if window is None else out[-window:]
        if x not in recent:
            out.append(x)
    return out


@given(st.lists(st.integers(0, 6), max_size=40), st.one_of(st.none(), st.integers(1, 5)))
def test_distinct_passes_an_item_iff_its_key_is_not_among_those_remembered(
    items: list[int], window: int | None
) -> None:
    assert run_stream(lib.distinct(window=window), {"inp": items})["out"] == _distinct_model(items, window)


def test_an_unhashable_key_fails_the_run_naming_the_stream() -> None:
    with pytest.raises(TypeError, match=r"distinct 'distinct': the key \[1\] is unhashable"):
        run_stream(lib.distinct(), {"inp": [[1]]})


def test_distinct_settings_are_checked_when_made() -> None:
    with pytest.raises(TypeError, match=r"distinct\(\) needs a function"):
        lib.distinct("x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"distinct\(\): window must be an int >= 1, not 0"):
        lib.distinct(window=0)
    with pytest.raises(TypeError, match=r"distinct\(\): window must be an int >= 1, not False"):
        lib.distinct(window=False)


@pytest.mark.timeout(10)
def test_distinct_and_drop_while_end_cleanly_when_the_run_is_cancelled() -> None:
    assert cancel_while_running(lib.distinct()) == ["source"]
    assert cancel_while_running(lib.drop_while(lambda x: x < 5)) == ["source"]


@pytest.mark.timeout(10)
def test_every_select_stage_stops_when_its_consumer_leaves() -> None:
    for stage in (lib.skip(1), lib.drop_while(lambda x: False), lib.distinct(), lib.take_while(lambda x: True)):
        finals: list[str] = []
        got: list[int] = []
        report = run_workflow(endless(finals) | stage | lib.take(2) | lib.collect(got), timeout=5)
        assert len(got) == 2 and finals == ["source"]
        assert report[stage.name].stopped_early


@pytest.mark.timeout(10)
def test_the_report_counts_what_was_still_queued_for_take_when_it_left() -> None:
    report = run_workflow(lib.range(1000) | lib.take(1) | lib.collect([]), timeout=5, capacity=8)
    assert 1 <= report["take"].dropped["inp"] <= 8
