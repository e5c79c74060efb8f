"""What a stream sees on its ports: bounded, in-order queues, fan-out and the end of a stream.

See docs/concepts.md ("Ports", "Back-pressure", "The end of a stream", "Misusing
a port is an error") and docs/guarantees.md ("A local run").
"""

from __future__ import annotations

import asyncio
import time

import pytest

from mimo import (
    Channel,
    EndOfStream,
    InputPort,
    MimoError,
    OutputPort,
    PortClosed,
    PushNotAwaited,
    Stream,
    Workflow,
    WouldBlock,
    run_together,
)
from mimo.testing import run_workflow
from tests.helpers import chain, collector, source


def test_async_for_reads_every_item_in_order():
    got: list[int] = []
    run_workflow(chain(source(list(range(500))), collector(got), capacity=3), timeout=10)
    assert got == list(range(500))


def test_pop_peek_len_and_closed():
    seen: dict[str, object] = {}

    async def reader(ins, outs, state):
        port = ins.inp
        await asyncio.sleep(0.05)  # let the producer fill the queue and finish
        seen["len"] = len(port)
        seen["closed"] = port.closed
        seen["peek"] = await port.peek()
        seen["pop"] = await port.pop()
        seen["rest"] = [await port.pop(), await port.pop()]
        with pytest.raises(EndOfStream):
            await port.pop()
        with pytest.raises(EndOfStream):
            await port.peek()

    run_workflow(chain(source([None, 1, 2]), Stream(["inp"], fn=reader), capacity=5), timeout=10)
    assert seen == {"len": 3, "closed": True, "peek": None, "pop": None, "rest": [1, 2]}


def test_ports_by_attribute_by_name_iteration_and_len():
    seen = {}

    async def fn(ins, outs, state):
        seen["names"] = [p.name for p in ins] + [p.name for p in outs]
        seen["len"] = (len(ins), len(outs))
        seen["same"] = ins["a"] is ins.a and outs["y"] is outs.y
        seen["contains"] = "a" in ins and "zz" not in ins

    run_workflow(chain(Stream(["a", "b"], ["x", "y"], fn=fn)), timeout=10)
    assert seen == {"names": ["a", "b", "x", "y"], "len": (2, 2), "same": True, "contains": True}


def test_unknown_port_attribute_suggests_the_right_name():
    async def fn(ins, outs, state):
        with pytest.raises(AttributeError, match="did you mean 'entity'"):
            outs.entitty  # noqa: B018
        with pytest.raises(KeyError, match="no input 'x'"):
            ins["x"]

    run_workflow(chain(Stream(outs=["entity"], fn=fn, name="p")), timeout=10)


def test_end_of_stream_escaping_pop_ends_the_stream_cleanly():
    got: list[int] = []

    async def doubler(ins, outs, state):
        while True:
            x = await ins.inp.pop()
            await outs.out.push(2 * x)

    run_workflow(chain(source([1, 2, 3]), Stream(["inp"], ["out"], fn=doubler), collector(got)), timeout=10)
    assert got == [2, 4, 6]


def test_fan_out_broadcasts_every_item_to_every_consumer():
    a: list[int] = []
    b: list[int] = []
    wf = Workflow(capacity=2)
    src = wf.add_stream(source(list(range(100))))
    src.pipe(wf.add_stream(collector(a, "a")))
    src.pipe(wf.add_stream(collector(b, "b")))
    run_workflow(wf, timeout=10)
    assert a == b == list(range(100))


def test_fan_in_closes_when_every_producer_has_closed():
    got: list[str] = []
    wf = Workflow(capacity=1)
    sink = wf.add_stream(collector(got))
    wf.add_stream(source(["a"] * 20, "fast")).pipe(sink)

    async def slow(ins, outs, state):
        for _ in range(5):
            await asyncio.sleep(0.01)
            await outs.out.push("b")

    wf.add_stream(Stream(outs=["out"], fn=slow)).pipe(sink)
    run_workflow(wf, timeout=10)
    assert sorted(got) == ["a"] * 20 + ["b"] * 5


