"""The bounded queue: bound, FIFO, hand-over, fan-in close, detach, cancellation."""

from __future__ import annotations

import asyncio
import gc

import pytest

from mimo import Channel, EndOfStream, InputPort, MimoError, OutputPort, PortClosed, WouldBlock


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 5))


def chan(capacity=2, **kw):
    return Channel(capacity, end=EndOfStream, **kw)


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3", None])
def test_capacity_must_be_a_non_negative_int(bad):
    with pytest.raises(ValueError, match="capacity"):
        Channel(bad)


def test_push_nowait_refuses_when_full_and_keeps_fifo():
    ch = chan(2)
    assert ch.push_nowait(1) and ch.push_nowait(2)
    assert not ch.push_nowait(3)
    assert [ch.pop_nowait(), ch.pop_nowait()] == [1, 2]
    with pytest.raises(WouldBlock, match="no item buffered"):
        ch.pop_nowait()


def test_none_is_an_ordinary_item():
    ch = chan(1)
    assert ch.push_nowait(None)
    assert ch.peek_nowait() is None
    assert ch.pop_nowait() is None


def test_capacity_zero_hands_over_only_to_a_waiting_consumer():
    async def main():
        ch = chan(0)
        assert not ch.push_nowait("x")  # nobody is asking
        getter = asyncio.create_task(ch.pop())
        await asyncio.sleep(0)
        assert ch.push_nowait("x")
        assert await getter == "x"
        assert ch.statistics().high_water == 0

    run(main())


def test_capacity_zero_push_waits_for_the_consumer():
    async def main():
        ch = chan(0)
        pusher = asyncio.create_task(ch.push("x"))
        await asyncio.sleep(0.01)
        assert not pusher.done()
        assert await ch.pop() == "x"
        await pusher

    run(main())


def test_pop_waits_for_an_item():
    async def main():
        ch = chan(1)
        getter = asyncio.create_task(ch.pop())
        await asyncio.sleep(0.01)
        assert not getter.done()
        await ch.push(7)
        assert await getter == 7

    run(main())


def test_push_waits_while_full_and_resumes_after_a_pop():
    async def main():
        ch = chan(1)
        await ch.push(1)
        pusher = asyncio.create_task(ch.push(2))
        await asyncio.sleep(0.01)
        assert not pusher.done() and len(ch) == 1
        assert await ch.pop() == 1
        await pusher
        assert await ch.pop() == 2

    run(main())


def test_fan_in_closes_after_the_last_producer():
    async def main():
        ch = chan(4, producers=2)
        await ch.push("a")
        ch.close_producer()
        assert not ch.closed
        await ch.push("b")
        ch.close_producer()
        assert ch.closed
        assert [await ch.pop(), await ch.pop()] == ["a", "b"]
        with pytest.raises(EndOfStream):
            await ch.pop()
        with pytest.raises(EndOfStream):
            await ch.peek()

    run(main())


def test_close_wakes_a_waiting_consumer_with_end_of_stream():
    async def main():
        ch = chan(1)
        getter = asyncio.create_task(ch.pop())
        await asyncio.sleep(0)
        ch.close_producer()
        with pytest.raises(EndOfStream):
            await getter

    run(main())


def test_peek_leaves_the_item_for_pop():
    async def main():
        ch = chan(2)
        peeker = asyncio.create_task(ch.peek())
        await asyncio.sleep(0)
        await ch.push("p")
        assert await peeker == "p"
        assert await ch.peek() == "p"
        assert await ch.pop() == "p"

    run(main())


def test_cancelled_pop_takes_no_item():
    async def main():
        ch = chan(1)
        getter = asyncio.create_task(ch.pop())
        await asyncio.sleep(0)
        getter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await getter
        await ch.push("kept")
        assert await ch.pop() == "kept"

    run(main())


def test_pop_woken_then_cancelled_leaves_the_item_buffered():
    async def main():
        ch = chan(1)
        getter = asyncio.create_task(ch.pop())
        await asyncio.sleep(0)
        assert ch.push_nowait("kept")  # wakes the getter...
        getter.cancel()  # ...which is cancelled before it runs
        with pytest.raises(asyncio.CancelledError):
            await getter
        assert ch.pop_nowait() == "kept"

    run(main())


