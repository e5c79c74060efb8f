"""The batched path (OutputPort.push_many, InputPort.pop_many) and the fast push (issue 4)."""

from __future__ import annotations

import asyncio

import pytest

from mimo import Channel, EndOfStream, InputPort, OutputPort, PortClosed, Stream, Workflow
from mimo.testing import run_workflow
from tests.helpers import chain, collector


def batch_source(batches: list[list[int]], name: str = "source") -> Stream:
    async def fn(ins, outs, state):
        for b in batches:
            await outs.out.push_many(b)

    return Stream(outs=["out"], fn=fn, name=name)


def test_push_many_delivers_every_item_in_order_and_counts_them():
    got: list[int] = []
    batches = [list(range(i, i + 7)) for i in range(0, 700, 7)]
    report = run_workflow(chain(batch_source(batches), collector(got), capacity=5), timeout=10)
    assert got == list(range(700))
    assert report["source"].items_out == {"out": 700}
    assert report["sink"].items_in == {"inp": 700}


def test_push_many_of_a_batch_larger_than_the_queue_keeps_the_bound():
    got: list[int] = []
    high: list[int] = []

    async def slow(ins, outs, state):
        port = ins.inp
        try:
            while True:
                high.append(port.statistics().buffered)
                got.extend(await port.pop_many(3))
                await asyncio.sleep(0)
        except EndOfStream:
            pass

    run_workflow(chain(batch_source([list(range(100))]), Stream(["inp"], fn=slow), capacity=4), timeout=10)
    assert got == list(range(100))
    assert max(high) <= 4


def test_push_many_broadcasts_each_item_to_every_input_once():
    a: list[int] = []
    b: list[int] = []
    wf = Workflow(capacity=3)
    src = wf.add_stream(batch_source([[1, 2, 3, 4, 5], [], [6, 7]]))
    src.pipe(collector(a, name="a"))
    src.pipe(collector(b, name="b"))
    run_workflow(wf, timeout=10)
    assert a == b == [1, 2, 3, 4, 5, 6, 7]


def test_push_many_accepts_any_iterable():
    got: list[int] = []

    async def fn(ins, outs, state):
        await outs.out.push_many(x * x for x in range(5))
        await outs.out.push_many(range(5, 8))

    run_workflow(chain(Stream(outs=["out"], fn=fn), collector(got), capacity=2), timeout=10)
    assert got == [0, 1, 4, 9, 16, 5, 6, 7]


@pytest.mark.timeout(10)
def test_a_cancelled_push_many_delivered_a_prefix_and_nothing_else():
    async def main():
        ch: Channel[int] = Channel(3, end=EndOfStream)
        port: OutputPort[int] = OutputPort("out", "s", [ch])
        task = asyncio.ensure_future(port.push_many(list(range(10))))
        await asyncio.sleep(0.01)
        assert not task.done()  # 3 delivered, waiting for room
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert ch.pop_many_nowait(100) == [0, 1, 2]
        assert port.count == 3
        await port.push_many([10, 11])
        assert ch.pop_many_nowait(100) == [10, 11]

    asyncio.run(main())


@pytest.mark.timeout(10)
def test_push_many_after_close_raises_port_closed():
    async def main():
        port: OutputPort[int] = OutputPort("out", "s", [Channel(3)])
        port.close()
        with pytest.raises(PortClosed, match=r"push on output s\.out after it was closed"):
            await port.push_many([1])

    asyncio.run(main())


def test_push_many_tells_the_producer_when_every_consumer_is_gone():
    seen: dict[str, object] = {}

    async def producer(ins, outs, state):
        try:
            for i in range(1000):
                await outs.out.push_many([i, i, i])
            seen["all pushed"] = True
        finally:
            # ConsumersGone at its next push, or cancelled at once (issue 9 case 6).
            seen["gone"] = True

    async def first_only(ins, outs, state):
        seen["first"] = await ins.inp.pop()

    run_workflow(chain(Stream(outs=["out"], fn=producer), Stream(["inp"], fn=first_only), capacity=2), timeout=10)
    assert seen == {"first": 0, "gone": True}