def test_producer_is_at_most_capacity_ahead_of_the_slowest_consumer():
    capacity = 3
    pushed = 0
    worst = 0

    async def produce(ins, outs, state):
        nonlocal pushed
        for i in range(200):
            await outs.out.push(i)
            pushed += 1

    def consumer(name, delay):
        async def consume(ins, outs, state):
            nonlocal worst
            done = 0
            async for _ in ins.inp:
                done += 1
                worst = max(worst, pushed - done)
                if delay:
                    await asyncio.sleep(delay)

        return Stream(["inp"], fn=consume, name=name)

    wf = Workflow(capacity=capacity)
    src = wf.add_stream(Stream(outs=["out"], fn=produce))
    src.pipe(wf.add_stream(consumer("fast", 0)))
    src.pipe(wf.add_stream(consumer("slow", 0.0005)))
    report = run_workflow(wf, timeout=20)
    assert worst <= capacity
    assert report["produce"].blocked_s > 0  # paced by the slow consumer


def test_consumer_that_stops_early_detaches_and_an_endless_producer_stops_quietly():
    got: list[int] = []
    stopped = []

    async def endless(ins, outs, state):
        i = 0
        try:
            while True:
                await outs.out.push(i)
                i += 1
        finally:
            # Told by ConsumersGone at its next push, or cancelled at once
            # (issue 9 case 6): either way it stops, and quietly.
            stopped.append(i)

    async def take3(ins, outs, state):
        for _ in range(3):
            got.append(await ins.inp.pop())

    run_workflow(chain(Stream(outs=["out"], fn=endless), Stream(["inp"], fn=take3), capacity=2), timeout=10)
    assert got == [0, 1, 2] and stopped


def test_fan_out_keeps_feeding_the_consumers_that_remain():
    long: list[int] = []

    async def take2(ins, outs, state):
        await ins.inp.pop()
        await ins.inp.pop()

    wf = Workflow(capacity=1)
    src = wf.add_stream(source(list(range(50))))
    src.pipe(wf.add_stream(Stream(["inp"], fn=take2)))
    src.pipe(wf.add_stream(collector(long)))
    run_workflow(wf, timeout=10)
    assert long == list(range(50))


def test_push_after_close_raises_port_closed_and_close_is_idempotent():
    got: list[int] = []

    async def fn(ins, outs, state):
        await outs.out.push(1)
        outs.out.close()
        outs.out.close()
        assert outs.out.closed
        with pytest.raises(PortClosed, match="fn.out"):
            await outs.out.push(2)

    run_workflow(chain(Stream(outs=["out"], fn=fn), collector(got)), timeout=10)
    assert got == [1]


def test_closing_an_output_early_ends_the_consumer_while_the_producer_goes_on():
    got: list[int] = []
    after = []

    async def fn(ins, outs, state):
        await outs.out.push(1)
        outs.out.close()
        await asyncio.sleep(0.05)
        after.append(True)

    run_workflow(chain(Stream(outs=["out"], fn=fn), collector(got)), timeout=10)
    assert got == [1] and after == [True]


def test_output_joined_to_nothing_discards_counts_and_warns(caplog):
    report = run_workflow(chain(source([1, 2, 3])), timeout=10)
    assert report["source"].items_out == {"out": 3}
    assert "output source.out is joined to nothing" in caplog.text


def test_input_joined_to_nothing_is_at_its_end():
    ends = []

    async def fn(ins, outs, state):
        with pytest.raises(EndOfStream):
            await ins.inp.pop()
        ends.append(ins.inp.closed)

    run_workflow(chain(Stream(["inp"], fn=fn)), timeout=10)
    assert ends == [True]


def test_capacity_zero_still_delivers_everything_in_order():
    got: list[int] = []
    run_workflow(chain(source(list(range(100))), Stream(["a"], ["b"]), collector(got), capacity=0), timeout=10)
    assert got == list(range(100))


