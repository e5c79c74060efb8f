"""The same workloads written with peer libraries, the way their docs suggest.

Each library is imported only by the process that measures it, so a missing
peer costs nothing to the rest of the suite.

* ``aiostream``: pull-based async-iterator operators (``stream.map`` chains),
  fed from an async generator: ``stream.iterate`` over a sync iterable sleeps
  once per item (``asyncio.sleep(0)``), a loop iteration that would be counted
  as aiostream's cost. It cannot broadcast one source to two branches, so in W2
  each branch reads its own copy of the source (which favours it).
* ``streamz``: push-based node graph, synchronous ``emit``.
* ``reactivex``: synchronous Observables (no queues, no back-pressure).
* ``pypeln``: ``pl.task`` stages (one asyncio task per stage) with
  ``maxsize=100`` queues; its default, 0, is unbounded.
* ``bytewax``: Rust dataflow engine, one worker, Python callback per item;
  ``bytewax`` feeds one item per input batch (its default) and ``bytewax-b256``
  256 items per batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import Any, TypeVar

from workloads import CHAIN_LONG, CHAIN_SHORT, MERGE_SOURCES, PayloadSink, merge_items, payload

T = TypeVar("T")


async def _aiter(xs: Iterable[T]) -> AsyncIterator[T]:
    """An async source that never suspends, as a user's async generator would be."""
    for x in xs:
        yield x


def _inc(x: int) -> int:
    return x + 1


def _dbl(x: int) -> int:
    return x * 2


def _ident(x: Any) -> Any:
    return x


class Aiostream:
    IMPORTS = ("aiostream", "asyncio")

    @staticmethod
    def _drain(xs: Any, on_item: Any) -> None:
        async def main() -> None:
            async with xs.stream() as s:
                async for x in s:
                    on_item(x)

        asyncio.run(main())

    @staticmethod
    def W1(n: int) -> int:
        from aiostream import pipe, stream

        box = [0]

        def add(x: int) -> None:
            box[0] += x

        Aiostream._drain(stream.iterate(_aiter(range(n))) | pipe.map(_inc) | pipe.map(_dbl), add)
        return box[0]

    @staticmethod
    def W2(n: int) -> int:
        from aiostream import pipe, stream

        box = [0]

        def add(p: tuple[int, int]) -> None:
            box[0] += p[0] + p[1]

        a = stream.iterate(_aiter(range(n))) | pipe.map(_inc)
        b = stream.iterate(_aiter(range(n))) | pipe.map(_dbl)
        Aiostream._drain(stream.zip(a, b), add)
        return box[0]

    @staticmethod
    def W3(n: int) -> tuple[int, int]:
        from aiostream import pipe, stream

        sink = PayloadSink()
        Aiostream._drain(stream.iterate(_aiter(payload(i) for i in range(n))) | pipe.map(_ident), sink.add)
        return sink.result()

    W3s = W3

    @staticmethod
    def _chain(n: int, length: int) -> int:
        from aiostream import pipe, stream

        box = [0]

        def add(x: int) -> None:
            box[0] += x

        xs = stream.iterate(_aiter(range(n)))
        for _ in range(length - 2):
            xs = xs | pipe.map(_ident)
        Aiostream._drain(xs, add)
        return box[0]

    @staticmethod
    def W4c3(n: int) -> int:
        return Aiostream._chain(n, CHAIN_SHORT)

    @staticmethod
    def W4c50(n: int) -> int:
        return Aiostream._chain(n, CHAIN_LONG)

    @staticmethod
    def W4m(n: int) -> int:
        from aiostream import stream

        m = merge_items(n)
        box = [0]

        def add(x: int) -> None:
            box[0] += x

        sources = [stream.iterate(_aiter(range(k * m, (k + 1) * m))) for k in range(MERGE_SOURCES)]
        Aiostream._drain(stream.merge(*sources), add)
        return box[0]


class Streamz:
    IMPORTS = ("streamz",)

    @staticmethod
    def W1(n: int) -> int:
        from streamz import Stream as ZStream

        box = [0]

        def add(x: int) -> None:
            box[0] += x

        src = ZStream()
        src.map(_inc).map(_dbl).sink(add)
        for i in range(n):
            src.emit(i)
        return box[0]

    @staticmethod
    def W2(n: int) -> int:
        from streamz import Stream as ZStream

        box = [0]

        def add(p: tuple[int, int]) -> None:
            box[0] += p[0] + p[1]

        src = ZStream()
        src.map(_inc).zip(src.map(_dbl)).sink(add)
        for i in range(n):
            src.emit(i)
        return box[0]

    @staticmethod
    def W3(n: int) -> tuple[int, int]:
        from streamz import Stream as ZStream

        sink = PayloadSink()
        src = ZStream()
        src.map(_ident).sink(sink.add)
        for i in range(n):
            src.emit(payload(i))
        return sink.result()

    W3s = W3

    @staticmethod
    def _chain(n: int, length: int) -> int:
        from streamz import Stream as ZStream

        box = [0]

        def add(x: int) -> None:
            box[0] += x

        src = ZStream()
        node = src
        for _ in range(length - 2):
            node = node.map(_ident)
        node.sink(add)
        for i in range(n):
            src.emit(i)
        return box[0]

    @staticmethod
    def W4c3(n: int) -> int:
        return Streamz._chain(n, CHAIN_SHORT)

    @staticmethod
    def W4c50(n: int) -> int:
        return Streamz._chain(n, CHAIN_LONG)


