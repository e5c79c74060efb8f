"""A live view of a running graph: per stream, items in and out, rate, queue fill."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TextIO

from mimo._report import RunReport


class Progress:
    """Shows a run as it goes; an async context manager around the run.

    ``Progress(True)`` writes a plain line per stream every ``interval``
    seconds to stderr.
    """

    def __init__(self, spec: Any = True, *, name: str = "workflow", interval: float = 1.0, file: TextIO | None = None):
        self.name = name
        self.interval = interval
        self.file = file if file is not None else sys.stderr
        self._snapshot: Callable[[], RunReport] | None = None
        self._task: asyncio.Task[None] | None = None
        self._last: dict[str, tuple[float, int]] = {}

    def start(self, snapshot: Callable[[], RunReport]) -> None:
        """Begin showing the run that ``snapshot`` reports on."""
        self._snapshot = snapshot
        self._task = asyncio.get_running_loop().create_task(self._tick())

    async def __aenter__(self) -> Progress:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._snapshot is not None:
            self.show(self._snapshot())

    async def _tick(self) -> None:
        assert self._snapshot is not None
        while True:
            await asyncio.sleep(self.interval)
            self.show(self._snapshot())

    def show(self, report: RunReport) -> None:
        """Write one line per stream: items in/out, rate out, input queue fill."""
        now = time.perf_counter()
        for s in report:
            prev_t, prev_n = self._last.get(s.name, (now, 0))
            n = s.total_out or s.total_in
            rate = (n - prev_n) / (now - prev_t) if now > prev_t else 0.0
            self._last[s.name] = (now, n)
            queues = " ".join(f"{k}:{v}/{report.capacity}" for k, v in s.buffered.items())
            state = "done" if s.done else "running"
            print(
                f"[{self.name} {report.elapsed_s:7.1f}s] {s.name}: in={s.total_in} out={s.total_out} "
                f"{rate:,.0f}/s {queues} {state}".rstrip(),
                file=self.file,
            )