def test_pop_many_reads_batches_until_the_end():
    batches: list[list[int]] = []

    async def fn(ins, outs, state):
        while True:
            batches.append(await ins.inp.pop_many(10))

    run_workflow(chain(source(list(range(95))), Stream(["inp"], fn=fn), capacity=64), timeout=10)
    assert [x for b in batches for x in b] == list(range(95))
    assert all(1 <= len(b) <= 10 for b in batches)


def test_pop_with_a_timeout_raises_and_takes_nothing():
    seen = []

    async def fn(ins, outs, state):
        with pytest.raises(TimeoutError, match=r"no item on \S+\.inp in time"):
            await ins.inp.pop(timeout=0.01)
        seen.append(await ins.inp.pop(timeout=5))
        seen.append(await ins.inp.pop_many(10, timeout=5))

    async def late(ins, outs, state):
        await asyncio.sleep(0.1)
        await outs.out.push("a")
        await outs.out.push("b")

    run_workflow(chain(Stream(outs=["out"], fn=late), Stream(["inp"], fn=fn)), timeout=10)
    assert seen == ["a", ["b"]]


def test_a_timed_pop_is_never_part_of_a_deadlock():
    """`a` waits on `b` with a timeout, then gives up and pushes: not a deadlock."""
    got = []

    async def a(ins, outs, state):
        try:
            await ins.inp.pop(timeout=0.05)
        except TimeoutError:
            await outs.out.push("timed out")
        # Read on until b ends, so that b keeps a consumer (and is not stopped early).
        async for _ in ins.inp:
            pass

    async def b(ins, outs, state):
        async for x in ins.inp:
            got.append(x)
            return

    wf = Workflow()
    sa = wf.add_stream(Stream(["inp"], ["out"], fn=a, name="a"))
    sb = wf.add_stream(Stream(["inp"], ["out"], fn=b, name="b"))
    sa.pipe(sb).pipe(sa)
    run_workflow(wf, timeout=10)
    assert got == ["timed out"]


def test_a_producer_that_closed_one_output_is_told_when_the_others_consumers_leave():
    pushed = []

    async def two_outputs(ins, outs, state):
        outs.a.close()
        for i in range(100_000):
            await outs.b.push(i)
            pushed.append(i)

    async def take1(ins, outs, state):
        await ins.inp.pop()

    wf = Workflow(capacity=2)
    src = wf.add_stream(Stream(outs=["a", "b"], fn=two_outputs))
    src.pipe(wf.add_stream(Stream(["inp"], name="drain_a")), output="a")
    src.pipe(wf.add_stream(Stream(["inp"], fn=take1)), output="b")
    run_workflow(wf, timeout=10)
    assert len(pushed) < 10  # stopped by ConsumersGone, not by running out


def test_pushing_into_nothing_lets_other_tasks_run():
    async def endless(ins, outs, state):
        while True:
            await outs.nowhere.push(0)

    async def main():
        wf = Workflow()
        wf.add_stream(Stream(outs=["nowhere"], fn=endless))
        # asyncio.timeout's own error has no message; mimo's timeouts all have one.
        with pytest.raises(TimeoutError, match=r"^$"):
            async with asyncio.timeout(0.2):
                await wf.run_async()

    asyncio.run(main())


def test_overlapping_waits_in_one_stream_never_exceed_its_life():
    async def slow(ins, outs, state):
        await asyncio.sleep(0.2)
        await outs.out.push(1)

    async def two_at_once(ins, outs, state):
        async def read(port):
            async for _ in port:
                pass

        async with asyncio.TaskGroup() as tg:
            tg.create_task(read(ins.a))
            tg.create_task(read(ins.b))

    wf = Workflow()
    both = wf.add_stream(Stream(["a", "b"], fn=two_at_once, name="both"))
    wf.add_stream(Stream(outs=["out"], fn=slow, name="s1")).pipe(both, input="a")
    wf.add_stream(Stream(outs=["out"], fn=slow, name="s2")).pipe(both, input="b")
    report = run_workflow(wf, timeout=10)
    assert report["both"].starved_s <= report["both"].elapsed_s + 1e-6


