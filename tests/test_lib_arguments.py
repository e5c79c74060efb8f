"""Every stock stream checks its arguments when it is made, naming the stream and the argument."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mimo import lib
from mimo.lib.parallel import parallel_map


async def _agen() -> Any:
    yield 1


def _f(x: Any) -> Any:
    return x


# (factory, a call with a wrong argument, the error, what its message must say)
BAD: list[tuple[str, Callable[[], object], type[Exception], str]] = [
    ("from_iterable", lambda: lib.from_iterable(None), TypeError, r"items must be iterable, not None"),
    ("from_iterable", lambda: lib.from_iterable(5), TypeError, r"from_iterable\(\): items must be iterable, not 5"),
    ("from_iterable", lambda: lib.from_iterable(_agen()), TypeError, r"iterable.*use from_async_iterable"),
    ("from_async_iterable", lambda: lib.from_async_iterable(None), TypeError, r"from_async_iterable\(\): items must"),
    ("from_async_iterable", lambda: lib.from_async_iterable([1, 2]), TypeError, r"async iterable.*use from_iterable"),
    ("from_async_iterable", lambda: lib.from_async_iterable(_agen), TypeError, r"call the async generator function"),
    ("range", lambda: lib.range(0, 5, 0), ValueError, r"range\(\): .*must not be zero"),
    ("range", lambda: lib.range(1.5), TypeError, r"range\(\): .*float"),
    ("range", lambda: lib.range(True), TypeError, r"range\(\): stop must be an int, not True"),
    ("range", lambda: lib.range("3"), TypeError, r"range\(\): "),
    ("file_lines", lambda: lib.file_lines(5), TypeError, r"file_lines\(\): path must be a file name.*not 5"),
    ("file_lines", lambda: lib.file_lines(None), TypeError, r"file_lines\(\): path must be a file name"),
    ("file_lines", lambda: lib.file_lines(""), ValueError, r"file_lines\(\): path must not be empty"),
    ("file_lines", lambda: lib.file_lines("x", encoding="nope"), ValueError, r"file_lines\(\): unknown encoding"),
    ("file_lines", lambda: lib.file_lines("x", keep_ends="no"), TypeError, r"keep_ends must be True or False"),
    ("map", lambda: lib.map(3), TypeError, r"map\(\) needs a function"),
    ("map", lambda: lib.map(_f, workers=0), ValueError, r"map '_f': workers must be an int >= 1, not 0"),
    ("map", lambda: lib.map(_f, workers=True), ValueError, r"map '_f': workers must be an int >= 1, not True"),
    ("map", lambda: lib.map(_f, workers="2"), ValueError, r"map '_f': workers must be an int >= 1"),
    ("map", lambda: lib.map(_f, workers=2, ordered="no"), TypeError, r"map '_f': ordered must be True or False"),
    ("map", lambda: lib.map(_f, executor="gpu"), ValueError, r"'_f': executor must be None, 'thread', 'process'"),
    ("map", lambda: lib.map(_f, chunk_size=4), ValueError, r"map '_f': chunk_size applies only with workers"),
    ("filter", lambda: lib.filter(None), TypeError, r"filter\(\) needs a function"),
    ("flat_map", lambda: lib.flat_map([1]), TypeError, r"flat_map\(\) needs a function"),
    ("batch", lambda: lib.batch(0), ValueError, r"batch size must be an int >= 1, not 0"),
    ("batch", lambda: lib.batch(True), ValueError, r"batch size must be an int >= 1, not True"),
    ("batch", lambda: lib.batch(2, timeout="1"), ValueError, r"batch timeout must be a number of seconds > 0"),
    ("batch", lambda: lib.batch(2, timeout=-1), ValueError, r"batch timeout must be a number of seconds > 0"),
    ("unbatch", lambda: lib.unbatch(name=""), TypeError, r"stream 'unbatch': name must be a non-empty str"),
    ("rate_limit", lambda: lib.rate_limit(0), ValueError, r"rate_limit per_second must be a number > 0"),
    ("rate_limit", lambda: lib.rate_limit(float("nan")), ValueError, r"rate_limit per_second must be a number > 0"),
    ("rate_limit", lambda: lib.rate_limit(1, burst=0), ValueError, r"rate_limit burst must be an int >= 1"),
    ("merge", lambda: lib.merge("line"), TypeError, r"merge: inputs must be a count or a list.*a string is one name"),
    ("merge", lambda: lib.merge(-1), ValueError, r"merge: the number of inputs must be >= 0"),
    ("zip", lambda: lib.zip("line"), TypeError, r"zip: inputs must be a count or a list of port names"),
    ("zip", lambda: lib.zip(True), TypeError, r"zip: inputs must be a count or a list of port names"),
    ("broadcast", lambda: lib.broadcast("ab"), TypeError, r"broadcast: outputs must be a count or a list"),
    ("broadcast", lambda: lib.broadcast(0), ValueError, r"broadcast: needs at least one output port"),
    ("balance", lambda: lib.balance("ab"), TypeError, r"balance: outputs must be a count or a list"),
    ("balance", lambda: lib.balance([]), ValueError, r"balance: needs at least one output port"),
    ("split", lambda: lib.split("x"), TypeError, r"split\(\) needs a function"),
    ("join", lambda: lib.join(key="id"), TypeError, r"join\(\) needs a function"),  # type: ignore[call-overload]
    ("join", lambda: lib.join(1, key=id), ValueError, r"join: needs at least two inputs"),
    ("join", lambda: lib.join(key=[id]), ValueError, r"join: key has 1 functions for 2 inputs"),
    ("join", lambda: lib.join(lib.range(2), [1], key=id), TypeError, r"join\(\): takes one port spec"),  # type: ignore[call-overload]
    ("collect", lambda: lib.collect((1, 2)), TypeError, r"collect\(\) appends to a list"),
    ("collect", lambda: lib.collect(name=3), TypeError, r"stream 'collect': name must be a non-empty str, not 3"),
    ("for_each", lambda: lib.for_each(None), TypeError, r"for_each\(\) needs a function"),
    ("for_each", lambda: lib.for_each(_agen), TypeError, r"for_each\(\): .*async generator function"),
    ("to_file", lambda: lib.to_file(1), TypeError, r"to_file\(\): path must be a file name.*not 1; file descriptors"),
    ("to_file", lambda: lib.to_file(True), TypeError, r"to_file\(\): path must be a file name.*not True"),
    ("to_file", lambda: lib.to_file("x", append="yes"), TypeError, r"to_file\(\): append must be True or False"),
    ("to_file", lambda: lib.to_file("x", encoding="nope"), ValueError, r"to_file\(\): unknown encoding 'nope'"),
    ("to_file", lambda: lib.to_file("x", end=None), TypeError, r"to_file\(\): end must be a str, not None"),
    ("tumbling", lambda: lib.tumbling(0), ValueError, r"tumbling: size must be a finite number of seconds > 0, not 0"),
    ("tumbling", lambda: lib.tumbling(math.inf), ValueError, r"tumbling: size must be a finite number of seconds > 0"),
    ("tumbling", lambda: lib.tumbling(1, allowed_lateness=1), ValueError, r"allowed_lateness applies to event time"),
    ("tumbling", lambda: lib.tumbling(1, timestamp=_f, clock=lib.ManualClock()), ValueError, r"clock applies to"),
    ("tumbling", lambda: lib.tumbling(1, clock=5), TypeError, r"tumbling: clock must have now\(\) and async sleep"),
    ("tumbling", lambda: lib.tumbling(1, key=3), TypeError, r"tumbling: key must be a function of an item, not 3"),
    ("sliding", lambda: lib.sliding(2, 3), ValueError, r"sliding: every \(3\) must not exceed size \(2\)"),
    ("sliding", lambda: lib.sliding(2, 0), ValueError, r"sliding: every must be a finite number of seconds > 0"),
    ("sliding", lambda: lib.sliding(2, 1, timestamp=_f, allowed_lateness=-1), ValueError, r"allowed_lateness must be"),
    ("session", lambda: lib.session(-1), ValueError, r"session: gap must be a finite number of seconds > 0, not -1"),
    ("session", lambda: lib.session(1, timestamp=5), TypeError, r"session: timestamp must be a function"),
    ("take", lambda: lib.take(True), TypeError, r"take\(\): n must be an int >= 0, not True"),
    ("take", lambda: lib.take(-1), ValueError, r"take\(\): n must be an int >= 0, not -1"),
    ("skip", lambda: lib.skip(1.0), TypeError, r"skip\(\): n must be an int >= 0, not 1.0"),
    ("take_while", lambda: lib.take_while(None), TypeError, r"take_while\(\) needs a function"),
    ("drop_while", lambda: lib.drop_while(_agen), TypeError, r"drop_while\(\): .*async generator function"),
    ("distinct", lambda: lib.distinct(window=0), ValueError, r"distinct\(\): window must be an int >= 1, not 0"),
    ("distinct", lambda: lib.distinct(5), TypeError, r"distinct\(\) needs a function"),
    ("scan", lambda: lib.scan(None, 0), TypeError, r"scan\(\): fn must be a function"),
    ("reduce", lambda: lib.reduce(_agen, 0), TypeError, r"reduce\(\): fn .* is an async generator function"),
    ("timeout", lambda: lib.timeout(0), ValueError, r"timeout\(\): seconds must be a finite number of seconds > 0"),
    ("timeout", lambda: lib.timeout(True), TypeError, r"timeout\(\): seconds must be a number of seconds > 0"),
    ("debounce", lambda: lib.debounce(math.inf), ValueError, r"debounce\(\): seconds must be a finite number"),
    ("debounce", lambda: lib.debounce(1, clock=5), TypeError, r"debounce\(\): clock must have now\(\) and sleep"),
    ("chain", lambda: lib.chain(-1), ValueError, r"chain: the number of inputs must be >= 0"),
    ("zip_latest", lambda: lib.zip_latest("ab"), TypeError, r"zip_latest: inputs must be a count or a list"),
    ("partition", lambda: lib.partition(str, outputs=0), ValueError, r"partition: needs at least one output port"),
    ("partition", lambda: lib.partition(None), TypeError, r"partition\(\) needs a function"),
    ("stable_hash", lambda: lib.stable_hash([1]), TypeError, r"cannot hash a list stably"),
    ("switch_map", lambda: lib.switch_map(3), TypeError, r"switch_map\(\) needs a function"),
    ("buffer", lambda: lib.buffer(0), ValueError, r"buffer\(\): size must be an int >= 1, not 0"),
    ("buffer", lambda: lib.buffer(2, overflow="drop"), ValueError, r"buffer\(\): overflow must be one of"),
    ("parallel_map", lambda: parallel_map(_f, workers=0), ValueError, r"parallel_map '_f': workers must be an int"),
    ("parallel_map", lambda: parallel_map(_f, ordered=None), TypeError, r"parallel_map '_f': ordered must be True"),
    ("parallel_map", lambda: parallel_map(_f, name=5), TypeError, r"parallel_map: name must be a str, not 5"),
]


@pytest.mark.parametrize(("factory", "call", "error", "match"), BAD, ids=[f"{row[0]}-{i}" for i, row in enumerate(BAD)])
def test_a_wrong_argument_is_an_error_when_the_stream_is_made(
    factory: str, call: Callable[[], object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        call()


def test_every_stock_stream_is_in_the_table() -> None:
    assert set(lib.__all__) | {"parallel_map"} == {row[0] for row in BAD}


def test_to_file_leaves_standard_output_alone(tmp_path: Path) -> None:
    # An int path used to be taken as a file descriptor: stdout written to, then closed for the process.
    with pytest.raises(TypeError, match="file descriptors are not taken"):
        lib.to_file(1)
    os.fstat(1)  # still open


@pytest.mark.parametrize("path", ["out.txt", Path("out.txt")])
def test_a_str_or_a_path_is_a_file_name(tmp_path: Path, path: str | Path) -> None:
    target = tmp_path / path
    (lib.range(2) | lib.to_file(target)).run()
    assert target.read_text() == "0\n1\n"
    got: list[str] = []
    (lib.file_lines(target) | lib.collect(got)).run()
    assert got == ["0", "1"]
