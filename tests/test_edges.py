"""The executors' edge protocol, over an in-process transport that reorders calls.

Batches, credits, re-ordering, end of stream and early exit are checked here
without Ray; tests/test_ray.py runs the same hosts as Ray actors.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from mimo import Stream
from mimo.executors._edges import Outbox, Target
from mimo.executors._host import StreamHost, Wiring


def shuffling_sender(host: StreamHost, rng: random.Random, log: list[tuple[int, int, int]]) -> Any:
    """A transport whose calls start after random delays, so they arrive out of order."""

    def send(port: str, link: int, seq: int, items: list[Any], end: bool) -> asyncio.Future[bool]:
        async def later() -> bool:
            await asyncio.sleep(rng.random() * 0.002)
            log.append((link, seq, len(items)))
            return await host.deliver(port, link, seq, items, end)

        return asyncio.ensure_future(later())

    return send


async def produce(ins: Any, outs: Any, state: Any) -> None:
    n = state["n"]
    if state.get("many"):
        # In lists of 7, through push_many.
        for start in range(0, n, 7):
            await outs.out.push_many(list(range(start, min(start + 7, n))))
        return
    for i in range(n):
        await outs.out.push(i)


async def collect(ins: Any, outs: Any, state: Any) -> None:
    async for x in ins.inp:
        state.append(x)


def make_host(stream: Stream, capacity: int, producers: dict[str, int]) -> StreamHost:
    return StreamHost(stream, stream.name, capacity=capacity, producers=producers, fed={}, return_state=True)


async def run_pair(
    n: int, *, batch_size: int, credits: int, capacity: int = 4, sources: int = 1, seed: int = 0, many: bool = False
) -> tuple[list[int], list[StreamHost], list[tuple[int, int, int]]]:
    rng = random.Random(seed)
    log: list[tuple[int, int, int]] = []
    sink = make_host(Stream(ins=["inp"], fn=collect, name="sink", state=[]), capacity, {"inp": sources})
    hosts = []
    for s in range(sources):
        src = make_host(Stream(outs=["out"], fn=produce, name=f"src{s}", state={"n": n, "many": many}), capacity, {})
        target = Target(shuffling_sender(sink, rng, log), "inp", s)
        src.connect({"out": Wiring({0: [target]})}, credits=credits, batch_size=batch_size, linger_s=0.001)
        hosts.append(src)
    sink.connect({}, credits=credits, batch_size=batch_size, linger_s=0.001)
    outcomes = await asyncio.wait_for(asyncio.gather(*(h.run() for h in [*hosts, sink])), 10)
    for o in outcomes:
        assert o.error is None, o.traceback
    return outcomes[-1].state, hosts, log


@pytest.mark.parametrize("batch_size", [1, 3, 50])
def test_batches_arrive_in_order_although_calls_are_reordered(batch_size):
    got, _, log = asyncio.run(run_pair(200, batch_size=batch_size, credits=4, seed=batch_size))
    assert got == list(range(200))
    # The transport really did deliver out of order.
    assert [seq for _, seq, _ in log] != sorted(seq for _, seq, _ in log)


@pytest.mark.parametrize("batch_size", [1, 5, 100])
def test_push_many_goes_through_the_same_batches_and_credits(batch_size):
    got, hosts, _ = asyncio.run(run_pair(100, batch_size=batch_size, credits=2, many=True))
    assert got == list(range(100))
    assert hosts[0].figures().items_out == {"out": 100}


def test_full_batches_are_sent_without_waiting_for_the_linger():
    _, hosts, log = asyncio.run(run_pair(100, batch_size=10, credits=2))
    assert sorted(size for _, _, size in log)[-10:] == [10] * 10
    assert hosts[0].figures().items_out == {"out": 100}


def test_fan_in_closes_after_every_link_has_ended():
    got, _, _ = asyncio.run(run_pair(30, batch_size=4, credits=2, sources=3))
    assert sorted(got) == sorted(list(range(30)) * 3)


def test_a_sender_has_at_most_credits_batches_in_flight():
    async def main() -> int:
        peak = 0
        outstanding = 0
        release = asyncio.Event()

        def send(port: str, link: int, seq: int, items: list[Any], end: bool) -> asyncio.Future[bool]:
            nonlocal peak, outstanding
            outstanding += 1
            peak = max(peak, outstanding)

            async def answer() -> bool:
                nonlocal outstanding
                await release.wait()
                outstanding -= 1
                return True

            return asyncio.ensure_future(answer())

        box = Outbox([Target(send, "inp", 0)], credits=3, batch_size=2, linger_s=0.001)
        pushed = 0

        async def push_all() -> None:
            nonlocal pushed
            for i in range(50):
                while not box.push_nowait(i):
                    await box.wait_room()
                pushed += 1

        task = asyncio.ensure_future(push_all())
        await asyncio.sleep(0.05)
        # 3 batches of 2 in flight, and a full batch of 2 waiting to go.
        assert pushed == 3 * 2 + 2
        release.set()
        await task
        box.close_producer()
        await box.drained()
        return peak

    assert asyncio.run(main()) == 3


def test_an_edge_whose_consumers_have_all_gone_detaches():
    async def main() -> None:
        detached = []

        def send(port: str, link: int, seq: int, items: list[Any], end: bool) -> asyncio.Future[bool]:
            fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            fut.set_result(link == 1)  # consumer 0 has gone, consumer 1 is there
            return fut

        box = Outbox([Target(send, "inp", 0), Target(send, "inp", 1)], credits=1, batch_size=1, linger_s=0)
        box.on_detach.append(detached.append)
        for i in range(4):
            while not box.push_nowait(i):
                await box.wait_room()
            await asyncio.sleep(0)
        assert not detached and box._targets[0].gone and not box._targets[1].gone

        def gone(port: str, link: int, seq: int, items: list[Any], end: bool) -> asyncio.Future[bool]:
            fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            fut.set_result(False)
            return fut

        box._targets[1].send = gone
        for i in range(3):
            while not box.push_nowait(i):
                await box.wait_room()
            await asyncio.sleep(0)
        assert detached == [box]

    asyncio.run(main())


def test_a_failed_send_fails_the_next_push():
    async def main() -> None:
        def send(port: str, link: int, seq: int, items: list[Any], end: bool) -> asyncio.Future[bool]:
            fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            fut.set_exception(ConnectionError("peer died"))
            return fut

        box = Outbox([Target(send, "inp", 0)], credits=1, batch_size=1, linger_s=0)
        box.push_nowait(1)
        await asyncio.sleep(0)
        with pytest.raises(RuntimeError) as info:
            box.push_nowait(2)
        assert isinstance(info.value.__cause__, ConnectionError)

    asyncio.run(main())