def test_cancelled_push_enqueued_nothing():
    async def main():
        ch = chan(1)
        await ch.push("first")
        pusher = asyncio.create_task(ch.push("never"))
        await asyncio.sleep(0)
        pusher.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pusher
        assert ch.pop_nowait() == "first"
        with pytest.raises(WouldBlock, match="no item buffered"):
            ch.pop_nowait()

    run(main())


def test_push_woken_then_cancelled_passes_the_room_on():
    async def main():
        ch = chan(1)
        await ch.push(0)
        first = asyncio.create_task(ch.push(1))
        second = asyncio.create_task(ch.push(2))
        await asyncio.sleep(0)
        assert ch.pop_nowait() == 0  # wakes `first`
        first.cancel()
        await asyncio.wait_for(second, 1)  # the room went to `second`
        assert ch.pop_nowait() == 2

    run(main())


def test_detach_drops_items_wakes_pushers_and_discards_later_pushes():
    async def main():
        ch = chan(1)
        told = []
        ch.on_detach.append(told.append)
        await ch.push(1)
        pusher = asyncio.create_task(ch.push(2))
        await asyncio.sleep(0)
        ch.detach()
        await asyncio.wait_for(pusher, 1)
        assert told == [ch] and ch.detached
        assert ch.push_nowait(3)
        st = ch.statistics()
        assert st.buffered == 0 and st.dropped == 1

    run(main())


def test_several_consumers_each_item_goes_to_one():
    async def main():
        ch = chan(2, consumers=3)
        got: list[int] = []

        async def consume():
            while True:
                try:
                    got.append(await ch.pop())
                except EndOfStream:
                    return
                await asyncio.sleep(0)

        tasks = [asyncio.create_task(consume()) for _ in range(3)]
        for i in range(50):
            await ch.push(i)
        ch.close_producer()
        await asyncio.gather(*tasks)
        assert sorted(got) == list(range(50))
        ch.close_consumer()
        ch.close_consumer()
        assert not ch.detached
        ch.close_consumer()
        assert ch.detached

    run(main())


def test_pop_many_takes_what_is_buffered_and_wakes_pushers():
    async def main():
        ch = chan(3)
        for i in range(3):
            await ch.push(i)
        pusher = asyncio.create_task(ch.push(3))
        await asyncio.sleep(0)
        assert ch.pop_many_nowait(10) == [0, 1, 2]
        await asyncio.wait_for(pusher, 1)
        assert ch.pop_many_nowait(10) == [3]
        ch.close_producer()
        with pytest.raises(EndOfStream):
            ch.pop_many_nowait(10)

    run(main())


def test_statistics_count_pops_high_water_and_waits():
    async def main():
        ch = chan(2, label="a.x -> b.y")
        await ch.push(1)
        await ch.push(2)
        ch.pop_nowait()
        st = ch.statistics()
        assert (st.label, st.capacity, st.buffered, st.popped, st.high_water) == ("a.x -> b.y", 2, 1, 1, 2)
        assert st.open_producers == 1 and not st.detached

    run(main())


@pytest.mark.parametrize("capacity", [0, 2])
def test_dropped_counts_what_was_buffered_when_the_consumer_left(capacity):
    ch = chan(capacity)
    if capacity:
        ch.push_nowait("a")
    ch.detach()
    for i in range(8):
        assert ch.push_nowait(i)
    assert ch.push_many_nowait([1, 2, 3]) == 3
    assert ch.statistics().dropped == (1 if capacity else 0)


# -- issue 9: a public Channel with the ports' guarantees -------------------------


def test_closing_more_times_than_producers_is_an_error_and_the_count_stays_at_zero():
    ch = chan(2, producers=2, label="a -> b")
    ch.close_producer()
    assert not ch.closed
    ch.close_producer()
    assert ch.closed
    ch.close_consumer()  # the one consumer left
    assert ch.detached
    with pytest.raises(PortClosed, match="'a -> b' is already closed: close_producer"):
        ch.close_producer()
    assert ch.statistics().open_producers == 0 and ch.closed


def test_a_push_after_close_raises_port_closed_and_adds_nothing():
    async def main():
        ch = chan(4, label="x")
        ch.push_nowait(1)
        ch.close_producer()
        with pytest.raises(PortClosed, match="push on channel 'x' after it was closed"):
            ch.push_nowait(2)
        with pytest.raises(PortClosed, match="after it was closed"):
            ch.push_many_nowait([3])
        with pytest.raises(PortClosed, match="after it was closed"):
            await ch.push(4)
        assert await ch.pop() == 1
        with pytest.raises(EndOfStream):
            await ch.pop()

    run(main())


