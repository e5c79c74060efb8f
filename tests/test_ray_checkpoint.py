"""Checkpointed runs on Ray: the same cut as in one process, written by the driver, resumed after an actor died.

Ray tests (``-m ray``) run inside a network namespace with only loopback:

    unshare -n sh -c 'ip link set lo up && RAY_USAGE_STATS_ENABLED=0 \\
        python -m pytest -m ray tests/test_ray_checkpoint.py'

Stream code runs in actors, so results come back through ``stream.state``
(``lib.collect``) and files (``lib.to_file``), never through closures.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mimo import Stream, Workflow, lib
from mimo._checkpoint import CheckpointError, fingerprint
from mimo._graph import workers_of
from mimo._store import SQLiteStore
from mimo.executors import RayExecutor, StreamDiedError

N = 3000


@pytest.fixture(scope="module")
def ray_executor() -> Iterator[RayExecutor]:
    """One local Ray for this module, started and stopped by RayExecutor itself."""
    if sorted(name for _, name in socket.if_nameindex()) != ["lo"]:
        pytest.fail("Ray tests must run in a network namespace with only loopback (see this module's docstring)")
    ex = RayExecutor(init_options={"num_cpus": 2, "object_store_memory": 200 << 20})
    with ex:
        yield ex


# -- streams: module level, so that Ray can ship them ---------------------------------


async def _count(ins: Any, outs: Any, state: Any) -> None:
    # Slow enough that checkpoints are taken while items flow; all it carries is in state.
    async for x in ins.inp:
        state["n"] += 1
        if state["n"] % 20 == 0:
            await asyncio.sleep(0.02)
        await outs.out.push(f"{state['n']}:{x}")


def counter() -> Stream:
    return Stream(ins=["inp"], outs=["out"], fn=_count, name="count", state={"n": 0})


async def _tag(ins: Any, outs: Any, state: Any) -> None:
    async for x in ins.inp:
        await outs.out.push(f"{x}!")


def tagger(workers: int = 1) -> Stream:
    s = Stream(ins=["inp"], outs=["out"], fn=_tag, name="tag")
    return s.with_options(workers=workers) if workers > 1 else s


def graph(path: Path, got: list[Any], *, workers: int = 1) -> Workflow:
    """range -> count (stateful) -> tag (maybe several copies) -> to_file and collect (fan-out)."""
    wf = Workflow(capacity=8)
    src = wf.add_stream(lib.range(N))
    count = wf.add_stream(counter())
    tag = wf.add_stream(tagger(workers))
    out = wf.add_stream(lib.to_file(path))
    keep = wf.add_stream(lib.collect(got))
    src.pipe(count).pipe(tag)
    tag.pipe(out)
    tag.pipe(keep)
    return wf


def expected() -> list[str]:
    return [f"{i + 1}:{i}!" for i in range(N)]


def saved_number(db: Path) -> tuple[int, bool] | None:
    with sqlite3.connect(db) as conn:
        try:
            row = conn.execute("SELECT number, done FROM mimo_checkpoint WHERE id = 1").fetchone()
        except sqlite3.OperationalError:
            return None  # not made yet
    return None if row is None else (int(row[0]), bool(row[1]))


def assert_no_actor_left() -> None:
    import ray

    def left() -> list[str]:
        return [a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if a["name"].startswith("mimo-")]

    deadline = time.monotonic() + 10
    while left() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left() == []


def actor_named(part: str) -> Any:
    import ray

    for entry in ray.util.list_named_actors(all_namespaces=True):
        name = entry["name"]
        if name.startswith("mimo-") and name.endswith(part):
            return ray.get_actor(name, namespace=entry["namespace"])
    return None


# -- tests ----------------------------------------------------------------------------


@pytest.mark.ray
@pytest.mark.timeout(120)
def test_a_checkpointed_ray_run_ends_as_a_local_one_and_marks_its_checkpoint_done(
    ray_executor: RayExecutor, tmp_path: Path
) -> None:
    local: list[Any] = []
    graph(tmp_path / "local.txt", local).run()
    got: list[Any] = []
    db = tmp_path / "run.db"
    graph(tmp_path / "ray.txt", got).run(executor=ray_executor, checkpoint=db, checkpoint_every=0.2)
    assert got == local == expected()
    assert (tmp_path / "ray.txt").read_bytes() == (tmp_path / "local.txt").read_bytes()
    saved = saved_number(db)
    assert saved is not None
    number, done = saved
    assert done and number >= 2  # checkpoints were taken while it ran, and the end is marked


@pytest.mark.ray
@pytest.mark.timeout(120)
def test_a_checkpointed_ray_run_with_two_copies_of_a_stage_gives_every_item_once(
    ray_executor: RayExecutor, tmp_path: Path
) -> None:
    got: list[Any] = []
    db = tmp_path / "run.db"
    graph(tmp_path / "out.txt", got, workers=2).run(executor=ray_executor, checkpoint=db, checkpoint_every=0.2)
    assert sorted(got) == sorted(expected())
    assert sorted((tmp_path / "out.txt").read_text().splitlines()) == sorted(expected())
    saved = saved_number(db)
    assert saved is not None and saved[1] and saved[0] >= 2


async def _run_until_killed(wf: Workflow, ex: RayExecutor, db: Path, victim: str) -> BaseException:
    """Run ``wf`` checkpointed; once two checkpoints are saved, kill ``victim``'s actor; the run's error."""
    import ray

    run = asyncio.ensure_future(wf.run_async(executor=ex, checkpoint=db, checkpoint_every=0.2))
    deadline = time.monotonic() + 60
    while True:
        assert not run.done(), "the run ended before it could be killed"
        assert time.monotonic() < deadline, "no checkpoint was saved in time"
        saved = await asyncio.to_thread(saved_number, db)
        if saved is not None and saved[0] >= 2:
            break
        await asyncio.sleep(0.05)
    actor = actor_named(victim)
    assert actor is not None
    ray.kill(actor, no_restart=True)
    try:
        await run
    except BaseException as exc:
        return exc
    raise AssertionError("the run went on after its actor was killed")


@pytest.mark.ray
@pytest.mark.timeout(180)
def test_a_ray_run_whose_actor_died_resumes_from_its_checkpoint_exactly_once(
    ray_executor: RayExecutor, tmp_path: Path
) -> None:
    db = tmp_path / "run.db"
    out = tmp_path / "out.txt"
    first: list[Any] = []
    error = asyncio.run(_run_until_killed(graph(out, first), ray_executor, db, "-count-0"))
    assert isinstance(error, StreamDiedError), repr(error)
    assert error.stream == "count"
    saved = saved_number(db)
    assert saved is not None and not saved[1]  # an unfinished checkpoint is left to resume from
    assert len(first) < N

    # Another graph over the same file is refused, and leaves the checkpoint as it was.
    other = Workflow()
    other.add_stream(lib.range(5)).pipe(other.add_stream(lib.collect()))
    with pytest.raises(CheckpointError, match="was taken by a different graph"):
        other.run(executor=ray_executor, checkpoint=db)
    assert saved_number(db) == saved

    got: list[Any] = []
    report = graph(out, got).run(executor=ray_executor, checkpoint=db, checkpoint_every=0.2)
    assert report["count"].items_in["inp"] < N  # it went on from the checkpoint, not from the start
    assert got == expected()  # the collected list: every item once, in order
    assert out.read_text() == "".join(f"{line}\n" for line in expected())  # the file: byte for byte
    after = saved_number(db)
    assert after is not None and after[1] and after[0] > saved[0]
    assert_no_actor_left()


@pytest.mark.ray
@pytest.mark.timeout(180)
def test_a_ray_run_whose_sink_died_resumes_without_writing_a_line_twice(
    ray_executor: RayExecutor, tmp_path: Path
) -> None:
    db = tmp_path / "run.db"
    out = tmp_path / "out.txt"
    error = asyncio.run(_run_until_killed(graph(out, []), ray_executor, db, "-to_file-0"))
    assert isinstance(error, StreamDiedError), repr(error)
    got: list[Any] = []
    report = graph(out, got).run(executor=ray_executor, checkpoint=db, checkpoint_every=0.2)
    assert report["to_file"].items_in["inp"] < N
    assert out.read_text() == "".join(f"{line}\n" for line in expected())
    assert got == expected()


@pytest.mark.ray
@pytest.mark.timeout(120)
def test_a_dsl_chain_runs_checkpointed_on_ray(ray_executor: RayExecutor, tmp_path: Path) -> None:
    got: list[int] = []
    db = tmp_path / "run.db"
    (lib.range(500) | lib.collect(got)).run(executor=ray_executor, checkpoint=db, checkpoint_every=0.05)
    assert got == list(range(500))
    saved = saved_number(db)
    assert saved is not None and saved[1]


async def _keep_a_lambda(ins: Any, outs: Any, state: Any) -> None:
    state["f"] = lambda x: x  # Ray ships it (cloudpickle); a checkpoint (pickle) cannot keep it
    async for x in ins.inp:
        await outs.out.push(x)


@pytest.mark.ray
@pytest.mark.timeout(120)
def test_a_state_that_cannot_be_pickled_fails_the_ray_run_naming_its_stream(
    ray_executor: RayExecutor, tmp_path: Path
) -> None:
    wf = Workflow(capacity=8)
    src = wf.add_stream(lib.range(N))
    odd = wf.add_stream(Stream(ins=["inp"], outs=["out"], fn=_keep_a_lambda, name="odd"))
    src.pipe(odd).pipe(wf.add_stream(counter())).pipe(wf.add_stream(lib.collect()))
    with pytest.raises(CheckpointError, match="stream 'odd': its state cannot be saved in a checkpoint"):
        wf.run(executor=ray_executor, checkpoint=tmp_path / "run.db", checkpoint_every=0.1)
    assert_no_actor_left()


async def _die_once_checkpointed(ins: Any, outs: Any, state: Any) -> None:
    # Its process exits (as a crash would) once two checkpoints are in the store, the first time only.
    import os

    seen = 0
    async for x in ins.inp:
        seen += 1
        if seen % 50 == 0 and not os.path.exists(state["mark"]):
            saved = saved_number(Path(state["db"]))
            if saved is not None and saved[0] >= 2:
                Path(state["mark"]).write_text("died")
                os._exit(1)
        await outs.out.push(x)


@pytest.mark.ray
@pytest.mark.timeout(180)
def test_a_ray_run_whose_actor_process_exits_resumes_exactly_once(ray_executor: RayExecutor, tmp_path: Path) -> None:
    db = tmp_path / "run.db"
    out = tmp_path / "out.txt"

    def flow(got: list[Any]) -> Workflow:
        wf = Workflow(capacity=8)
        src = wf.add_stream(lib.range(N))
        mark = {"mark": str(tmp_path / "died"), "db": str(db)}
        dies = Stream(ins=["inp"], outs=["out"], fn=_die_once_checkpointed, name="fragile", state=mark)
        fragile = wf.add_stream(dies)
        tag = wf.add_stream(tagger())
        src.pipe(wf.add_stream(counter())).pipe(fragile).pipe(tag)
        tag.pipe(wf.add_stream(lib.to_file(out)))
        tag.pipe(wf.add_stream(lib.collect(got)))
        return wf

    with pytest.raises(StreamDiedError, match="stream 'fragile' died"):
        flow([]).run(executor=ray_executor, checkpoint=db, checkpoint_every=0.2)
    assert (tmp_path / "died").exists()
    got: list[Any] = []
    flow(got).run(executor=ray_executor, checkpoint=db, checkpoint_every=0.2)
    assert got == expected()
    assert out.read_text() == "".join(f"{line}\n" for line in expected())


_DRIVER = """
import sys
sys.path[:0] = [{root!r}, {tests!r}]
from pathlib import Path
from mimo.executors import RayExecutor
from test_ray_checkpoint import graph
ex = RayExecutor(init_options={{"num_cpus": 2, "_temp_dir": sys.argv[3]}})
graph(Path(sys.argv[2]), []).run(executor=ex, checkpoint=sys.argv[1], checkpoint_every=0.2)
"""


def _uses(pid: str, path: str) -> bool:
    """True if the process names ``path`` in its command line or holds a file under it open."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if path.encode() in f.read():
                return True
        for fd in os.listdir(f"/proc/{pid}/fd"):
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(path):
                return True
    except OSError:
        pass  # gone meanwhile, or not ours to look at
    return False


