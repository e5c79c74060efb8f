"""The runtime's promises, checked in one process and on Ray alike.

Tests taking the ``executor`` fixture run twice: in the event loop (always)
and on Ray (only with ``-m ray``, inside a network namespace that has nothing
but loopback; see ``.ci/run``):

    unshare -n sh -c 'ip link set lo up && RAY_USAGE_STATS_ENABLED=0 \\
        python -m pytest -m ray tests/test_ray.py'

Ray starts once per session; the two-node test starts a cluster of its own
(``ray start --head`` and ``ray start --address``, stopped by process group,
never ``ray stop``) and drives it from a subprocess. Stream code runs in
other processes on Ray, so these tests collect results in ``stream.state`` (which comes back to the
driver) and mark ``finally`` blocks with files, never in closures.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mimo import In, Out, Stream, Workflow, lib, stream
from mimo.executors import RayExecutor

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="session")
def ray_session() -> Iterator[RayExecutor]:
    """One local Ray for the whole session, started and stopped by RayExecutor itself."""
    interfaces = sorted(name for _, name in socket.if_nameindex())
    if interfaces != ["lo"]:
        pytest.fail(
            "Ray tests must run in a network namespace with only loopback (Ray probes outside "
            f"addresses at start-up), but this one has {interfaces}. Run them as: unshare -n sh -c "
            "'ip link set lo up && RAY_USAGE_STATS_ENABLED=0 python -m pytest -m ray tests/test_ray.py'"
        )
    import ray

    assert not ray.is_initialized()
    ex = RayExecutor(init_options={"num_cpus": 2, "object_store_memory": 200 << 20, "resources": {"mimo_test": 4}})
    with ex:
        temp = ex._temp_dir
        assert ray.is_initialized() and temp is not None and os.listdir(temp)
        yield ex
    assert not ray.is_initialized()
    assert not os.path.exists(temp)


@pytest.fixture(params=["local", pytest.param("ray", marks=pytest.mark.ray)])
def executor(request: pytest.FixtureRequest) -> RayExecutor | None:
    """None for a run in the event loop, or a RayExecutor on the session's Ray."""
    if request.param == "local":
        return None
    return request.getfixturevalue("ray_session")  # type: ignore[no-any-return]


def ray_with(**kwargs: Any) -> RayExecutor:
    """Another executor on the session's Ray, with other settings."""
    return RayExecutor(**kwargs)


def leftover_actors() -> list[str]:
    import ray

    names = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)]
    return [n for n in names if n.startswith("mimo-")]


def assert_no_actor_left(executor: RayExecutor | None) -> None:
    if executor is None:
        return
    deadline = time.monotonic() + 10
    while leftover_actors() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert leftover_actors() == []


# -- streams used below: module level, so that Ray can ship them -------------


def numbers(n: int, name: str = "numbers", port: str = "out") -> Stream:
    async def fn(ins: Any, outs: Any, state: Any) -> None:
        for i in range(state["n"]):
            await outs[port].push(i)

    return Stream(outs=[port], fn=fn, name=name, state={"n": n})


def collector(name: str = "sink", port: str = "inp") -> Stream:
    async def fn(ins: Any, outs: Any, state: Any) -> None:
        async for item in ins[port]:
            state.append(item)

    return Stream(ins=[port], fn=fn, name=name, state=[])


async def double(ins: Any, outs: Any, state: Any) -> None:
    async for x in ins.inp:
        await outs.out.push(2 * x)


async def endless(ins: Any, outs: Any, state: Any) -> None:
    i = 0
    Path(state["mark"] + ".started").write_text("source started")
    try:
        while True:
            await outs.out.push(i)
            i += 1
    finally:
        Path(state["mark"]).write_text("source finally ran")


async def drain_marked(ins: Any, outs: Any, state: Any) -> None:
    try:
        async for _ in ins.inp:
            await asyncio.sleep(0)
    finally:
        Path(state["mark"]).write_text("sink finally ran")


def run(wf: Workflow, executor: RayExecutor | None, **kwargs: Any) -> Any:
    return wf.run(executor=executor, **kwargs)


# -- semantics ---------------------------------------------------------------


def test_a_chain_delivers_every_item_in_order(executor):
    wf = Workflow(capacity=4)
    sink = collector()
    wf.add_stream(numbers(500)).pipe(Stream(["inp"], ["out"], fn=double, name="double")).pipe(sink)
    report = run(wf, executor)
    assert sink.state == [2 * i for i in range(500)]
    assert report["double"].items_in == {"inp": 500} and report["double"].items_out == {"out": 500}
    assert_no_actor_left(executor)


def test_the_report_has_the_same_figures_as_a_local_run(executor):
    def build() -> Workflow:
        wf = Workflow(capacity=3)
        a = wf.add_stream(numbers(40, name="a"))
        b = wf.add_stream(numbers(7, name="b"))
        m = wf.add_stream(Stream(["inp"], ["out"], fn=double, name="double", workers=2))
        a.pipe(m)
        b.pipe(m)
        m.pipe(collector())
        return wf

    def figures(report: Any) -> dict[str, Any]:
        return {s.name: (s.items_in, s.items_out, s.workers, s.done, s.buffered) for s in report}

    assert figures(run(build(), executor)) == figures(build().run())


def test_fan_in_ends_after_every_producer_has_ended(executor):
    wf = Workflow(capacity=2)
    sink = wf.add_stream(collector())
    wf.add_stream(numbers(30, name="a")).pipe(sink)
    wf.add_stream(numbers(50, name="b")).pipe(sink)
    run(wf, executor)
    assert sorted(sink.stream.state) == sorted(list(range(30)) + list(range(50)))


def test_fan_out_gives_every_consumer_every_item_in_order(executor):
    wf = Workflow(capacity=2)
    src = wf.add_stream(numbers(200))
    left, right = collector("left"), collector("right")
    src.pipe(left)
    src.pipe(right)
    report = run(wf, executor)
    assert left.state == list(range(200)) and right.state == list(range(200))
    assert report["numbers"].items_out == {"out": 200}