# -- issue 9: no silent wrong results at the ports --------------------------------


@pytest.mark.timeout(10)
@pytest.mark.parametrize("n", [3, 1000])  # below and far above the capacity
@pytest.mark.parametrize("method", ["push", "push_many"])
def test_a_push_not_awaited_fails_the_run_naming_stream_and_port(n, method):
    got: list[int] = []

    async def forgetful(ins, outs, state):
        for i in range(n):
            if method == "push":
                outs.out.push(i)  # the bug: no await
            else:
                outs.out.push_many([i])

    wf = chain(Stream(outs=["out"], fn=forgetful, name="forgetful"), collector(got), capacity=64)
    with pytest.raises(PushNotAwaited, match=r"forgetful\.out was not awaited"):
        run_workflow(wf, timeout=5)
    assert issubclass(PushNotAwaited, MimoError)


@pytest.mark.timeout(10)
def test_a_single_push_not_awaited_as_the_last_statement_fails_the_run():
    async def last_push_forgotten(ins, outs, state):
        await outs.out.push(0)
        outs.out.push(1)

    wf = chain(Stream(outs=["out"], fn=last_push_forgotten, name="lp"), collector([]))
    with pytest.raises(PushNotAwaited, match=r"lp\.out was not awaited"):
        run_workflow(wf, timeout=5)


@pytest.mark.timeout(10)
def test_close_after_a_push_not_awaited_raises_in_the_stream():
    seen: list[str] = []

    async def fn(ins, outs, state):
        outs.out.push(1)
        try:
            outs.out.close()
        except PushNotAwaited as exc:
            seen.append(str(exc))
            raise

    with pytest.raises(PushNotAwaited, match=r"fn\.out was not awaited"):
        run_workflow(chain(Stream(outs=["out"], fn=fn), collector([])), timeout=5)
    assert len(seen) == 1 and "await" in seen[0]


@pytest.mark.timeout(10)
@pytest.mark.parametrize("capacity", [0, 1, 64])
def test_a_push_run_as_a_task_or_awaited_later_counts_as_awaited(capacity):
    got: list[int] = []

    async def fn(ins, outs, state):
        pending = outs.out.push(0)  # awaited later: fine
        await pending
        await asyncio.create_task(outs.out.push(1))
        await asyncio.ensure_future(outs.out.push_many([2, 3]))
        await asyncio.gather(outs.out.push(4))
        await asyncio.wait_for(outs.out.push(5), 5)

    run_workflow(chain(Stream(outs=["out"], fn=fn), collector(got), capacity=capacity), timeout=5)
    assert got == [0, 1, 2, 3, 4, 5]


@pytest.mark.timeout(10)
@pytest.mark.parametrize("capacity", [0, 1, 8])
def test_sub_tasks_pushing_to_one_output_each_await_their_own_push(capacity):
    got: list[tuple[str, int]] = []

    async def fn(ins, outs, state):
        async def part(tag: str) -> None:
            for i in range(50):
                await outs.out.push((tag, i))

        await run_together(part("a"), part("b"), part("c"))

    run_workflow(chain(Stream(outs=["out"], fn=fn), collector(got), capacity=capacity), timeout=5)
    for tag in "abc":
        assert [i for t, i in got if t == tag] == list(range(50))
    assert len(got) == 150


def _blocked_port(channels: int, capacity: int = 1):
    chans = [Channel(capacity, end=EndOfStream) for _ in range(channels)]
    return chans, OutputPort("out", "prod", chans)


@pytest.mark.timeout(10)
@pytest.mark.parametrize("channels", [1, 2])  # a single output and a broadcast
@pytest.mark.parametrize("method", ["push", "push_many"])
def test_close_fails_a_push_waiting_on_that_output_at_once(channels, method):
    async def main():
        chans, port = _blocked_port(channels)
        await port.push("first")  # every queue is now full
        if method == "push":
            waiting = asyncio.create_task(port.push("late"))
        else:
            waiting = asyncio.create_task(port.push_many(["late", "later"]))
        await asyncio.sleep(0.01)
        assert not waiting.done()
        port.close()
        # At once: no consumer has freed any room.
        with pytest.raises(PortClosed, match=r"prod\.out was closed while a push waited"):
            await asyncio.wait_for(waiting, 1)
        for ch in chans:  # the waiting push delivered nothing, and the queue ends
            assert await ch.pop() == "first"
            with pytest.raises(EndOfStream):
                await ch.pop()
        assert port.count == 1

    asyncio.run(main())