@pytest.mark.timeout(10)
def test_push_many_wakes_one_waiting_consumer_per_item():
    async def main():
        ch: Channel[int] = Channel(10, consumers=2, end=EndOfStream)
        port: OutputPort[int] = OutputPort("out", "s", [ch])

        async def take() -> int:
            await ch.wait_item()
            item = ch.pop_nowait()
            assert isinstance(item, int)
            return item

        takers = [asyncio.ensure_future(take()) for _ in range(2)]
        await asyncio.sleep(0.01)
        await port.push_many([1, 2])
        assert sorted(await asyncio.gather(*takers)) == [1, 2]

    asyncio.run(main())


def test_channel_push_many_nowait_takes_the_prefix_that_fits():
    ch: Channel[int] = Channel(4)
    assert ch.room() == 4
    assert ch.push_many_nowait([1, 2, 3]) == 3
    assert ch.push_many_nowait([4, 5, 6]) == 1
    assert ch.room() == 0
    assert ch.push_many_nowait([7]) == 0
    assert ch.statistics().high_water == 4
    assert ch.pop_many_nowait(10) == [1, 2, 3, 4]
    ch.detach()
    assert ch.push_many_nowait([8, 9]) == 2  # discarded once the consumer left
    assert ch.statistics().dropped == 0  # nothing was buffered when it left


@pytest.mark.timeout(10)
def test_push_without_waiting_is_already_done_and_can_still_be_a_task():
    async def main():
        ch: Channel[int] = Channel(1, end=EndOfStream)
        port: OutputPort[int] = OutputPort("out", "s", [ch])
        first = port.push(1)
        assert ch.pop_nowait() == 1  # delivered as soon as there was room
        await first
        task = asyncio.ensure_future(port.push(2))
        await task
        blocked = asyncio.ensure_future(port.push(3))  # full: this one waits
        await asyncio.sleep(0.01)
        assert not blocked.done()
        assert ch.pop_nowait() == 2
        await asyncio.wait_for(blocked, 1)
        assert ch.pop_nowait() == 3
        assert port.count == 3

    asyncio.run(main())


@pytest.mark.timeout(10)
def test_a_port_made_outside_a_loop_still_pushes():
    ch: Channel[int] = Channel(2, end=EndOfStream)
    port: OutputPort[int] = OutputPort("out", "s", [ch])

    async def main():
        for i in range(5):
            await port.push(i)
            assert ch.pop_nowait() == i
        await port.push_many([5, 6])
        assert ch.pop_many_nowait(9) == [5, 6]

    asyncio.run(main())


def test_async_for_can_stop_and_resume_without_losing_an_item():
    seen: dict[str, list[int]] = {"first": [], "second": [], "anext": []}

    async def reader(ins, outs, state):
        port = ins.inp
        async for x in port:
            seen["first"].append(x)
            if x == 2:
                break
        seen["anext"].append(await anext(port))
        async for x in port:
            seen["second"].append(x)

    run_workflow(chain(batch_source([list(range(8))]), Stream(["inp"], fn=reader), capacity=3), timeout=10)
    assert seen == {"first": [0, 1, 2], "anext": [3], "second": [4, 5, 6, 7]}