class ReactiveX:
    IMPORTS = ("reactivex", "reactivex.operators", "reactivex.subject")

    @staticmethod
    def W1(n: int) -> int:
        import reactivex as rx
        from reactivex import operators as ops

        box = [0]

        def add(x: int) -> None:
            box[0] += x

        rx.from_iterable(range(n)).pipe(ops.map(_inc), ops.map(_dbl)).subscribe(add)
        return box[0]

    @staticmethod
    def W2(n: int) -> int:
        import reactivex as rx
        from reactivex import operators as ops
        from reactivex.subject import Subject

        box = [0]

        def add(p: tuple[int, int]) -> None:
            box[0] += p[0] + p[1]

        src: Subject[int] = Subject()
        rx.zip(src.pipe(ops.map(_inc)), src.pipe(ops.map(_dbl))).subscribe(add)
        for i in range(n):
            src.on_next(i)
        src.on_completed()
        return box[0]

    @staticmethod
    def W3(n: int) -> tuple[int, int]:
        import reactivex as rx
        from reactivex import operators as ops

        sink = PayloadSink()
        rx.from_iterable(payload(i) for i in range(n)).pipe(ops.map(_ident)).subscribe(sink.add)
        return sink.result()

    W3s = W3

    @staticmethod
    def _chain(n: int, length: int) -> int:
        import reactivex as rx
        from reactivex import operators as ops

        box = [0]

        def add(x: int) -> None:
            box[0] += x

        rx.from_iterable(range(n)).pipe(*[ops.map(_ident) for _ in range(length - 2)]).subscribe(add)
        return box[0]

    @staticmethod
    def W4c3(n: int) -> int:
        return ReactiveX._chain(n, CHAIN_SHORT)

    @staticmethod
    def W4c50(n: int) -> int:
        return ReactiveX._chain(n, CHAIN_LONG)

    @staticmethod
    def W4m(n: int) -> int:
        import reactivex as rx

        m = merge_items(n)
        box = [0]

        def add(x: int) -> None:
            box[0] += x

        rx.merge(*(rx.from_iterable(range(k * m, (k + 1) * m)) for k in range(MERGE_SOURCES))).subscribe(add)
        return box[0]


class PypelnTask:
    IMPORTS = ("pypeln", "asyncio")

    MAXSIZE = 100

    @staticmethod
    def _drain(stage: Any, on_item: Any) -> None:
        # Iterated from a coroutine: pypeln's synchronous iteration runs the
        # stages on a helper thread, and it hung now and then here.
        async def main() -> None:
            async for x in stage:
                on_item(x)

        asyncio.run(main())

    @staticmethod
    def _sum(stage: Any) -> int:
        box = [0]

        def add(x: int) -> None:
            box[0] += x

        PypelnTask._drain(stage, add)
        return box[0]

    @staticmethod
    def W1(n: int) -> int:
        import pypeln as pl

        stage = pl.task.map(_inc, range(n), workers=1, maxsize=PypelnTask.MAXSIZE)
        stage = pl.task.map(_dbl, stage, workers=1, maxsize=PypelnTask.MAXSIZE)
        return PypelnTask._sum(stage)

    @staticmethod
    def W3(n: int) -> tuple[int, int]:
        import pypeln as pl

        sink = PayloadSink()
        stage = pl.task.map(_ident, (payload(i) for i in range(n)), workers=1, maxsize=PypelnTask.MAXSIZE)
        PypelnTask._drain(stage, sink.add)
        return sink.result()

    W3s = W3

    @staticmethod
    def _chain(n: int, length: int) -> int:
        import pypeln as pl

        stage: Any = range(n)
        for _ in range(length - 2):
            stage = pl.task.map(_ident, stage, workers=1, maxsize=PypelnTask.MAXSIZE)
        return PypelnTask._sum(stage)

    @staticmethod
    def W4c3(n: int) -> int:
        return PypelnTask._chain(n, CHAIN_SHORT)

    @staticmethod
    def W4c50(n: int) -> int:
        return PypelnTask._chain(n, CHAIN_LONG)


