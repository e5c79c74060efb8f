"""Nothing a run uses outlives it: tasks, threads, child processes, file descriptors.

Two hundred runs of every kind (successful, failing, cancelled from outside,
deadlocked, stopped early; with files, thread pools and process pools) in one
event loop: after each, no task of the run is left, and no thread or process
other than the loop's own idle worker threads; after all of them, and the
loop closed, the counts are back where they started and no file was left
for the garbage collector to close.
"""

from __future__ import annotations

import asyncio
import gc
import glob
import os
import threading
import time
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from mimo import DeadlockError, Restart, Stream, Workflow, lib, stream
from mimo.dsl import In, Out
from mimo.lib.parallel import parallel_map

from .helpers import chain


class Boom(Exception):
    """The failure of a failing run."""


def square(x: int) -> int:
    """A per-item function a process pool can pickle."""
    return x * x


def fails_on_3(x: int) -> int:
    if x == 3:
        raise Boom("item 3")
    return x


def number(line: str) -> int:
    return int(line.split()[1])


def slow_square(x: int) -> int:
    time.sleep(0.001)
    return x * x


@stream
async def endless(out: Out[int]) -> None:
    i = 0
    while True:
        await out.push(i)
        i += 1


@stream
async def trickle(out: Out[int]) -> None:
    for i in range(1000):
        await out.push(i)
        await asyncio.sleep(0.001)


@stream
async def take3(inp: In[int], *, into: list[int] | None = None) -> None:
    assert into is not None
    for _ in range(3):
        into.append(await inp.pop())


@stream
async def explode(inp: In[int], out: Out[int]) -> None:
    async for x in inp:
        if x == 5:
            raise Boom("item 5")
        await out.push(x)


async def fail_twice(ins: Any, outs: Any, state: Any) -> None:
    async for x in ins.inp:
        if x in (3, 7) and x not in state:
            state[x] = True
            raise Boom(f"item {x}")
        await outs.out.push(x)


def cycle() -> Workflow:
    async def wait_first(ins: Any, outs: Any, state: Any) -> None:
        x = await ins.i.pop()
        await outs.o.push(x)

    wf = Workflow()
    a = wf.add_stream(Stream(["i"], ["o"], fn=wait_first, name="a"))
    b = wf.add_stream(Stream(["i"], ["o"], fn=wait_first, name="b"))
    a.pipe(b).pipe(a)
    return wf


