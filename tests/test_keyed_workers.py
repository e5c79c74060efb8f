"""Keyed workers: ``workers=N, key=fn`` sends every item with the same key to the same copy."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import mimo
from mimo import Stream, Workflow, lib
from mimo.dsl import In, Out, stream


def _copy() -> str:
    task = asyncio.current_task()
    assert task is not None
    return task.get_name()  # "mimo:name[i]"


def _recorder(seen: dict[str, list[Any]], *, workers: int = 3, key: Any = None, delay: float = 0.0) -> Stream:
    async def work(ins: Any, outs: Any) -> None:
        async for item in ins.inp:
            seen.setdefault(_copy(), []).append(item)
            # Yield, so that copies sharing a queue would take turns: routing must be what keeps keys apart.
            await asyncio.sleep(delay)
            await outs.out.push(item)

    return Stream(ins=["inp"], outs=["out"], fn=work, name="work", workers=workers, key=key)


def _chain(wf: Workflow, *streams: Stream) -> None:
    step = wf.add_stream(streams[0])
    for s in streams[1:]:
        step = step.pipe(s)


def _run(items: list[Any], middle: Stream) -> list[Any]:
    out: list[Any] = []
    wf = Workflow()
    _chain(wf, lib.from_iterable(items), middle, lib.collect(out))
    wf.run()
    return out


def _copy_of_each_key(seen: dict[str, list[Any]], key: Any) -> dict[Any, set[str]]:
    where: dict[Any, set[str]] = {}
    for copy, items in seen.items():
        for item in items:
            where.setdefault(key(item), set()).add(copy)
    return where


@pytest.mark.timeout(10)
def test_items_with_the_same_key_go_to_the_same_copy_in_order() -> None:
    items = [(k, i) for i in range(50) for k in "abcdefgh"]
    seen: dict[str, list[Any]] = {}
    out = _run(items, _recorder(seen, key=lambda kv: kv[0]))
    assert Counter(out) == Counter(items)
    where = _copy_of_each_key(seen, lambda kv: kv[0])
    assert set(where) == set("abcdefgh")
    assert all(len(copies) == 1 for copies in where.values())
    assert len(seen) > 1  # eight keys over three copies: more than one copy worked
    for items_seen in seen.values():
        for k in "abcdefgh":
            mine = [i for kk, i in items_seen if kk == k]
            assert mine == sorted(mine)
    # Per-key order holds downstream too: one copy pushes a key's items in order.
    for k in "abcdefgh":
        assert [i for kk, i in out if kk == k] == list(range(50))


@pytest.mark.timeout(10)
def test_routing_is_stable_hash_of_the_key_modulo_the_copies() -> None:
    seen: dict[str, list[Any]] = {}
    _run(list(range(40)), _recorder(seen, workers=4, key=lambda x: f"k{x % 7}"))
    for copy, items in seen.items():
        for x in items:
            assert copy == f"mimo:work[{lib.stable_hash(f'k{x % 7}') % 4}]"


@pytest.mark.timeout(10)
def test_per_key_state_gives_exact_counts() -> None:
    # Each copy counts in its own dict: exact only if a key never meets two copies.
    counts: list[dict[str, int]] = []

    async def count(ins: Any, outs: Any) -> None:
        mine: dict[str, int] = {}
        counts.append(mine)
        async for word in ins.inp:
            mine[word] = mine.get(word, 0) + 1
            await asyncio.sleep(0)
            await outs.out.push((word, mine[word]))

    words = [w for i in range(30) for w in ("x", "y", "z", "w")[: 1 + i % 4]]
    s = Stream(ins=["inp"], outs=["out"], fn=count, workers=3, key=lambda w: w)
    out = _run(words, s)
    final: dict[str, int] = {}
    for word, n in out:
        final[word] = max(final.get(word, 0), n)
    assert final == dict(Counter(words))
    assert sum(len(c) for c in counts) == len(final)  # each key counted in one copy only


@pytest.mark.timeout(10)
def test_the_dsl_decorator_and_with_options_take_a_key() -> None:
    seen: dict[str, list[int]] = {}

    @stream(workers=2, key=lambda x: x % 3)
    async def tag(x: In[int], y: Out[int]) -> None:
        async for v in x:
            seen.setdefault(_copy(), []).append(v)
            await asyncio.sleep(0)
            await y.push(v)

    assert tag.workers == 2 and tag.key is not None
    assert sorted((lib.from_iterable(range(30)) | tag).to_list()) == list(range(30))
    assert all(len(c) == 1 for c in _copy_of_each_key(seen, lambda v: v % 3).values())

    seen2: dict[str, list[int]] = {}
    plain = _recorder(seen2, workers=1)
    keyed = plain.with_options(workers=3, key=lambda v: v % 5)
    assert (keyed.workers, plain.workers, plain.key) == (3, 1, None)
    assert sorted(_run(list(range(30)), keyed)) == list(range(30))
    assert all(len(c) == 1 for c in _copy_of_each_key(seen2, lambda v: v % 5).values())


def test_arguments_are_checked_when_the_stream_is_made() -> None:
    with pytest.raises(TypeError, match="'work': key must be a plain function"):
        Stream(ins=["inp"], name="work", workers=2, key="user")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'work': workers must be an int >= 1, not 0"):
        Stream(ins=["inp"], name="work", workers=0, key=str)
    with pytest.raises(ValueError, match="workers must be an int >= 1, not 2.5"):
        Stream(ins=["inp"], name="w").with_options(workers=2.5)  # type: ignore[arg-type]

    async def async_key(x: int) -> int:
        return x

    with pytest.raises(TypeError, match="key must be a plain function"):
        stream(workers=2, key=async_key)


@pytest.mark.timeout(10)
def test_a_key_with_one_copy_has_no_effect() -> None:
    seen: dict[str, list[Any]] = {}
    assert _run(list(range(10)), _recorder(seen, workers=1, key=lambda x: x)) == list(range(10))
    assert seen == {"mimo:work": list(range(10))}


@pytest.mark.timeout(10)
def test_a_slow_copy_blocks_the_router_and_memory_stays_bounded() -> None:
    # Every item has one key: one copy takes them all, slowly. The queues stay at
    # their capacity, so the source waits instead of racing ahead.
    seen: dict[str, list[Any]] = {}
    pushed: list[int] = []

    async def source(ins: Any, outs: Any) -> None:
        for i in range(40):
            await outs.out.push(i)
            pushed.append(i)

    taken: list[int] = []
    high = 0

    async def sink(ins: Any, outs: Any) -> None:
        nonlocal high
        async for item in ins.inp:
            taken.append(item)
            high = max(high, len(pushed) - len(taken))

    wf = Workflow(capacity=2)
    _chain(
        wf,
        Stream(outs=["out"], fn=source),
        _recorder(seen, key=lambda x: "one", delay=0.002),
        Stream(ins=["inp"], fn=sink),
    )
    report = wf.run()
    assert taken == list(range(40))
    assert len(seen) == 1
    # In flight at most: the graph's queue, the router's hand, the copy's queue, the copy's hand, the sink's queue.
    assert high <= 2 + 1 + 2 + 1 + 2 + 1
    assert report.streams["work"].items_in == {"inp": 40}


@pytest.mark.timeout(10)
def test_the_end_of_input_reaches_every_copy_even_one_that_got_nothing() -> None:
    ended: list[str] = []

    async def work(ins: Any, outs: Any) -> None:
        async for _ in ins.inp:
            pass
        ended.append(_copy())

    _run([1, 1, 1], Stream(ins=["inp"], outs=["out"], fn=work, name="work", workers=4, key=lambda x: x))
    assert sorted(ended) == [f"mimo:work[{i}]" for i in range(4)]


@pytest.mark.timeout(10)
def test_a_key_function_that_raises_fails_the_run_naming_the_stream() -> None:
    def key(x: int) -> int:
        if x == 5:
            raise LookupError("no key for 5")
        return x

    with pytest.raises(LookupError, match="no key for 5") as info:
        _run(list(range(100)), _recorder({}, key=key))
    assert getattr(info.value, "mimo_stream", None) == "work"
    assert any("key function of 'work'" in n for n in info.value.__notes__)


@pytest.mark.timeout(10)
def test_a_key_that_cannot_be_hashed_stably_fails_the_run() -> None:
    with pytest.raises(TypeError, match="cannot hash a list stably"):
        _run([1, 2], _recorder({}, key=lambda x: [x]))


@pytest.mark.timeout(10)
def test_a_copy_that_raises_fails_the_run() -> None:
    async def work(ins: Any, outs: Any) -> None:
        async for x in ins.inp:
            if x == 7:
                raise RuntimeError("seven")
            await outs.out.push(x)

    with pytest.raises(RuntimeError, match="seven"):
        _run(list(range(1000)), Stream(ins=["inp"], outs=["out"], fn=work, workers=3, key=lambda x: x % 4))


@pytest.mark.timeout(10)
def test_cancelling_a_keyed_run_ends_every_task() -> None:
    async def main() -> None:
        async def forever(ins: Any, outs: Any) -> None:
            i = 0
            while True:
                await outs.out.push(i)
                i += 1

        wf = Workflow()
        _chain(wf, Stream(outs=["out"], fn=forever), _recorder({}, key=lambda x: x % 5, delay=0.001), lib.collect([]))
        before = asyncio.all_tasks()
        run = asyncio.ensure_future(wf.run_async())
        await asyncio.sleep(0.05)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        assert asyncio.all_tasks() - before == set()

    asyncio.run(main())


@pytest.mark.timeout(10)
def test_on_an_executor_keyed_streams_go_as_routers_and_one_copy_streams() -> None:
    from mimo._runtime import run_graph

    ran: list[list[str]] = []

    class Here:
        """An executor that runs what it is given in this event loop, and says what that was."""

        async def run_async(self, graph: Any, *, capacity: Any = None, on_start: Any = None) -> Any:
            ran.append([n.name for n in graph.nodes])
            return await run_graph(graph, capacity=capacity, on_start=on_start)

    items = [(k, i) for i in range(20) for k in "abcde"]
    seen: dict[str, list[Any]] = {}
    out: list[Any] = []
    wf = Workflow()
    _chain(wf, lib.from_iterable(items), _recorder(seen, key=lambda kv: kv[0]), lib.collect(out))
    report = wf.run(executor=Here())
    assert ran == [["from_iterable", "work[0]", "work[1]", "work[2]", "work.inp key router", "collect"]]
    assert Counter(out) == Counter(items)
    assert all(len(c) == 1 for c in _copy_of_each_key(seen, lambda kv: kv[0]).values())
    for k in "abcde":
        assert [i for kk, i in out if kk == k] == list(range(20))
    # The report folds the router and copies back into the stream.
    assert list(report.streams) == ["from_iterable", "work", "collect"]
    work = report.streams["work"]
    assert (work.workers, work.items_in, work.items_out) == (3, {"inp": 100}, {"out": 100})


@pytest.mark.timeout(10)
def test_keyed_workers_with_checkpoints_are_refused_on_an_executor(tmp_path: Any) -> None:
    # Locally they are checkpointed (tests/test_checkpoint_streams.py); an executor would get the spread graph.
    class Elsewhere:
        async def run_async(
            self, graph: Any, *, capacity: Any = None, on_start: Any = None, checkpoint: Any = None, **kw: Any
        ) -> Any:
            raise AssertionError("not reached")

    wf = Workflow()
    _chain(wf, lib.from_iterable([1]), _recorder({}, key=str), lib.collect([]))
    with pytest.raises(
        NotImplementedError, match="keyed workers .* only in a local run for now: work|takes no executor"
    ):
        wf.run(checkpoint=str(tmp_path / "ck"), executor=Elsewhere())


@pytest.mark.timeout(30)
@given(
    items=st.lists(st.tuples(st.sampled_from("abcdefg"), st.integers()), max_size=60),
    workers=st.integers(1, 4),
)
def test_every_item_exactly_once_and_each_key_in_one_copy(items: list[tuple[str, int]], workers: int) -> None:
    seen: dict[str, list[Any]] = {}
    out = _run(items, _recorder(seen, workers=workers, key=lambda kv: kv[0]))
    assert Counter(out) == Counter(items)
    assert Counter(i for got in seen.values() for i in got) == Counter(items)
    assert all(len(c) == 1 for c in _copy_of_each_key(seen, lambda kv: kv[0]).values())


@pytest.mark.timeout(10)
def test_a_restarted_copy_keeps_its_own_queue_and_keys() -> None:
    failed: list[int] = []

    async def work(ins: Any, outs: Any) -> None:
        async for x in ins.inp:
            if x == 13 and not failed:
                failed.append(x)
                raise ValueError("once")
            await asyncio.sleep(0)
            await outs.out.push((_copy(), x))

    s = Stream(ins=["inp"], outs=["out"], fn=work, name="work", workers=3, key=lambda x: x % 4)
    out = _run(list(range(40)), s.with_options(on_error=mimo.Restart(backoff=0)))
    assert failed == [13]
    assert sorted(x for _, x in out) == [x for x in range(40) if x != 13]  # the failing item is lost, no other
    where: dict[int, set[str]] = {}
    for copy, x in out:
        where.setdefault(x % 4, set()).add(copy)
    assert sorted(where) == [0, 1, 2, 3] and all(len(c) == 1 for c in where.values())
