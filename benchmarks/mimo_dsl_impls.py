"""The workloads in mimo's DSL: ``@stream`` functions joined with ``|`` and ``>>``.

No ``from __future__ import annotations`` here: the port annotations of the
streams below are closures' locals, so they must be evaluated where defined.
"""

from typing import Any

from workloads import CHAIN_LONG, CHAIN_SHORT, MERGE_SOURCES, PayloadSink, merge_items, payload

CAPACITY = 100


class MimoDsl:
    IMPORTS = ("mimo", "mimo.dsl")

    @staticmethod
    def _source(n: int, start: int = 0) -> Any:
        from mimo import Out, stream

        @stream
        async def source(out: Out[int]) -> None:
            for i in range(start, start + n):
                await out.push(i)

        return source

    @staticmethod
    def _total(box: list[int]) -> Any:
        from mimo import In, stream

        @stream
        async def total(x: In[int]) -> None:
            t = 0
            async for v in x:
                t += v
            box[0] = t

        return total

    @staticmethod
    def _ident() -> Any:
        from mimo import In, Out, stream

        @stream
        async def ident(x: In[int], y: Out[int]) -> None:
            async for v in x:
                await y.push(v)

        return ident

    @classmethod
    def W1(cls, n: int) -> int:
        from mimo import In, Out, stream

        @stream
        async def inc(x: In[int], y: Out[int]) -> None:
            async for v in x:
                await y.push(v + 1)

        @stream
        async def dbl(x: In[int], y: Out[int]) -> None:
            async for v in x:
                await y.push(v * 2)

        box = [0]
        (cls._source(n) | inc | dbl | cls._total(box)).run(capacity=CAPACITY)
        return box[0]

    @classmethod
    def W2(cls, n: int) -> int:
        from mimo import In, Out, stream

        @stream
        async def inc(x: In[int], y: Out[int]) -> None:
            async for v in x:
                await y.push(v + 1)

        @stream
        async def dbl(x: In[int], y: Out[int]) -> None:
            async for v in x:
                await y.push(v * 2)

        box = [0]

        @stream
        async def join(a: In[int], b: In[int]) -> None:
            t = 0
            async for v in a:
                t += v + await b.pop()
            box[0] = t

        src = cls._source(n)
        src.out["out"] >> inc.in_["x"]
        src.out["out"] >> dbl.in_["x"]
        inc.out["y"] >> join.in_["a"]
        flow = dbl.out["y"] >> join.in_["b"]
        flow.run(capacity=CAPACITY)
        return box[0]

    @classmethod
    def W3(cls, n: int) -> tuple[int, int]:
        from mimo import In, Out, stream

        @stream
        async def source(out: Out[bytes]) -> None:
            for i in range(n):
                await out.push(payload(i))

        @stream
        async def ident(x: In[bytes], y: Out[bytes]) -> None:
            async for v in x:
                await y.push(v)

        ps = PayloadSink()

        @stream
        async def sink(x: In[bytes]) -> None:
            add = ps.add
            async for b in x:
                add(b)

        (source | ident | sink).run(capacity=CAPACITY)
        return ps.result()

    W3s = W3

    @classmethod
    def _chain(cls, n: int, length: int) -> int:
        box = [0]
        flow = cls._source(n)
        ident = cls._ident()
        for _ in range(length - 2):
            flow = flow | ident  # the same stream object: a new stage each time
        (flow | cls._total(box)).run(capacity=CAPACITY)
        return box[0]

    @classmethod
    def W4c3(cls, n: int) -> int:
        return cls._chain(n, CHAIN_SHORT)

    @classmethod
    def W4c50(cls, n: int) -> int:
        return cls._chain(n, CHAIN_LONG)

    @classmethod
    def W4m(cls, n: int) -> int:
        m = merge_items(n)
        box = [0]
        total = cls._total(box)
        flow = None
        for k in range(MERGE_SOURCES):
            flow = cls._source(m, k * m).out["out"] >> total.in_["x"]
        assert flow is not None
        flow.run(capacity=CAPACITY)
        return box[0]


IMPLS = {"mimo-dsl": MimoDsl}
