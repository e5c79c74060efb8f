"""Checkpointed runs: the store, barriers that streams never see, resuming, exactly-once stock sinks."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

import mimo
from mimo import Stream, Workflow, lib
from mimo._checkpoint import CheckpointError
from mimo._store import CheckpointStore, SQLiteStore, open_store

pytestmark = pytest.mark.timeout(20)


class Crash(Exception):
    pass


def _numbers(n: int, crash_at: int | None = None, pause_every: int = 20) -> Stream:
    """A source of 0..n-1 keeping its position in state; fails once at ``crash_at`` (a stand-in for a kill)."""

    async def numbers(ins: Any, outs: Any, state: dict[str, Any]) -> None:
        i = state.get("next", 0)
        while i < n:
            if i == crash_at and not flags.get("crashed"):
                flags["crashed"] = True
                raise Crash(f"crash at {i}")
            await outs.n.push(i)
            i += 1
            state["next"] = i
            if i % pause_every == 0:
                await asyncio.sleep(0.001)  # time for checkpoints to be taken

    flags: dict[str, bool] = {}
    return Stream(outs=["n"], fn=numbers)


def _pipeline(out: Path, got: list[str], crash_at: int | None) -> Workflow:
    wf = Workflow(capacity=4)
    src = wf.add_stream(_numbers(600, crash_at))
    lab = src.pipe(lib.map(lambda x: f"line {x}"))
    lab.pipe(lib.to_file(out))
    lab.pipe(lib.collect(got))
    return wf


def test_a_run_that_failed_resumes_from_its_checkpoint_with_exactly_once_file_and_list(tmp_path: Path) -> None:
    db, out = tmp_path / "run.db", tmp_path / "out.txt"
    got: list[str] = []
    wf = _pipeline(out, got, crash_at=450)
    with pytest.raises(Crash, match="crash at 450"):
        wf.run(checkpoint=db, checkpoint_every=0.005)
    # What the failed run left: a checkpoint (not done) and a file cut off somewhere.
    saved = SQLiteStore(db).load()
    assert saved is not None and not saved.done and saved.number >= 1
    assert len(out.read_text().splitlines()) <= 450
    wf.run(checkpoint=db, checkpoint_every=0.005)
    expected = [f"line {i}" for i in range(600)]
    assert out.read_text() == "".join(f"{x}\n" for x in expected)
    # The list held what the first run added up to the checkpoint; the resumed run restored it.
    assert got == expected
    done = SQLiteStore(db).load()
    assert done is not None and done.done


def test_a_finished_runs_checkpoint_is_done_and_the_next_run_starts_afresh(tmp_path: Path) -> None:
    db, out = tmp_path / "run.db", tmp_path / "out.txt"
    _pipeline(out, [], crash_at=None).run(checkpoint=db, checkpoint_every=0.005)
    done = SQLiteStore(db).load()
    assert done is not None and done.done
    # The same graph again: resumed, its source would start at 600 and push nothing.
    got: list[str] = []
    report = _pipeline(out, got, crash_at=None).run(checkpoint=db, checkpoint_every=0.005)
    assert report["numbers"].items_out == {"n": 600}
    assert len(got) == 600
    assert len(out.read_text().splitlines()) == 600


def test_a_checkpoint_of_another_graph_is_refused(tmp_path: Path) -> None:
    db, out = tmp_path / "run.db", tmp_path / "out.txt"
    with pytest.raises(Crash, match="crash at 300"):
        _pipeline(out, [], crash_at=300).run(checkpoint=db, checkpoint_every=0.005)
    other = lib.range(10) | lib.collect()
    with pytest.raises(CheckpointError, match="taken by a different graph"):
        other.run(checkpoint=db)


def test_a_stream_whose_state_cannot_be_pickled_fails_the_first_checkpoint_naming_it(tmp_path: Path) -> None:
    async def keeps_a_lock(ins: Any, outs: Any, state: dict[str, Any]) -> None:
        state["lock"] = threading.Lock()
        async for _ in ins.n:
            await asyncio.sleep(0)

    wf = Workflow()
    wf.add_stream(_numbers(100_000)).pipe(Stream(["n"], fn=keeps_a_lock))
    with pytest.raises(CheckpointError, match="stream 'keeps_a_lock': its state cannot be saved"):
        wf.run(checkpoint=tmp_path / "run.db", checkpoint_every=0.01)


@pytest.mark.parametrize("capacity", [0, 2])
def test_streams_never_see_barriers(tmp_path: Path, capacity: int) -> None:
    # Every way of reading: pop, pop_many, peek, pop_nowait, async for; with a fan-in and two workers.
    seen: list[Any] = []

    async def reader(ins: Any, outs: Any) -> None:
        while True:
            try:
                first = await ins.n.peek()
                assert first == await ins.n.pop()
                seen.append(first)
                seen.extend(await ins.n.pop_many(3))
                try:
                    seen.append(ins.n.pop_nowait())
                except mimo.WouldBlock:
                    pass
            except mimo.EndOfStream:
                return

    async def relay(ins: Any, outs: Any) -> None:
        async for x in ins.n:
            await outs.n.push(x)

    wf = Workflow(capacity=capacity)
    src = wf.add_stream(_numbers(2000, pause_every=10))
    sink = wf.add_stream(Stream(["n"], fn=reader))
    src.pipe(Stream(["n"], ["n"], fn=relay, workers=2)).pipe(sink)
    src.pipe(Stream(["n"], ["n"], fn=relay, name="other")).pipe(sink)
    report = wf.run(checkpoint=tmp_path / "run.db", checkpoint_every=0.002)
    assert sorted(seen) == sorted(list(range(2000)) * 2)
    assert report["reader"].items_in == {"n": 4000}
    assert SQLiteStore(tmp_path / "run.db").load() is not None


@pytest.mark.parametrize("kind", ["range", "from_iterable", "file_lines"])
def test_stock_sources_resume_from_their_positions(tmp_path: Path, kind: str) -> None:
    text = tmp_path / "in.txt"
    text.write_text("".join(f"{i}\n" for i in range(3000)))
    made = {"range": lib.range(3000), "from_iterable": lib.from_iterable(list(range(3000)))}
    source = made[kind] if kind in made else lib.file_lines(text)
    db = tmp_path / "run.db"
    got: list[Any] = []
    state = {"fail": True}

    async def flaky(ins: Any, outs: Any) -> None:
        async for x in ins.inp:
            if int(x) == 2500 and state["fail"]:
                state["fail"] = False
                raise Crash("flaky")
            if int(x) % 50 == 0:
                await asyncio.sleep(0.001)
            await outs.out.push(int(x))

    wf = Workflow(capacity=4)
    wf.add_stream(source).pipe(Stream(["inp"], ["out"], fn=flaky)).pipe(lib.collect(got))
    with pytest.raises(Crash, match="flaky"):
        wf.run(checkpoint=db, checkpoint_every=0.002)
    saved = SQLiteStore(db).load()
    assert saved is not None and saved.number >= 1
    wf.run(checkpoint=db, checkpoint_every=0.002)
    assert got == list(range(3000))


def test_the_store_keeps_the_latest_checkpoint_and_is_a_protocol(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.db")
    assert isinstance(store, SQLiteStore) and isinstance(store, CheckpointStore)
    assert store.load() is None
    store.save("f", 1, b"one")
    store.save("f", 2, b"two")
    saved = store.load()
    assert saved is not None and (saved.number, saved.data, saved.done) == (2, b"two", False)
    store.mark_done()
    saved = store.load()
    assert saved is not None and saved.done
    store.close()
    count = sqlite3.connect(tmp_path / "s.db").execute("SELECT COUNT(*) FROM mimo_checkpoint").fetchone()[0]
    assert count == 1
    with pytest.raises(TypeError, match="checkpoint must be a file name"):
        open_store(42)


def test_checkpoint_arguments_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="checkpoint_every must be a number of seconds > 0"):
        (lib.range(3) | lib.collect()).run(checkpoint=tmp_path / "a.db", checkpoint_every=0)
    wf = Workflow()
    step = wf.add_stream(lib.collect())
    step.push(1)
    with pytest.raises(ValueError, match="cannot resume items fed with step.push"):
        wf.run(checkpoint=tmp_path / "b.db")


def test_a_run_without_checkpoint_has_no_checkpoint_machinery() -> None:
    from mimo._channel import Channel
    from mimo._checkpoint import position

    seen: list[Any] = []

    async def look(ins: Any, outs: Any) -> None:
        seen.append((type(ins.n._ch), type(ins.n._ch._buf), position()))
        async for _ in ins.n:
            pass

    wf = Workflow()
    wf.add_stream(_numbers(5)).pipe(Stream(["n"], fn=look))
    wf.run()
    assert seen == [(Channel, __import__("collections").deque, None)]


def test_mimo_run_checkpoint_resumes_a_failed_run(tmp_path: Path) -> None:
    import subprocess
    import sys
    import textwrap

    (tmp_path / "flow.py").write_text(
        textwrap.dedent(
            """
            import asyncio, os
            from mimo import lib

            async def slow(x):
                if x == 1500 and not os.path.exists("failed"):
                    open("failed", "w").close()
                    raise RuntimeError("the first run dies here")
                if x % 50 == 0:
                    await asyncio.sleep(0.001)
                return x

            flow = lib.range(2000) | lib.map(slow) | lib.to_file("out.txt")
            """
        )
    )

    def run() -> subprocess.CompletedProcess[str]:
        args = ["run", "flow.py", "-q", "--checkpoint", "run.db", "--checkpoint-every", "0.005"]
        return subprocess.run([sys.executable, "-m", "mimo", *args], cwd=tmp_path, capture_output=True, text=True)

    first = run()
    assert first.returncode == 1 and "the first run dies here" in first.stderr
    saved = SQLiteStore(tmp_path / "run.db").load()
    assert saved is not None and not saved.done and saved.number >= 1
    second = run()
    assert second.returncode == 0, second.stderr
    assert (tmp_path / "out.txt").read_text() == "".join(f"{i}\n" for i in range(2000))


@pytest.mark.parametrize("kind", ["scan", "reduce", "distinct"])
def test_stateful_stock_stages_resume_with_their_state(tmp_path: Path, kind: str) -> None:
    import operator

    stages = {
        "scan": lambda: lib.scan(operator.add, 0),
        "reduce": lambda: lib.reduce(operator.add, 0),
        "distinct": lambda: lib.distinct(lambda x: x % 1000),
    }
    expected = {
        "scan": list(__import__("itertools").accumulate(range(3000))),
        "reduce": [sum(range(3000))],
        "distinct": list(range(1000)),
    }
    got: list[Any] = []
    wf = Workflow(capacity=4)
    wf.add_stream(_numbers(3000, crash_at=2500, pause_every=10)).pipe(stages[kind]()).pipe(lib.collect(got))
    db = tmp_path / "run.db"
    with pytest.raises(Crash, match="crash at 2500"):
        wf.run(checkpoint=db, checkpoint_every=0.002)
    wf.run(checkpoint=db, checkpoint_every=0.002)
    assert got == expected[kind]


@pytest.mark.parametrize("capacity", [0, 3])
def test_a_stage_with_two_copies_and_a_fan_in_counts_exactly_once_across_a_resume(
    tmp_path: Path, capacity: int
) -> None:
    async def square(ins: Any, outs: Any) -> None:
        async for x in ins.n:
            if x % 7 == 0:
                await asyncio.sleep(0)  # the copies interleave
            await outs.n.push(x * x)

    async def count(ins: Any, outs: Any, state: dict[str, int]) -> None:
        async for x in ins.n:
            state["count"] = state.get("count", 0) + 1
            state["sum"] = state.get("sum", 0) + x

    def build() -> tuple[Workflow, Stream]:
        wf = Workflow(capacity=capacity)
        src = wf.add_stream(_numbers(2000, crash_at=1700, pause_every=10))
        counter = Stream(["n"], fn=count)
        c = wf.add_stream(counter)
        src.pipe(Stream(["n"], ["n"], fn=square, workers=2)).pipe(c)
        src.pipe(lib.map(lambda x: -x)).pipe(c)
        return wf, counter

    wf, counter = build()
    db = tmp_path / "run.db"
    with pytest.raises(Crash, match="crash at 1700"):
        wf.run(checkpoint=db, checkpoint_every=0.002)
    wf.run(checkpoint=db, checkpoint_every=0.002)
    assert counter.state == {"count": 4000, "sum": sum(i * i - i for i in range(2000))}


def test_a_dsl_chain_runs_checkpointed_with_run_async(tmp_path: Path) -> None:
    got: list[int] = []
    chain = lib.range(100) | lib.collect(got)
    asyncio.run(chain.run_async(checkpoint=tmp_path / "run.db", checkpoint_every=0.01))
    assert got == list(range(100))
    saved = SQLiteStore(tmp_path / "run.db").load()
    assert saved is not None and saved.done


def test_a_checkpointed_run_on_an_executor_without_checkpoints_is_refused(tmp_path: Path) -> None:
    class Elsewhere:
        async def run_async(self, graph: Any, **kw: Any) -> Any:
            raise AssertionError("not called")

    with pytest.raises(NotImplementedError, match="takes no checkpoints: its run_async has no checkpoint parameter"):
        (lib.range(3) | lib.collect()).run(checkpoint=tmp_path / "a.db", executor=Elsewhere())  # type: ignore[arg-type]
