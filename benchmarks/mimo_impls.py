"""The workloads in mimo: the classic API per item, batched, and the DSL.

* ``mimo``: ``Stream(fn=...)`` in a ``Workflow``, one ``await push`` and one
  ``async for`` step per item per hop, as the README shows.
* ``mimo-batch``: the same graph moving lists with ``push_many`` /
  ``pop_many`` (batches of ``BATCH``).

(The DSL row is in ``mimo_dsl_impls.py``.) Every queue holds at most
``CAPACITY`` items, like the ``asyncio.Queue(100)`` baseline; the batched graph
holds four batches per queue, like the batched baseline B3.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

from workloads import CHAIN_LONG, CHAIN_SHORT, MERGE_SOURCES, PayloadSink, merge_items, payload

CAPACITY = 100
BATCH = int(os.environ.get("MIMO_BENCH_BATCH", "256"))
BATCH_CAPACITY = int(os.environ.get("MIMO_BENCH_BATCH_CAPACITY", str(4 * BATCH)))


class MimoClassic:
    IMPORTS = ("mimo",)

    @staticmethod
    def _chain(n: int, stages: list[Any], sink: Any, capacity: int = CAPACITY) -> None:
        from mimo import Stream, Workflow

        wf = Workflow(capacity=capacity)
        step = wf.add_stream(Stream(outs=["y"], fn=stages[0]))
        for fn in stages[1:]:
            step = step.pipe(Stream(ins=["x"], outs=["y"], fn=fn))
        step.pipe(sink)
        wf.run()

    @staticmethod
    def _source(n: int) -> Any:
        async def source(ins: Any, outs: Any, state: Any) -> None:
            out = outs.y
            for i in range(n):
                await out.push(i)

        return source

    @staticmethod
    def _sum_sink() -> Any:
        from mimo import Stream

        async def total(ins: Any, outs: Any, state: Any) -> None:
            t = 0
            async for x in ins.x:
                t += x
            state["total"] = t

        return Stream(ins=["x"], fn=total)

    @staticmethod
    async def _ident(ins: Any, outs: Any, state: Any) -> None:
        out = outs.y
        async for x in ins.x:
            await out.push(x)

    @classmethod
    def _fork_join(cls, n: int, inc: Any, dbl: Any, join: Any, capacity: int) -> int:
        """W2's graph: the source broadcast to inc and dbl, joined pairwise by join."""
        from mimo import Stream, Workflow

        wf = Workflow(capacity=capacity)
        src = wf.add_stream(Stream(outs=["y"], fn=cls._source(n)))
        a = src.pipe(Stream(["x"], ["y"], fn=inc))
        b = src.pipe(Stream(["x"], ["y"], fn=dbl))
        sink = Stream(["a", "b"], fn=join)
        a.pipe(sink, input="a")
        b.pipe(wf.step(sink.name), input="b")
        wf.run()
        return sink.state["total"]  # type: ignore[no-any-return]

    @classmethod
    def W1(cls, n: int) -> int:
        async def inc(ins: Any, outs: Any, state: Any) -> None:
            out = outs.y
            async for x in ins.x:
                await out.push(x + 1)

        async def dbl(ins: Any, outs: Any, state: Any) -> None:
            out = outs.y
            async for x in ins.x:
                await out.push(x * 2)

        sink = cls._sum_sink()
        cls._chain(n, [cls._source(n), inc, dbl], sink)
        return sink.state["total"]  # type: ignore[no-any-return]

    @classmethod
    def W2(cls, n: int) -> int:

        async def inc(ins: Any, outs: Any, state: Any) -> None:
            out = outs.y
            async for x in ins.x:
                await out.push(x + 1)

        async def dbl(ins: Any, outs: Any, state: Any) -> None:
            out = outs.y
            async for x in ins.x:
                await out.push(x * 2)

        async def join(ins: Any, outs: Any, state: Any) -> None:
            t = 0
            b = ins.b
            async for x in ins.a:
                t += x + await b.pop()
            state["total"] = t

        return cls._fork_join(n, inc, dbl, join, CAPACITY)

    @classmethod
    def W3(cls, n: int) -> tuple[int, int]:
        from mimo import Stream

        async def source(ins: Any, outs: Any, state: Any) -> None:
            out = outs.y
            for i in range(n):
                await out.push(payload(i))

        async def sink(ins: Any, outs: Any, state: PayloadSink) -> None:
            add = state.add
            async for b in ins.x:
                add(b)

        s = Stream(["x"], fn=sink, state=PayloadSink())
        cls._chain(n, [source, cls._ident], s)
        return s.state.result()  # type: ignore[no-any-return]

    W3s = W3

    @classmethod
    def _chain_n(cls, n: int, length: int) -> int:
        sink = cls._sum_sink()
        cls._chain(n, [cls._source(n)] + [cls._ident] * (length - 2), sink)
        return sink.state["total"]  # type: ignore[no-any-return]

    @classmethod
    def W4c3(cls, n: int) -> int:
        return cls._chain_n(n, CHAIN_SHORT)

    @classmethod
    def W4c50(cls, n: int) -> int:
        return cls._chain_n(n, CHAIN_LONG)

    @classmethod
    def W4m(cls, n: int) -> int:
        from mimo import Stream, Workflow

        m = merge_items(n)

        def source(start: int) -> Any:
            async def source(ins: Any, outs: Any, state: Any) -> None:
                out = outs.y
                for i in range(start, start + m):
                    await out.push(i)

            return source

        wf = Workflow(capacity=CAPACITY)
        sink = wf.add_stream(cls._sum_sink())
        for k in range(MERGE_SOURCES):
            wf.add_stream(Stream(outs=["y"], fn=source(k * m))).pipe(sink)
        wf.run()
        return sink.stream.state["total"]  # type: ignore[no-any-return]


