"""``flat_map(fn, workers=N)``: up to N expansions at once, by map's rule for ``workers``.

An ``async def`` function (or an async generator function) runs as N tasks in
the event loop; a plain function in a pool of N threads. Each item's results
are gathered into a list by its task, then pushed one by one, in input order
unless ``ordered=False`` (then an item's results leave together, as soon as
they are all there).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
from collections.abc import AsyncIterable, Callable
from typing import Any

from mimo.dsl import In, Out, stream
from mimo.lib._calls import is_async, per_item


async def _gather(results: Any) -> list[Any]:
    """Every item of an iterable or an async iterable (closed afterwards), as a list."""
    if isinstance(results, AsyncIterable):
        iterator = aiter(results)
        try:
            return [r async for r in iterator]
        finally:
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                await aclose()
    return list(results)


@stream(name="flat_map")
async def flat_map_parallel(
    inp: In[Any], out: Out[Any], *, fn: Callable[[Any], Any] = list, workers: int = 2, ordered: bool = True
) -> None:
    """``flat_map`` with ``workers=N``: up to N items expanded at once."""
    from mimo.lib.parallel import _apply, _detached, _one, _pump, _shut_down

    if is_async(fn) or inspect.isasyncgenfunction(fn):
        call = per_item(fn)

        async def expand(item: Any) -> list[Any]:
            return await _gather(await call(item))

        await _pump(
            inp, out, workers, 1, ordered, lambda items: asyncio.ensure_future(_one(expand, items[0])), flatten=True
        )
        return

    def expand_in_thread(item: Any) -> Any:
        results = fn(item)
        # An awaitable or an async iterable is finished in the loop (below), not in the thread.
        if inspect.isawaitable(results) or isinstance(results, AsyncIterable):
            return results
        return list(results)

    async def finish(result: Any) -> list[Any]:
        if inspect.isawaitable(result):
            result = await result
        return await _gather(result)

    loop = asyncio.get_running_loop()
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix=out.stream)

    def submit(items: list[Any]) -> asyncio.Future[list[Any]]:
        done = _detached(loop, pool.submit(_apply, expand_in_thread, items))

        async def settle() -> list[Any]:
            return [await finish(r) for r in await done]

        return asyncio.ensure_future(settle())

    try:
        await _pump(inp, out, workers, 1, ordered, submit, flatten=True)
    finally:
        await _shut_down(pool)
