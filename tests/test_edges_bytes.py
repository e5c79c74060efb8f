"""The executors' edges bounded in bytes as well as items, without Ray.

tests/test_ray.py runs the same edges between Ray actors, with large items.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest

from mimo import Stream
from mimo.executors import estimate_size
from mimo.executors._edges import Outbox, Target
from mimo.executors._host import StreamHost, Wiring

pytestmark = pytest.mark.timeout(20)

KIB = 1024


class HeldSender:
    """A transport that holds every batch until released, logging what is in flight."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.in_flight: list[list[Any]] = []
        self.sent: list[list[Any]] = []
        self.peak_bytes = 0

    def __call__(self, port: str, link: int, seq: int, items: list[Any], end: bool) -> asyncio.Future[bool]:
        self.in_flight.append(items)
        self.sent.append(items)
        self.peak_bytes = max(self.peak_bytes, sum(len(x) for batch in self.in_flight for x in batch))

        async def answer() -> bool:
            await self.release.wait()
            self.in_flight.remove(items)
            return True

        return asyncio.ensure_future(answer())


async def push_until_blocked(box: Outbox, items: list[Any]) -> int:
    """Push ``items`` one by one; how many went in before a push had to wait."""
    for n, item in enumerate(items):
        if not box.push_nowait(item):
            return n
    return len(items)


def test_a_batch_leaves_once_it_holds_batch_bytes():
    async def main() -> list[int]:
        sender = HeldSender()
        sender.release.set()
        box = Outbox(
            [Target(sender, "inp", 0)],
            credits=100,
            batch_size=1000,
            linger_s=10,
            batch_bytes=4 * KIB,
            sizeof=estimate_size,
        )
        for _ in range(12):
            assert box.push_nowait(bytes(KIB))
        await asyncio.sleep(0)
        return [len(b) for b in sender.sent]

    # Without the byte bound, nothing would leave before 1000 items or the 10 s linger.
    assert asyncio.run(main()) == [4, 4, 4]


def test_a_link_holds_at_most_link_bytes_in_flight_and_the_producer_waits():
    async def main() -> tuple[int, int, int]:
        sender = HeldSender()
        box = Outbox(
            [Target(sender, "inp", 0)],
            credits=100,
            batch_size=1000,
            linger_s=0.001,
            batch_bytes=2 * KIB,
            link_bytes=8 * KIB,
            sizeof=estimate_size,
        )
        pushed = await push_until_blocked(box, [bytes(KIB)] * 100)
        await asyncio.sleep(0.01)
        blocked = not box.has_room()
        sender.release.set()
        rest = 100 - pushed
        for item in [bytes(KIB)] * rest:
            while not box.push_nowait(item):
                await box.wait_room()
        box.close_producer()
        await box.drained()
        assert blocked
        return pushed, sender.peak_bytes, sum(len(b) for b in sender.sent)

    pushed, peak, total = asyncio.run(main())
    # 4 batches of 2 KiB in flight, and a full one waiting: 100 credits were not the limit.
    assert pushed == 4 * 2 + 2
    assert peak == 8 * KIB
    assert total == 100


def test_an_item_larger_than_the_budget_still_goes_alone():
    async def main() -> list[int]:
        sender = HeldSender()
        sender.release.set()
        box = Outbox(
            [Target(sender, "inp", 0)],
            credits=4,
            batch_size=1000,
            linger_s=0.001,
            batch_bytes=KIB,
            link_bytes=4 * KIB,
            sizeof=estimate_size,
        )
        for item in (bytes(64 * KIB), bytes(64 * KIB), b"x"):
            while not box.push_nowait(item):
                await box.wait_room()
        box.close_producer()
        await box.drained()
        return [len(b) for b in sender.sent if b]

    assert asyncio.run(main()) == [1, 1, 1]


async def produce_blobs(ins: Any, outs: Any, state: Any) -> None:
    blobs = [bytes([i % 256]) * state["size"] for i in range(state["n"])]
    if state["many"]:
        for start in range(0, len(blobs), 5):
            await outs.out.push_many(blobs[start : start + 5])
    else:
        for blob in blobs:
            await outs.out.push(blob)


