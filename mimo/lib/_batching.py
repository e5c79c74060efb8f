"""``batch`` in a checkpointed run: the batch being built is kept in the stream's position.

Its own module so that :mod:`mimo.lib.transforms` only hands over to it: a
run without ``checkpoint=`` never comes here.
"""

from __future__ import annotations

import asyncio
from typing import Any

from mimo._errors import EndOfStream
from mimo._ports import InputPort, OutputPort


async def batch_kept(
    inp: InputPort[Any], out: OutputPort[list[Any]], size: int, timeout: float | None, pos: dict[str, Any]
) -> None:
    """``batch`` with ``pos["chunk"]`` holding the items taken for the next list (saved at every checkpoint)."""
    loop = asyncio.get_running_loop()
    chunk: list[Any] = pos.setdefault("chunk", [])
    while True:
        if not chunk:  # a resumed run may start with a half-built one
            try:
                chunk.extend(await inp.pop_many(size))
            except EndOfStream:
                return
        # A resumed half-built list waits its timeout afresh: time is not part of a checkpoint.
        deadline = None if timeout is None else loop.time() + timeout
        while len(chunk) < size:
            try:
                if deadline is None:
                    chunk.extend(await inp.pop_many(size - len(chunk)))
                else:
                    left = max(deadline - loop.time(), 0.0)
                    chunk.extend(await inp.pop_many(size - len(chunk), timeout=left))
            except (EndOfStream, TimeoutError):
                break
        await out.push(list(chunk))  # a new list: the consumer may keep it
        chunk.clear()