def test_the_default_end_is_end_of_stream_and_nothing_private_escapes():
    async def main():
        ch: Channel[int] = Channel(1)
        ch.close_producer()
        for take in (ch.pop, ch.peek):
            with pytest.raises(EndOfStream):
                await take()
        with pytest.raises(EndOfStream):
            ch.pop_nowait()

    run(main())
    import mimo._channel

    assert not hasattr(mimo._channel, "_Closed")


def test_nowait_reads_raise_would_block_a_mimo_error_not_a_lookup_error():
    ch = chan(2, label="q")
    for read in (ch.pop_nowait, ch.peek_nowait):
        with pytest.raises(WouldBlock, match="no item buffered on channel 'q'") as info:
            read()
        assert isinstance(info.value, MimoError) and not isinstance(info.value, LookupError)
    ch.push_nowait(None)
    assert ch.peek_nowait() is None and ch.pop_nowait() is None


@pytest.mark.parametrize("bad", [0, -1, True, 1.0])
def test_pop_many_nowait_refuses_a_limit_below_one(bad):
    ch = chan(2, label="q")
    ch.push_nowait(1)
    with pytest.raises(ValueError, match="channel 'q': limit must be an int >= 1"):
        ch.pop_many_nowait(bad)
    assert ch.pop_many_nowait(5) == [1]


@pytest.mark.timeout(10)
@pytest.mark.parametrize("consumers", [1, 3])
def test_push_many_at_capacity_zero_hands_every_item_over_in_order(consumers):
    async def main():
        ch: Channel[int] = Channel(0, consumers=consumers, end=EndOfStream)
        port: OutputPort[int] = OutputPort("out", "s", [ch])
        order: list[int] = []
        mine: dict[int, list[int]] = {k: [] for k in range(consumers)}

        async def consume(k: int) -> None:
            try:
                while True:
                    item = await ch.pop()
                    order.append(item)
                    mine[k].append(item)
            except EndOfStream:
                pass

        readers = [asyncio.create_task(consume(k)) for k in range(consumers)]
        await asyncio.sleep(0.01)  # every consumer is waiting
        await port.push_many(list(range(30)))
        await port.push_many((30, 31))
        port.close()
        await asyncio.gather(*readers)
        assert order == list(range(32))
        assert ch.statistics().high_water == 0  # handed over, never ahead
        if consumers > 1:
            assert sum(1 for got in mine.values() if got) >= 2  # the waiters shared the items

    run(main())


def test_push_many_nowait_at_capacity_zero_hands_one_item_to_a_waiting_consumer():
    async def main():
        ch = chan(0)
        assert ch.push_many_nowait([1, 2]) == 0  # nobody waits: nothing taken
        getter = asyncio.create_task(ch.pop())
        await asyncio.sleep(0)
        assert ch.room() == 1
        assert ch.push_many_nowait([1, 2]) == 1
        assert ch.push_many_nowait([2]) == 0  # the first is not taken yet
        assert await getter == 1
        assert len(ch) == 0

    run(main())


def test_high_water_is_the_exact_most_items_ever_buffered():
    async def main():
        ch = chan(5)
        port: OutputPort[int] = OutputPort("out", "s", [ch])
        inp: InputPort[int] = InputPort("inp", "c", ch)
        await port.push(1)
        await port.push(2)
        assert ch.statistics().high_water == 2
        inp.pop_nowait()
        await port.push(3)
        assert ch.statistics().high_water == 2  # back at 2, not beyond
        await port.push(4)
        assert ch.statistics().high_water == 3
        await inp.pop_many(9)
        await port.push_many([5, 6])
        assert ch.statistics().high_water == 3
        await port.push_many([7, 8])
        assert ch.statistics().high_water == 4
        ch.push_nowait(9)
        assert ch.statistics().high_water == 5
        await inp.pop_many(9)
        assert ch.push_many_nowait([1, 2, 3]) == 3
        assert ch.statistics().high_water == 5
        other = chan(3)
        assert other.push_many_nowait([1, 2]) == 2
        assert other.statistics().high_water == 2
        assert other.push_many_nowait([3, 4]) == 1
        assert other.statistics().high_water == 3

    run(main())


