"""parallel_map: per-item functions N at a time, in the loop, threads or processes."""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

from mimo import Stream, Workflow
from mimo.lib.parallel import parallel_map
from mimo.testing import run_stream, run_workflow


def square(x: int) -> int:
    return x * x


def pid_of(x: int) -> int:
    return os.getpid()


def fail_on_three(x: int) -> int:
    if x == 3:
        raise ValueError(f"bad item {x}")
    return x


def sleep_then_echo(x: float) -> float:
    time.sleep(x)
    return x


def test_results_leave_in_input_order_although_they_finish_out_of_order():
    async def slow_first(x: int) -> int:
        await asyncio.sleep(0.05 if x % 3 == 0 else 0.001)
        return x

    out = run_stream(parallel_map(slow_first, workers=4), {"inp": range(20)})
    assert out == {"out": list(range(20))}


def test_unordered_results_leave_as_they_finish():
    async def one_slow(x: int) -> int:
        await asyncio.sleep(0.2 if x == 0 else 0.001)
        return x

    out = run_stream(parallel_map(one_slow, workers=4, ordered=False), {"inp": range(6)})
    assert sorted(out["out"]) == list(range(6))
    assert out["out"][-1] == 0


@pytest.mark.parametrize("ordered", [True, False])
def test_at_most_workers_items_are_in_flight_and_the_window_is_used(ordered):
    running = 0
    peak = 0

    async def work(x: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.005)
        running -= 1
        return x

    out = run_stream(parallel_map(work, workers=3, ordered=ordered), {"inp": range(30)})
    assert sorted(out["out"]) == list(range(30))
    assert peak == 3


def test_a_plain_function_runs_in_threads_by_default():
    threads: set[str] = set()
    lock = threading.Lock()

    def work(x: int) -> int:
        with lock:
            threads.add(threading.current_thread().name)
        time.sleep(0.002)
        return x + 1

    out = run_stream(parallel_map(work, workers=2), {"inp": range(10)})
    assert out == {"out": list(range(1, 11))}
    assert threading.main_thread().name not in threads
    assert 1 <= len(threads) <= 2


def test_a_thread_pool_runs_at_most_workers_at_once():
    running = 0
    peak = 0
    lock = threading.Lock()

    def work(x: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.005)
        with lock:
            running -= 1
        return x

    out = run_stream(parallel_map(work, workers=2, executor="thread"), {"inp": range(12)})
    assert out == {"out": list(range(12))}
    assert peak == 2


@pytest.mark.timeout(30)
def test_a_process_pool_runs_the_function_in_other_processes_and_ends_with_the_stream():
    out = run_stream(parallel_map(pid_of, workers=2, executor="process"), {"inp": range(8)}, timeout=20)
    assert len(out["out"]) == 8
    assert os.getpid() not in out["out"]
    assert multiprocessing.active_children() == []


@pytest.mark.timeout(30)
def test_a_process_pool_keeps_input_order():
    out = run_stream(parallel_map(square, workers=2, executor="process"), {"inp": range(50)}, timeout=20)
    assert out == {"out": [x * x for x in range(50)]}


@pytest.mark.parametrize("executor", [None, "thread", "process"])
@pytest.mark.timeout(30)
def test_an_error_in_the_function_fails_the_stream_with_that_exception(executor):
    stream = parallel_map(fail_on_three, workers=2, executor=executor, name="checker")
    with pytest.raises(ValueError, match="bad item 3") as info:
        run_stream(stream, {"inp": range(10)}, timeout=20)
    assert info.value.mimo_stream == "checker"  # type: ignore[attr-defined]
    assert multiprocessing.active_children() == []


def test_an_error_in_an_async_function_fails_the_stream():
    async def boom(x: int) -> int:
        if x == 2:
            raise KeyError("two")
        return x

    with pytest.raises(KeyError, match="two"):
        run_stream(parallel_map(boom, workers=2), {"inp": range(5)})


def test_a_given_executor_is_used_and_left_running():
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        out = run_stream(parallel_map(square, workers=2, executor=pool), {"inp": range(5)})
        assert out == {"out": [0, 1, 4, 9, 16]}
        assert pool.submit(square, 7).result() == 49