def test_end_of_stream_ends_a_pop_loop_cleanly(executor):
    async def pop_loop(ins: Any, outs: Any, state: Any) -> None:
        while True:
            state.append(await ins.inp.pop())

    wf = Workflow()
    sink = Stream(ins=["inp"], fn=pop_loop, name="popper", state=[])
    wf.add_stream(numbers(20)).pipe(sink)
    run(wf, executor)
    assert sink.state == list(range(20))


def test_a_consumer_that_stops_early_stops_an_endless_producer_quietly(executor, tmp_path):
    async def take_five(ins: Any, outs: Any, state: Any) -> None:
        for _ in range(5):
            state.append(await ins.inp.pop())

    wf = Workflow(capacity=2)
    sink = Stream(ins=["inp"], fn=take_five, name="five", state=[])
    src = Stream(outs=["out"], fn=endless, name="endless", state={"mark": str(tmp_path / "src")})
    wf.add_stream(src).pipe(sink)
    report = run(wf, executor)
    assert sink.state == [0, 1, 2, 3, 4]
    assert report["five"].items_in == {"inp": 5}
    assert (tmp_path / "src").exists()
    assert_no_actor_left(executor)


def test_fed_items_reach_their_input(executor):
    wf = Workflow()
    step = wf.add_stream(Stream(["inp"], ["out"], fn=double, name="double"))
    sink = collector()
    step.pipe(sink)
    for i in range(5):
        step.push(i)
    run(wf, executor)
    assert sink.state == [0, 2, 4, 6, 8]


def test_workers_share_the_input_and_every_item_is_handled_once(executor):
    wf = Workflow(capacity=2)
    sink = collector()
    wf.add_stream(numbers(300)).pipe(Stream(["inp"], ["out"], fn=double, name="double", workers=3)).pipe(sink)
    report = run(wf, executor)
    assert sorted(sink.state) == [2 * i for i in range(300)]
    assert report["double"].workers == 3
    assert report["double"].items_in == {"inp": 300}
    assert_no_actor_left(executor)


def test_capacity_zero_hands_items_over_one_by_one(executor):
    wf = Workflow(capacity=0)
    sink = collector()
    wf.add_stream(numbers(50)).pipe(Stream(["inp"], ["out"], fn=double, name="double")).pipe(sink)
    run(wf, executor)
    assert sink.state == [2 * i for i in range(50)]


@pytest.mark.ray
def test_a_stream_ray_cannot_ship_is_refused_naming_it(ray_session):
    import threading

    wf = Workflow()
    wf.add_stream(numbers(3)).pipe(Stream(ins=["inp"], name="locked", state={"lock": threading.Lock()}))
    with pytest.raises(TypeError, match="'locked'"):
        wf.run(executor=ray_session)
    assert_no_actor_left(ray_session)


def _cannot_load() -> Stream:
    raise ImportError("this stream's code is not installed here")


class Unloadable(Stream):
    IN = ["inp"]

    def __reduce__(self) -> Any:
        return (_cannot_load, ())


@pytest.mark.ray
def test_a_stream_that_cannot_load_on_its_actor_fails_the_run_naming_it(ray_session):
    wf = Workflow()
    wf.add_stream(numbers(3)).pipe(Unloadable(name="unloadable"))
    with pytest.raises(Exception, match="not installed here") as info:
        wf.run(executor=ray_session)
    assert info.value.mimo_stream == "unloadable"  # type: ignore[attr-defined]
    assert_no_actor_left(ray_session)


# -- back-pressure -----------------------------------------------------------


async def timed_source(ins: Any, outs: Any, state: Any) -> None:
    for i in range(state["n"]):
        await outs.out.push(i)
        state["pushed"].append(time.monotonic())


async def slow_timed_sink(ins: Any, outs: Any, state: Any) -> None:
    async for _ in ins.inp:
        state.append(time.monotonic())
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("setting", ["local", pytest.param("ray", marks=pytest.mark.ray)])
def test_a_producer_stays_within_the_bound_ahead_of_a_slow_consumer(setting, request):
    capacity, batch = 2, 3
    if setting == "ray":
        request.getfixturevalue("ray_session")
        executor: RayExecutor | None = ray_with(batch_size=batch, linger_s=0.001)
        # Per consumer: the batch being filled, `capacity` batches in flight, its own queue.
        bound = (capacity + 1) * batch + capacity
    else:
        executor = None
        bound = capacity
    src = Stream(outs=["out"], fn=timed_source, name="src", state={"n": 60, "pushed": []})
    sink = Stream(ins=["inp"], fn=slow_timed_sink, name="sink", state=[])
    wf = Workflow(capacity=capacity)
    wf.add_stream(src).pipe(sink)
    report = run(wf, executor)
    pushed, popped = src.state["pushed"], sink.state
    assert len(pushed) == len(popped) == 60
    # When a push completes, how many items were ahead of the consumer? (+1: the one in its hands)
    lead = max(i + 1 - sum(1 for t in popped if t <= done) for i, done in enumerate(pushed))
    assert lead <= bound + 1
    assert lead >= capacity  # the producer did run ahead: the bound is what held it
    assert report["src"].blocked_s > 0.1


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise LookupError(field)


async def big_source(ins: Any, outs: Any, state: Any) -> None:
    state["start_mib"] = _status_mib("VmRSS")
    for i in range(state["n"]):
        await outs.out.push(bytes([i % 256]) * state["size"])
        state["pushed"].append(time.monotonic())
    state["peak_mib"] = _status_mib("VmHWM")


async def big_relay(ins: Any, outs: Any, state: Any) -> None:
    state["start_mib"] = _status_mib("VmRSS")
    async for x in ins.inp:
        await outs.out.push(x)
    state["peak_mib"] = _status_mib("VmHWM")


async def big_sink(ins: Any, outs: Any, state: Any) -> None:
    state["start_mib"] = _status_mib("VmRSS")
    async for x in ins.inp:
        state["got"].append((x[0], len(x), time.monotonic()))
        await asyncio.sleep(state["delay"])
    state["peak_mib"] = _status_mib("VmHWM")