@pytest.mark.timeout(10)
def test_room_freed_at_once_wakes_every_producer_that_fits():
    async def main():
        ch = chan(4, producers=4)
        for i in range(4):
            ch.push_nowait(i)
        waiting = [asyncio.create_task(ch.push(10 + k)) for k in range(3)]
        await asyncio.sleep(0.01)
        assert not any(t.done() for t in waiting)
        assert ch.pop_many_nowait(4) == [0, 1, 2, 3]  # four free slots, one pop
        # No further pop: each woken producer passes the spare room on.
        await asyncio.wait_for(asyncio.gather(*waiting), 1)
        assert ch.pop_many_nowait(9) == [10, 11, 12]

    run(main())


@pytest.mark.timeout(10)
def test_a_consumer_woken_then_cancelled_passes_the_item_to_another_waiting_consumer():
    async def main():
        ch = chan(2, consumers=2)
        first = asyncio.create_task(ch.pop())
        second = asyncio.create_task(ch.pop())
        await asyncio.sleep(0)
        ch.push_nowait("x")  # wakes `first`...
        first.cancel()  # ...which leaves before taking it
        assert await asyncio.wait_for(second, 1) == "x"
        assert first.cancelled()

    run(main())


@pytest.mark.parametrize(
    ("kw", "what"),
    [
        ({"producers": -1}, "producers"),
        ({"producers": 1.0}, "producers"),
        ({"consumers": 0}, "consumers"),
        ({"consumers": True}, "consumers"),
    ],
)
def test_producer_and_consumer_counts_are_checked_when_made(kw, what):
    with pytest.raises(ValueError, match=f"{what} must be an int"):
        Channel(2, **kw)


@pytest.mark.timeout(10)
def test_shutdown_fails_every_wait_and_every_later_push_but_lets_the_buffer_drain():
    async def main():
        full = chan(1, producers=2)
        out: OutputPort[int] = OutputPort("out", "s", [full])
        await out.push(1)
        pusher = asyncio.create_task(out.push(2))
        empty = chan(1)
        popper = asyncio.create_task(empty.pop())
        await asyncio.sleep(0.01)
        full.shutdown()
        empty.shutdown()
        with pytest.raises(PortClosed, match="after it was closed"):
            await asyncio.wait_for(pusher, 1)
        with pytest.raises(EndOfStream):
            await asyncio.wait_for(popper, 1)
        with pytest.raises(PortClosed, match="after it was closed"):
            await out.push(3)  # the port's fast path too: no item slips in
        with pytest.raises(PortClosed, match="after it was closed"):
            await out.push_many([3])
        out.close()  # closing during a teardown is no error
        full.close_producer()
        assert await full.pop() == 1  # what was buffered drains
        with pytest.raises(EndOfStream):
            await full.pop()
        assert full.statistics().capacity == 1 and full.capacity == 1

    run(main())


# -- found by mutation testing (tools/mutation.py) ----------------------------


def test_a_channel_made_with_no_arguments_holds_64_items_and_closes_after_one_close():
    ch: Channel[int] = Channel()
    assert ch.capacity == 64
    assert sum(ch.push_nowait(i) for i in range(65)) == 64
    assert not ch.closed
    ch.close_producer()
    assert ch.closed


def test_statistics_count_the_waiting_pushers_and_poppers_and_no_open_producer_after_close():
    async def main():
        full, empty = chan(1), chan(1)
        assert full.push_nowait(0)
        pushers = [asyncio.create_task(full.push(i)) for i in (1, 2)]
        poppers = [asyncio.create_task(empty.pop()) for _ in range(3)]
        await asyncio.sleep(0.01)
        s_full, s_empty = full.statistics(), empty.statistics()
        assert (s_full.waiting_pushers, s_full.waiting_poppers) == (2, 0)
        assert (s_empty.waiting_pushers, s_empty.waiting_poppers) == (0, 3)
        pushers[0].cancel()
        poppers[0].cancel()
        await asyncio.sleep(0.01)
        assert full.statistics().waiting_pushers == 1
        assert empty.statistics().waiting_poppers == 2
        for t in (*pushers, *poppers):
            t.cancel()
        await asyncio.gather(*pushers, *poppers, return_exceptions=True)
        empty.close_producer()
        assert empty.statistics().open_producers == 0

    run(main())