@pytest.mark.parametrize("chunk_size", [1, 4])
def test_back_pressure_from_a_slow_consumer_reaches_the_source(chunk_size):
    # The source records how far it got each time the sink takes an item.
    pushed = 0
    lead: list[int] = []

    async def produce(ins: Any, outs: Any, state: Any) -> None:
        nonlocal pushed
        for i in range(60):
            await outs.out.push(i)
            pushed += 1

    async def slow_sink(ins: Any, outs: Any, state: Any) -> None:
        taken = 0
        async for _ in ins.inp:
            taken += 1
            lead.append(pushed - taken)
            await asyncio.sleep(0.002)

    wf = Workflow(capacity=2)
    src = wf.add_stream(Stream(outs=["out"], fn=produce, name="src"))
    mapper = parallel_map(square, workers=3, executor="thread", chunk_size=chunk_size)
    src.pipe(mapper).pipe(Stream(ins=["inp"], fn=slow_sink, name="sink"))
    report = run_workflow(wf)
    assert report["sink"].items_in == {"inp": 60}
    # Two queues of 2, 3 tasks of chunk_size in the window, one in the map's hands, one in the source's.
    assert max(lead) <= 2 + 2 + 3 * chunk_size + 1 + 1


def test_outside_cancellation_stops_the_work_and_the_pool():
    started = threading.Event()

    def slow(x: int) -> int:
        started.set()
        time.sleep(0.05)
        return x

    async def main() -> None:
        wf = Workflow()
        src = wf.add_stream(Stream(outs=["out"], fn=_endless, name="src"))
        src.pipe(parallel_map(slow, workers=2, executor="thread", name="pool")).pipe(Stream(ins=["inp"]))
        task = asyncio.ensure_future(wf.run_async())
        while not started.is_set():
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    before = {t.name for t in threading.enumerate()}
    asyncio.run(main())
    left = {t.name for t in threading.enumerate()} - before
    assert not [name for name in left if name.startswith("pool")]


async def _endless(ins: Any, outs: Any, state: Any) -> None:
    i = 0
    while True:
        await outs.out.push(i)
        i += 1


def test_a_function_a_process_pool_cannot_pickle_is_refused_when_the_stream_is_made():
    with pytest.raises(TypeError, match="pickle"):
        parallel_map(lambda x: x, executor="process")


def test_an_async_function_with_a_pool_is_refused():
    async def f(x: int) -> int:
        return x

    with pytest.raises(TypeError, match="async"):
        parallel_map(f, executor="thread")


@pytest.mark.parametrize("workers", [0, -1, 1.5, True])
def test_workers_must_be_a_positive_int(workers):
    with pytest.raises(ValueError, match="workers"):
        parallel_map(square, workers=workers)


def test_an_unknown_executor_name_is_refused():
    with pytest.raises(ValueError, match="executor"):
        parallel_map(square, executor="gpu")  # type: ignore[arg-type]


def test_the_stream_is_named_after_the_function_and_has_one_input_and_one_output():
    s = parallel_map(square, in_port="n", out_port="sq")
    assert s.name == "square"
    assert s.ins == ("n",) and s.outs == ("sq",)
    assert run_stream(s, {"n": [3]}) == {"sq": [9]}


def test_a_chunk_takes_only_the_items_already_waiting():
    # The source sends the next item only once the previous result is out:
    # a chunk that waited to be filled would never be sent.
    answered = asyncio.Event()

    async def ping(ins: Any, outs: Any, state: Any) -> None:
        for i in range(5):
            answered.clear()
            await outs.out.push(i)
            await answered.wait()

    async def pong(ins: Any, outs: Any, state: Any) -> None:
        async for x in ins.inp:
            state.append(x)
            answered.set()

    wf = Workflow()
    sink = Stream(ins=["inp"], fn=pong, name="pong", state=[])
    mapper = parallel_map(square, workers=2, executor="thread", chunk_size=8)
    wf.add_stream(Stream(outs=["out"], fn=ping, name="ping")).pipe(mapper).pipe(sink)
    run_workflow(wf, timeout=5)
    assert sink.state == [0, 1, 4, 9, 16]


def test_the_items_of_a_chunk_run_together_in_one_pool_task():
    ran_on: dict[int, str] = {}

    def record(x: int) -> int:
        ran_on[x] = threading.current_thread().name
        time.sleep(0.002)
        return x

    # Fed items are all waiting when the stream starts, so chunks are full.
    out = run_stream(parallel_map(record, workers=2, executor="thread", chunk_size=5), {"inp": range(10)})
    assert out == {"out": list(range(10))}
    assert len({ran_on[x] for x in range(5)}) == 1
    assert len({ran_on[x] for x in range(5, 10)}) == 1