class MimoBatched(MimoClassic):
    @staticmethod
    def _chain(n: int, stages: list[Any], sink: Any, capacity: int = BATCH_CAPACITY) -> None:
        MimoClassic._chain(n, stages, sink, capacity)

    @staticmethod
    def _source(n: int) -> Any:
        async def source(ins: Any, outs: Any, state: Any) -> None:
            out = outs.y
            for start in range(0, n, BATCH):
                await out.push_many(list(range(start, min(n, start + BATCH))))

        return source

    @staticmethod
    def _sum_sink() -> Any:
        from mimo import EndOfStream, Stream

        async def total(ins: Any, outs: Any, state: Any) -> None:
            t = 0
            inp = ins.x
            try:
                while True:
                    t += sum(await inp.pop_many())
            except EndOfStream:
                state["total"] = t

        return Stream(ins=["x"], fn=total)

    @staticmethod
    async def _ident(ins: Any, outs: Any, state: Any) -> None:
        inp, out = ins.x, outs.y
        while True:
            await out.push_many(await inp.pop_many())

    @classmethod
    def W1(cls, n: int) -> int:
        async def inc(ins: Any, outs: Any, state: Any) -> None:
            inp, out = ins.x, outs.y
            while True:
                await out.push_many([x + 1 for x in await inp.pop_many()])

        async def dbl(ins: Any, outs: Any, state: Any) -> None:
            inp, out = ins.x, outs.y
            while True:
                await out.push_many([x * 2 for x in await inp.pop_many()])

        sink = cls._sum_sink()
        cls._chain(n, [cls._source(n), inc, dbl], sink)
        return sink.state["total"]  # type: ignore[no-any-return]

    @classmethod
    def W2(cls, n: int) -> int:
        from mimo import EndOfStream

        async def inc(ins: Any, outs: Any, state: Any) -> None:
            inp, out = ins.x, outs.y
            while True:
                await out.push_many([x + 1 for x in await inp.pop_many()])

        async def dbl(ins: Any, outs: Any, state: Any) -> None:
            inp, out = ins.x, outs.y
            while True:
                await out.push_many([x * 2 for x in await inp.pop_many()])

        async def join(ins: Any, outs: Any, state: Any) -> None:
            # Batches on the two inputs need not line up: pair items, keep the rest.
            t = 0
            a, b = ins.a, ins.b
            try:
                while True:
                    xs = await a.pop_many()
                    ys: list[int] = []
                    while len(ys) < len(xs):
                        ys += await b.pop_many(len(xs) - len(ys))
                    t += sum(xs) + sum(ys)
            except EndOfStream:
                state["total"] = t

        return cls._fork_join(n, inc, dbl, join, BATCH_CAPACITY)

    @classmethod
    def W3(cls, n: int) -> tuple[int, int]:
        from mimo import EndOfStream, Stream

        async def source(ins: Any, outs: Any, state: Any) -> None:
            out = outs.y
            for start in range(0, n, BATCH):
                await out.push_many([payload(i) for i in range(start, min(n, start + BATCH))])

        async def sink(ins: Any, outs: Any, state: PayloadSink) -> None:
            add, inp = state.add, ins.x
            try:
                while True:
                    for b in await inp.pop_many():
                        add(b)
            except EndOfStream:
                pass

        s = Stream(["x"], fn=sink, state=PayloadSink())
        cls._chain(n, [source, cls._ident], s)
        return s.state.result()  # type: ignore[no-any-return]

    W3s = W3

    @classmethod
    def W4m(cls, n: int) -> int:
        from mimo import Stream, Workflow

        m = merge_items(n)

        def source(start: int) -> Any:
            async def source(ins: Any, outs: Any, state: Any) -> None:
                out = outs.y
                for s in range(start, start + m, BATCH):
                    await out.push_many(list(range(s, min(start + m, s + BATCH))))

            return source

        wf = Workflow(capacity=BATCH_CAPACITY)
        sink = wf.add_stream(cls._sum_sink())
        for k in range(MERGE_SOURCES):
            wf.add_stream(Stream(outs=["y"], fn=source(k * m))).pipe(sink)
        wf.run()
        return sink.stream.state["total"]  # type: ignore[no-any-return]


def dsl_missing() -> str | None:
    """Why the DSL row cannot run, or None if it can."""
    if importlib.util.find_spec("mimo.dsl") is None:
        return "mimo.dsl does not exist yet"
    return None


IMPLS: dict[str, Any] = {"mimo": MimoClassic, "mimo-batch": MimoBatched}