def test_push_many_nowait_on_a_full_channel_takes_nothing_and_says_so():
    ch = chan(1)
    assert ch.push_nowait(0)
    assert ch.push_many_nowait([1, 2]) == 0
    assert ch.push_many_nowait([]) == 0
    assert ch.pop_nowait() == 0
    with pytest.raises(WouldBlock, match="no item buffered"):
        ch.pop_nowait()


@pytest.mark.timeout(10)
def test_items_pushed_together_wake_one_waiting_consumer_each():
    async def main():
        ch = chan(4, consumers=3)
        poppers = [asyncio.create_task(ch.pop()) for _ in range(3)]
        await asyncio.sleep(0.01)
        assert ch.push_many_nowait([1]) == 1
        assert ch.statistics().waiting_poppers == 2
        assert ch.push_many_nowait([2, 3]) == 2
        assert ch.statistics().waiting_poppers == 0
        assert sorted(await asyncio.gather(*poppers)) == [1, 2, 3]

    run(main())


@pytest.mark.timeout(10)
def test_push_and_pop_wait_times_are_the_time_spent_waiting():
    async def main():
        ch = chan(1)
        ch.push_nowait(0)
        pusher = asyncio.create_task(ch.push(1))
        await asyncio.sleep(0.05)
        ch.pop_nowait()
        await pusher
        ch.pop_nowait()
        popper = asyncio.create_task(ch.pop())
        await asyncio.sleep(0.05)
        ch.push_nowait(2)
        assert await popper == 2
        st = ch.statistics()
        assert 0.04 <= st.push_wait_s < 1
        assert 0.04 <= st.pop_wait_s < 1

    run(main())


@pytest.mark.timeout(10)
def test_a_producer_refills_a_full_queue_as_soon_as_each_pop_frees_a_slot():
    async def main():
        ch = chan(1)

        async def produce():
            for i in range(5):
                await ch.push(i)

        producer = asyncio.create_task(produce())
        got = []
        for _ in range(4):
            await asyncio.sleep(0.01)
            assert len(ch) == 1  # the producer was woken by the last pop and filled the slot
            got.append(ch.pop_nowait())
        await producer
        got.append(ch.pop_nowait())
        assert got == [0, 1, 2, 3, 4]

    run(main())


@pytest.mark.timeout(10)
def test_a_producer_woken_then_cancelled_does_not_keep_later_producers_waiting():
    async def main():
        ch = chan(1)
        ch.push_nowait(0)
        first = asyncio.create_task(ch.push(1))
        await asyncio.sleep(0.01)
        ch.pop_nowait()  # wakes `first` ...
        first.cancel()  # ... which leaves before using the room
        with pytest.raises(asyncio.CancelledError):
            await first
        assert ch.push_nowait(2)
        second = asyncio.create_task(ch.push(3))
        await asyncio.sleep(0.01)
        assert ch.pop_nowait() == 2
        await asyncio.wait_for(second, 1)
        assert ch.pop_nowait() == 3

    run(main())


@pytest.mark.timeout(10)
@pytest.mark.parametrize("capacity", [2, 3])
def test_producers_waiting_on_a_full_queue_get_room_in_the_order_they_came(capacity):
    async def main():
        ch = chan(capacity, producers=5)
        for _ in range(capacity):
            ch.push_nowait(-1)
        waiting = []
        for k in range(4):
            waiting.append(asyncio.create_task(ch.push(k)))
            await asyncio.sleep(0)
        await asyncio.sleep(0.01)
        got = ch.pop_many_nowait(capacity)
        # Room for `capacity` at once: that many producers go on, with no further pop.
        await asyncio.wait_for(asyncio.gather(*waiting[:capacity]), 1)
        while len(got) < capacity + 4:
            got += ch.pop_many_nowait(9)
            await asyncio.sleep(0.01)
        assert got == [-1] * capacity + [0, 1, 2, 3]

    run(main())


def test_pop_many_counts_every_item_it_takes():
    ch = chan(4)
    assert ch.push_many_nowait([1, 2, 3, 4]) == 4
    assert ch.pop_many_nowait(3) == [1, 2, 3]
    assert ch.pop_many_nowait(3) == [4]
    assert ch.statistics().popped == 4


