"""``lib.map(..., retry=mimo.Retry(...), errors=...)``: retries with back-off, counted, and a dead-letter port."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

import mimo
from mimo import In, Retry, lib, stream
from mimo.testing import run_stream


def no_jitter(**kw: Any) -> tuple[Retry, list[float]]:
    """A Retry whose waits are recorded, not slept, and exactly ``backoff * 2**k``."""
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    return Retry(jitter=0, sleep=sleep, **kw), slept


class Flaky:
    """Fails ``fails[item]`` times on an item with ``exc``, then returns ``item * 10``."""

    def __init__(self, fails: dict[int, int], exc: type[Exception] = OSError) -> None:
        self.fails = dict(fails)
        self.exc = exc
        self.calls: list[int] = []

    def __call__(self, item: int) -> int:
        self.calls.append(item)
        if self.fails.get(item, 0) > 0:
            self.fails[item] -= 1
            raise self.exc(f"flaky on {item}")
        return item * 10


# -- Retry itself ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"attempts": 0}, ValueError, r"Retry\(\): attempts must be an int >= 1 .*not 0"),
        ({"attempts": 2.5}, TypeError, r"Retry\(\): attempts must be an int >= 1"),
        ({"backoff": -1}, ValueError, r"backoff must be a finite number of seconds >= 0, not -1"),
        ({"backoff": "1"}, TypeError, r"backoff must be a number of seconds >= 0, not '1'"),
        ({"max_backoff": float("inf")}, ValueError, r"max_backoff must be a finite number of seconds"),
        ({"backoff": 2, "max_backoff": 1}, ValueError, r"max_backoff \(1\) must be >= backoff \(2\)"),
        ({"multiplier": 0.5}, ValueError, r"multiplier must be a finite number >= 1, not 0.5"),
        ({"jitter": 2}, ValueError, r"jitter must be a number from 0 to 1"),
        ({"jitter": None}, TypeError, r"jitter must be a number from 0 to 1, not None"),
        ({"on": "OSError"}, TypeError, r"on must be an exception class or a tuple of them"),
        ({"on": (KeyboardInterrupt,)}, TypeError, r"on must be an exception class .*Exception subclasses"),
        ({"on": ()}, TypeError, r"on must be an exception class"),
        ({"sleep": 3}, TypeError, r"sleep must be callable, not 3"),
    ],
)
def test_retry_checks_its_arguments_when_made(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        Retry(**kwargs)


def test_retry_is_a_frozen_public_dataclass() -> None:
    r = mimo.Retry(attempts=5, on=OSError)
    assert r.on == (OSError,)
    with pytest.raises(dataclasses.FrozenInstanceError, match="attempts"):
        r.attempts = 2  # type: ignore[misc]


def test_the_waits_grow_exponentially_up_to_max_backoff_less_the_jitter() -> None:
    r = Retry(backoff=0.1, max_backoff=0.5, jitter=0)
    assert [r.delay(k) for k in range(1, 6)] == pytest.approx([0.1, 0.2, 0.4, 0.5, 0.5])
    draws = iter([0.0, 1.0, 0.5])
    jittered = Retry(backoff=1.0, max_backoff=100, jitter=0.5, random=lambda: next(draws))
    assert [jittered.delay(3) for _ in range(3)] == pytest.approx([4.0, 2.0, 3.0])


# -- map(retry=) --------------------------------------------------------------------


def test_a_failing_item_is_retried_with_back_off_and_the_report_counts_the_retries() -> None:
    retry, slept = no_jitter(attempts=3, backoff=0.1, on=(OSError,))
    flaky = Flaky({2: 2})
    outs = run_stream(lib.map(flaky, retry=retry, name="m"), {"inp": [1, 2, 3]})
    assert outs["out"] == [10, 20, 30]
    assert flaky.calls == [1, 2, 2, 2, 3]
    assert slept == pytest.approx([0.1, 0.2])
    assert outs.report.streams["m"].retries == 2


def test_after_the_last_attempt_the_items_exception_fails_the_run() -> None:
    retry, slept = no_jitter(attempts=3, on=OSError)
    flaky = Flaky({2: 5})
    with pytest.raises(OSError, match="flaky on 2"):
        run_stream(lib.map(flaky, retry=retry), {"inp": [1, 2, 3]})
    assert flaky.calls == [1, 2, 2, 2]
    assert len(slept) == 2


def test_an_exception_not_listed_in_on_fails_at_once() -> None:
    retry, slept = no_jitter(attempts=3, on=(OSError,))
    flaky = Flaky({1: 1}, exc=ValueError)
    with pytest.raises(ValueError, match="flaky on 1"):
        run_stream(lib.map(flaky, retry=retry), {"inp": [1]})
    assert flaky.calls == [1]
    assert slept == []


def test_an_async_function_is_retried_too() -> None:
    retry, _ = no_jitter(attempts=2)
    flaky = Flaky({1: 1})

    async def call(item: int) -> int:
        await asyncio.sleep(0)
        return flaky(item)

    assert run_stream(lib.map(call, retry=retry), {"inp": [1, 2]})["out"] == [10, 20]


# -- errors="output" -----------------------------------------------------------------


def test_with_errors_output_a_failed_item_goes_to_errors_and_the_run_goes_on() -> None:
    retry, _ = no_jitter(attempts=2, on=OSError)
    flaky = Flaky({2: 9, 4: 1})
    outs = run_stream(lib.map(flaky, retry=retry, errors="output", name="m"), {"inp": [1, 2, 3, 4]})
    assert outs["out"] == [10, 30, 40]
    [(item, exc)] = outs["errors"]
    assert item == 2 and isinstance(exc, OSError) and str(exc) == "flaky on 2"
    assert outs.report.streams["m"].retries == 2  # once for 2, once for 4


def test_with_errors_output_and_no_retry_every_failure_is_a_dead_letter() -> None:
    outs = run_stream(lib.map(lambda x: 10 // x, errors="output"), {"inp": [5, 0, 2]})
    assert outs["out"] == [2, 5]
    assert [(i, type(e)) for i, e in outs["errors"]] == [(0, ZeroDivisionError)]


def test_the_dead_letter_port_is_joined_by_name() -> None:
    good: list[int] = []
    bad: list[tuple[int, Exception]] = []
    flow = lib.from_iterable([1, 0, 4]) | lib.map(lambda x: 8 // x, errors="output")
    flow.out["out"] >> lib.collect(good).in_["inp"]
    flow.out["errors"] >> lib.collect(bad).in_["inp"]
    flow.run()
    assert good == [8, 2]
    assert [i for i, _ in bad] == [0]


def test_async_workers_with_retry_and_dead_letters_keep_the_input_order() -> None:
    retry, _ = no_jitter(attempts=2)
    flaky = Flaky({3: 1, 5: 9})

    async def call(item: int) -> int:
        await asyncio.sleep(0.001 * (10 - item))
        return flaky(item)

    outs = run_stream(lib.map(call, workers=4, retry=retry, errors="output"), {"inp": list(range(10))})
    assert outs["out"] == [i * 10 for i in range(10) if i != 5]
    assert [i for i, _ in outs["errors"]] == [5]


# -- ending and cancellation --------------------------------------------------------------


@pytest.mark.timeout(10)
def test_a_run_cancelled_during_a_back_off_wait_ends_cleanly() -> None:
    calls: list[int] = []

    def always(item: int) -> int:
        calls.append(item)
        raise OSError("down")

    async def main() -> set[asyncio.Task[Any]]:
        slow = Retry(attempts=5, backoff=60, max_backoff=60)
        flow = lib.from_iterable([1]) | lib.map(always, retry=slow) | lib.collect()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await flow.run_async()
        return asyncio.all_tasks() - {asyncio.current_task()}  # type: ignore[operator]

    assert asyncio.run(main()) == set()
    assert calls == [1]  # cancelled while waiting 30 to 60 seconds before the second call


@pytest.mark.timeout(10)
def test_a_consumer_that_leaves_early_ends_the_retrying_map_quietly() -> None:
    retry, _ = no_jitter(attempts=2)
    first: list[int] = []

    @stream
    async def one(inp: In[int]) -> None:
        first.append(await inp.pop())

    report = (lib.range(10_000) | lib.map(Flaky({}), retry=retry, name="m") | one).run(capacity=2)
    assert first == [0]
    assert report.streams["m"].stopped_early


# -- checked when made --------------------------------------------------------------


def _f(x: int) -> int:
    return x


async def _af(x: int) -> int:
    return x


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: lib.map(_f, retry=3), TypeError, r"map '_f': retry must be a mimo.Retry\(...\) or None, not 3"),
        (lambda: lib.map(_f, errors="ignore"), ValueError, r"map '_f': errors must be 'raise' or 'output'"),
        (lambda: lib.map(_f, workers=2, retry=Retry()), ValueError, r"map '_f': retry= and errors= with workers"),
        (lambda: lib.map(_f, executor="thread", errors="output"), ValueError, r"map '_f': retry= and errors="),
        (lambda: lib.map(_af, workers=0, retry=Retry()), ValueError, r"map '_af': workers must be an int >= 1"),
    ],
)
def test_map_checks_retry_and_errors_when_made(call: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        call()


# -- typing ---------------------------------------------------------------------------

TYPED_OK = """
import mimo
from mimo.dsl import PortStream

assert_type(lib.map(parse, retry=mimo.Retry(attempts=2)), StageStream[str, int])
assert_type(lib.map(label, workers=4, retry=mimo.Retry(on=(OSError,))), StageStream[int, str])
assert_type(lib.map(parse, errors="output"), PortStream)
assert_type(lib.map(label, retry=mimo.Retry(), errors="output"), PortStream)
chain = lib.from_iterable(["1"]) | lib.map(parse, retry=mimo.Retry()) | lib.collect(ints)
assert_type(chain, Closed)
"""

TYPED_BAD = """
import mimo

a = lib.map(parse, retry=3)  # E
b = lib.map(parse, errors="drop")  # E
d = mimo.Retry(attempts="3")  # E
e = lib.from_iterable([1]) | lib.map(parse, retry=mimo.Retry())  # E
"""