@pytest.mark.timeout(10)
def test_close_fails_a_push_many_after_delivering_the_prefix_that_fitted():
    async def main():
        (ch,), port = _blocked_port(1, capacity=2)
        waiting = asyncio.create_task(port.push_many([1, 2, 3, 4]))
        await asyncio.sleep(0.01)
        port.close()
        with pytest.raises(PortClosed, match="closed while a push waited"):
            await waiting
        assert [x async for x in InputPort("inp", "c", ch)] == [1, 2]
        assert port.count == 2

    asyncio.run(main())


@pytest.mark.timeout(10)
def test_close_does_not_swallow_a_cancellation_of_the_waiting_push():
    async def main():
        _, port = _blocked_port(1)
        await port.push(0)
        waiting = asyncio.create_task(port.push(1))
        await asyncio.sleep(0.01)
        waiting.cancel()
        port.close()
        with pytest.raises(asyncio.CancelledError):
            await waiting

    asyncio.run(main())


@pytest.mark.timeout(10)
def test_close_in_a_workflow_fails_the_sibling_push_and_the_run_goes_on():
    got: list[int] = []
    errors: list[str] = []

    async def fn(ins, outs, state):
        async def flood() -> None:
            try:
                for i in range(1000):
                    await outs.out.push(i)
            except PortClosed as exc:
                errors.append(str(exc))

        task = asyncio.create_task(flood())
        await asyncio.sleep(0.05)  # the slow consumer keeps the queue full
        outs.out.close()
        await asyncio.wait_for(task, 1)

    async def slow(ins, outs, state):
        async for x in ins.inp:
            got.append(x)
            await asyncio.sleep(0.2)

    run_workflow(chain(Stream(outs=["out"], fn=fn), Stream(["inp"], fn=slow), capacity=2), timeout=5)
    assert len(errors) == 1 and "closed while a push waited" in errors[0]
    assert got == list(range(len(got))) and 1 <= len(got) <= 3


@pytest.mark.timeout(5)
@pytest.mark.parametrize("bad", [0, -1, True, 2.5, None])
def test_pop_many_refuses_a_limit_below_one_naming_the_port(bad):
    async def main():
        ch: Channel[int] = Channel(4, end=EndOfStream)
        await ch.push(1)
        port: InputPort[int] = InputPort("inp", "reader", ch)
        with pytest.raises(ValueError, match=r"reader\.inp: limit must be an int >= 1"):
            await port.pop_many(bad)
        assert await port.pop_many(1) == [1]  # nothing was taken

    asyncio.run(main())


def test_input_pop_nowait_raises_would_block_not_a_lookup_error():
    async def main():
        ch: Channel[int] = Channel(4, end=EndOfStream)
        port: InputPort[int] = InputPort("inp", "reader", ch)
        with pytest.raises(WouldBlock, match=r"reader\.inp") as info:
            port.pop_nowait()
        assert not isinstance(info.value, LookupError)
        assert isinstance(info.value, MimoError)
        await ch.push(7)
        assert port.pop_nowait() == 7

    asyncio.run(main())


@pytest.mark.timeout(10)
@pytest.mark.parametrize("method", ["pop", "pop_many"])
def test_a_timed_pop_waits_the_whole_timeout_and_takes_what_comes_within_it(method):
    async def main():
        ch: Channel[int] = Channel(4, end=EndOfStream)
        port: InputPort[int] = InputPort("inp", "reader", ch)

        async def call():
            return await (port.pop(timeout=0.2) if method == "pop" else port.pop_many(timeout=0.2))

        t0 = time.monotonic()
        with pytest.raises(TimeoutError, match=r"reader\.inp"):
            await call()
        assert time.monotonic() - t0 >= 0.19  # never gives up early

        async def later() -> None:
            await asyncio.sleep(0.05)
            await ch.push(5)

        feeder = asyncio.create_task(later())
        t0 = time.monotonic()
        got = await call()
        assert got == (5 if method == "pop" else [5])
        assert 0.04 <= time.monotonic() - t0 < 0.19
        await feeder

    asyncio.run(main())