@pytest.mark.ray
def test_large_items_keep_every_actor_within_the_byte_bound_and_the_producer_blocks(ray_session):
    """300 items of 1 MiB with the default settings: without byte bounds they went as one batch of 300 MiB."""
    n, size = 300, 1 << 20
    src = Stream(outs=["out"], fn=big_source, name="blobs", state={"n": n, "size": size, "pushed": []})
    mid = Stream(["inp"], ["out"], fn=big_relay, name="relay", state={})
    sink = Stream(ins=["inp"], fn=big_sink, name="sink", state={"got": [], "delay": 0})
    wf = Workflow()
    wf.add_stream(src).pipe(mid).pipe(sink)
    report = wf.run(executor=ray_with())
    assert [(b, length) for b, length, _ in sink.state["got"]] == [(i % 256, size) for i in range(n)]
    growth = {s.name: s.state["peak_mib"] - s.state["start_mib"] for s in (src, mid, sink)}
    # The relay holds its queue of 64 items, a link's 8 MiB in flight each way, and one batch.
    assert all(g < 200 for g in growth.values()), growth
    assert report["blobs"].blocked_s > 0


def a_quarter_mebibyte(item: Any) -> int:
    return 256 << 10


@pytest.mark.ray
@pytest.mark.parametrize("sized", ["measured", "declared"])
def test_a_producer_of_large_items_stays_within_the_byte_bound_ahead_of_a_slow_consumer(ray_session, sized):
    capacity = 2
    # Items of 256 KiB, or of 1 byte that a sizeof of the user's own says are 256 KiB.
    size, sizeof = (256 << 10, {}) if sized == "measured" else (1, {"sizeof": a_quarter_mebibyte})
    src = Stream(outs=["out"], fn=big_source, name="src", state={"n": 40, "size": size, "pushed": []})
    sink = Stream(ins=["inp"], fn=big_sink, name="sink", state={"got": [], "delay": 0.01})
    wf = Workflow(capacity=capacity)
    wf.add_stream(src).pipe(sink)
    # Batches of 2 items (512 KiB), 2 of them in flight (1 MiB): 1000 items and 2 credits would let all 40 go.
    run(wf, ray_with(batch_bytes=512 << 10, link_bytes=1 << 20, linger_s=0.001, **sizeof))
    pushed, popped = src.state["pushed"], [t for _, _, t in sink.state["got"]]
    assert len(pushed) == len(popped) == 40
    lead = max(i + 1 - sum(1 for t in popped if t <= done) for i, done in enumerate(pushed))
    # The batch being filled (2), the link's bytes in flight (4), the consumer's queue (2), one in its hands.
    assert capacity <= lead <= 2 + 4 + capacity + 1


# -- failure and cancellation -------------------------------------------------


async def fail_at_ten(ins: Any, outs: Any, state: Any) -> None:
    async for x in ins.inp:
        if x == 10:
            raise ValueError(f"cannot take {x}")
        await outs.out.push(x)


def test_a_failing_stream_fails_the_run_with_its_own_exception_and_name(executor, tmp_path):
    wf = Workflow(capacity=2)
    src = Stream(outs=["out"], fn=endless, name="endless", state={"mark": str(tmp_path / "src")})
    sink = Stream(ins=["inp"], fn=drain_marked, name="sink", state={"mark": str(tmp_path / "sink")})
    wf.add_stream(src).pipe(Stream(["inp"], ["out"], fn=fail_at_ten, name="checker")).pipe(sink)
    with pytest.raises(ValueError, match="cannot take 10") as info:
        run(wf, executor)
    assert type(info.value) is ValueError
    assert info.value.mimo_stream == "checker"  # type: ignore[attr-defined]
    assert "in mimo stream 'checker'" in info.value.__notes__
    # Every other stream was cancelled, and its finally block ran.
    assert (tmp_path / "src").exists() and (tmp_path / "sink").exists()
    assert_no_actor_left(executor)


def test_outside_cancellation_tears_the_graph_down(executor, tmp_path):
    wf = Workflow(capacity=2)
    src = Stream(outs=["out"], fn=endless, name="endless", state={"mark": str(tmp_path / "src")})
    sink = Stream(ins=["inp"], fn=drain_marked, name="sink", state={"mark": str(tmp_path / "sink")})
    wf.add_stream(src).pipe(sink)

    async def main() -> None:
        task = asyncio.ensure_future(wf.run_async(executor=executor))
        # Wait until items flow, then cancel from outside.
        deadline = time.monotonic() + 30
        while not (tmp_path / "src.started").exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert (tmp_path / "src").exists() and (tmp_path / "sink").exists()
    assert_no_actor_left(executor)


class TwoPartError(Exception):
    def __init__(self, what: str, why: str) -> None:
        super().__init__(f"{what}: {why}")  # so it pickles but cannot be unpickled


async def raise_two_part(ins: Any, outs: Any, state: Any) -> None:
    raise TwoPartError("disk", "full")


@pytest.mark.ray
def test_an_exception_that_cannot_cross_processes_still_fails_the_run_naming_it(ray_session):
    wf = Workflow()
    wf.add_stream(Stream(fn=raise_two_part, name="writer"))
    with pytest.raises(RuntimeError, match="TwoPartError: disk: full") as info:
        wf.run(executor=ray_session)
    assert info.value.mimo_stream == "writer"  # type: ignore[attr-defined]


@pytest.mark.ray
def test_a_stream_whose_process_dies_fails_the_run_naming_it(ray_session):
    async def die(ins: Any, outs: Any, state: Any) -> None:
        async for x in ins.inp:
            if x == 3:
                os._exit(1)

    from mimo.executors import StreamDiedError

    wf = Workflow(capacity=2)
    wf.add_stream(numbers(100_000)).pipe(Stream(ins=["inp"], fn=die, name="fragile"))
    # Whether the driver or the sender notices first, the stream that died is blamed, alone.
    with pytest.raises(StreamDiedError, match=r"stream 'fragile' died: its actor on node 127\.0\.0\.1") as info:
        wf.run(executor=ray_with(batch_size=10))
    assert info.value.mimo_stream == "fragile"  # type: ignore[attr-defined]
    assert info.value.stream == "fragile" and info.value.node
    assert_no_actor_left(ray_session)