@pytest.mark.timeout(10)
def test_a_many_way_fan_in_does_not_wake_every_producer_per_pop():
    class Waits:
        push = 0

        def wait_started(self, channel, kind, fut):
            if kind == "push":
                Waits.push += 1

        def wait_ended(self, channel, kind, fut, seconds):
            pass

    producers, each, cap = 20, 100, 10

    async def main():
        ch: Channel[int] = Channel(cap, producers=producers, end=EndOfStream, observer=Waits())

        async def produce(k: int) -> None:
            for i in range(each):
                await ch.push(k * each + i)
            ch.close_producer()

        tasks = [asyncio.ensure_future(produce(k)) for k in range(producers)]
        got = []
        try:
            while True:
                got.append(await ch.pop())
        except EndOfStream:
            pass
        await asyncio.gather(*tasks)
        return got

    got = asyncio.run(main())
    assert sorted(got) == list(range(producers * each))
    # Each producer's items stay in order.
    for k in range(producers):
        mine = [x for x in got if x // each == k]
        assert mine == sorted(mine)
    # Woken one at a time, a producer fills the room it finds: about one wait per
    # queue-full of items, not one per item.
    assert Waits.push < producers * each / 3


@pytest.mark.timeout(10)
def test_ports_on_a_channel_subclass_go_through_its_methods():
    class Tagging(Channel[str]):
        __slots__ = ()

        def push_nowait(self, item: str) -> bool:
            return super().push_nowait(item + "!")

        def _try_pop(self) -> object:
            item = super()._try_pop()
            return item if not isinstance(item, str) else item.upper()

    async def main():
        ch = Tagging(4, end=EndOfStream)
        out: OutputPort[str] = OutputPort("out", "s", [ch])
        inp: InputPort[str] = InputPort("inp", "c", ch)
        for x in "abc":
            await out.push(x)
        out.close()
        return [x async for x in inp]

    assert asyncio.run(main()) == ["A!", "B!", "C!"]


# -- found by mutation testing (tools/mutation.py) ----------------------------


@pytest.mark.timeout(10)
def test_push_many_broadcast_to_queues_of_different_room_delivers_each_item_once_to_each():
    async def main():
        small: Channel[int] = Channel(2)
        large: Channel[int] = Channel(4)
        port: OutputPort[int] = OutputPort("out", "s", [small, large])

        async def drain(ch: Channel[int]) -> list[int]:
            got = []
            try:
                while True:
                    got.append(await ch.pop())
                    await asyncio.sleep(0.001)
            except EndOfStream:
                return got

        readers = [asyncio.create_task(drain(small)), asyncio.create_task(drain(large))]
        await port.push_many(list(range(7)))
        port.close()
        assert await asyncio.wait_for(asyncio.gather(*readers), 5) == [list(range(7)), list(range(7))]
        assert port.count == 7

    asyncio.run(main())


def test_the_report_counts_items_sent_with_push_many_even_when_no_consumer_is_joined():
    async def many(ins, outs, state):
        await outs.out.push_many([1, 2, 3])
        await outs.out.push_many((4, 5))
        await outs.spare.push_many([1, 2])  # joined to nothing: discarded, still counted
        await outs.spare.push_many([3])

    got: list[int] = []
    wf = Workflow()
    src = wf.add_stream(Stream(outs=["out", "spare"], fn=many, name="many"))
    src.pipe(wf.add_stream(collector(got)), "out", "inp")
    report = run_workflow(wf, timeout=5)
    assert got == [1, 2, 3, 4, 5]
    assert report["many"].items_out == {"out": 5, "spare": 3}


@pytest.mark.timeout(10)
def test_push_many_into_nothing_returns_at_once_and_lets_other_tasks_run():
    async def main():
        ch: Channel[int] = Channel(4)
        port: OutputPort[int] = OutputPort("out", "s", [ch])
        ch.detach()  # the only consumer left
        ticks = 0

        async def other():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(other())
        await asyncio.sleep(0)
        before = ticks
        t0 = asyncio.get_running_loop().time()
        for _ in range(20):
            await port.push_many([1, 2, 3])
        assert asyncio.get_running_loop().time() - t0 < 0.5
        assert ticks > before
        assert port.count == 60
        task.cancel()

    asyncio.run(main())


@pytest.mark.timeout(10)
def test_push_many_whose_consumer_leaves_midway_counts_each_item_once():
    async def main():
        ch: Channel[int] = Channel(2)
        port: OutputPort[int] = OutputPort("out", "s", [ch])
        pushing = asyncio.create_task(port.push_many([1, 2, 3, 4, 5]))
        await asyncio.sleep(0.01)
        assert len(ch) == 2 and not pushing.done()  # two delivered, waiting for room
        ch.detach()  # the consumer leaves: the other three are discarded
        await asyncio.wait_for(pushing, 1)
        assert port.count == 5
        assert ch.statistics().dropped == 2

    asyncio.run(main())