@pytest.mark.timeout(10)
@pytest.mark.parametrize(("forgotten", "next_call"), [("push", "push_many"), ("push_many", "push")])
def test_a_push_not_awaited_is_found_by_the_next_call_of_either_kind(forgotten, next_call):
    async def main():
        ch: Channel[int] = Channel(8, end=EndOfStream)
        port: OutputPort[int] = OutputPort("out", "s", [ch])
        port.push(1) if forgotten == "push" else port.push_many([1])
        with pytest.raises(PushNotAwaited, match=r"s\.out was not awaited"):
            await (port.push(2) if next_call == "push" else port.push_many([2]))

    asyncio.run(main())


@pytest.mark.timeout(5)
@pytest.mark.parametrize("bad", ["1", float("nan"), -1, True])
@pytest.mark.parametrize("method", ["pop", "pop_many"])
def test_a_bad_pop_timeout_is_refused_even_when_an_item_is_ready(bad, method):
    async def main():
        ch: Channel[int] = Channel(4, end=EndOfStream)
        await ch.push(1)
        port: InputPort[int] = InputPort("inp", "reader", ch)
        with pytest.raises(ValueError, match=r"reader\.inp: timeout must be a number of seconds >= 0"):
            await (port.pop(timeout=bad) if method == "pop" else port.pop_many(timeout=bad))
        assert len(port) == 1  # nothing was taken

    asyncio.run(main())


@pytest.mark.timeout(5)
@pytest.mark.parametrize("text", ["abc", b"abc", bytearray(b"abc")])
def test_push_many_refuses_a_string_rather_than_splitting_it(text):
    async def main():
        ch: Channel[object] = Channel(4, end=EndOfStream)
        port: OutputPort[object] = OutputPort("out", "s", [ch])
        with pytest.raises(TypeError, match=r"push_many on s\.out takes an iterable of items, not a"):
            await port.push_many(text)
        await port.push_many([text])  # as one item: fine
        assert ch.pop_many_nowait(9) == [text]

    asyncio.run(main())


# -- found by mutation testing (tools/mutation.py) ----------------------------


def test_the_wait_clocks_of_a_stream_run_on_a_host_count_overlapping_waits_once():
    """Streams run on a worker host (Ray) report these clocks as blocked and starved time."""
    from mimo._ports import PortTimes

    times = PortTimes()
    assert (times.blocked_s, times.starved_s) == (0.0, 0.0)
    t0 = time.perf_counter()
    times.pushing.start()
    times.pushing.start()  # a second wait, from a sub-task, overlaps the first
    time.sleep(0.03)
    times.pushing.stop()
    time.sleep(0.03)
    times.pushing.stop()
    on = time.perf_counter() - t0
    time.sleep(0.03)  # no wait on: the clock stands still
    assert on - 0.01 <= times.blocked_s <= on
    t1 = time.perf_counter()
    times.pushing.start()
    time.sleep(0.02)
    times.pushing.stop()
    on += time.perf_counter() - t1
    assert on - 0.02 <= times.blocked_s <= on
    assert times.starved_s == 0.0


def test_pop_many_without_a_limit_takes_at_most_1024_items():
    async def main():
        ch: Channel[int] = Channel(3000)
        assert ch.push_many_nowait(range(3000)) == 3000
        port: InputPort[int] = InputPort("inp", "reader", ch)
        first = await port.pop_many()
        assert first == list(range(1024))
        assert len(await port.pop_many()) == 1024

    asyncio.run(asyncio.wait_for(main(), 5))


