"""mimo.lib.sources: iterable, async iterable, range, file lines."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from mimo import lib
from mimo.dsl import SourceStream
from mimo.testing import run_stream, run_workflow


def test_from_iterable_pushes_every_item_in_order() -> None:
    assert run_stream(lib.from_iterable([3, 1, 2])) == {"out": [3, 1, 2]}


def test_from_iterable_iterates_afresh_on_every_run() -> None:
    src = lib.from_iterable(["a", "b"])
    assert run_stream(src) == {"out": ["a", "b"]}
    assert run_stream(src) == {"out": ["a", "b"]}


def test_from_iterable_uses_up_an_iterator_once() -> None:
    src = lib.from_iterable(iter([1, 2]))
    assert run_stream(src) == {"out": [1, 2]}
    assert run_stream(src) == {"out": []}


def test_from_iterable_stops_when_nobody_reads_any_more() -> None:
    pulled: list[int] = []

    def endless() -> Iterator[int]:
        i = 0
        while True:
            pulled.append(i)
            yield i
            i += 1

    got: list[object] = []
    # zip ends with its shorter input and leaves the endless one.
    flow = lib.from_iterable(endless()).out["out"] >> (z := lib.zip()).in_["in0"]
    lib.from_iterable([10, 20]).out["out"] >> z.in_["in1"]
    z.out["out"] >> lib.collect(got).in_["inp"]
    run_workflow(flow, timeout=5)
    assert got == [(0, 10), (1, 20)]
    assert len(pulled) < 1000  # stopped, bounded by the queue, not run forever


def test_from_async_iterable_pushes_every_item() -> None:
    async def numbers() -> AsyncIterator[int]:
        for i in range(4):
            await asyncio.sleep(0)
            yield i

    assert run_stream(lib.from_async_iterable(numbers())) == {"out": [0, 1, 2, 3]}


def test_from_async_iterable_closes_a_generator_left_early() -> None:
    closed: list[bool] = []

    async def endless() -> AsyncIterator[int]:
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.append(True)

    got: list[int] = []
    z = lib.zip()
    lib.from_async_iterable(endless()).out["out"] >> z.in_["in0"]
    lib.from_iterable("ab").out["out"] >> z.in_["in1"]
    flow = z.out["out"] >> lib.collect(got).in_["inp"]
    run_workflow(flow, timeout=5)
    assert got == [(0, "a"), (1, "b")]
    assert closed == [True]


def test_range_is_like_the_builtin() -> None:
    assert run_stream(lib.range(4)) == {"out": [0, 1, 2, 3]}
    assert run_stream(lib.range(2, 10, 3)) == {"out": [2, 5, 8]}
    assert run_stream(lib.range(5, 0, -2)) == {"out": [5, 3, 1]}


def test_range_rejects_a_zero_step_when_made() -> None:
    with pytest.raises(ValueError, match="must not be zero"):
        lib.range(0, 10, 0)


def test_file_lines_reads_lines_without_endings(tmp_path: Path) -> None:
    path = tmp_path / "in.txt"
    path.write_text("alpha\nbeta\r\n\ngamma", encoding="utf-8")
    assert run_stream(lib.file_lines(path)) == {"out": ["alpha", "beta", "", "gamma"]}
    assert run_stream(lib.file_lines(str(path), keep_ends=True)) == {"out": ["alpha\n", "beta\n", "\n", "gamma"]}


def test_file_lines_reads_a_file_longer_than_one_read(tmp_path: Path) -> None:
    path = tmp_path / "many.txt"
    path.write_text("".join(f"{i}\n" for i in range(2000)), encoding="utf-8")
    assert run_stream(lib.file_lines(path), capacity=4)["out"] == [str(i) for i in range(2000)]


def test_file_lines_of_a_missing_file_fails_the_run(tmp_path: Path) -> None:
    src = lib.file_lines(tmp_path / "absent.txt", name="reader")
    with pytest.raises(FileNotFoundError) as info:
        run_stream(src)
    assert info.value.mimo_stream == "reader"  # type: ignore[attr-defined]


def test_sources_are_typed_streams_named_after_their_kind() -> None:
    src = lib.range(3)
    assert isinstance(src, SourceStream)
    assert src.name == "range" and src.outs == ("out",) and src.ins == ()
    assert lib.from_iterable([1], name="numbers").name == "numbers"


def test_each_call_gives_a_distinct_stream() -> None:
    a, b = lib.range(2), lib.range(2)
    assert a is not b
    assert run_stream(a) == run_stream(b) == {"out": [0, 1]}