async def paced(ins: Any, outs: Any, state: Any) -> None:
    for i in range(state["n"]):
        await outs.out.push(i)
        await asyncio.sleep(0.01)


async def fail_once_flagged(ins: Any, outs: Any, state: Any) -> None:
    while not Path(state["flag"]).exists():
        await asyncio.sleep(0.02)
    raise ValueError("the alarm went off")


def kill_first_pid_soon(pids: Path, then: Path | None = None) -> Any:
    """A started thread: SIGKILLs the first process to write its pid into ``pids`` (2 s on, marks ``then``)."""
    import signal
    import threading

    def kill() -> None:
        deadline = time.monotonic() + 30
        while not any(pids.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)  # mid-run: the source goes on for about 1.5 s
        os.kill(int(next(pids.iterdir()).name), signal.SIGKILL)
        if then is not None:
            time.sleep(2)  # the driver has seen the death by then, and is backing off
            then.write_text("killed")

    thread = threading.Thread(target=kill)
    thread.start()
    return thread


async def double_and_tell_pid(ins: Any, outs: Any, state: Any) -> None:
    (Path(state["dir"]) / str(os.getpid())).write_text("started")
    async for x in ins.inp:
        await outs.out.push(2 * x)


@pytest.mark.ray
@pytest.mark.timeout(60)
@pytest.mark.parametrize("restart", [True, False], ids=["restart", "stop"])
def test_a_stream_whose_actor_is_killed_is_restarted_under_restart_and_fails_the_run_without(
    ray_session, tmp_path, restart
):
    from mimo import Restart
    from mimo.executors import StreamDiedError

    pids = tmp_path / "pids"
    pids.mkdir()
    policy: dict[str, Any] = {"on_error": Restart(backoff=0.01)} if restart else {}
    wf = Workflow(capacity=2)
    middle = Stream(["inp"], ["out"], fn=double_and_tell_pid, name="fragile", state={"dir": str(pids)}, **policy)
    sink = collector()
    wf.add_stream(Stream(outs=["out"], fn=paced, name="numbers", state={"n": 150})).pipe(middle).pipe(sink)

    killer = kill_first_pid_soon(pids)
    try:
        if not restart:
            with pytest.raises(StreamDiedError, match=r"stream 'fragile' died: its actor on node 127\.0\.0\.1"):
                wf.run(executor=ray_with(batch_size=5))
            assert_no_actor_left(ray_session)
            return
        report = wf.run(executor=ray_with(batch_size=5))
    finally:
        killer.join()
    assert len(list(pids.iterdir())) == 2  # a second actor, in another process
    assert report["fragile"].restarts == 1
    assert report["fragile"].restart_causes[0].startswith("StreamDiedError: stream 'fragile' died")
    # What was in flight to and in the dead actor is lost; the rest arrives once, in order, to the end.
    assert sink.state[-1] == 2 * 149
    assert sink.state == sorted(set(sink.state)) and len(sink.state) > 75
    assert_no_actor_left(ray_session)


@pytest.mark.ray
@pytest.mark.timeout(60)
def test_one_killed_copy_of_two_is_made_again_and_wired_where_it_was(ray_session, tmp_path):
    from mimo import Restart

    pids = tmp_path / "pids"
    pids.mkdir()
    wf = Workflow(capacity=2)
    middle = Stream(
        ["inp"],
        ["out"],
        fn=double_and_tell_pid,
        name="fragile",
        state={"dir": str(pids)},
        workers=2,
        on_error=Restart(backoff=0.01),
    )
    sink = collector()
    wf.add_stream(Stream(outs=["out"], fn=paced, name="numbers", state={"n": 150})).pipe(middle).pipe(sink)
    killer = kill_first_pid_soon(pids)
    try:
        report = wf.run(executor=ray_with(batch_size=5))
    finally:
        killer.join()
    assert len(list(pids.iterdir())) == 3
    assert report["fragile"].restarts == 1 and report["fragile"].workers == 2
    assert report["fragile"].restart_causes[0].startswith("StreamDiedError: stream 'fragile[")
    assert 2 * 149 in sink.state and len(sink.state) == len(set(sink.state)) > 75
    assert_no_actor_left(ray_session)


@pytest.mark.ray
@pytest.mark.timeout(60)
def test_a_run_failing_while_a_dead_actor_waits_to_be_made_again_fails_with_that_error_alone(ray_session, tmp_path):
    from mimo import Restart

    pids = tmp_path / "pids"
    pids.mkdir()
    killed = tmp_path / "killed"
    wf = Workflow(capacity=2)
    slow = Restart(backoff=30, max_backoff=30, jitter=0)  # still backing off when the source fails
    middle = Stream(["inp"], ["out"], fn=double_and_tell_pid, name="fragile", state={"dir": str(pids)}, on_error=slow)
    src = Stream(outs=["out"], fn=paced, name="numbers", state={"n": 1000})
    wf.add_stream(src).pipe(middle).pipe(collector())
    wf.add_stream(Stream(fn=fail_once_flagged, name="alarm", state={"flag": str(killed)}))
    killer = kill_first_pid_soon(pids, then=killed)
    t0 = time.monotonic()
    try:
        with pytest.raises(ValueError, match="the alarm went off") as info:
            wf.run(executor=ray_with(batch_size=5))
    finally:
        killer.join()
    assert time.monotonic() - t0 < 20  # the back-off was cut short by the teardown
    assert info.value.mimo_stream == "alarm"  # type: ignore[attr-defined]
    assert len(list(pids.iterdir())) == 1  # never made again
    assert_no_actor_left(ray_session)


def test_a_restarted_producers_link_closes_the_input_once_whichever_link_ended():
    from mimo import Channel
    from mimo.executors._edges import Inbox

    async def main() -> tuple[bool, bool, list[int], bool]:
        # The dead producer's late end marker does not close the input its new link still feeds.
        ch: Channel[int] = Channel(10, producers=1)
        inbox = Inbox(ch)
        await inbox.deliver(0, 0, [1, 2], False)
        inbox.replace_link(0, 7)
        await inbox.deliver(0, 1, [3], True)
        open_after_old_end = not ch.closed
        await inbox.deliver(7, 0, [4], True)
        closed_by_new = ch.closed
        got = ch.pop_many_nowait(10)
        # A producer that had ended before it died: its new link's end is not counted twice.
        two: Channel[int] = Channel(10, producers=2)
        inbox = Inbox(two)
        await inbox.deliver(0, 0, [], True)
        inbox.replace_link(0, 7)
        await inbox.deliver(7, 0, [], True)
        return open_after_old_end, closed_by_new, got, not two.closed

    assert asyncio.run(main()) == (True, True, [1, 2, 3, 4], True)


