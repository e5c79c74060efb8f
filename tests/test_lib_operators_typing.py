"""The operators of issue 11 are typed: chains through them check under mypy --strict and pyright.

Same method as tests/test_lib_typing.py: correct snippets check clean, and in
the wrong ones exactly the lines marked ``# E`` are errors. ``MYPY_ONLY``
holds what mypy infers from the left of a ``|`` and pyright does not (an
item-type-preserving stage such as ``take(3)`` is generic in its item type).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_lib_typing import _marked, _mypy, _pyright

HEAD = """\
from collections.abc import AsyncIterator
from typing import assert_type

from mimo import lib
from mimo.dsl import Closed, SinkStream, StageStream


def add_len(acc: int, word: str) -> int:
    return acc + len(word)


async def add_async(acc: float, n: int) -> float:
    return acc + n


def is_small(n: int) -> bool:
    return n < 10


def lower(s: str) -> str:
    return s.lower()


async def chars(s: str) -> AsyncIterator[str]:
    for c in s:
        yield c


ints: list[int] = []
strs: list[str] = []
"""

OK = """
assert_type(lib.scan(add_len, 0), StageStream[str, int])
assert_type(lib.reduce(add_len, 0), StageStream[str, int])
assert_type(lib.scan(add_async, 0.0), StageStream[int, float])
assert_type(lib.take_while(is_small), StageStream[int, int])
assert_type(lib.drop_while(is_small), StageStream[int, int])
assert_type(lib.distinct(lower), StageStream[str, str])
assert_type(lib.switch_map(chars), StageStream[str, str])
assert_type(lib.stable_hash(("a", 1)), int)
lengths = lib.from_iterable(["a", "bb"]) | lib.scan(add_len, 0) | lib.filter(is_small) | lib.collect(ints)
assert_type(lengths, Closed)
letters = lib.from_iterable(["ab"]) | lib.switch_map(chars) | lib.distinct(lower) | lib.collect(strs)
assert_type(letters, Closed)
total = lib.range(5) | lib.take_while(is_small) | lib.reduce(add_async, 0.0) | lib.for_each(print)
assert_type(total, Closed)
"""

MYPY_ONLY = """
flow = (
    lib.range(100)
    | lib.skip(2)
    | lib.take(10)
    | lib.distinct()
    | lib.timeout(5)
    | lib.debounce(0.1, clock=lib.ManualClock())
    | lib.buffer(8, overflow="drop_oldest")
    | lib.collect(ints)
)
assert_type(flow, Closed)
"""

BAD = """
a = lib.range(3) | lib.scan(add_len, 0)  # E
b = lib.from_iterable(["a"]) | lib.scan(add_len, 0) | lib.collect(strs)  # E
c = lib.from_iterable(["a"]) | lib.take_while(is_small)  # E
d = lib.range(3) | lib.switch_map(chars)  # E
e = lib.from_iterable(["a"]) | lib.reduce(add_async, 0.0)  # E
f = lib.range(3) | lib.distinct(lower)  # E
"""

MYPY_BAD = """
g = lib.range(3) | lib.take(2) | lib.collect(strs)  # E
h = lib.range(3) | lib.buffer(2, overflow="drop")  # E
i = lib.range(3) | lib.skip(1) | lib.switch_map(chars)  # E
"""


def _write(tmp: Path, name: str, body: str) -> Path:
    path = tmp / name
    path.write_text(HEAD + body)
    return path


@pytest.mark.timeout(240)
def test_mypy_strict_follows_item_types_through_the_operators(tmp_path: Path) -> None:
    files = [
        _write(tmp_path, "ok_ops.py", OK),
        _write(tmp_path, "ok_ops_mypy.py", MYPY_ONLY),
        _write(tmp_path, "bad_ops.py", BAD),
        _write(tmp_path, "bad_ops_mypy.py", MYPY_BAD),
    ]
    found = _mypy(tmp_path, files)
    assert found["ok_ops.py"] == set()
    assert found["ok_ops_mypy.py"] == set()
    assert found["bad_ops.py"] == _marked(files[2])
    assert found["bad_ops_mypy.py"] == _marked(files[3])


@pytest.mark.timeout(240)
def test_pyright_follows_item_types_through_the_operators(tmp_path: Path) -> None:
    files = [_write(tmp_path, "ok_ops.py", OK), _write(tmp_path, "bad_ops.py", BAD)]
    found = _pyright(tmp_path, files)
    assert found["ok_ops.py"] == set()
    assert found["bad_ops.py"] == _marked(files[1])