def scenarios(tmp: Path) -> list[tuple[str, Callable[[], Awaitable[None]]]]:
    """(kind, one run and the check of its outcome)."""
    lines = tmp / "in.txt"
    lines.write_text("".join(f"line {i}\n" for i in range(2000)))

    async def ok() -> None:
        got: list[int] = []
        await (lib.range(50) | lib.map(square) | lib.collect(got)).run_async()
        assert got == [x * x for x in range(50)]

    async def failing() -> None:
        with pytest.raises(Boom, match="item 5"):
            await (lib.range(50) | explode | lib.collect()).run_async()

    async def cancelled() -> None:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.003):
                await (trickle | lib.map(square) | lib.collect()).run_async()

    async def deadlocked() -> None:
        with pytest.raises(DeadlockError, match="'a' waits to pop"):
            await cycle().run_async()

    async def early_stop() -> None:
        got: list[int] = []
        await (endless | lib.map(square) | take3(into=got)).run_async()
        assert got == [0, 1, 4]

    async def files() -> None:
        out = tmp / "out.txt"
        await (lib.file_lines(lines) | lib.map(str.upper) | lib.to_file(out)).run_async()
        assert out.read_text().splitlines()[-1] == "LINE 1999"

    async def files_failing() -> None:
        with pytest.raises(FileNotFoundError, match="missing"):
            await (lib.file_lines(tmp / "missing.txt") | lib.to_file(tmp / "out2.txt")).run_async()
        with pytest.raises(Boom, match="item 3"):
            await (lib.file_lines(lines) | lib.map(number) | lib.map(fails_on_3) | lib.to_file(tmp / "o3")).run_async()

    async def files_cancelled(delay: float) -> None:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(delay):
                await (lib.file_lines(lines) | trickle_map | lib.to_file(tmp / "out4.txt")).run_async()

    async def restarting() -> None:
        got: list[int] = []
        flaky = Stream(["inp"], ["out"], fn=fail_twice, state={}, on_error=Restart(backoff=0))
        await chain(lib.range(20), flaky, lib.collect(got)).run_async()
        assert got == [x for x in range(20) if x not in (3, 7)]

    async def take_from_a_pool() -> None:
        got: list[int] = []
        await (endless | lib.map(slow_square, workers=2) | lib.buffer(4) | lib.take(3) | lib.collect(got)).run_async()
        assert got == [0, 1, 4]

    async def checkpointed() -> None:
        got: list[int] = []
        graph = lib.range(300) | lib.map(square) | lib.collect(got)
        await graph.run_async(checkpoint=tmp / "ok.ckpt", checkpoint_every=0.001)
        assert got == [x * x for x in range(300)]

    async def checkpointed_failing() -> None:
        with pytest.raises(Boom, match="item 5"):
            await (lib.range(50) | explode | lib.collect()).run_async(
                checkpoint=tmp / "bad.ckpt", checkpoint_every=0.001
            )

    async def threads() -> None:
        got: list[int] = []
        await (lib.range(20) | lib.map(slow_square, workers=3) | lib.collect(got)).run_async()
        assert got == [x * x for x in range(20)]

    async def threads_failing() -> None:
        with pytest.raises(Boom, match="item 3"):
            pool = parallel_map(fails_on_3, executor="thread", workers=2)
            await chain(lib.range(20), pool, lib.collect()).run_async()

    async def threads_cancelled() -> None:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.005):
                await (lib.range(1000) | lib.map(slow_square, workers=2) | lib.collect()).run_async()

    async def processes() -> None:
        got: list[int] = []
        await (lib.range(20) | lib.map(square, executor="process", workers=2) | lib.collect(got)).run_async()
        assert got == [x * x for x in range(20)]

    async def processes_failing() -> None:
        with pytest.raises(Boom, match="item 3"):
            pool = parallel_map(fails_on_3, executor="process", workers=2)
            await chain(lib.range(20), pool, lib.collect()).run_async()

    async def processes_cancelled() -> None:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.02):
                await (trickle | lib.map(square, executor="process", workers=2) | lib.collect()).run_async()

    cheap = [
        ("ok", ok),
        ("failing", failing),
        ("cancelled", cancelled),
        ("deadlocked", deadlocked),
        ("early_stop", early_stop),
        ("files", files),
        ("files_failing", files_failing),
        ("files_cancelled_at_open", lambda: files_cancelled(0)),
        ("files_cancelled_mid_run", lambda: files_cancelled(0.002)),
        ("threads", threads),
        ("threads_failing", threads_failing),
        ("threads_cancelled", threads_cancelled),
        ("restarting", restarting),
        ("take_from_a_pool", take_from_a_pool),
        ("checkpointed", checkpointed),
        ("checkpointed_failing", checkpointed_failing),
    ]
    costly = [
        ("processes", processes),
        ("processes_failing", processes_failing),
        ("processes_cancelled", processes_cancelled),
    ]
    # 200 runs: each cheap kind 12 times, each process-pool kind (which forks workers) 2 or 3 times.
    runs = cheap * 12
    runs += (costly * 3)[: 200 - len(runs)]
    assert len(runs) == 200
    return runs


@stream
async def trickle_map(inp: In[str], out: Out[str]) -> None:
    async for line in inp:
        await asyncio.sleep(0)
        await out.push(line)


def _children() -> set[int]:
    pids: set[int] = set()
    for path in glob.glob("/proc/self/task/*/children"):
        try:
            with open(path) as f:
                pids.update(int(p) for p in f.read().split())
        except FileNotFoundError:
            pass  # that thread has just ended
    return pids


def _foreign_threads() -> list[str]:
    # The loop's default executor keeps idle workers ("asyncio_N") for the loop's life.
    main = threading.main_thread()
    return sorted(t.name for t in threading.enumerate() if t is not main and not t.name.startswith("asyncio_"))


def _counts() -> dict[str, Any]:
    gc.collect()
    return {
        "fds": len(os.listdir("/proc/self/fd")),
        "threads": threading.active_count(),
        "children": len(_children()),
    }


@pytest.mark.timeout(60)
def test_two_hundred_runs_of_every_kind_leave_no_task_thread_process_or_file_behind(tmp_path: Path) -> None:
    runs = scenarios(tmp_path)
    before = _counts()
    threads_before = _foreign_threads()
    children_before = _children()
    problems: list[str] = []

    async def main() -> None:
        for kind, run in runs:
            await run()
            me = asyncio.current_task()
            left = [t for t in asyncio.all_tasks() if t is not me]
            if left:
                problems.append(f"{kind}: tasks left running: {left}")
            extra = sorted(set(_foreign_threads()) - set(threads_before))
            if extra:
                problems.append(f"{kind}: threads left running: {extra}")
            kids = _children() - children_before
            if kids:
                problems.append(f"{kind}: child processes left running: {sorted(kids)}")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        # The blocking form too: each run has an event loop of its own.
        for _ in range(5):
            got: list[int] = []
            (lib.range(10) | lib.map(slow_square, workers=2) | lib.collect(got)).run()
            assert got == [x * x for x in range(10)]
            with pytest.raises(Boom, match="item 5"):
                (lib.range(10) | explode | lib.collect()).run()
            with pytest.raises(DeadlockError, match="'b' waits to pop"):
                cycle().run()
        asyncio.run(main())
        after = _counts()
    unclosed = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert problems == []
    assert unclosed == []
    assert after == before