class Bytewax:
    IMPORTS = ("bytewax.dataflow", "bytewax.operators", "bytewax.outputs", "bytewax.testing")

    BATCH = 1

    @classmethod
    def _run(cls, build: Any) -> Any:
        from bytewax.dataflow import Dataflow
        from bytewax.outputs import DynamicSink, StatelessSinkPartition
        from bytewax.testing import run_main

        class Part(StatelessSinkPartition[Any]):
            def __init__(self, add: Any) -> None:
                self.add = add

            def write_batch(self, items: list[Any]) -> None:
                add = self.add
                for x in items:
                    add(x)

        class Sink(DynamicSink[Any]):
            def __init__(self, add: Any) -> None:
                self.add = add

            def build(self, step_id: str, worker_index: int, worker_count: int) -> Part:
                return Part(self.add)

        flow = Dataflow("bench")
        result = build(flow, lambda add: Sink(add))
        run_main(flow)
        return result()

    @classmethod
    def _source(cls, flow: Any, name: str, it: Any) -> Any:
        import bytewax.operators as op
        from bytewax.testing import TestingSource

        return op.input(name, flow, TestingSource(it, batch_size=cls.BATCH))

    @classmethod
    def W1(cls, n: int) -> int:
        import bytewax.operators as op

        box = [0]

        def add(x: int) -> None:
            box[0] += x

        def build(flow: Any, sink: Any) -> Any:
            s = cls._source(flow, "src", range(n))
            s = op.map("inc", s, _inc)
            s = op.map("dbl", s, _dbl)
            op.output("out", s, sink(add))
            return lambda: box[0]

        return cls._run(build)  # type: ignore[no-any-return]

    @classmethod
    def W2(cls, n: int) -> int:
        import bytewax.operators as op

        box = [0]

        def add(kv: tuple[str, tuple[int, int]]) -> None:
            a, b = kv[1]
            box[0] += a + b

        def build(flow: Any, sink: Any) -> Any:
            s = cls._source(flow, "src", range(n))
            # bytewax joins by key: the item's index is the key.
            a = op.map("inc", s, lambda x: (str(x), x + 1))
            b = op.map("dbl", s, lambda x: (str(x), x * 2))
            op.output("out", op.join("zip", a, b), sink(add))
            return lambda: box[0]

        return cls._run(build)  # type: ignore[no-any-return]

    @classmethod
    def W3(cls, n: int) -> tuple[int, int]:
        import bytewax.operators as op

        ps = PayloadSink()

        def build(flow: Any, sink: Any) -> Any:
            s = cls._source(flow, "src", (payload(i) for i in range(n)))
            op.output("out", op.map("ident", s, _ident), sink(ps.add))
            return ps.result

        return cls._run(build)  # type: ignore[no-any-return]

    W3s = W3

    @classmethod
    def _chain(cls, n: int, length: int) -> int:
        import bytewax.operators as op

        box = [0]

        def add(x: int) -> None:
            box[0] += x

        def build(flow: Any, sink: Any) -> Any:
            s = cls._source(flow, "src", range(n))
            for k in range(length - 2):
                s = op.map(f"ident{k}", s, _ident)
            op.output("out", s, sink(add))
            return lambda: box[0]

        return cls._run(build)  # type: ignore[no-any-return]

    @classmethod
    def W4c3(cls, n: int) -> int:
        return cls._chain(n, CHAIN_SHORT)

    @classmethod
    def W4c50(cls, n: int) -> int:
        return cls._chain(n, CHAIN_LONG)

    @classmethod
    def W4m(cls, n: int) -> int:
        import bytewax.operators as op

        m = merge_items(n)
        box = [0]

        def add(x: int) -> None:
            box[0] += x

        def build(flow: Any, sink: Any) -> Any:
            srcs = [cls._source(flow, f"src{k}", range(k * m, (k + 1) * m)) for k in range(MERGE_SOURCES)]
            op.output("out", op.merge("merge", *srcs), sink(add))
            return lambda: box[0]

        return cls._run(build)  # type: ignore[no-any-return]


class BytewaxBatched(Bytewax):
    BATCH = 256


IMPLS = {
    "aiostream": Aiostream,
    "streamz": Streamz,
    "reactivex": ReactiveX,
    "pypeln-task": PypelnTask,
    "bytewax": Bytewax,
    "bytewax-b256": BytewaxBatched,
}

#: The distribution that provides each implementation (for versions and skips).
DISTS = {
    "aiostream": "aiostream",
    "streamz": "streamz",
    "reactivex": "reactivex",
    "pypeln-task": "pypeln",
    "bytewax": "bytewax",
    "bytewax-b256": "bytewax",
}
