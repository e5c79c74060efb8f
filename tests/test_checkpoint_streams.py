"""Stock streams that carry items from one item to the next are exactly-once across a resume.

Each test runs a graph checkpointed every few milliseconds, makes it fail
after checkpoints were taken (a source that raises once: a stand-in for a
crash), runs it again over the same checkpoint file, and compares what
came out with an uninterrupted run's: nothing lost, nothing repeated, and
the same order where the stream promises one. The source pauses in the
middle of what the stream under test holds (a half-built batch, an open
window, an unmatched side), so that checkpoints are taken while it holds
something.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mimo import Stream, Workflow, lib
from mimo._store import SQLiteStore

pytestmark = pytest.mark.timeout(30)

EVERY = 0.002  # seconds between checkpoints


class Crash(Exception):
    pass


def _numbers(n: int, crash_at: int | None, pause_every: int = 5, name: str = "numbers") -> Stream:
    """A source of 0..n-1 keeping its position in state; fails once at ``crash_at``."""
    flags: dict[str, bool] = {}

    async def numbers(ins: Any, outs: Any, state: dict[str, Any]) -> None:
        i = state.get("next", 0)
        while i < n:
            if i == crash_at and not flags.get("crashed"):
                flags["crashed"] = True
                raise Crash(f"crash at {i}")
            await outs.n.push(i)
            i += 1
            state["next"] = i
            if i % pause_every == pause_every // 2:
                await asyncio.sleep(0.001)  # in the middle of a batch: checkpoints are taken now

    return Stream(outs=["n"], fn=numbers, name=name)


Build = Callable[[Stream], tuple[Workflow, dict[str, list[Any]]]]


def _chain(*stages: Stream) -> Build:
    """A build for ``source | stages... | collect``."""

    def build(src: Stream) -> tuple[Workflow, dict[str, list[Any]]]:
        got: list[Any] = []
        wf = Workflow(capacity=4)
        step = wf.add_stream(src)
        for s in [*stages, lib.collect(got)]:
            step = step.pipe(s)
        return wf, {"out": got}

    return build


def _resumed(build: Build, db: Path, n: int, crash_at: int, pause_every: int = 5) -> dict[str, list[Any]]:
    wf, outs = build(_numbers(n, crash_at, pause_every))
    with pytest.raises(Crash):
        wf.run(checkpoint=db, checkpoint_every=EVERY)
    saved = SQLiteStore(db).load()
    assert saved is not None and not saved.done and saved.number >= 1, "no checkpoint before the crash"
    wf.run(checkpoint=db, checkpoint_every=EVERY)
    return outs


def _plain(build: Build, n: int) -> dict[str, list[Any]]:
    wf, outs = build(_numbers(n, None))
    wf.run()
    return outs


def _same(build_: Callable[[], Build], tmp_path: Path, n: int = 400, crash_at: int = 300, pause_every: int = 5) -> None:
    got = _resumed(build_(), tmp_path / "run.db", n, crash_at, pause_every)
    want = _plain(build_(), n)
    assert got == want


# -- one input, one output --------------------------------------------------------


def test_batch_keeps_its_half_built_batch(tmp_path: Path) -> None:
    _same(lambda: _chain(lib.batch(7)), tmp_path)


def test_batch_with_a_timeout_loses_and_repeats_nothing(tmp_path: Path) -> None:
    got = _resumed(_chain(lib.batch(7, timeout=0.05)), tmp_path / "run.db", 400, 300)["out"]
    assert [x for b in got for x in b] == list(range(400))
    assert all(1 <= len(b) <= 7 for b in got)


def test_buffer_keeps_what_it_holds(tmp_path: Path) -> None:
    async def slow(x: int) -> int:
        if x % 3 == 0:
            await asyncio.sleep(0.001)
        return x

    _same(lambda: _chain(lib.buffer(16), lib.map(slow)), tmp_path)


@pytest.mark.parametrize("overflow", ["drop_oldest", "drop_newest"])
def test_a_dropping_buffer_repeats_nothing(tmp_path: Path, overflow: Any) -> None:
    got = _resumed(_chain(lib.buffer(4, overflow=overflow)), tmp_path / "run.db", 400, 300)["out"]
    assert got == sorted(set(got))  # in order, no repeats
    assert got[-1] == 399


def test_take_and_skip_count_across_a_resume(tmp_path: Path) -> None:
    _same(lambda: _chain(lib.skip(50), lib.take(320)), tmp_path, crash_at=250)


def test_drop_while_does_not_start_dropping_again(tmp_path: Path) -> None:
    _same(lambda: _chain(lib.drop_while(lambda x: x < 100), lib.map(lambda x: x % 150 > 20)), tmp_path)


def test_drop_while_passes_once_it_has_started(tmp_path: Path) -> None:
    _same(lambda: _chain(lib.drop_while(lambda x: x % 100 != 99)), tmp_path, crash_at=350)


def test_debounce_loses_no_item_it_holds(tmp_path: Path) -> None:
    got = _resumed(_chain(lib.debounce(0.5)), tmp_path / "run.db", 400, 300)["out"]
    # Items come faster than 0.5 s apart: only the last one of the whole run leaves.
    assert got == [399]


# -- parallel forms of map ----------------------------------------------------------


async def _jitter(x: int) -> int:
    await asyncio.sleep(0.002 if x % 7 == 3 else 0)
    return x * x


def _square(x: int) -> int:
    return x * x


async def _expand(x: int) -> list[int]:
    await asyncio.sleep(0.001 if x % 5 == 1 else 0)
    return [x, -x, x * 10]


@pytest.mark.parametrize("workers", [2, 5])
def test_parallel_map_redoes_the_items_in_flight_in_order(tmp_path: Path, workers: int) -> None:
    _same(lambda: _chain(lib.map(_jitter, workers=workers)), tmp_path)


def test_map_in_a_thread_pool_with_chunks_redoes_the_chunks_in_flight(tmp_path: Path) -> None:
    _same(lambda: _chain(lib.map(_square, workers=3, executor="thread", chunk_size=4)), tmp_path)


def test_unordered_parallel_map_loses_and_repeats_nothing(tmp_path: Path) -> None:
    got = _resumed(_chain(lib.map(_jitter, workers=4, ordered=False)), tmp_path / "run.db", 400, 300)["out"]
    assert Counter(got) == Counter(x * x for x in range(400))


def test_parallel_flat_map_redoes_the_items_in_flight(tmp_path: Path) -> None:
    _same(lambda: _chain(lib.flat_map(_expand, workers=3)), tmp_path)


def test_map_with_retry_and_workers_redoes_the_items_in_flight(tmp_path: Path) -> None:
    from mimo import Retry

    _same(lambda: _chain(lib.map(_jitter, workers=3, retry=Retry(attempts=2))), tmp_path)


# -- several inputs or outputs --------------------------------------------------------


def _two_sources(stage: Callable[[], Stream], in_ports: tuple[str, str], outs: tuple[str, ...] = ("out",)) -> Build:
    def build(src: Stream) -> tuple[Workflow, dict[str, list[Any]]]:
        got: dict[str, list[Any]] = {o: [] for o in outs}
        wf = Workflow(capacity=4)
        s = stage()
        step = wf.add_stream(s)
        other = wf.add_stream(lib.from_iterable([f"x{i}" for i in range(400)]))
        wf.add_stream(src).pipe(step, input=in_ports[0])
        other.pipe(step, input=in_ports[1])
        for o in outs:
            step.pipe(wf.add_stream(lib.collect(got[o]), name=f"collect_{o}"), output=o)
        return wf, got

    return build


def test_zip_keeps_the_side_items_it_took(tmp_path: Path) -> None:
    _same(lambda: _two_sources(lambda: lib.zip(2), ("in0", "in1")), tmp_path)


def test_merge_loses_and_repeats_nothing_and_keeps_each_inputs_order(tmp_path: Path) -> None:
    got = _resumed(_two_sources(lambda: lib.merge(2), ("in0", "in1")), tmp_path / "run.db", 400, 300)["out"]
    assert [x for x in got if isinstance(x, int)] == list(range(400))
    assert [x for x in got if isinstance(x, str)] == [f"x{i}" for i in range(400)]


def test_chain_resumes_on_the_input_it_was_reading(tmp_path: Path) -> None:
    _same(lambda: _two_sources(lambda: lib.chain(2), ("in0", "in1")), tmp_path)


def test_join_keeps_the_items_waiting_for_a_partner(tmp_path: Path) -> None:
    def key(x: Any) -> int:
        return int(x[1:]) if isinstance(x, str) else x

    def build(src: Stream) -> tuple[Workflow, dict[str, list[Any]]]:
        # The string side runs ahead: its items wait in the join for their numbers.
        return _two_sources(lambda: lib.join(2, key=key), ("in0", "in1"), ("matched", "unmatched"))(src)

    got = _resumed(build, tmp_path / "run.db", 300, 220)
    assert Counter(got["matched"]) == Counter((i, f"x{i}") for i in range(300))
    assert Counter(got["unmatched"]) == Counter(f"x{i}" for i in range(300, 400))


def test_zip_latest_pushes_one_row_per_item_once_every_input_has_one(tmp_path: Path) -> None:
    got = _resumed(_two_sources(lambda: lib.zip_latest(2), ("in0", "in1")), tmp_path / "run.db", 400, 300)["out"]
    # Each item, once every input has one, makes exactly one row (rows may leave in another order).
    nums = {a for a, _ in got}
    texts = {int(b[1:]) for _, b in got}
    assert nums == set(range(min(nums), 400)) and texts == set(range(min(texts), 400))
    assert len(got) == len(set(got)) == 1 + (399 - min(nums)) + (399 - min(texts))


@pytest.mark.parametrize("kind", ["balance", "broadcast", "partition", "split"])
def test_fan_out_streams_deal_the_same_items_to_the_same_outputs(tmp_path: Path, kind: str) -> None:
    def build_() -> Build:
        def build(src: Stream) -> tuple[Workflow, dict[str, list[Any]]]:
            made = {
                "balance": (lambda: lib.balance(3), ["out0", "out1", "out2"]),
                "broadcast": (lambda: lib.broadcast(2), ["out0", "out1"]),
                "partition": (lambda: lib.partition(lambda x: x % 5, 3), ["out0", "out1", "out2"]),
                "split": (lambda: lib.split(lambda x: x % 3 == 0), ["matched", "unmatched"]),
            }
            stage, outs = made[kind]
            got: dict[str, list[Any]] = {o: [] for o in outs}
            wf = Workflow(capacity=4)
            step = wf.add_stream(src).pipe(stage())
            for o in outs:
                step.pipe(wf.add_stream(lib.collect(got[o]), name=f"collect_{o}"), output=o)
            return wf, got

        return build

    _same(build_, tmp_path)


def test_switch_map_loses_no_sub_stream_it_was_following(tmp_path: Path) -> None:
    async def twice(x: int) -> Any:
        yield x
        yield -x

    got = _resumed(_chain(lib.switch_map(twice)), tmp_path / "run.db", 400, 300)["out"]
    assert got[-2:] == [399, -399]
    assert len(got) == len(set(got))  # nothing repeated


def test_from_async_iterable_resumes_from_its_position(tmp_path: Path) -> None:
    async def numbers() -> Any:
        for i in range(3000):
            yield i
            if i % 10 == 0:
                await asyncio.sleep(0.001)

    crashed: dict[str, bool] = {}

    async def crash_once(x: int) -> int:
        if x == 2000 and not crashed:
            crashed["yes"] = True
            raise Crash("crash at 2000")
        return x

    got: list[int] = []

    def flow() -> Any:
        return lib.from_async_iterable(numbers()) | lib.map(crash_once) | lib.collect(got)

    db = tmp_path / "run.db"
    with pytest.raises(Crash):
        flow().run(checkpoint=db, checkpoint_every=EVERY)
    flow().run(checkpoint=db, checkpoint_every=EVERY)
    assert got == list(range(3000))


# -- windows ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: lib.tumbling(10.0, timestamp=float),
        lambda: lib.sliding(10.0, 4.0, timestamp=float, key=lambda x: x % 2),
        lambda: lib.session(3.0, timestamp=lambda x: float(x + (x // 17) * 5), allowed_lateness=1.0),
    ],
    ids=["tumbling", "sliding", "session"],
)
def test_event_time_windows_keep_their_open_windows(tmp_path: Path, make: Callable[[], Stream]) -> None:
    def build_() -> Build:
        def build(src: Stream) -> tuple[Workflow, dict[str, list[Any]]]:
            got: list[Any] = []
            wf = Workflow(capacity=4)
            wf.add_stream(src).pipe(make(), input="inp").pipe(lib.collect(got), output="out")
            return wf, {"out": got}

        return build

    _same(build_, tmp_path)


def test_processing_time_windows_keep_their_contents(tmp_path: Path) -> None:
    # Which window an item falls in depends on the wall clock; that each item is in one, once, does not.
    got = _resumed(_chain(lib.tumbling(0.01)), tmp_path / "run.db", 400, 300)["out"]
    assert [x for w in got for x in w.items] == list(range(400))


# -- a property over sizes and crash points ---------------------------------------------


def _windows(shape: str, window: int, lateness: int) -> Stream:
    """A window stage in event time: ``shape`` is tumbling, sliding or session; items' times jump now and then."""

    def t(x: int) -> float:
        return float(x + (x // 23) * window)  # gaps longer than a session's

    if shape == "tumbling":
        return lib.tumbling(float(window), timestamp=t, allowed_lateness=float(lateness))
    if shape == "sliding":
        return lib.sliding(float(window), float(max(1, window // 3)), timestamp=t, key=lambda x: x % 3)
    return lib.session(float(window), timestamp=t, allowed_lateness=float(lateness), key=lambda x: x % 2)


@pytest.mark.timeout(120)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    size=st.integers(1, 12),
    shape=st.sampled_from(["tumbling", "sliding", "session"]),
    window=st.integers(1, 30),
    lateness=st.integers(0, 5),
    crash_at=st.integers(20, 230),
    pause_every=st.integers(2, 9),
)
def test_batches_and_windows_after_any_crash_are_an_uninterrupted_runs(
    size: int, shape: str, window: int, lateness: int, crash_at: int, pause_every: int
) -> None:
    def chain() -> Build:
        def build(src: Stream) -> tuple[Workflow, dict[str, list[Any]]]:
            got: list[Any] = []
            wf = Workflow(capacity=3)
            step = wf.add_stream(src).pipe(lib.batch(size)).pipe(lib.unbatch())
            step.pipe(_windows(shape, window, lateness), input="inp").pipe(lib.collect(got), output="out")
            return wf, {"out": got}

        return build

    with tempfile.TemporaryDirectory() as tmp:
        got = _resumed(chain(), Path(tmp) / "run.db", 250, crash_at, pause_every)
    assert got == _plain(chain(), 250)


# -- keyed workers -----------------------------------------------------------------------


def _per_key() -> Stream:
    """Keyed workers counting each key's items in their shared ``state``."""

    async def per_key(ins: Any, outs: Any, state: dict[int, int]) -> None:
        async for x in ins.inp:
            k = x % 5
            state[k] = state.get(k, 0) + 1
            if x % 7 == 0:
                await asyncio.sleep(0.001)  # holding its item while its queue fills
            elif x % 3 == 0:
                await asyncio.sleep(0)  # copies interleave, holding their items
            await outs.out.push((k, state[k], x))

    return Stream(["inp"], ["out"], fn=per_key, workers=3, key=lambda x: x % 5, name="per_key")


@pytest.mark.parametrize("capacity", [0, 1, 4])
def test_keyed_workers_resume_with_each_keys_items_once_and_in_order(tmp_path: Path, capacity: int) -> None:
    def build_() -> Build:
        def build(src: Stream) -> tuple[Workflow, dict[str, list[Any]]]:
            got: list[Any] = []
            wf = Workflow(capacity=capacity)
            wf.add_stream(src).pipe(_per_key()).pipe(lib.collect(got))
            return wf, {"out": got}

        return build

    # A source faster than the copies: their queues are full when checkpoints are taken.
    got = _resumed(build_(), tmp_path / "run.db", 400, 300, pause_every=50)["out"]
    want = _plain(build_(), 400)["out"]
    assert Counter(got) == Counter(want)
    for k in range(5):
        assert [r for r in got if r[0] == k] == [r for r in want if r[0] == k]


def test_keyed_workers_with_two_inputs_resume_exactly_once(tmp_path: Path) -> None:
    async def tag(ins: Any, outs: Any, state: dict[str, int]) -> None:
        for port, label in ((ins.a, "a"), (ins.b, "b")):
            async for x in port:
                state[label] = state.get(label, 0) + 1
                await outs.out.push((label, x, state[label]))

    def build(src: Stream) -> tuple[Workflow, dict[str, list[Any]]]:
        got: list[Any] = []
        wf = Workflow(capacity=2)
        s = wf.add_stream(Stream(["a", "b"], ["out"], fn=tag, workers=2, key=lambda x: x % 3, name="tag"))
        wf.add_stream(src).pipe(s, input="a")
        wf.add_stream(lib.range(300)).pipe(s, input="b")
        s.pipe(lib.collect(got))
        return wf, {"out": got}

    got = _resumed(build, tmp_path / "run.db", 400, 300)["out"]
    assert Counter((label, x) for label, x, _ in got) == Counter(
        [("a", i) for i in range(400)] + [("b", i) for i in range(300)]
    )
    # The copies' shared state counted each item once, across the resume.
    assert max(n for label, _, n in got if label == "a") == 400
    assert max(n for label, _, n in got if label == "b") == 300


# -- stock streams run as several copies ---------------------------------------------------


def test_a_stock_stream_run_as_copies_keeps_each_copys_batch(tmp_path: Path) -> None:
    got = _resumed(_chain(lib.batch(6).with_options(workers=2)), tmp_path / "run.db", 400, 300)["out"]
    assert sorted(x for b in got for x in b) == list(range(400))
    assert all(b == sorted(b) and 1 <= len(b) <= 6 for b in got)


def test_keyed_copies_of_a_stock_stream_push_what_an_uninterrupted_run_does(tmp_path: Path) -> None:
    # Each copy sees its keys' items in order, so its batches are the same in every run.
    _same(lambda: _chain(lib.batch(4).with_options(workers=3, key=lambda x: x % 7)), tmp_path)


def test_distinct_copies_keep_what_each_has_seen_as_without_checkpoints(tmp_path: Path) -> None:
    # Keyed: a value always meets the copy that saw it before, so no value passes twice.
    stage = lib.distinct(lambda x: x % 50).with_options(workers=3, key=lambda x: x % 50)
    got = _resumed(_chain(stage), tmp_path / "run.db", 400, 300)["out"]
    assert sorted(got) == list(range(50))


def test_collect_into_a_deque_ends_with_an_uninterrupted_runs_items(tmp_path: Path) -> None:
    from collections import deque

    kept: deque[int] = deque(maxlen=1000)

    def build(src: Stream) -> tuple[Workflow, dict[str, list[Any]]]:
        wf = Workflow(capacity=4)
        wf.add_stream(src).pipe(lib.map(lambda x: x)).pipe(lib.collect(kept))
        return wf, {}

    _resumed(build, tmp_path / "run.db", 400, 300)
    assert list(kept) == list(range(400)) and kept.maxlen == 1000


@pytest.mark.timeout(120)
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    workers=st.integers(2, 6),
    chunk=st.integers(1, 5),
    ordered=st.booleans(),
    crash_at=st.integers(20, 230),
    pause_every=st.integers(2, 9),
)
def test_parallel_maps_after_any_crash_give_each_result_once(
    workers: int, chunk: int, ordered: bool, crash_at: int, pause_every: int
) -> None:
    def chain() -> Build:
        return _chain(lib.map(_square, workers=workers, executor="thread", chunk_size=chunk, ordered=ordered))

    with tempfile.TemporaryDirectory() as tmp:
        got = _resumed(chain(), Path(tmp) / "run.db", 250, crash_at, pause_every)["out"]
    want = [x * x for x in range(250)]
    assert got == want if ordered else sorted(got) == want


# -- killed for real: SIGKILL at random moments, resumed each time ---------------------------

_KILLED_GRAPH = """
import asyncio, json, sys
from mimo import Stream, Workflow, lib

N = 2000


async def numbers(ins, outs, state):
    i = state.get("next", 0)
    while i < N:
        await outs.n.push(i)
        i += 1
        state["next"] = i
        if i % 10 == 5:
            await asyncio.sleep(0.002)


async def square(x):
    if x % 13 == 0:
        await asyncio.sleep(0.001)
    return x * x


async def per_key(ins, outs, state):
    async for sq, i in ins.inp:
        k = i % 5
        state[k] = state.get(k, 0) + 1
        if i % 7 == 0:
            await asyncio.sleep(0.0005)
        await outs.out.push([k, state[k], i])


def main(db, out, result, plain=False):
    wf = Workflow(capacity=4)
    z = wf.add_stream(lib.zip(2))
    wf.add_stream(Stream(outs=["n"], fn=numbers)).pipe(lib.batch(7)).pipe(lib.unbatch()).pipe(
        lib.map(square, workers=3)
    ).pipe(z, input="in0")
    wf.add_stream(lib.range(N)).pipe(z, input="in1")
    windows = z.pipe(lib.tumbling(50.0, timestamp=lambda t: float(t[1])), input="inp")
    windows.pipe(lib.map(lambda w: f"{w.start:g} {len(w.items)} {sum(s for s, _ in w.items)}"), output="out").pipe(
        lib.to_file(out)
    )
    got = []
    keyed = Stream(["inp"], ["out"], fn=per_key, workers=3, key=lambda t: t[1] % 5)
    z.pipe(keyed).pipe(lib.collect(got))
    if plain:
        wf.run()
    else:
        wf.run(checkpoint=db, checkpoint_every=0.02)
    with open(result, "w") as f:
        json.dump(got, f)


if __name__ == "__main__":
    main(*sys.argv[1:4], plain=len(sys.argv) > 4)
"""


@pytest.mark.timeout(120)
def test_stock_streams_killed_with_sigkill_and_resumed_end_as_an_uninterrupted_run(tmp_path: Path) -> None:
    import json
    import random
    import signal
    import subprocess
    import sys

    script = tmp_path / "graph.py"
    script.write_text(_KILLED_GRAPH)

    def start(*args: str) -> subprocess.Popen[bytes]:
        files = [str(tmp_path / n) for n in ("run.db", "out.txt", "result.json")]
        return subprocess.Popen([sys.executable, str(script), *files, *args], stderr=subprocess.PIPE)

    def last_checkpoint() -> int:
        if not (tmp_path / "run.db").exists():
            return 0
        saved = SQLiteStore(tmp_path / "run.db").load()
        return 0 if saved is None or saved.done else saved.number

    rng = random.Random()
    killed = 0
    resumed_from = []
    while killed < 4:
        resumed_from.append(last_checkpoint())
        proc = start()
        try:
            proc.wait(timeout=rng.uniform(0.3, 1.2))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            killed += 1
            continue
        assert proc.returncode == 0, proc.stderr.read().decode() if proc.stderr else ""
        (tmp_path / "result.json").unlink()  # finished before the kill: marked done, starts afresh
    assert any(resumed_from), resumed_from  # kills landed on runs that resumed from a checkpoint
    proc = start()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    text, got = (tmp_path / "out.txt").read_text(), json.loads((tmp_path / "result.json").read_text())

    proc = start("plain")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    want_text, want = (tmp_path / "out.txt").read_text(), json.loads((tmp_path / "result.json").read_text())
    assert text == want_text
    assert sorted(got) == sorted(want)
    for k in range(5):
        assert [r for r in got if r[0] == k] == [r for r in want if r[0] == k]


@pytest.mark.parametrize(
    "stages",
    [
        lambda: [lib.map(lambda x: x + 1), lib.filter(lambda x: x % 3 != 0)],
        lambda: [lib.flat_map(lambda x: [x, -x]), lib.take_while(lambda x: x < 10_000)],
        lambda: [lib.batch(3), lib.unbatch(), lib.timeout(30.0)],
        lambda: [lib.rate_limit(1e9, burst=100)],
    ],
    ids=["map-filter", "flat_map-take_while", "unbatch-timeout", "rate_limit"],
)
def test_stateless_stock_streams_resume_exactly_once(tmp_path: Path, stages: Callable[[], list[Stream]]) -> None:
    _same(lambda: _chain(*stages()), tmp_path)
