"""file_lines and to_file: the file they open is closed however the run ends, even while still opening."""

from __future__ import annotations

import asyncio
import gc
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mimo import In, Out, lib, stream
from mimo.testing import run_workflow, run_workflow_async

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/fd") or not hasattr(os, "mkfifo"), reason="Linux only")


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _reading_fifo(fifo: Path) -> Any:
    return lib.file_lines(fifo) | lib.collect()


def _writing_fifo(fifo: Path) -> Any:
    return lib.range(3) | lib.to_file(fifo)


@pytest.mark.parametrize(
    ("make", "other_end"),
    [
        pytest.param(_reading_fifo, os.O_WRONLY | os.O_NONBLOCK, id="file_lines"),
        pytest.param(_writing_fifo, os.O_RDONLY | os.O_NONBLOCK, id="to_file"),
    ],
)
@pytest.mark.timeout(10)
def test_a_run_cancelled_while_the_file_is_opening_closes_it_once_open(
    tmp_path: Path, make: Callable[[Path], Any], other_end: int
) -> None:
    # Opening a FIFO blocks (in the worker thread) until its other end is opened.
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)

    async def main() -> int:
        before = _open_fds()
        run = asyncio.ensure_future(run_workflow_async(make(fifo), timeout=None))
        await asyncio.sleep(0.1)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        # Let the thread's open() finish now that the run is gone.
        fd = os.open(fifo, other_end)
        try:
            for _ in range(100):
                await asyncio.sleep(0.01)
                if _open_fds() == before + 1:
                    break
            return _open_fds() - 1 - before
        finally:
            os.close(fd)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert asyncio.run(main()) == 0
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


@stream
async def _fail_after_two(inp: In[str]) -> None:
    await inp.pop()
    await inp.pop()
    raise RuntimeError("boom")


@pytest.mark.timeout(10)
def test_a_failing_run_closes_the_file_being_read(tmp_path: Path) -> None:
    path = tmp_path / "lines.txt"
    path.write_text("".join(f"{i}\n" for i in range(10_000)))
    before = _open_fds()
    with pytest.raises(RuntimeError, match="boom"):
        run_workflow(lib.file_lines(path) | _fail_after_two, timeout=5)
    assert _open_fds() == before


@pytest.mark.timeout(10)
def test_a_failing_run_closes_the_file_being_written_with_what_it_received(tmp_path: Path) -> None:
    @stream
    async def two_then_fail(out: Out[str]) -> None:
        await out.push("a")
        await out.push("b")
        await asyncio.sleep(0.05)  # the sink writes them before the run fails
        raise RuntimeError("boom")

    path = tmp_path / "out.txt"
    before = _open_fds()
    with pytest.raises(RuntimeError, match="boom"):
        run_workflow(two_then_fail | lib.to_file(path), timeout=5)
    assert _open_fds() == before
    assert path.read_text() == "a\nb\n"
