"""Hypothesis properties over random graphs (docs/guarantees.md, "A local run"; docs/concepts.md, "Back-pressure").

Random DAGs (some inputs fed by several edges), capacities 0-5, item counts
and per-item delays: every item reaches every connected input exactly once and
in order per connection, the run terminates, and queues never exceed their
bound.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from typing import Any

import pytest
from hypothesis import assume, event, given
from hypothesis import strategies as st

from mimo import ConsumersGone, MimoError, PortClosed, Restart, Stream, Workflow, lib, stream
from mimo.testing import run_workflow


@st.composite
def graphs(draw: Any) -> dict[str, Any]:
    n = draw(st.integers(2, 6))
    edges = []  # (src, dst, port index)
    ports = {i: 0 for i in range(n)}
    for dst in range(1, n):
        for src in range(dst):
            if draw(st.booleans()):
                # Join a new input port, or fan in to an existing one.
                if ports[dst] and draw(st.booleans()):
                    port = draw(st.integers(0, ports[dst] - 1))
                else:
                    port = ports[dst]
                    ports[dst] += 1
                edges.append((src, dst, port))
    return {
        "n": n,
        "edges": edges,
        "ports": ports,
        "capacity": draw(st.integers(0, 5)),
        "counts": [draw(st.integers(0, 30)) for _ in range(n)],
        "delays": [draw(st.sampled_from([0.0, 0.0, 0.0001, 0.001])) for _ in range(n)],
        "pauses": [draw(st.integers(1, 7)) for _ in range(n)],
    }


@given(graphs())
@pytest.mark.timeout(120)
def test_random_graphs_deliver_exactly_once_in_order_within_bounds(g: dict[str, Any]) -> None:
    n, capacity = g["n"], g["capacity"]
    received: dict[tuple[int, int], list[tuple[int, int]]] = {}
    emitted: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    all_inputs: list[Any] = []
    worst_total = 0
    n_inputs = sum(g["ports"].values())

    def check_bound() -> None:
        nonlocal worst_total
        total = sum(len(p) for p in all_inputs)
        worst_total = max(worst_total, total)

    def make(i: int) -> Stream:
        ins = [f"i{k}" for k in range(g["ports"][i])]

        async def fn(ins_: Any, outs: Any, state: Any) -> None:
            all_inputs.extend(ins_)
            seq = 0

            async def emit() -> None:
                nonlocal seq
                item = (i, seq)
                seq += 1
                await outs.out.push(item)
                # Readers of several inputs push concurrently: the order on
                # every connection is the order in which pushes completed.
                emitted[i].append(item)
                if g["delays"][i] and seq % g["pauses"][i] == 0:
                    await asyncio.sleep(g["delays"][i])
                check_bound()

            if not ins:
                for _ in range(g["counts"][i]):
                    await emit()
                return

            async def read(k: int) -> None:
                async for item in ins_[f"i{k}"]:
                    check_bound()
                    received.setdefault((i, k), []).append(item)
                    await emit()

            async with asyncio.TaskGroup() as tg:
                for k in range(len(ins)):
                    tg.create_task(read(k))

        return Stream(ins, ["out"], fn=fn, name=f"s{i}")

    wf = Workflow(capacity=capacity)
    steps = [wf.add_stream(make(i)) for i in range(n)]
    for src, dst, port in g["edges"]:
        steps[src].pipe(steps[dst], input=f"i{port}")
    report = run_workflow(wf, timeout=60)

    for src, dst, port in g["edges"]:
        from_src = [item for item in received.get((dst, port), []) if item[0] == src]
        assert from_src == emitted[src], (src, dst, port)
    for i in range(n):
        assert report[f"s{i}"].items_out == {"out": len(emitted[i])}
        assert report[f"s{i}"].items_in == {f"i{k}": len(received.get((i, k), [])) for k in range(g["ports"][i])}
    # A producer is never more than `capacity` items ahead (capacity 0 hands
    # an item over to a consumer that is already waiting, so it may sit in the
    # queue for that moment).
    assert worst_total <= n_inputs * max(capacity, 1)
    for port in all_inputs:
        assert port.statistics().high_water <= capacity


# -- the same graphs, under faults -------------------------------------------------


class Boom(Exception):
    """Raised by a random stream of a faulty graph, at a random point."""


class _Leave(Exception):
    """A reader of an early-leaving stream took its last item."""


#: Seconds an example's run may take, cancellation and teardown included, before it counts as a hang.
HANG_S = 10.0


@st.composite
def faulty_graphs(draw: Any) -> dict[str, Any]:
    g: dict[str, Any] = draw(graphs())
    n = g["n"]
    roles = []
    for i in range(n):
        has_inputs = g["ports"][i] > 0
        kinds = ["plain", "plain", "raise_after_emit", "close_after_emit", "flush_when_cancelled"]
        if has_inputs:
            kinds += ["leave_after_read", "raise_after_read"]
        roles.append((draw(st.sampled_from(kinds)), draw(st.integers(0, 12))))
    g["roles"] = roles
    # Some streams run as two copies sharing their inputs and outputs.
    g["workers"] = [draw(st.sampled_from([1, 1, 1, 2])) for _ in range(n)]
    g["cancel"] = draw(st.sampled_from(["none", "none", "timeout", "task.cancel"]))
    g["cancel_after"] = draw(st.sampled_from([0.0, 0.0001, 0.0005, 0.001, 0.003]))
    return g


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for e in exc.exceptions for leaf in _leaves(e)]
    return [exc]


@given(faulty_graphs())
@pytest.mark.timeout(300)
def test_random_graphs_under_faults_lose_and_double_nothing_end_and_leave_nothing_running(g: dict[str, Any]) -> None:
    """Early-leaving consumers, outputs closed mid-run, streams raising, the run cancelled from outside.

    Whatever happens: on every connection the items that arrived are the
    items pushed, in order, each once (all of them when the consumer read to
    the end, a prefix when it left or was stopped); the run ends; a stream's
    exception is what the run raises; no task of the run is left after it.
    """
    n, capacity = g["n"], g["capacity"]
    received: dict[tuple[int, int], list[tuple[int, int, int]]] = {}
    # Per stream copy (a stream of two copies has two connections to each consumer).
    emitted: dict[tuple[int, int], list[tuple[int, int, int]]] = {}
    # Some copy read every input to its end (or had none) and returned: then
    # everything pushed to this stream reached one of its copies.
    completed = [False] * n
    raised: dict[int, Boom] = {}

    def make(i: int) -> Stream:
        ins = [f"i{k}" for k in range(g["ports"][i])]
        role, at = g["roles"][i]

        def boom(why: str) -> Boom:
            # Readers woken together may each reach the point: one failure per stream.
            if i not in raised:
                raised[i] = Boom(why)
            return raised[i]

        copies = iter(range(2))

        async def fn(ins_: Any, outs: Any, state: Any) -> None:
            copy = next(copies)
            mine = emitted.setdefault((i, copy), [])
            try:
                await body(ins_, outs, copy, mine)
            except asyncio.CancelledError:
                if role == "flush_when_cancelled":
                    # A batcher flushing its rest, then draining an input, while the run
                    # is torn down: both must fail fast (case 16), never hang.
                    item = (i, copy, -1)
                    try:
                        await outs.out.push(item)
                    except MimoError:
                        pass
                    else:
                        mine.append(item)
                    if ins:
                        try:
                            # After the teardown shut the queue, a pop takes what is buffered.
                            received.setdefault((i, 0), []).append(await ins_["i0"].pop())
                        except MimoError:
                            pass
                raise

        async def body(ins_: Any, outs: Any, copy: int, mine: list[tuple[int, int, int]]) -> None:
            seq = 0
            read = 0

            async def emit() -> None:
                nonlocal seq
                if role == "raise_after_emit" and seq == at:
                    raise boom(f"s{i} after {seq} items out")
                if role == "close_after_emit" and seq >= at:
                    outs.out.close()  # idempotent; nothing is pushed after it
                    return
                item = (i, copy, seq)
                seq += 1
                try:
                    await outs.out.push(item)
                except PortClosed:
                    # A sibling reader closed the output while this push waited:
                    # the push failed and delivered nothing.
                    if role == "close_after_emit":
                        return
                    raise
                mine.append(item)
                if g["delays"][i] and seq % g["pauses"][i] == 0:
                    await asyncio.sleep(g["delays"][i])

            if not ins:
                for _ in range(g["counts"][i]):
                    await emit()
                completed[i] = True
                return

            async def reader(k: int) -> None:
                nonlocal read
                async for item in ins_[f"i{k}"]:
                    received.setdefault((i, k), []).append(item)
                    read += 1
                    if role == "raise_after_read" and read == at + 1:
                        raise boom(f"s{i} after {read} items in")
                    if role == "leave_after_read" and read >= at + 1:
                        raise _Leave
                    await emit()

            try:
                async with asyncio.TaskGroup() as tg:
                    for k in range(len(ins)):
                        tg.create_task(reader(k))
            except BaseExceptionGroup as eg:
                leaves = _leaves(eg)
                booms = [e for e in leaves if isinstance(e, Boom)]
                if booms:
                    raise booms[0] from None
                if all(isinstance(e, _Leave | ConsumersGone) for e in leaves):
                    return  # took what it wanted, or nobody reads its output any more
                raise
            completed[i] = True

        return Stream(ins, ["out"], fn=fn, name=f"s{i}", workers=g["workers"][i])

    wf = Workflow(capacity=capacity)
    steps = [wf.add_stream(make(i)) for i in range(n)]
    for src, dst, port in g["edges"]:
        steps[src].pipe(steps[dst], input=f"i{port}")

    outcome: dict[str, Any] = {}

    async def main() -> None:
        loop = asyncio.get_running_loop()
        fired = False

        async def run() -> Any:
            nonlocal fired
            if g["cancel"] == "timeout":
                cm = asyncio.timeout(g["cancel_after"])
                try:
                    async with cm:
                        return await wf.run_async()
                finally:
                    fired = cm.expired()
            return await wf.run_async()

        task = loop.create_task(run())
        handle = None
        if g["cancel"] == "task.cancel":

            def cancel() -> None:
                nonlocal fired
                if not task.done():
                    fired = True
                    task.cancel()

            handle = loop.call_later(g["cancel_after"], cancel)
        done, _ = await asyncio.wait({task}, timeout=HANG_S)
        if handle is not None:
            handle.cancel()
        if not done:
            outcome["hang"] = True
            return
        outcome["fired"] = fired
        outcome["result"] = task
        # Nothing of the run may outlive it: no stream, no feeder, no sub-task.
        outcome["left"] = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(main())
    finally:
        if not outcome.get("hang"):
            loop.run_until_complete(loop.shutdown_asyncgens())
        # After a hang the run's tasks cannot be torn down; the example fails below.
        loop.close()

    assert not outcome.get("hang"), f"the run did not end within {HANG_S} s"
    assert outcome["left"] == [], "tasks left running after the run"
    task: asyncio.Task[Any] = outcome["result"]
    fired = outcome["fired"]

    # Delivery: per connection, what arrived is what was pushed, in order, once each.
    for src, dst, port in g["edges"]:
        for (i, copy), pushed in emitted.items():
            if i != src:
                continue
            got = [item for item in received.get((dst, port), []) if item[:2] == (src, copy)]
            if completed[dst]:
                assert got == pushed, (src, copy, dst, port)
            else:
                assert got == pushed[: len(got)], (src, copy, dst, port)

    # The outcome of the run.
    event(f"cancel {g['cancel']}: {'fired' if fired else 'not fired'}")
    event("cancelled" if task.cancelled() else type(task.exception()).__name__ if task.exception() else "ok")
    event(f"streams that left early or were stopped: {completed.count(False)}")
    if task.cancelled():
        assert fired and g["cancel"] == "task.cancel"
        return
    exc = task.exception()
    if exc is None:
        assert not raised, f"{raised} raised, but the run succeeded"
        report = task.result()
        for i in range(n):
            pushed = sum(len(items) for (j, _), items in emitted.items() if j == i)
            assert report[f"s{i}"].items_out == {"out": pushed}
            # Every item taken off an input was recorded by the copy that took it.
            taken = {f"i{k}": len(received.get((i, k), [])) for k in range(g["ports"][i])}
            assert report[f"s{i}"].items_in == taken
        return
    if fired and isinstance(exc, TimeoutError) and g["cancel"] == "timeout":
        return
    leaves = _leaves(exc)
    assert raised, f"the run raised {exc!r} though no stream did"
    assert all(isinstance(e, Boom) for e in leaves), exc
    assert {id(e) for e in leaves} == {id(e) for e in raised.values()}, (leaves, raised, fired)
    for e in leaves:
        name = str(e).split()[0]
        assert getattr(e, "mimo_stream", None) == name
        assert f"in mimo stream {name!r}" in getattr(e, "__notes__", [])


# -- stock streams against plain Python ---------------------------------------------


async def _async_inc(x: int) -> int:
    await asyncio.sleep(0)
    return x + 1


def _triple(x: int) -> int:
    return 3 * x


#: (stage, what it does to a list, whether it keeps the order)
STAGES: dict[str, tuple[Any, Any, bool]] = {
    "map": (lambda: lib.map(lambda x: x + 1), lambda xs: [x + 1 for x in xs], True),
    "async map": (lambda: lib.map(_async_inc), lambda xs: [x + 1 for x in xs], True),
    "filter": (lambda: lib.filter(lambda x: x % 3), lambda xs: [x for x in xs if x % 3], True),
    "flat_map": (lambda: lib.flat_map(lambda x: [x] * (x % 3)), lambda xs: [x for x in xs for _ in range(x % 3)], True),
    "batch | unbatch": (lambda: lib.batch(4) | lib.unbatch(), lambda xs: xs, True),
    "map, 3 threads": (lambda: lib.map(lambda x: x * 2, workers=3), lambda xs: [x * 2 for x in xs], True),
    "map, 2 async tasks": (lambda: lib.map(_async_inc, workers=2), lambda xs: [x + 1 for x in xs], True),
    "map, 2 processes": (
        lambda: lib.map(_triple, executor="process", workers=2, chunk_size=3),
        lambda xs: [3 * x for x in xs],
        True,
    ),
    "take 5": (lambda: lib.take(5), lambda xs: xs[:5], True),
    "skip 2": (lambda: lib.skip(2), lambda xs: xs[2:], True),
    "scan +": (lambda: lib.scan(lambda acc, x: acc + x, 0), lambda xs: list(itertools.accumulate(xs)), True),
    "distinct": (lambda: lib.distinct(), lambda xs: list(dict.fromkeys(xs)), True),
    "map, unordered": (
        lambda: lib.map(lambda x: x - 1, workers=2, ordered=False),
        lambda xs: [x - 1 for x in xs],
        False,
    ),
}


def take(k: int, into: list[Any]) -> Any:
    """A sink that takes the first ``k`` items and leaves."""

    @stream(ins={"inp": Any})
    async def take_k(ins: Any, outs: Any) -> None:
        for _ in range(k):
            into.append(await ins.inp.pop())

    return take_k


#: Stages whose result depends on the order of their input.
ORDER_SENSITIVE = {"take 5", "skip 2", "scan +"}


@st.composite
def stock_chains(draw: Any) -> dict[str, Any]:
    def chain() -> list[str]:
        return draw(st.lists(st.sampled_from(sorted(STAGES)), max_size=4))

    return {
        "items": draw(st.lists(st.integers(0, 50), max_size=40)),
        "other": draw(st.lists(st.integers(0, 50), max_size=40)),
        "a": chain(),
        "b": chain(),
        "join": draw(st.sampled_from(["none", "merge", "zip", "broadcast", "balance", "take"])),
        "take": draw(st.integers(0, 12)),
        "capacity": draw(st.integers(0, 3)),
    }


@given(stock_chains())
@pytest.mark.timeout(120)
def test_chains_of_stock_streams_give_what_plain_python_gives(g: dict[str, Any]) -> None:
    """Whatever the capacity (items outnumber it): no item lost, doubled or reordered by stock streams."""

    def build(items: list[int], names: list[str]) -> tuple[Any, list[int], bool]:
        piece: Any = lib.from_iterable(items)
        want, ordered = list(items), True
        for name in names:
            if not ordered and name in ORDER_SENSITIVE:
                continue  # what they give depends on the order, which is not kept here
            make, apply, keeps = STAGES[name]
            piece = piece | make()
            want, ordered = apply(want), ordered and keeps
        return piece, want, ordered

    a, want_a, ordered_a = build(g["items"], g["a"])
    got: list[Any] = []
    if g["join"] == "none":
        graph, want, ordered = a | lib.collect(got), want_a, ordered_a
    elif g["join"] == "take":
        # A consumer that leaves after k items: everything upstream stops, quietly.
        graph = a | take(g["take"], got)
        run_workflow(graph.workflow(), timeout=30, capacity=g["capacity"])
        if ordered_a:
            assert got == want_a[: g["take"]]
        else:
            assert len(got) == min(g["take"], len(want_a)) and not Counter(got) - Counter(want_a)
        return
    elif g["join"] in ("broadcast", "balance"):
        fork = a | (lib.broadcast(2) if g["join"] == "broadcast" else lib.balance(2))
        left: list[Any] = []
        right: list[Any] = []
        fork.out["out0"] >> lib.collect(left).in_["inp"]
        flow = fork.out["out1"] >> lib.collect(right).in_["inp"]
        run_workflow(flow.workflow(), timeout=30, capacity=g["capacity"])
        if g["join"] == "broadcast":
            wants = (want_a, want_a)
        elif ordered_a:
            wants = (want_a[0::2], want_a[1::2])  # item i to output i mod 2
        else:
            assert Counter(left + right) == Counter(want_a)
            return
        if ordered_a:
            assert (left, right) == wants
        else:
            assert (Counter(left), Counter(right)) == (Counter(wants[0]), Counter(wants[1]))
        return
    else:
        b, want_b, ordered_b = build(g["other"], g["b"])
        if g["join"] == "merge":
            graph, want, ordered = lib.merge(a, b) | lib.collect(got), want_a + want_b, False
        else:
            # zip pairs items by position, so only order-keeping inputs have a reference.
            assume(ordered_a and ordered_b)
            graph, want, ordered = lib.zip(a, b) | lib.collect(got), list(zip(want_a, want_b)), True
    run_workflow(graph.workflow(), timeout=30, capacity=g["capacity"])
    if ordered:
        assert got == want
    else:
        assert Counter(got) == Counter(want)


# -- restarts -----------------------------------------------------------------------


@given(
    items=st.lists(st.integers(0, 30), max_size=30, unique=True),
    failing=st.sets(st.integers(0, 30), max_size=5),
    capacity=st.integers(0, 3),
    workers=st.sampled_from([1, 2]),
)
@pytest.mark.timeout(120)
def test_a_restarted_stream_loses_only_the_items_it_held_and_doubles_none(
    items: list[int], failing: set[int], capacity: int, workers: int
) -> None:
    """``on_error=Restart``: the queued items wait for the next attempt; the one in hand is lost, none comes twice."""
    failed: set[int] = set()

    async def source(ins: Any, outs: Any, state: Any) -> None:
        for x in items:
            await outs.out.push(x)

    async def flaky(ins: Any, outs: Any, state: Any) -> None:
        async for x in ins.inp:
            if x in failing and x not in failed:
                failed.add(x)
                raise ValueError(f"item {x}")
            await outs.out.push(x)

    async def keep(ins: Any, outs: Any, state: Any) -> None:
        async for x in ins.inp:
            state.append(x)

    sink = Stream(["inp"], fn=keep, state=[])
    wf = Workflow(capacity=capacity)
    relay = Stream(["inp"], ["out"], fn=flaky, workers=workers, on_error=Restart(max_restarts=len(failing), backoff=0))
    wf.add_stream(Stream(outs=["out"], fn=source)).pipe(wf.add_stream(relay)).pipe(wf.add_stream(sink))
    report = run_workflow(wf, timeout=30)
    want = [x for x in items if x not in failing]
    if workers == 1:
        assert sink.state == want
    else:
        assert Counter(sink.state) == Counter(want)
    assert report["flaky"].restarts == len(failing & set(items))
