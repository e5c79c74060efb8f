"""The stock streams are typed: chains of them are checked by mypy --strict and pyright.

Each snippet is written to a temporary directory and checked. Correct
snippets must check clean; in the wrong ones, exactly the lines marked
``# E`` must be errors. ``MYPY_ONLY`` holds what mypy infers from the left
of a ``|`` and pyright, by design, does not (see docs/streams.md).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

HEAD = """\
from typing import assert_type

from mimo import In, Out, lib, stream
from mimo.dsl import Closed, SinkStream, Source, SourceStream, StageStream
from mimo.lib._branches import Branch


def parse(s: str) -> int:
    return int(s)


async def label(n: int) -> str:
    return f"#{n}"


def words(line: str) -> list[str]:
    return line.split()


def is_small(n: int) -> bool:
    return n < 10


labels: list[str] = []
ints: list[int] = []


@stream
async def take(inp: In[int], out: Out[int], *, n: int) -> None:
    async for item in inp:
        await out.push(item)
strs: list[str] = []
"""

OK = """
assert_type(lib.map(parse), StageStream[str, int])
assert_type(lib.map(label), StageStream[int, str])
assert_type(lib.range(3), SourceStream[int])
assert_type(lib.from_iterable(["a"]), SourceStream[str])
assert_type(lib.file_lines("f.txt"), SourceStream[str])
assert_type(lib.collect(ints), SinkStream[int])
assert_type(lib.flat_map(words), StageStream[str, str])
assert_type(lib.filter(is_small), StageStream[int, int])
flow = lib.from_iterable(["1", "2"]) | lib.map(parse) | lib.filter(is_small) | lib.map(label) | lib.collect(labels)
assert_type(flow, Closed)
flow.run()
sink: SinkStream[object] = lib.to_file("o.txt")
closed = lib.file_lines("f.txt") | lib.flat_map(words) | lib.for_each(print)
assert_type(closed, Closed)
s = lib.split(is_small)
lib.range(3) | s
branch = s.matched | lib.map(label) | lib.collect(labels)
assert_type(lib.merge(lib.range(3), lib.range(4)), Source[int])
assert_type(lib.zip(lib.range(3), lib.from_iterable(["a"])), Source[tuple[int, str]])
j = lib.join(lib.range(3), lib.from_iterable(["a"]), key=str)
assert_type(j.matched, Branch[tuple[int, str]])
assert_type(j.unmatched, Branch[int | str])
took: StageStream[int, int] = take(n=2)
assert_type(lib.range(3) | take(n=2), Source[int])
assert_type((lib.range(3) | lib.map(label)).to_list(), list[str])
assert_type(j.matched.to_list(), list[tuple[int, str]])
left, right = lib.balance(lib.range(3)).branches
assert_type(left, Branch[int])
assert_type(lib.broadcast(lib.from_iterable(['a'])).branches[0].to_list(), list[str])
"""

MYPY_ONLY = """
chain = lib.range(10) | lib.batch(3) | lib.map(sum) | lib.rate_limit(100) | lib.filter(bool) | lib.collect(ints)
assert_type(chain, Closed)
text = lib.file_lines("f.txt") | lib.flat_map(words) | lib.batch(2) | lib.unbatch() | lib.to_file("o.txt")
assert_type(text, Closed)
lambdas = lib.range(3) | lib.filter(lambda n: n > 1) | lib.map(lambda n: n + 1) | lib.for_each(lambda n: print(n + 1))
assert_type(lambdas, Closed)
assert_type(lib.range(3) | lib.split(lambda n: n > 1), Closed)
"""

BAD = """
a = lib.range(3) | lib.map(parse)  # E
b = lib.from_iterable(["x"]) | lib.collect(ints)  # E
c = lib.range(3) | lib.map(str)
c.run()  # E
d = lib.from_iterable(["x"]) | lib.map(label)  # E
e = lib.range(3) | lib.flat_map(words)  # E
f = lib.range(3) | lib.filter(lambda n: n.upper())  # E
g = lib.range(3) | lib.for_each(lambda n: n.upper())  # E
h = lib.range(3) | lib.split(lambda n: n.upper())  # E
q = lib.from_iterable(["x"]) | take(n=2)  # E
r = take()  # E
i = lib.from_iterable(["x"]) | lib.split(is_small)  # E
k = lib.split(is_small).matched | lib.collect(strs)  # E
m = lib.merge(lib.range(3), lib.range(3)) | lib.collect(strs)  # E
n = lib.balance(lib.range(3)).branches[0] | lib.collect(strs)  # E
o = lib.range(3) | lib.broadcast(lib.range(3)).branches[0] | lib.collect(ints)  # E
"""

_MYPY = re.compile(r"^(?P<file>[^:]+\.py):(?P<line>\d+): error:")


def _write(tmp: Path, name: str, body: str) -> Path:
    path = tmp / name
    path.write_text(HEAD + body)
    return path


def _marked(path: Path) -> set[int]:
    return {n for n, text in enumerate(path.read_text().splitlines(), start=1) if text.endswith("# E")}


def _mypy(tmp: Path, files: list[Path]) -> dict[str, set[int]]:
    ini = tmp / "mypy.ini"
    ini.write_text("[mypy]\nstrict = True\npython_version = 3.11\n")
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ini), "--cache-dir", str(tmp / "cache"), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        cwd=tmp,
    )
    assert proc.returncode in (0, 1), f"mypy did not run:\n{proc.stdout}\n{proc.stderr}"
    found: dict[str, set[int]] = {f.name: set() for f in files}
    for line in proc.stdout.splitlines():
        m = _MYPY.match(line)
        if m:
            found[Path(m["file"]).name].add(int(m["line"]))
    return found


def _pyright(tmp: Path, files: list[Path]) -> dict[str, set[int]]:
    proc = subprocess.run(
        [sys.executable, "-m", "pyright", "--outputjson", "--pythonpath", sys.executable, *map(str, files)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        cwd=tmp,
    )
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"pyright did not run:\n{proc.stdout}\n{proc.stderr}")
    found: dict[str, set[int]] = {f.name: set() for f in files}
    for d in report["generalDiagnostics"]:
        if d["severity"] == "error":
            found[Path(d["file"]).name].add(d["range"]["start"]["line"] + 1)
    return found


@pytest.mark.timeout(240)
def test_mypy_strict_accepts_correct_chains_and_rejects_wrong_ones(tmp_path: Path) -> None:
    files = [
        _write(tmp_path, "ok_lib.py", OK),
        _write(tmp_path, "ok_lib_mypy.py", MYPY_ONLY),
        _write(tmp_path, "bad_lib.py", BAD),
    ]
    found = _mypy(tmp_path, files)
    assert found["ok_lib.py"] == set()
    assert found["ok_lib_mypy.py"] == set()
    assert found["bad_lib.py"] == _marked(files[2])


@pytest.mark.timeout(240)
def test_pyright_accepts_correct_chains_and_rejects_wrong_ones(tmp_path: Path) -> None:
    files = [_write(tmp_path, "ok_lib.py", OK), _write(tmp_path, "bad_lib.py", BAD)]
    found = _pyright(tmp_path, files)
    assert found["ok_lib.py"] == set()
    assert found["bad_lib.py"] == _marked(files[1])
