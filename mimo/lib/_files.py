"""Opening files for the file streams without blocking the event loop or leaking a descriptor."""

from __future__ import annotations

import asyncio
import functools
import os
from typing import IO


async def open_text(path: str | os.PathLike[str], mode: str, encoding: str) -> IO[str]:
    """``open(path, mode, encoding=encoding)`` in a worker thread; the file is the caller's to close.

    If the caller is cancelled while the thread is still opening (a slow disk,
    a FIFO with no writer yet), the file is closed as soon as it is open, so
    no descriptor outlives the stream.
    """
    loop = asyncio.get_running_loop()
    opening: asyncio.Future[IO[str]] = loop.run_in_executor(
        None, functools.partial(open, path, mode, encoding=encoding)
    )
    try:
        return await asyncio.shield(opening)
    except asyncio.CancelledError:
        opening.add_done_callback(_close_if_opened)
        raise


def _close_if_opened(opening: asyncio.Future[IO[str]]) -> None:
    if not opening.cancelled() and opening.exception() is None:
        opening.result().close()