def test_an_outbox_whose_restartable_consumer_died_waits_for_its_successor_then_sends_on():
    from mimo.executors._edges import Inbox, Outbox, PeerLost, Target

    async def main() -> tuple[bool, bool, list[int]]:
        loop = asyncio.get_running_loop()

        def dead(port: str, link: int, seq: int, items: list[Any], end: bool) -> asyncio.Future[bool]:
            fut: asyncio.Future[bool] = loop.create_future()
            fut.set_exception(PeerLost("ActorDiedError"))
            return fut

        from mimo import Channel

        ch: Channel[int] = Channel(100)
        inbox = Inbox(ch)

        def alive(port: str, link: int, seq: int, items: list[Any], end: bool) -> asyncio.Future[bool]:
            return asyncio.ensure_future(inbox.deliver(link, seq, items, end))

        box = Outbox([Target(dead, "inp", 0, "c", restartable=True)], credits=1, batch_size=2, linger_s=0)
        for i in range(4):  # the first batch is lost with the dead consumer; then no room
            if not box.push_nowait(i):
                break
        await asyncio.sleep(0.01)
        blocked = not box.has_room()
        box.retarget(0, alive, 3)
        await box.wait_room()
        for i in range(4, 6):
            if not box.push_nowait(i):
                await box.wait_room()
                box.push_nowait(i)
        box.close_producer()
        await asyncio.wait_for(box.drained(), 5)
        return blocked, ch.closed, ch.pop_many_nowait(100)

    blocked, ended, got = asyncio.run(main())
    assert blocked  # it neither failed nor sent anywhere while its consumer was being made again
    assert got == [2, 3, 4, 5] and ended  # the batch sent to the dead one is lost; the rest and the end arrive


async def push_then_wait(ins: Any, outs: Any, state: Any) -> None:
    try:
        for i in range(5):
            await outs.out.push(i)
        await asyncio.sleep(60)  # long after its consumer has left
    finally:
        Path(state["mark"]).write_text("source finally ran")


async def take_two(ins: Any, outs: Any, state: Any) -> None:
    for _ in range(2):
        state.append(await ins.inp.pop())


@pytest.mark.timeout(30)
def test_a_source_waiting_long_after_its_consumer_left_is_stopped_at_once(executor, tmp_path):
    wf = Workflow(capacity=8)
    sink = Stream(ins=["inp"], fn=take_two, name="two", state=[])
    src = Stream(outs=["out"], fn=push_then_wait, name="waiter", state={"mark": str(tmp_path / "src")})
    wf.add_stream(src).pipe(sink)
    t0 = time.monotonic()
    report = run(wf, executor)
    assert time.monotonic() - t0 < 15  # not the source's 60 s sleep
    assert sink.state == [0, 1]
    assert (tmp_path / "src").read_text() == "source finally ran"
    assert report["waiter"].stopped_early
    assert_no_actor_left(executor)


# -- Ray only: options and the connection --------------------------------------


async def report_resources(ins: Any, outs: Any, state: Any) -> None:
    import ray

    state.update(ray.get_runtime_context().get_assigned_resources())


@pytest.mark.ray
def test_per_stream_actor_options_reserve_resources(ray_session):
    wf = Workflow()
    heavy = Stream(fn=report_resources, name="heavy", state={})
    light = Stream(fn=report_resources, name="light", state={})
    wf.add_stream(heavy)
    wf.add_stream(light)
    ex = ray_with(options={"heavy": {"num_cpus": 1, "resources": {"mimo_test": 2}}})
    wf.run(executor=ex)
    assert heavy.state == {"CPU": 1.0, "mimo_test": 2.0}
    assert light.state == {}


async def hold(ins: Any, outs: Any, state: Any) -> None:
    await asyncio.sleep(0)


def three_holders() -> Workflow:
    wf = Workflow()
    for name in ("a", "b", "c"):
        wf.add_stream(Stream(fn=hold, name=name))
    return wf


@pytest.mark.ray
@pytest.mark.timeout(60)
def test_streams_that_cannot_all_be_placed_fail_the_run_naming_each_and_its_ask(ray_session):
    from mimo.executors import PlacementError

    # Naming a resource makes Ray hold a CPU per actor: three do not fit on 2 CPUs.
    ex = ray_with(default_options={"resources": {"mimo_test": 1}}, place_timeout_s=2)
    t0 = time.monotonic()
    expected = r"1 stream could not be placed on the Ray cluster within place_timeout_s=2 s"
    with pytest.raises(PlacementError, match=expected) as info:
        three_holders().run(executor=ex)
    assert time.monotonic() - t0 < 15
    (stuck,) = info.value.asks
    assert stuck in ("a", "b", "c")
    assert info.value.asks[stuck] == {"CPU": 1.0, "mimo_test": 1.0}
    message = str(info.value)
    assert f"stream {stuck!r} asks for {{'CPU': 1, 'mimo_test': 1}} (1 CPU of it reserved by Ray" in message
    assert '"num_cpus": 0' in message
    assert_no_actor_left(ray_session)
    # As the message says: without the CPU, all three fit.
    three_holders().run(executor=ray_with(default_options={"resources": {"mimo_test": 1}, "num_cpus": 0}))


def _load_slowly(name: str) -> Stream:
    time.sleep(3)  # where the actor is made, with its CPU already held
    return Stream(fn=hold, name=name)


class SlowToLoad(Stream):
    """A stream whose actor takes seconds to start once Ray has placed it."""

    def __reduce__(self) -> Any:
        return (_load_slowly, (self.name,))