@pytest.mark.parametrize("chunk_size", [0, 1.5])
def test_chunk_size_must_be_a_positive_int(chunk_size):
    with pytest.raises(ValueError, match="chunk_size"):
        parallel_map(square, executor="thread", chunk_size=chunk_size)


def test_an_async_function_takes_one_item_per_task():
    async def f(x: int) -> int:
        return x

    with pytest.raises(ValueError, match="chunk_size"):
        parallel_map(f, chunk_size=4)


_BROKEN_POOL_SCRIPT = """
import concurrent.futures, os, sys, time
from mimo import lib
from mimo.testing import run_stream

class Unpicklable(Exception):
    def __init__(self, item, why):  # two arguments: pickled with one, so unpickling fails
        super().__init__(f"{item}: {why}")

def fail(x):
    with open(sys.argv[1], "a") as f:
        f.write(f"{os.getpid()} ")
    time.sleep(0.01)
    raise Unpicklable(x, "no")

def run(make):
    try:
        run_stream(make(), {"inp": range(200)}, timeout=20)
    except concurrent.futures.BrokenExecutor as exc:
        print("failed:", type(exc).__name__, "|", " ".join(getattr(exc, "__notes__", [])), flush=True)

if __name__ == "__main__":
    sys.setswitchinterval(1e-6)  # let the loop thread run between the pool thread's steps
    # More tasks in flight than the pool runs at once: some are still cancellable.
    for _ in range(4):
        with concurrent.futures.ProcessPoolExecutor(2) as pool:
            run(lambda: lib.map(fail, workers=32, executor=pool, chunk_size=1, name="given"))
    run(lambda: lib.map(fail, workers=4, executor="process", chunk_size=1, name="own"))
    print("main done", flush=True)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return "\nState:\tZ" not in f.read()
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="counts processes through /proc")
@pytest.mark.timeout(60)
def test_a_pool_broken_by_an_unpicklable_exception_fails_the_run_and_leaves_no_worker(tmp_path):
    # CPython 3.11 (gh-107219): cancelling a process pool's futures from the loop while its
    # manager thread fails them kills that thread, orphans the workers and hangs the exit.
    script = tmp_path / "broken_pool.py"
    script.write_text(_BROKEN_POOL_SCRIPT)
    pids_file = tmp_path / "pids"
    try:
        done = subprocess.run([sys.executable, str(script), str(pids_file)], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the interpreter did not exit: {exc.stdout!r} {exc.stderr!r}")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 6, done.stdout
    for line, stream in zip(lines, ["given"] * 4 + ["own"], strict=False):
        assert line.startswith(f"failed: BrokenProcessPool | parallel_map {stream!r}: its pool broke"), line
    assert lines[-1] == "main done"
    assert "InvalidStateError" not in done.stderr
    pids = {int(p) for p in pids_file.read_text().split()}
    assert pids, "no worker ever ran"
    assert [p for p in pids if _alive(p)] == []


@pytest.mark.parametrize("early", ["first item", "no item"])
@pytest.mark.timeout(10)
def test_a_copy_of_a_multi_worker_stream_that_ends_first_loses_none_of_its_siblings_items(early):
    # Copies share the input and the output: one ending must neither close the output
    # under its siblings nor take items it will never handle.
    n = 60

    async def work(ins: Any, outs: Any, state: Any) -> None:
        if early == "no item" and not state:
            state.append("quitter")
            return  # this copy ends before taking anything
        async for x in ins.inp:
            await outs.out.push(x)
            if early == "first item" and not state:
                state.append("quitter")
                return  # this copy ends after its first item; the others carry on
            await asyncio.sleep(0.001)

    got: list[int] = []
    wf = Workflow(capacity=4)
    src = wf.add_stream(Stream(outs=["out"], fn=_numbers(n), name="src"))
    step = src.pipe(Stream(ins=["inp"], outs=["out"], fn=work, name="work", state=[], workers=3))
    step.pipe(Stream(ins=["inp"], fn=_into(got), name="sink"))
    run_workflow(wf, timeout=5)
    assert sorted(got) == list(range(n))


def _numbers(n: int) -> Any:
    async def fn(ins: Any, outs: Any, state: Any) -> None:
        for i in range(n):
            await outs.out.push(i)

    return fn


def _into(bucket: list[Any]) -> Any:
    async def fn(ins: Any, outs: Any, state: Any) -> None:
        async for x in ins.inp:
            bucket.append(x)

    return fn