async def collect_first_bytes(ins: Any, outs: Any, state: Any) -> None:
    async for blob in ins.inp:
        state.append((blob[0], len(blob)))
        await asyncio.sleep(0)


@pytest.mark.parametrize("many", [False, True], ids=["push", "push_many"])
def test_sized_edges_deliver_every_item_in_order_within_the_bound(many):
    """Through real hosts: push_many may overfill one batch, but never the link's budget by more than that."""
    n, size = 60, 3 * KIB
    sent: list[int] = []

    async def main() -> list[tuple[int, int]]:
        sink = StreamHost(
            Stream(ins=["inp"], fn=collect_first_bytes, name="sink", state=[]),
            "sink",
            capacity=2,
            producers={"inp": 1},
            fed={},
            return_state=True,
        )
        src = StreamHost(
            Stream(outs=["out"], fn=produce_blobs, name="src", state={"n": n, "size": size, "many": many}),
            "src",
            capacity=2,
            producers={},
            fed={},
            return_state=False,
        )
        in_flight = [0]

        def send(port: str, link: int, seq: int, items: list[Any], end: bool) -> asyncio.Future[bool]:
            nbytes = sum(len(x) for x in items)
            in_flight[0] += nbytes
            sent.append(in_flight[0])

            async def later() -> bool:
                try:
                    return await sink.deliver(port, link, seq, items, end)
                finally:
                    in_flight[0] -= nbytes

            return asyncio.ensure_future(later())

        target = Target(send, "inp", 0, "sink")
        src.connect(
            {"out": Wiring({0: [target]})},
            credits=50,
            batch_size=1000,
            linger_s=0.001,
            batch_bytes=4 * KIB,
            link_bytes=16 * KIB,
            sizeof=estimate_size,
        )
        sink.connect({}, credits=50, batch_size=1000, linger_s=0.001)
        outcomes = await asyncio.wait_for(asyncio.gather(src.run(), sink.run()), 10)
        for o in outcomes:
            assert o.error is None, o.traceback
        return outcomes[1].state  # type: ignore[no-any-return]

    got = asyncio.run(main())
    assert got == [(i % 256, size) for i in range(n)]
    # One push_many of 5 items (15 KiB) may fill a batch past 4 KiB, so a link may hold 16 KiB plus one batch.
    bound = 16 * KIB + (5 * size if many else 2 * size)
    assert sent and max(sent) <= bound


def test_an_edge_label_names_both_streams_and_ports():
    host = StreamHost(
        Stream(outs=["out"], name="numbers"), "numbers", capacity=1, producers={}, fed={}, return_state=False
    )
    host.connect({"out": Wiring({0: [Target(HeldSender(), "inp", 0, "affine")]})}, credits=1, batch_size=1, linger_s=0)
    assert host.outboxes["out"][0].label == "numbers.out -> affine.inp"


@dataclass
class Record:
    key: int
    blob: bytes


def test_items_are_sized_by_their_payload():
    assert estimate_size(b"x" * 1000) == 1000
    assert estimate_size(bytearray(10)) == 10
    assert estimate_size(memoryview(bytes(7))) == 7
    assert estimate_size("é" * 3) == 3
    assert estimate_size(12) == estimate_size(None) == 8
    # Containers and objects count their members, so a large payload inside one is seen.
    assert estimate_size({"id": 1, "blob": bytes(50_000)}) >= 50_000
    assert estimate_size(Record(1, bytes(20_000))) >= 20_000
    assert estimate_size((1, [bytes(3000)])) >= 3000
    # A long list is sampled, not walked, and scaled to its length.
    assert 900_000 <= estimate_size([bytes(1000)] * 1000) <= 1_100_000


def test_the_executors_errors_survive_pickling_with_their_fields() -> None:
    import pickle

    from mimo.executors._ray import PlacementError, StreamDiedError

    err = pickle.loads(pickle.dumps(PlacementError("1 stream could not be placed", {"a": {"GPU": 1.0}})))
    assert str(err) == "1 stream could not be placed" and err.asks == {"a": {"GPU": 1.0}}
    died = pickle.loads(pickle.dumps(StreamDiedError("stream 'b' died", "b", "n1")))
    assert (str(died), died.stream, died.node) == ("stream 'b' died", "b", "n1")