@pytest.mark.ray
@pytest.mark.timeout(60)
def test_streams_placed_but_slow_to_start_are_waited_for_past_place_timeout_s(ray_session):
    # Both fit on the 2 CPUs; one still starts when place_timeout_s is up, holding the last free CPU.
    wf = Workflow()
    wf.add_stream(Stream(fn=hold, name="quick"))
    wf.add_stream(SlowToLoad(fn=hold, name="slow"))
    report = wf.run(executor=ray_with(default_options={"resources": {"mimo_test": 1}}, place_timeout_s=1))
    assert sorted(s.name for s in report if s.done) == ["quick", "slow"]
    assert_no_actor_left(ray_session)


@pytest.mark.ray
@pytest.mark.timeout(60)
def test_a_stream_asking_for_what_no_node_has_is_named_in_a_warning_then_fails_the_run(ray_session, monkeypatch):
    from mimo.executors import PlacementError
    from mimo.executors import _ray as ray_module

    monkeypatch.setattr(ray_module, "PLACE_WARN_S", 0.5)
    wf = Workflow()
    wf.add_stream(numbers(3)).pipe(Stream(ins=["inp"], fn=drain_marked, name="embed", state={"mark": "/dev/null"}))
    ex = ray_with(options={"embed": {"num_gpus": 1}}, place_timeout_s=8.0)  # Ray reports pending asks late when loaded
    with pytest.warns(RuntimeWarning, match=r"stream 'embed' asks for \{'CPU': 1, 'GPU': 1\}.*no node has that much"):
        with pytest.raises(PlacementError, match="stream 'embed' asks for") as info:
            wf.run(executor=ex)
    assert list(info.value.asks) == ["embed"]
    assert_no_actor_left(ray_session)


@pytest.mark.ray
def test_options_for_an_unknown_stream_are_refused_before_anything_runs(ray_session):
    from mimo import WorkflowError

    wf = Workflow()
    wf.add_stream(numbers(3)).pipe(collector())
    with pytest.raises(WorkflowError, match="did you mean 'numbers'"):
        wf.run(executor=ray_with(options={"numbrs": {"num_cpus": 1}}))


def test_options_mimo_sets_itself_are_refused():
    with pytest.raises(ValueError, match="max_restarts"):
        RayExecutor(options={"a": {"max_restarts": 3}})


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"batch_bytes": 0}, "batch_bytes must be an int >= 1 or None, not 0"),
        ({"link_bytes": 1.5}, "link_bytes must be an int >= 1 or None, not 1.5"),
        ({"place_timeout_s": 0}, "place_timeout_s must be > 0 or None, not 0"),
    ],
)
def test_byte_bounds_and_the_placement_timeout_are_checked_when_made(setting, message):
    with pytest.raises(ValueError, match=message):
        RayExecutor(**setting)
    assert RayExecutor(batch_bytes=None, link_bytes=None, place_timeout_s=None).batch_bytes is None


@pytest.mark.ray
def test_a_live_snapshot_reports_the_run_so_far(ray_session):
    snapshots: list[Any] = []

    async def slow(ins: Any, outs: Any, state: Any) -> None:
        async for _ in ins.inp:
            await asyncio.sleep(0.01)

    wf = Workflow(capacity=2)
    wf.add_stream(numbers(100)).pipe(Stream(ins=["inp"], fn=slow, name="slow"))

    async def main() -> Any:
        watchers = []

        def on_start(snapshot: Any) -> None:
            async def watch() -> None:
                while True:
                    await asyncio.sleep(0.3)
                    snapshots.append(snapshot())

            watchers.append(asyncio.ensure_future(watch()))

        try:
            return await ray_session.run_async(wf.graph, on_start=on_start)
        finally:
            for w in watchers:
                w.cancel()

    report = asyncio.run(main())
    assert report["slow"].items_in == {"inp": 100}
    seen = [s["slow"].items_in["inp"] for s in snapshots]
    assert any(0 < n < 100 for n in seen)


# -- code the workers cannot import -------------------------------------------------

ELSEWHERE = """
from dataclasses import dataclass
from mimo import In, Out, stream
import {helper} as helper

@dataclass
class Point:
    x: int
    y: int

@stream
async def points(out: Out[Point], *, n: int = 3) -> None:
    for i in range(n):
        await out.push(Point(i, helper.square(i)))

@stream
async def swap(p: In[Point], q: Out[Point]) -> None:
    async for item in p:
        await q.push(Point(item.y, item.x))
"""