def _kill_processes_of(ray_dir: str, wait_s: float = 30.0) -> int:
    """SIGKILL every process of the Ray whose files are under ``ray_dir``; how many there were.

    Ray starts its workers (the actors) outside the driver's process group; they log into the
    session directory, so their open files name it.
    """
    import signal

    found: set[int] = set()
    deadline = time.monotonic() + wait_s
    while True:
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid() and _uses(p, ray_dir)]
        if not pids:
            return len(found)
        found.update(pids)
        assert time.monotonic() < deadline, f"processes of the killed driver's Ray still alive: {pids}"
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)


@pytest.mark.ray
@pytest.mark.timeout(240)
def test_a_ray_run_whose_driver_was_killed_resumes_exactly_once(ray_executor: RayExecutor, tmp_path: Path) -> None:
    import shutil
    import signal
    import subprocess
    import sys
    import tempfile

    db = tmp_path / "run.db"
    out = tmp_path / "out.txt"
    script = tmp_path / "driver.py"
    here = Path(__file__).resolve().parent
    script.write_text(_DRIVER.format(root=str(here.parent), tests=str(here)))
    # Short (Ray's socket paths are limited), and removed here: a killed driver leaves its Ray's files.
    ray_dir = tempfile.mkdtemp(prefix="mimo-ck-", dir="/tmp")
    # Its own process group, so that the local Ray it starts goes with it.
    driver = subprocess.Popen(
        [sys.executable, str(script), str(db), str(out), ray_dir],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert driver.poll() is None, driver.stderr.read().decode()[-3000:] if driver.stderr else ""
            assert time.monotonic() < deadline, "the driver saved no checkpoint in time"
            saved = saved_number(db) if db.exists() else None
            if saved is not None and saved[0] >= 2:
                break
            time.sleep(0.05)
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait(30)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait(30)
        if driver.stderr is not None:
            driver.stderr.close()
        # Ray starts its workers (the actors) outside the driver's group: they would go on for a
        # few seconds, writing the file the resumed run cuts back. A machine that dies takes them
        # with it, so they go too, before anything resumes.
        _kill_processes_of(ray_dir)
        shutil.rmtree(ray_dir, ignore_errors=True)
    saved = saved_number(db)
    assert saved is not None and not saved[1]
    got: list[Any] = []
    report = graph(out, got).run(executor=ray_executor, checkpoint=db, checkpoint_every=0.2)
    assert report["count"].items_in["inp"] < N
    assert got == expected()
    assert out.read_text() == "".join(f"{line}\n" for line in expected())


# -- refused before Ray starts (no -m ray needed) ----------------------------------------


def test_a_checkpoint_of_another_graph_is_refused_on_ray(tmp_path: Path) -> None:
    db = tmp_path / "run.db"
    store = SQLiteStore(db)
    store.save("not this graph", 3, b"")
    store.close()
    with pytest.raises(CheckpointError, match="was taken by a different graph"):
        graph(tmp_path / "out.txt", []).run(executor=RayExecutor(), checkpoint=db)


def test_a_checkpoint_taken_in_one_process_is_refused_on_ray_saying_where_it_resumes(tmp_path: Path) -> None:
    wf = graph(tmp_path / "out.txt", [])
    db = tmp_path / "run.db"
    store = SQLiteStore(db)
    store.save(fingerprint(wf.graph, workers_of), 3, b"")
    store.close()
    with pytest.raises(CheckpointError, match="taken by this graph run in one process"):
        wf.run(executor=RayExecutor(), checkpoint=db)


# -- the cut across processes, without Ray: hosts joined by a transport that reorders calls ------


def _reordering(host: Any, rng: Any) -> Any:
    def send(port: str, link: int, seq: int, items: list[Any], end: bool) -> asyncio.Future[bool]:
        async def later() -> bool:
            await asyncio.sleep(rng.random() * 0.002)
            return await host.deliver(port, link, seq, items, end)  # type: ignore[no-any-return]

        return asyncio.ensure_future(later())

    return send


def _hosts(saved: dict[str, Any] | None, rng: Any, got: list[Any]) -> dict[str, Any]:
    """range a, range b (fan-in) -> count -> collect, each a StreamHost with its part in the cut."""
    from mimo.executors._cut import CopyCut
    from mimo.executors._edges import Target
    from mimo.executors._host import StreamHost, Wiring

    def host(stream: Any, label: str, producers: dict[str, int]) -> Any:
        h = StreamHost(stream, label, capacity=3, producers=producers, fed={}, return_state=True)
        h.cut = CopyCut(h, label, producers)
        if saved is not None and label in saved:
            snap, finished, channels = saved[label]
            h.cut.resume((snap, finished, channels))
        return h

    sink = host(lib.collect(got), "collect", {"inp": 1})
    count = host(counter(), "count", {"inp": 2})
    a = host(lib.range(300), "a", {})
    b = host(lib.range(1000, 1300), "b", {})
    for link, src in enumerate((a, b)):
        src.connect(
            {"out": Wiring({0: [Target(_reordering(count, rng), "inp", link, "count")]})},
            credits=2,
            batch_size=4,
            linger_s=0.001,
        )
    count.connect(
        {"out": Wiring({1: [Target(_reordering(sink, rng), "inp", 0, "collect")]})},
        credits=2,
        batch_size=4,
        linger_s=0.001,
    )
    sink.connect({}, credits=2, batch_size=4, linger_s=0.001)
    return {"a": a, "b": b, "count": count, "collect": sink}


async def _crash_after_checkpoints(seed: int, checkpoints: int) -> dict[str, Any]:
    import random

    rng = random.Random(seed)
    hosts = _hosts(None, rng, [])
    tasks = [asyncio.ensure_future(h.run()) for h in hosts.values()]
    parts: dict[str, Any] = {}
    for k in range(1, checkpoints + 1):
        await asyncio.sleep(rng.random() * 0.05)
        got = await asyncio.wait_for(asyncio.gather(*(h.cut.request(k) for h in hosts.values())), 10)
        parts = dict(zip(hosts, got))
    for t in tasks:
        t.cancel()  # the crash
    await asyncio.gather(*tasks, return_exceptions=True)
    return parts


async def _resume(parts: dict[str, Any], seed: int) -> list[Any]:
    import random

    hosts = _hosts(parts, random.Random(seed), [])
    outcomes = await asyncio.wait_for(asyncio.gather(*(h.run() for h in hosts.values())), 20)
    for o in outcomes:
        assert o.error is None, o.traceback
    return hosts["collect"].stream.state  # type: ignore[no-any-return]


@pytest.mark.parametrize("seed", range(8))
def test_a_cut_of_hosts_joined_by_a_reordering_transport_resumes_exactly_once(seed: int) -> None:
    import pickle

    parts = asyncio.run(_crash_after_checkpoints(seed, checkpoints=1 + seed % 3))
    snap, finished, _ = parts["count"]
    assert not finished and 0 < pickle.loads(snap)[0]["n"] < 600  # cut in the middle of the run
    got = asyncio.run(_resume(parts, seed))
    # Every source item once, and counted once: the counter runs 1, 2, 3, ... without a gap or a repeat.
    assert [int(s.split(":")[0]) for s in got] == list(range(1, 601))
    assert sorted(int(s.split(":")[1]) for s in got) == [*range(300), *range(1000, 1300)]


def test_a_checkpoint_taken_on_ray_is_refused_in_one_process_saying_where_it_resumes(tmp_path: Path) -> None:
    from mimo.executors._cut import ray_fingerprint

    wf = graph(tmp_path / "out.txt", [])
    db = tmp_path / "run.db"
    store = SQLiteStore(db)
    store.save(ray_fingerprint(wf.graph), 3, b"")
    store.close()
    with pytest.raises(CheckpointError, match=r"taken by this graph run on Ray \(executor=RayExecutor"):
        wf.run(checkpoint=db)
