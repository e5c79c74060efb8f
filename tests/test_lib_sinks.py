"""mimo.lib.sinks: collect to a list, for-each callback, to a file."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mimo import lib
from mimo.dsl import SinkStream
from mimo.testing import run_stream, run_workflow

# -- collect ---------------------------------------------------------------------


def test_collect_appends_every_item_to_the_given_list_in_order() -> None:
    got: list[int] = []
    (lib.range(5) | lib.collect(got)).run()
    assert got == [0, 1, 2, 3, 4]


def test_collect_without_a_list_keeps_a_new_one_as_its_state() -> None:
    sink = lib.collect()
    (lib.from_iterable("abc") | sink).run()
    assert sink.state == ["a", "b", "c"]


def test_collect_appends_on_every_run() -> None:
    got: list[int] = []
    flow = lib.range(2) | lib.collect(got)
    flow.run()
    flow.run()
    assert got == [0, 1, 0, 1]


def test_collect_takes_many_items_under_back_pressure() -> None:
    got: list[int] = []
    run_workflow((lib.range(10_000) | lib.collect(got)), capacity=3)
    assert got == list(range(10_000))


def test_collect_needs_a_list() -> None:
    with pytest.raises(TypeError, match="list"):
        lib.collect((1, 2))  # type: ignore[call-overload]


def test_collect_appends_to_anything_with_append_of_a_wider_item_type() -> None:
    # docs/streams.md: collect only writes to `into`, so ints go into a list[float] or a deque.
    from collections import deque

    amounts: list[float] = [0.5]
    (lib.range(1, 4) | lib.collect(amounts)).run()
    assert amounts == [0.5, 1, 2, 3]
    last: deque[object] = deque(maxlen=2)
    sink = lib.collect(last)
    (lib.range(5) | sink).run()
    assert list(last) == [3, 4] and sink.state is last


# -- for_each --------------------------------------------------------------------


def test_for_each_calls_a_plain_function_on_every_item_in_order() -> None:
    seen: list[str] = []
    (lib.from_iterable(["x", "y"]) | lib.for_each(seen.append)).run()
    assert seen == ["x", "y"]


def test_for_each_awaits_an_async_callback_one_item_at_a_time() -> None:
    active = 0
    most = 0
    seen: list[int] = []

    async def record(x: int) -> None:
        nonlocal active, most
        active += 1
        most = max(most, active)
        await asyncio.sleep(0.001)
        seen.append(x)
        active -= 1

    assert run_stream(lib.for_each(record), {"inp": range(5)}) == {}
    assert seen == [0, 1, 2, 3, 4]
    assert most == 1


def test_for_each_is_named_after_its_callback_and_fails_with_it() -> None:
    def refuse(x: int) -> None:
        raise ValueError(f"no {x}")

    sink = lib.for_each(refuse)
    assert sink.name == "refuse"
    with pytest.raises(ValueError, match="no 1") as info:
        run_stream(sink, {"inp": [1]})
    assert info.value.mimo_stream == "refuse"  # type: ignore[attr-defined]


def test_for_each_needs_a_callable() -> None:
    with pytest.raises(TypeError, match="needs a function"):
        lib.for_each("print")  # type: ignore[arg-type]


# -- to_file ---------------------------------------------------------------------


def test_to_file_writes_one_item_per_line(tmp_path: Path) -> None:
    path = tmp_path / "out.txt"
    (lib.from_iterable([1, "two", None]) | lib.to_file(path)).run()
    assert path.read_text(encoding="utf-8") == "1\ntwo\nNone\n"


def test_to_file_replaces_or_appends_and_takes_another_end(tmp_path: Path) -> None:
    path = tmp_path / "out.txt"
    path.write_text("old\n", encoding="utf-8")
    (lib.from_iterable("ab") | lib.to_file(str(path))).run()
    assert path.read_text(encoding="utf-8") == "a\nb\n"
    (lib.from_iterable("cd") | lib.to_file(path, append=True, end=";")).run()
    assert path.read_text(encoding="utf-8") == "a\nb\nc;d;"


def test_file_lines_to_to_file_copies_a_large_file(tmp_path: Path) -> None:
    src, dst = tmp_path / "in.txt", tmp_path / "out.txt"
    text = "".join(f"line {i}\n" for i in range(5000))
    src.write_text(text, encoding="utf-8")
    run_workflow(lib.file_lines(src) | lib.to_file(dst), capacity=8)
    assert dst.read_text(encoding="utf-8") == text


def test_to_file_keeps_what_was_written_when_the_run_fails(tmp_path: Path) -> None:
    path = tmp_path / "out.txt"

    def check(x: int) -> int:
        if x == 3:
            raise RuntimeError("bad item")
        return x

    with pytest.raises(RuntimeError, match="bad item"):
        run_workflow(lib.range(5) | lib.map(check) | lib.to_file(path), capacity=0)
    written = path.read_text(encoding="utf-8").split()
    assert written == [str(i) for i in range(len(written))]  # a prefix, never a torn line
    assert len(written) <= 3


# -- what all sinks share --------------------------------------------------------


@pytest.mark.parametrize(
    "sink",
    [lib.collect(), lib.for_each(print), lib.to_file("unused.txt")],
    ids=lambda s: s.name,
)
def test_every_sink_has_one_input_inp_and_no_output(sink: SinkStream[object]) -> None:
    assert isinstance(sink, SinkStream)
    assert sink.ins == ("inp",) and sink.outs == ()
