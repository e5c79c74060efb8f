"""A live view of a running graph: per stream, items in and out, rate, queue fill.

On a terminal the view is a table redrawn in place by ``rich`` (the optional
extra ``mimo[progress]``). Elsewhere (a pipe, a CI log, a file) it degrades
to a few plain lines every ``interval`` seconds, which need nothing installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TextIO

from mimo._report import RunReport, StreamReport

#: What to install for the live terminal view.
INSTALL_HINT = "pip install 'mimo[progress]'"

#: Seconds between redraws of the live view, and between blocks of plain lines.
RICH_INTERVAL = 0.25
PLAIN_INTERVAL = 2.0

_MODES = ("auto", "rich", "plain")


def _has_rich() -> bool:
    try:
        import rich.live  # noqa: F401
    except ImportError:
        return False
    return True


def _is_terminal(file: TextIO) -> bool:
    try:
        return bool(file.isatty())
    except (AttributeError, ValueError):
        return False


class Progress:
    """Shows a run as it goes; an async context manager around the run.

    ``spec`` chooses the view:

    - ``True`` or ``"auto"``: the live ``rich`` table when ``file`` is a
      terminal and ``rich`` is installed; plain lines when it is not a
      terminal. On a terminal without ``rich`` it writes one line saying what
      to install (``mimo[progress]``), then shows plain lines: a missing
      display never fails a run.
    - ``"rich"``: the live table wherever ``file`` goes (``ImportError`` naming
      the extra if ``rich`` is missing).
    - ``"plain"``: plain lines, every ``interval`` seconds and once at the end.

    The view goes to ``file`` (standard error by default) so that a
    workflow's own output on standard output stays clean. The runtime calls
    :meth:`start` with a function returning the live :class:`RunReport`.
    """

    def __init__(
        self,
        spec: Any = True,
        *,
        name: str = "workflow",
        interval: float | None = None,
        file: TextIO | None = None,
        width: int | None = None,
    ) -> None:
        mode = "auto" if spec is True else spec
        if mode not in _MODES:
            raise ValueError(f"progress must be True, False, 'auto', 'rich' or 'plain', not {spec!r}")
        self.name = name
        self.file: TextIO = file if file is not None else sys.stderr
        self.width = width
        tty = _is_terminal(self.file)
        if mode == "rich" and not _has_rich():
            raise ImportError(f"progress='rich' needs the rich package: {INSTALL_HINT}")
        #: The message shown when the live view was wanted but rich is missing.
        self.notice = ""
        if mode == "auto":
            if tty and _has_rich():
                mode = "rich"
            else:
                if tty:
                    self.notice = (
                        f"mimo: the live progress view needs rich ({INSTALL_HINT}); showing plain lines instead"
                    )
                mode = "plain"
        #: ``"rich"`` or ``"plain"``: the view actually shown.
        self.mode: str = mode
        # While the live table is drawn, prints would tear it; rich can show them above it, but
        # only standard output that goes to the same terminal may be taken over that way.
        self._redirect_stdout = tty and _is_terminal(sys.stdout)
        self._redirect_stderr = tty and self.file is sys.stderr
        self.interval = interval if interval is not None else (RICH_INTERVAL if mode == "rich" else PLAIN_INTERVAL)
        self._snapshot: Callable[[], RunReport] | None = None
        self._task: asyncio.Task[None] | None = None
        self._last: dict[str, tuple[float, int]] = {}
        self._live: Any = None

    def start(self, snapshot: Callable[[], RunReport]) -> None:
        """Begin showing the run that ``snapshot`` reports on (called from the event loop)."""
        self._snapshot = snapshot
        if self.notice:
            print(self.notice, file=self.file, flush=True)
        if self.mode == "rich":
            from rich.console import Console
            from rich.live import Live

            console = Console(file=self.file, force_terminal=True, width=self.width)
            self._live = Live(
                self.table(snapshot()),
                console=console,
                auto_refresh=False,
                redirect_stdout=self._redirect_stdout,
                redirect_stderr=self._redirect_stderr,
            )
            self._live.start(refresh=True)
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
        if self._snapshot is None:
            return
        self.show(self._snapshot(), final=True)
        if self._live is not None:
            self._live.stop()
            self._live = None

    async def _tick(self) -> None:
        assert self._snapshot is not None
        while True:
            await asyncio.sleep(self.interval)
            self.show(self._snapshot())

    def _rate(self, s: StreamReport, elapsed: float, final: bool) -> float:
        """Items per second: since the last look, or over the whole run at the end."""
        now = time.perf_counter()
        # A stream's pace is what it takes in; a source's, what it gives out.
        n = s.total_in if s.items_in else s.total_out
        if final:
            return n / elapsed if elapsed > 0 else 0.0
        prev_t, prev_n = self._last.get(s.name, (now - elapsed, 0))
        self._last[s.name] = (now, n)
        return (n - prev_n) / (now - prev_t) if now > prev_t else 0.0

    def show(self, report: RunReport, final: bool = False) -> None:
        """Draw ``report``: redraw the live table, or write one plain line per stream."""
        if self._live is not None:
            self._live.update(self.table(report, final), refresh=True)
            return
        head = f"[{self.name} {report.elapsed_s:.1f}s{' done' if final else ''}]"
        for s in report:
            rate = self._rate(s, report.elapsed_s, final)
            queues = " ".join(f"{k}:{v}/{report.capacity}" for k, v in s.buffered.items())
            state = "done" if s.done else "backing off" if s.backing_off else "running"
            restarts = f"restarts={s.restarts} (last: {s.restart_causes[-1]})" if s.restart_causes else ""
            parts = [f"{head} {s.name}: in={s.total_in} out={s.total_out} {rate:,.0f}/s", queues, restarts, state]
            print(" ".join(p for p in parts if p), file=self.file)
        self.file.flush()

    def table(self, report: RunReport, final: bool = False) -> Any:
        """The live view of ``report`` as a ``rich`` table."""
        from rich.table import Table
        from rich.text import Text

        title = f"{self.name} · {report.elapsed_s:.1f} s" + (" · finished" if final else "")
        table = Table(title=title, title_justify="left", expand=False)
        table.add_column("stream")
        table.add_column("", justify="center")
        table.add_column("in", justify="right")
        table.add_column("out", justify="right")
        table.add_column("items/s", justify="right")
        table.add_column(f"input queues (of {report.capacity})")
        # Shown once a stream has restarted (on_error=Restart(...)): how often, and the last cause.
        restarted = any(s.restarts for s in report)
        if restarted:
            table.add_column("restarts")
        for s in report:
            rate = self._rate(s, report.elapsed_s, final)
            if s.done:
                state = Text("done", style="green")
            elif s.backing_off:
                state = Text("backing off", style="red")
            else:
                state = Text("running", style="yellow")
            queues = Text()
            for i, (port, n) in enumerate(s.buffered.items()):
                if i:
                    queues.append("\n")
                queues.append(f"{port} ")
                queues.append_text(_bar(n, report.capacity))
                queues.append(f" {n}")
            cells: list[Any] = [s.name, state, f"{s.total_in:,}", f"{s.total_out:,}", f"{rate:,.0f}", queues]
            if restarted:
                last = s.restart_causes[-1] if s.restart_causes else ""
                cells.append(f"{s.restarts} {last}" if s.restarts else "")
            table.add_row(*cells)
        return table


def _bar(n: int, capacity: int, width: int = 10) -> Any:
    """A small bar: how full a queue is."""
    from rich.text import Text

    filled = width if capacity == 0 and n else round(width * n / capacity) if capacity else 0
    style = "red" if filled >= width else "yellow" if filled >= width // 2 else "green"
    bar = Text("█" * filled, style=style)
    bar.append("░" * (width - filled), style="dim")
    return bar