@pytest.fixture
def module_elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A module (and a helper it imports) that only this process can import: its directory is on sys.path here only."""
    import importlib
    import sys
    import uuid

    tag = uuid.uuid4().hex[:8]
    helper, name = f"helper_{tag}", f"streams_{tag}"
    (tmp_path / f"{helper}.py").write_text("def square(i):\n    return i * i\n")
    (tmp_path / f"{name}.py").write_text(ELSEWHERE.format(helper=helper))
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module(name)
    yield module
    sys.modules.pop(name, None)
    sys.modules.pop(helper, None)


@pytest.mark.ray  # needs Ray's cloudpickle, though not a running Ray
def test_code_from_modules_the_workers_cannot_import_goes_by_value_and_installed_code_by_reference(module_elsewhere):
    import json

    import ray.cloudpickle

    import mimo.lib
    from mimo.executors._code import by_value, importable_elsewhere

    helper = module_elsewhere.helper
    assert not importable_elsewhere(module_elsewhere) and not importable_elsewhere(helper)
    assert importable_elsewhere(json) and importable_elsewhere(mimo.lib) and importable_elsewhere(pytest)
    streams = [module_elsewhere.points(n=3), module_elsewhere.swap(), lib.map(len)]
    # The helper is found through the by-value code that uses it.
    assert by_value(streams, ray.cloudpickle.dumps) == {module_elsewhere.__name__, helper.__name__}
    assert by_value([lib.map(len), Stream(["inp"], ["out"], fn=double)], ray.cloudpickle.dumps) == set()
    assert module_elsewhere.__name__ not in ray.cloudpickle.list_registry_pickle_by_value()


@pytest.mark.ray
def test_streams_from_a_module_the_workers_cannot_import_run(ray_session, module_elsewhere):
    got: list[Any] = []
    chain = module_elsewhere.points(n=50) | module_elsewhere.swap() | lib.collect(got)
    chain.run(executor=ray_session)
    Point = module_elsewhere.Point
    # The items come back as the driver's own class.
    assert got == [Point(i * i, i) for i in range(50)]
    assert all(type(p) is Point for p in got)


# -- the DSL, unchanged ----------------------------------------------------------


@stream
async def shout(text: In[str], loud: Out[str]) -> None:
    async for t in text:
        await loud.push(t.upper())


@stream
async def split_even(n: In[int], evens: Out[int], odds: Out[int]) -> None:
    async for i in n:
        await (evens if i % 2 == 0 else odds).push(i)


@stream
async def pair(left: In[int], right: In[int], pairs: Out[tuple[int, int]]) -> None:
    async for a in left:
        await pairs.push((a, await right.pop()))


def test_a_dsl_chain_runs_unchanged(executor):
    found: list[int] = []
    chain = lib.from_iterable(["tea", "cake", "scone"]) | shout | lib.map(len) | lib.collect(found)
    chain.run(executor=executor)
    assert found == [3, 4, 5]


def test_a_dsl_graph_with_named_ports_and_a_thread_pool_map_runs_unchanged(executor):
    got: list[tuple[int, int]] = []
    sink = lib.collect(got)
    splitter, joiner, negate = split_even(), pair(), lib.map(abs, workers=2, executor="thread")
    lib.range(20).out["out"] >> splitter.in_["n"]
    splitter.out["evens"] >> joiner.in_["left"]
    splitter.out["odds"] >> negate.in_["inp"]
    negate.out["out"] >> joiner.in_["right"]
    graph = joiner.out["pairs"] >> sink.in_["inp"]
    report = graph.run(executor=executor)
    assert got == [(i, i + 1) for i in range(0, 20, 2)]
    assert report["pair"].items_out == {"pairs": 10}


# -- Ctrl-C, and joining a running cluster -------------------------------------------

DRIVER = """
import os, signal, sys, threading, time
from pathlib import Path
from mimo import Stream, Workflow
from mimo.executors import RayExecutor

async def numbers(ins, outs, state):
    for i in range(3):
        await outs.out.push(i)

async def double(ins, outs, state):
    async for x in ins.inp:
        await outs.out.push(2 * x)

async def collect(ins, outs, state):
    async for x in ins.inp:
        state.append(x)

async def endless(ins, outs, state):
    Path(state["mark"] + ".started").write_text("")
    i = 0
    try:
        while True:
            await outs.out.push(i)
            i += 1
    finally:
        Path(state["mark"]).write_text("finally ran")

async def drain(ins, outs, state):
    async for _ in ins.inp:
        pass

address, mark = sys.argv[1], sys.argv[2]
ex = RayExecutor(address=address)
wf = Workflow()
sink = Stream(ins=["inp"], fn=collect, name="sink", state=[])
middle = Stream(["inp"], ["out"], fn=double, name="double")
wf.add_stream(Stream(outs=["out"], fn=numbers, name="numbers")).pipe(middle).pipe(sink)
wf.run(executor=ex)
print("joined:", sink.state, flush=True)

def interrupt():
    while not os.path.exists(mark + ".started"):
        time.sleep(0.05)
    time.sleep(0.3)
    os.kill(os.getpid(), signal.SIGINT)

threading.Thread(target=interrupt, daemon=True).start()
endless_wf = Workflow(capacity=2)
endless_wf.add_stream(Stream(outs=["out"], fn=endless, name="endless", state={"mark": mark})).pipe(
    Stream(ins=["inp"], fn=drain, name="drain")
)
try:
    endless_wf.run(executor=ex)
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""