@pytest.mark.timeout(10)
def test_a_timeout_of_zero_takes_what_is_buffered_and_else_times_out_at_once():
    async def main():
        ch: Channel[int] = Channel(4)
        port: InputPort[int] = InputPort("inp", "reader", ch)
        ch.push_nowait(1)
        assert await port.pop(timeout=0) == 1
        with pytest.raises(TimeoutError, match="no item on reader.inp in time"):
            await port.pop(timeout=0)
        ch.push_nowait(2)
        assert await port.pop_many(timeout=0) == [2]
        with pytest.raises(TimeoutError, match="no item on reader.inp in time"):
            await port.pop_many(timeout=0)

    asyncio.run(main())


@pytest.mark.timeout(10)
def test_the_report_counts_the_time_a_consumer_waited_for_items_as_starved():
    async def slow(ins, outs, state):
        await asyncio.sleep(0.2)
        await outs.out.push(1)

    got: list[int] = []
    report = run_workflow(chain(Stream(outs=["out"], fn=slow, name="slow"), collector(got)), timeout=5)
    assert got == [1]
    sink = report["sink"]
    assert 0.15 <= sink.starved_s <= sink.elapsed_s
    assert sink.blocked_s == 0.0


@pytest.mark.timeout(5)
def test_peek_waits_for_an_item_and_leaves_it_for_pop():
    async def main():
        ch: Channel[int] = Channel(2)
        port: InputPort[int] = InputPort("inp", "reader", ch)
        peeking = asyncio.create_task(port.peek())
        await asyncio.sleep(0.01)
        assert not peeking.done()
        ch.push_nowait(7)
        assert await asyncio.wait_for(peeking, 1) == 7
        assert await port.pop() == 7

    asyncio.run(main())


@pytest.mark.timeout(10)
def test_a_consumer_reading_with_async_for_lets_the_producer_refill_after_each_item():
    async def main():
        ch: Channel[int] = Channel(1)
        port: InputPort[int] = InputPort("inp", "reader", ch)

        async def produce():
            for i in range(5):
                await ch.push(i)
            ch.close_producer()

        producer = asyncio.create_task(produce())
        await asyncio.sleep(0.01)
        got = []
        async for item in port:
            got.append(item)
            await asyncio.sleep(0.01)
            # The slot this item freed was refilled at once, not when the reader ran dry.
            assert len(port) == (1 if item < 4 else 0)
        await producer
        assert got == [0, 1, 2, 3, 4]

    asyncio.run(main())


@pytest.mark.timeout(10)
def test_a_push_run_as_a_task_and_cancelled_before_it_starts_ends_cancelled():
    async def main():
        ch: Channel[int] = Channel(2)
        port: OutputPort[int] = OutputPort("out", "s", [ch])
        task = asyncio.create_task(port.push(1))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert task.cancelled()
        await port.push(2)  # the cancelled push counts as awaited: no PushNotAwaited here

    asyncio.run(main())


@pytest.mark.timeout(10)
def test_pushing_on_after_the_only_consumer_left_discards_and_lets_other_tasks_run():
    async def main():
        ch: Channel[int] = Channel(4)
        port: OutputPort[int] = OutputPort("out", "s", [ch])
        await port.push(0)
        ch.detach()  # the consumer left
        assert port.consumers == 0
        ticks = 0

        async def other():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(other())
        await asyncio.sleep(0)
        before = ticks
        for i in range(1000):
            await port.push(i)
        assert ticks > before  # the discarding loop yielded to the event loop
        assert ch.statistics().dropped == 1 and len(ch) == 0
        task.cancel()

    asyncio.run(main())


