"""Hand-written yardsticks: the floors and the asyncio.Queue baseline.

* ``B0``: the sync floor, a chain of plain ``def`` generators (one per stage,
  the source included) drained by a ``for`` loop: one generator resume per hop.
* ``B1``: the same chain of async generators, run in an event loop.
* ``B2``: one asyncio task per stage, joined by ``asyncio.Queue(maxsize=100)``,
  one ``await put`` / ``await get`` per item: what people write by hand.
* ``B2unb``: B2 with unbounded queues, the W3 control whose memory grows.
* ``B3``: B2 moving lists of ``BATCH`` items through ``asyncio.Queue(maxsize=4)``
  (the same bound in items as mimo-batch): the hand-written batched yardstick.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator
from typing import TypeVar

from workloads import CHAIN_LONG, CHAIN_SHORT, MERGE_SOURCES, PayloadSink, merge_items, payload

T = TypeVar("T")
_END = object()
QUEUE_SIZE = 100
BATCH = 256
BATCH_QUEUE = 4


# -- B0: sync generators -------------------------------------------------------
# The sync floor: one plain ``def`` generator per stage (the source too) and a
# ``for`` loop as the sink, so that each hop is one generator resume. B1 is the
# same chain written with ``async def``. (Not ``yield from``: each stage runs its
# own loop, as a stage with work in it would.)


def _range(start: int, stop: int) -> Iterator[int]:
    for i in range(start, stop):  # noqa: UP028
        yield i


def _ident(it: Iterator[T]) -> Iterator[T]:
    for x in it:  # noqa: UP028
        yield x


def _inc(it: Iterator[int]) -> Iterator[int]:
    for x in it:
        yield x + 1


def _dbl(it: Iterator[int]) -> Iterator[int]:
    for x in it:
        yield x * 2


def _total(it: Iterator[int]) -> int:
    total = 0
    for x in it:
        total += x
    return total


class SyncGen:
    @staticmethod
    def W1(n: int) -> int:
        return _total(_dbl(_inc(_range(0, n))))

    @staticmethod
    def W2(n: int) -> int:
        s1, s2 = itertools.tee(_range(0, n), 2)
        total = 0
        for a, b in zip(_inc(s1), _dbl(s2)):
            total += a + b
        return total

    @staticmethod
    def W3(n: int) -> tuple[int, int]:
        def source() -> Iterator[bytes]:
            for i in range(n):
                yield payload(i)

        sink = PayloadSink()
        for b in _ident(source()):
            sink.add(b)
        return sink.result()

    W3s = W3

    @staticmethod
    def _chain(n: int, length: int) -> int:
        it = _range(0, n)
        for _ in range(length - 2):
            it = _ident(it)
        return _total(it)

    @staticmethod
    def W4c3(n: int) -> int:
        return SyncGen._chain(n, CHAIN_SHORT)

    @staticmethod
    def W4c50(n: int) -> int:
        return SyncGen._chain(n, CHAIN_LONG)

    @staticmethod
    def W4m(n: int) -> int:
        m = merge_items(n)
        sources = [_range(k * m, (k + 1) * m) for k in range(MERGE_SOURCES)]
        # Round-robin, the fairest sync analogue of a merge.
        return _total(itertools.chain.from_iterable(zip(*sources)))


# -- B1: async generators ------------------------------------------------------


async def _arange(start: int, stop: int) -> AsyncIterator[int]:
    for i in range(start, stop):
        yield i


async def _aident(it: AsyncIterator[int]) -> AsyncIterator[int]:
    async for x in it:
        yield x


class AsyncGen:
    @staticmethod
    def W1(n: int) -> int:
        async def inc(it: AsyncIterator[int]) -> AsyncIterator[int]:
            async for x in it:
                yield x + 1

        async def dbl(it: AsyncIterator[int]) -> AsyncIterator[int]:
            async for x in it:
                yield x * 2

        async def main() -> int:
            total = 0
            async for x in dbl(inc(_arange(0, n))):
                total += x
            return total

        return asyncio.run(main())

    @staticmethod
    def W3(n: int) -> tuple[int, int]:
        async def src() -> AsyncIterator[bytes]:
            for i in range(n):
                yield payload(i)

        async def main() -> tuple[int, int]:
            sink = PayloadSink()
            async for b in _aident(src()):
                sink.add(b)
            return sink.result()

        return asyncio.run(main())

    W3s = W3

    @staticmethod
    def _chain(n: int, length: int) -> int:
        async def main() -> int:
            it = _arange(0, n)
            for _ in range(length - 2):
                it = _aident(it)
            total = 0
            async for x in it:
                total += x
            return total

        return asyncio.run(main())

    @staticmethod
    def W4c3(n: int) -> int:
        return AsyncGen._chain(n, CHAIN_SHORT)

    @staticmethod
    def W4c50(n: int) -> int:
        return AsyncGen._chain(n, CHAIN_LONG)


# -- B2: asyncio.Queue(maxsize=100), one task per stage --------------------------


class QueueTasks:
    maxsize = QUEUE_SIZE

    @classmethod
    def _q(cls) -> asyncio.Queue[object]:
        return asyncio.Queue(maxsize=cls.maxsize)

    @staticmethod
    async def _source(q: asyncio.Queue[object], start: int, stop: int) -> None:
        for i in range(start, stop):
            await q.put(i)
        await q.put(_END)

    @staticmethod
    async def _ident(qi: asyncio.Queue[object], qo: asyncio.Queue[object]) -> None:
        while (x := await qi.get()) is not _END:
            await qo.put(x)
        await qo.put(_END)

    @staticmethod
    async def _sum(q: asyncio.Queue[object]) -> int:
        total = 0
        while (x := await q.get()) is not _END:
            total += x  # type: ignore[operator]
        return total

    @classmethod
    def W1(cls, n: int) -> int:
        async def inc(qi: asyncio.Queue[object], qo: asyncio.Queue[object]) -> None:
            while (x := await qi.get()) is not _END:
                await qo.put(x + 1)  # type: ignore[operator]
            await qo.put(_END)

        async def dbl(qi: asyncio.Queue[object], qo: asyncio.Queue[object]) -> None:
            while (x := await qi.get()) is not _END:
                await qo.put(x * 2)  # type: ignore[operator]
            await qo.put(_END)

        async def main() -> int:
            q1, q2, q3 = cls._q(), cls._q(), cls._q()
            async with asyncio.TaskGroup() as g:
                g.create_task(cls._source(q1, 0, n))
                g.create_task(inc(q1, q2))
                g.create_task(dbl(q2, q3))
                total = g.create_task(cls._sum(q3))
            return total.result()

        return asyncio.run(main())

    @classmethod
    def W2(cls, n: int) -> int:
        async def source(qa: asyncio.Queue[object], qb: asyncio.Queue[object]) -> None:
            for i in range(n):
                await qa.put(i)
                await qb.put(i)
            await qa.put(_END)
            await qb.put(_END)

        async def inc(qi: asyncio.Queue[object], qo: asyncio.Queue[object]) -> None:
            while (x := await qi.get()) is not _END:
                await qo.put(x + 1)  # type: ignore[operator]
            await qo.put(_END)

        async def dbl(qi: asyncio.Queue[object], qo: asyncio.Queue[object]) -> None:
            while (x := await qi.get()) is not _END:
                await qo.put(x * 2)  # type: ignore[operator]
            await qo.put(_END)

        async def join(qa: asyncio.Queue[object], qb: asyncio.Queue[object]) -> int:
            total = 0
            while (a := await qa.get()) is not _END:
                total += a + await qb.get()  # type: ignore[operator]
            return total

        async def main() -> int:
            q1, q2, q3, q4 = cls._q(), cls._q(), cls._q(), cls._q()
            async with asyncio.TaskGroup() as g:
                g.create_task(source(q1, q2))
                g.create_task(inc(q1, q3))
                g.create_task(dbl(q2, q4))
                total = g.create_task(join(q3, q4))
            return total.result()

        return asyncio.run(main())

    @classmethod
    def W3(cls, n: int) -> tuple[int, int]:
        async def source(q: asyncio.Queue[object]) -> None:
            for i in range(n):
                await q.put(payload(i))
            await q.put(_END)

        async def sink(q: asyncio.Queue[object]) -> tuple[int, int]:
            s = PayloadSink()
            while (b := await q.get()) is not _END:
                s.add(b)  # type: ignore[arg-type]
            return s.result()

        async def main() -> tuple[int, int]:
            q1, q2 = cls._q(), cls._q()
            async with asyncio.TaskGroup() as g:
                g.create_task(source(q1))
                g.create_task(cls._ident(q1, q2))
                result = g.create_task(sink(q2))
            return result.result()

        return asyncio.run(main())

    W3s = W3

    @classmethod
    def _chain(cls, n: int, length: int) -> int:
        async def main() -> int:
            qs = [cls._q() for _ in range(length - 1)]
            async with asyncio.TaskGroup() as g:
                g.create_task(cls._source(qs[0], 0, n))
                for qi, qo in itertools.pairwise(qs):
                    g.create_task(cls._ident(qi, qo))
                total = g.create_task(cls._sum(qs[-1]))
            return total.result()

        return asyncio.run(main())

    @classmethod
    def W4c3(cls, n: int) -> int:
        return cls._chain(n, CHAIN_SHORT)

    @classmethod
    def W4c50(cls, n: int) -> int:
        return cls._chain(n, CHAIN_LONG)

    @classmethod
    def W4m(cls, n: int) -> int:
        m = merge_items(n)

        async def source(q: asyncio.Queue[object], start: int, stop: int) -> None:
            for i in range(start, stop):
                await q.put(i)
            await q.put(_END)

        async def sink(q: asyncio.Queue[object]) -> int:
            total, left = 0, MERGE_SOURCES
            while left:
                x = await q.get()
                if x is _END:
                    left -= 1
                else:
                    total += x  # type: ignore[operator]
            return total

        async def main() -> int:
            q = cls._q()
            async with asyncio.TaskGroup() as g:
                for k in range(MERGE_SOURCES):
                    g.create_task(source(q, k * m, (k + 1) * m))
                total = g.create_task(sink(q))
            return total.result()

        return asyncio.run(main())


class UnboundedQueueTasks(QueueTasks):
    """B2 with ``asyncio.Queue()`` (no bound): the W3 control."""

    maxsize = 0
    ONLY = ("W3", "W3s")


# -- B3: lists through asyncio.Queue ---------------------------------------------------


class BatchedQueueTasks:
    @staticmethod
    def _q() -> asyncio.Queue[object]:
        return asyncio.Queue(maxsize=BATCH_QUEUE)

    @staticmethod
    async def _source(q: asyncio.Queue[object], start: int, stop: int) -> None:
        for s in range(start, stop, BATCH):
            await q.put(list(range(s, min(stop, s + BATCH))))
        await q.put(_END)

    @staticmethod
    async def _map(qi: asyncio.Queue[object], qo: asyncio.Queue[object], f: object) -> None:
        while (batch := await qi.get()) is not _END:
            if f is None:
                await qo.put(batch)
            elif f == "inc":
                await qo.put([x + 1 for x in batch])  # type: ignore[attr-defined]
            else:
                await qo.put([x * 2 for x in batch])  # type: ignore[attr-defined]
        await qo.put(_END)

    @staticmethod
    async def _sum(q: asyncio.Queue[object]) -> int:
        total = 0
        while (batch := await q.get()) is not _END:
            total += sum(batch)  # type: ignore[call-overload]
        return total

    @classmethod
    def W1(cls, n: int) -> int:
        async def main() -> int:
            q1, q2, q3 = cls._q(), cls._q(), cls._q()
            async with asyncio.TaskGroup() as g:
                g.create_task(cls._source(q1, 0, n))
                g.create_task(cls._map(q1, q2, "inc"))
                g.create_task(cls._map(q2, q3, "dbl"))
                total = g.create_task(cls._sum(q3))
            return total.result()

        return asyncio.run(main())

    @classmethod
    def W3(cls, n: int) -> tuple[int, int]:
        async def source(q: asyncio.Queue[object]) -> None:
            for s in range(0, n, BATCH):
                await q.put([payload(i) for i in range(s, min(n, s + BATCH))])
            await q.put(_END)

        async def sink(q: asyncio.Queue[object]) -> tuple[int, int]:
            ps = PayloadSink()
            while (batch := await q.get()) is not _END:
                for b in batch:  # type: ignore[attr-defined]
                    ps.add(b)
            return ps.result()

        async def main() -> tuple[int, int]:
            q1, q2 = cls._q(), cls._q()
            async with asyncio.TaskGroup() as g:
                g.create_task(source(q1))
                g.create_task(cls._map(q1, q2, None))
                result = g.create_task(sink(q2))
            return result.result()

        return asyncio.run(main())

    W3s = W3

    @classmethod
    def _chain(cls, n: int, length: int) -> int:
        async def main() -> int:
            qs = [cls._q() for _ in range(length - 1)]
            async with asyncio.TaskGroup() as g:
                g.create_task(cls._source(qs[0], 0, n))
                for qi, qo in itertools.pairwise(qs):
                    g.create_task(cls._map(qi, qo, None))
                total = g.create_task(cls._sum(qs[-1]))
            return total.result()

        return asyncio.run(main())

    @classmethod
    def W4c3(cls, n: int) -> int:
        return cls._chain(n, CHAIN_SHORT)

    @classmethod
    def W4c50(cls, n: int) -> int:
        return cls._chain(n, CHAIN_LONG)


IMPLS = {
    "B0": SyncGen,
    "B1": AsyncGen,
    "B2": QueueTasks,
    "B2unb": UnboundedQueueTasks,
    "B3": BatchedQueueTasks,
}