@pytest.mark.ray
@pytest.mark.timeout(150)  # a second driver process joins the cluster: slow on a loaded machine
def test_ctrl_c_tears_down_and_a_driver_that_joined_leaves_the_cluster_running(ray_session, tmp_path):
    import subprocess
    import sys

    import ray

    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    address = ray.get_runtime_context().gcs_address
    proc = subprocess.run(
        [sys.executable, str(script), address, str(tmp_path / "src")],
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "joined: [0, 2, 4]" in proc.stdout
    assert "interrupted" in proc.stdout
    assert (tmp_path / "src").read_text() == "finally ran"
    assert_no_actor_left(ray_session)
    # The cluster this session started is still there.
    wf = Workflow()
    sink = collector()
    wf.add_stream(numbers(3)).pipe(sink)
    wf.run(executor=ray_session)
    assert sink.state == [0, 1, 2]


# -- two nodes: a head and a second node, started and stopped by the test --------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of the processes whose parent is ``pid``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            found.append((int(entry), cmdline))
    return found


@pytest.fixture
def two_nodes(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A head node and a second node (resource ``side``) of a cluster of their own; yields (address, raylet pid).

    Both are ``ray start --block`` processes in sessions of their own, stopped by
    process group at the end (never ``ray stop``, which would stop every Ray here).
    """
    import signal
    import subprocess
    import sys

    ray_cli = str(Path(sys.executable).parent / "ray")
    port = _free_port()
    address = f"127.0.0.1:{port}"
    temp = tempfile.mkdtemp(prefix="mimo-2n-", dir="/tmp")
    common = ["--block", "--disable-usage-stats"]
    procs: list[subprocess.Popen[bytes]] = []
    logs = []

    def start(name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = open(tmp_path / f"{name}.log", "wb")
        logs.append(log)
        proc = subprocess.Popen(
            [ray_cli, "start", *args, *common], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        procs.append(proc)
        return proc

    try:
        start(
            "head",
            [
                "--head",
                f"--port={port}",
                "--node-ip-address=127.0.0.1",
                "--num-cpus=2",
                '--resources={"head": 2}',
                "--include-dashboard=false",
                f"--temp-dir={temp}",
                f"--dashboard-agent-listen-port={_free_port()}",
            ],
        )
        deadline = time.monotonic() + 60
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert time.monotonic() < deadline and procs[0].poll() is None, (tmp_path / "head.log").read_text()
            time.sleep(0.2)
        side = start(
            "side",
            [
                f"--address={address}",
                "--node-ip-address=127.0.0.1",
                "--num-cpus=1",
                '--resources={"side": 1}',
                f"--dashboard-agent-listen-port={_free_port()}",
            ],
        )
        raylets: list[int] = []
        while not raylets:
            raylets = [pid for pid, cmd in _children(side.pid) if "raylet" in cmd.split(" ")[0]]
            assert time.monotonic() < deadline and side.poll() is None, (tmp_path / "side.log").read_text()
            time.sleep(0.2)
        yield address, raylets[0]
    finally:
        for proc in reversed(procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=2)
            # Whatever of that group is left (the leader may have gone first).
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        for log in logs:
            log.close()
        shutil.rmtree(temp, ignore_errors=True)


TWO_NODES = """
import sys, time
from pathlib import Path
import ray
from mimo import Stream, Workflow
from mimo.executors import RayExecutor, StreamDiedError

async def numbers(ins, outs, state):
    for i in range(state["n"]):
        await outs.out.push(i)

async def affine(ins, outs, state):
    import ray
    Path(state["mark"]).write_text(ray.get_runtime_context().get_node_id())
    async for x in ins.inp:
        await outs.out.push(3 * x + 1)

async def collect(ins, outs, state):
    async for x in ins.inp:
        state.append(x)

def chain(n, mark):
    wf = Workflow(capacity=4)
    sink = Stream(ins=["inp"], fn=collect, name="sink", state=[])
    middle = Stream(["inp"], ["out"], fn=affine, name="affine", state={"mark": mark})
    wf.add_stream(Stream(outs=["out"], fn=numbers, name="numbers", state={"n": n})).pipe(middle).pipe(sink)
    return wf, sink

address, mark = sys.argv[1], sys.argv[2]
pinned = {"num_cpus": 0}
options = {"affine": {"resources": {"side": 1}, **pinned}, "numbers": {"resources": {"head": 1}, **pinned}}
ex = RayExecutor(
    address=address,
    options={**options, "sink": options["numbers"]},
    batch_size=100,
    init_options={"log_to_driver": False},
)
with ex:
    deadline = time.monotonic() + 60
    while len([n for n in ray.nodes() if n["Alive"]]) < 2:
        assert time.monotonic() < deadline, ray.nodes()
        time.sleep(0.2)
    here = ray.get_runtime_context().get_node_id()
    wf, sink = chain(20_000, mark + ".first")
    wf.run(executor=ex)
    assert sink.state == [3 * i + 1 for i in range(20_000)], sink.state[:10]
    there = Path(mark + ".first").read_text()
    print("exact across nodes:", there != here, flush=True)
    wf, sink = chain(10**9, mark)
    t0 = time.monotonic()
    try:
        wf.run(executor=ex)
    except StreamDiedError as exc:
        print("died:", exc.stream, f"{time.monotonic() - t0:.1f} s", flush=True)
        print("on the node it ran on:", exc.node == Path(mark).read_text(), flush=True)
        print("message:", exc, flush=True)
        print("notes:", getattr(exc, "__notes__", []), flush=True)
        print("mimo_stream:", exc.mimo_stream, flush=True)
        # Nothing of a failed run comes back: what the sink had is dropped with the items in flight.
        print("sink state after the failure:", sink.state, flush=True)
"""


@pytest.mark.ray
@pytest.mark.timeout(180)
def test_two_nodes_run_exactly_and_a_dead_node_blames_the_stream_it_held(ray_session, two_nodes, tmp_path):
    import signal
    import subprocess
    import sys

    address, raylet = two_nodes
    script = tmp_path / "driver.py"
    script.write_text(TWO_NODES)
    mark = tmp_path / "affine"
    driver = subprocess.Popen(
        [sys.executable, str(script), address, str(mark)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        # Once the second run's affine has started on the second node, that node dies.
        deadline = time.monotonic() + 120
        while not mark.exists() and driver.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        os.kill(raylet, signal.SIGKILL)
        out, err = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    assert driver.returncode == 0, out + err
    assert "exact across nodes: True" in out, out + err
    assert "died: affine" in out, out + err
    assert "on the node it ran on: True" in out, out
    assert "message: stream 'affine' died: its actor on node 127.0.0.1" in out, out
    assert "mimo_stream: affine" in out
    assert "sink state after the failure: []" in out
    # If the sender saw the death first, the edge it failed on names both ends.
    assert "numbers.out -> inp" not in out
    print([line for line in out.splitlines() if line.startswith(("died", "message", "notes"))])


# -- keyed workers --------------------------------------------------------------


async def keyed_tag(ins: Any, outs: Any, state: Any) -> None:
    # Which copy: its process on Ray (one actor each), its task here.
    task = asyncio.current_task()
    me = f"{os.getpid()}:{task.get_name() if task is not None else ''}"
    async for item in ins.inp:
        await asyncio.sleep(0)  # copies sharing a queue would interleave: routing keeps keys apart
        await outs.out.push((me, item))


def test_keyed_workers_send_every_key_to_one_copy_in_order(executor):
    items = [(k, i) for i in range(30) for k in "abcdefg"]
    wf = Workflow(capacity=4)
    src = wf.add_stream(lib.from_iterable(items))
    sink = collector()
    src.pipe(Stream(["inp"], ["out"], fn=keyed_tag, name="tag", workers=3, key=lambda kv: kv[0])).pipe(sink)
    report = run(wf, executor)
    got = sink.state
    assert sorted(item for _, item in got) == sorted(items)
    copies: dict[str, set[str]] = {}
    for me, (k, _) in got:
        copies.setdefault(k, set()).add(me)
    assert sorted(copies) == list("abcdefg")
    assert all(len(c) == 1 for c in copies.values())
    assert len(set().union(*copies.values())) > 1  # seven keys over three copies
    for k in "abcdefg":
        assert [i for _, (kk, i) in got if kk == k] == list(range(30))
    tag = report.streams["tag"]
    assert (tag.workers, tag.items_in, tag.items_out) == (3, {"inp": 210}, {"out": 210})
    assert_no_actor_left(executor)