@pytest.mark.timeout(10)
def test_consumers_leaving_one_output_do_not_stop_a_stream_whose_other_output_is_still_read():
    async def two_outputs(ins, outs, state):
        for i in range(50):
            await outs.a.push(i)
            await outs.b.push(i)

    async def take_one(ins, outs, state):
        await ins.inp.pop()

    got: list[int] = []
    wf = Workflow(capacity=2)
    src = wf.add_stream(Stream(outs=["a", "b"], fn=two_outputs, name="src"))
    src.pipe(wf.add_stream(Stream(["inp"], fn=take_one, name="first")), "a", "inp")
    src.pipe(wf.add_stream(Stream(["inp"], fn=take_one, name="second")), "a", "inp")
    src.pipe(wf.add_stream(collector(got, name="all")), "b", "inp")
    report = run_workflow(wf, timeout=5)
    assert got == list(range(50))
    assert not report["src"].stopped_early


@pytest.mark.timeout(10)
def test_a_broadcast_woken_for_room_it_cannot_use_yet_passes_the_room_to_another_producer():
    async def main():
        shared: Channel[int] = Channel(1, producers=2)
        other: Channel[int] = Channel(1)
        both: OutputPort[int] = OutputPort("out", "p1", [shared, other])
        single: OutputPort[int] = OutputPort("out", "p2", [shared])
        shared.push_nowait(-1)
        first = asyncio.create_task(both.push(1))
        await asyncio.sleep(0.01)
        second = asyncio.create_task(single.push(2))
        await asyncio.sleep(0.01)
        assert shared.pop_nowait() == -1  # room on `shared`: `first` is woken for it ...
        other.push_nowait(-2)  # ... but now waits for `other`, so `second` takes the room
        await asyncio.wait_for(second, 1)
        assert shared.peek_nowait() == 2 and not first.done()
        assert other.pop_nowait() == -2
        assert shared.pop_nowait() == 2
        await asyncio.wait_for(first, 1)
        assert (shared.pop_nowait(), other.pop_nowait()) == (1, 1)

    asyncio.run(main())


@pytest.mark.timeout(10)
def test_a_stream_whose_last_push_is_not_awaited_fails_the_run_naming_the_port():
    async def forgets(ins, outs, state):
        await outs.out.push(1)
        outs.out.push(2)  # the mistake under test

    with pytest.raises(PushNotAwaited, match=r"a push on output forgets\.out was not awaited"):
        run_workflow(chain(Stream(outs=["out"], fn=forgets, name="forgets"), collector([])), timeout=5)


@pytest.mark.timeout(10)
def test_a_stream_whose_outputs_are_joined_to_nothing_pushes_into_nothing_to_the_end():
    finished: list[str] = []

    async def talks_to_nobody(ins, outs, state):
        for i in range(3):
            await outs.nowhere.push(i)
        await outs.nowhere.push_many([4, 5])
        finished.append("done")

    wf = Workflow()
    wf.add_stream(Stream(outs=["nowhere"], fn=talks_to_nobody, name="lone"))
    report = run_workflow(wf, timeout=5)
    assert finished == ["done"]
    assert report["lone"].items_out == {"nowhere": 5}


@pytest.mark.timeout(10)
def test_a_producer_with_one_output_whose_only_consumer_left_is_stopped_early():
    async def endless(ins, outs, state):
        i = 0
        while True:
            await outs.out.push(i)
            i += 1

    async def take_three(ins, outs, state):
        for _ in range(3):
            await ins.inp.pop()

    wf = chain(Stream(outs=["out"], fn=endless, name="src"), Stream(["inp"], fn=take_three))
    report = run_workflow(wf, timeout=5)
    assert report["src"].stopped_early


@pytest.mark.timeout(10)
def test_a_push_in_the_finally_of_a_stream_stopped_early_raises_consumers_gone():
    from mimo import ConsumersGone

    seen: list[str] = []

    async def endless(ins, outs, state):
        try:
            i = 0
            while True:
                await outs.out.push(i)
                i += 1
        finally:
            try:
                await outs.out.push(-1)
            except ConsumersGone:
                seen.append("gone")

    async def take_three(ins, outs, state):
        for _ in range(3):
            await ins.inp.pop()

    wf = chain(Stream(outs=["out"], fn=endless, name="src"), Stream(["inp"], fn=take_three))
    report = run_workflow(wf, timeout=5)
    assert seen == ["gone"]
    assert report["src"].stopped_early