@pytest.mark.timeout(20)
def test_waits_given_up_on_an_idle_channel_leave_nothing_behind():
    """A consumer polling with a timeout, or a producer giving up on a full queue, must not grow the channel."""

    def live_futures():
        return sum(1 for o in gc.get_objects() if isinstance(o, asyncio.Future))

    async def main():
        empty, full = chan(1), chan(1)
        full.push_nowait(0)
        before = live_futures()
        gave_up = 0
        for _ in range(200):
            try:
                await empty.wait_item(0.0001)
            except TimeoutError:
                gave_up += 1
            try:
                await asyncio.wait_for(full.push(1), 0.0001)
            except TimeoutError:
                gave_up += 1
        assert gave_up == 400
        assert live_futures() - before < 50
        assert empty.statistics().waiting_poppers == 0 and full.statistics().waiting_pushers == 0

    run(main())


@pytest.mark.timeout(10)
def test_push_many_nowait_at_capacity_zero_hands_over_the_first_item():
    async def main():
        ch = chan(0)
        popper = asyncio.create_task(ch.pop())
        await asyncio.sleep(0.01)
        assert ch.push_many_nowait([7, 8]) == 1
        assert await popper == 7

    run(main())


@pytest.mark.timeout(10)
def test_a_producer_cancelled_while_waiting_leaves_the_others_in_their_order():
    async def main():
        ch = chan(1, producers=3)
        ch.push_nowait(0)
        waiting = []
        for k in (1, 2, 3):
            waiting.append(asyncio.create_task(ch.push(k)))
            await asyncio.sleep(0)
        await asyncio.sleep(0.01)
        waiting[0].cancel()
        await asyncio.sleep(0.01)
        got = []
        for _ in range(3):
            got.append(ch.pop_nowait())
            await asyncio.sleep(0.01)
        assert got == [0, 2, 3]
        assert waiting[0].cancelled()

    run(main())


@pytest.mark.timeout(10)
def test_a_deadlock_after_pushes_that_waited_and_resumed_is_still_found():
    from mimo import DeadlockError, Stream, Workflow
    from mimo.testing import run_workflow

    async def a(ins, outs, state):
        for i in range(3):
            await outs.out.push(i)  # the queue holds one: these pushes wait, then go on
        await ins.inp.pop()  # b never pushes

    async def b(ins, outs, state):
        for _ in range(3):
            await asyncio.sleep(0.01)
            await ins.inp.pop()
        await ins.inp.pop()  # a never pushes again

    wf = Workflow(capacity=1)
    sa = wf.add_stream(Stream(["inp"], ["out"], fn=a, name="a"))
    sb = wf.add_stream(Stream(["inp"], ["out"], fn=b, name="b"))
    sa.pipe(sb).pipe(sa)
    with pytest.raises(DeadlockError, match="'a' waits to pop"):
        run_workflow(wf, timeout=5)


@pytest.mark.timeout(10)
def test_a_broadcast_that_finds_another_queue_full_does_not_reorder_the_producers_waiting():
    from mimo import OutputPort

    async def main():
        shared = chan(1, producers=3)
        other = chan(1)
        both: OutputPort[int] = OutputPort("out", "p1", [other, shared])
        p2: OutputPort[int] = OutputPort("out", "p2", [shared])
        p3: OutputPort[int] = OutputPort("out", "p3", [shared])
        shared.push_nowait(-1)
        first = asyncio.create_task(both.push(1))
        await asyncio.sleep(0)
        rest = []
        for port, item in ((p2, 2), (p3, 3)):
            rest.append(asyncio.create_task(port.push(item)))
            await asyncio.sleep(0)
        await asyncio.sleep(0.01)
        assert shared.pop_nowait() == -1  # wakes `first` for this room ...
        shared.push_nowait(-3)  # ... which is taken again at once,
        other.push_nowait(-2)  # and `first` must now wait for `other`
        await asyncio.sleep(0.01)
        got = []
        for _ in range(3):
            got.append(shared.pop_nowait())
            await asyncio.sleep(0.01)
        assert got == [-3, 2, 3]
        assert other.pop_nowait() == -2
        await asyncio.wait_for(first, 1)
        assert (other.pop_nowait(), shared.pop_nowait()) == (1, 1)

    run(main())
