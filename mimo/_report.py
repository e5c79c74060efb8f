"""The report a run returns: per stream, items per port and where time went."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mimo._graph import Graph

#: The logger a finished run reports to, at INFO.
logger = logging.getLogger("mimo")

#: A stream must score at least this (see :attr:`RunReport.bottleneck`) to be named.
BOTTLENECK_MIN_SCORE = 0.1
#: A join is back-pressured when its producers waited on its full queue this share of the run.
BACKPRESSURE_MIN_SHARE = 0.1
#: Below this many seconds, busy or blocked time is timing noise: nothing is named on it.
MIN_SECONDS = 0.01


@dataclass(frozen=True, slots=True)
class StreamReport:
    """One stream's figures for one run.

    ``blocked_s`` is the time during which it waited to push into a full
    queue (back-pressure from downstream); ``starved_s`` the time during which
    it waited to pop from an empty queue and to push nowhere; ``busy_s`` the
    rest of its life (its own work, including its own awaits on anything
    other than a mimo port), less the time it waited to restart
    (``backoff_s``, under ``on_error=Restart(...)``). A stream that waits on several ports at once
    (sub-tasks under :func:`mimo.run_together`) counts each instant once, as
    blocked if any push waits: the three add up to its life, never more.
    """

    name: str
    items_in: dict[str, int]
    items_out: dict[str, int]
    elapsed_s: float
    busy_s: float
    blocked_s: float
    starved_s: float
    #: Items waiting in each input queue when the report was taken.
    buffered: dict[str, int] = field(default_factory=dict)
    #: False while the stream is still running (in a live snapshot).
    done: bool = True
    #: Copies of the stream that ran (``workers=N``); times add up over copies.
    workers: int = 1
    #: Per input, the time producers spent blocked because its queue was full.
    backpressure_s: dict[str, float] = field(default_factory=dict)
    #: The run cancelled it because every consumer of its outputs had left.
    stopped_early: bool = False
    #: Per input, items that arrived but were never delivered: still queued when
    #: the stream left, or thrown away by it on purpose (``lib.buffer``'s overflow).
    dropped: dict[str, int] = field(default_factory=dict)
    #: Calls on items that failed and were tried again (``lib.map(..., retry=Retry(...))``), all copies.
    retries: int = 0
    #: Times the stream was started again after an exception (``on_error=Restart(...)``), all copies.
    restarts: int = 0
    #: The latest restarts' causes, ``"ValueError: bad item"``, oldest first (the last ten).
    restart_causes: list[str] = field(default_factory=list)
    #: Seconds spent waiting to restart (back-off), added up over copies; not part of ``busy_s``.
    backoff_s: float = 0.0
    #: A copy is waiting to restart right now (in a live snapshot).
    backing_off: bool = False

    @property
    def total_dropped(self) -> int:
        """Items dropped on all inputs."""
        return sum(self.dropped.values())

    @property
    def total_in(self) -> int:
        """Items popped from all inputs."""
        return sum(self.items_in.values())

    @property
    def total_out(self) -> int:
        """Items pushed to all outputs."""
        return sum(self.items_out.values())

    def share(self, seconds: float) -> float:
        """``seconds`` (added up over workers) as a share (0..1) of this stream's life."""
        life = self.elapsed_s * max(1, self.workers)
        return seconds / life if life > 0 else 0.0


class Link(NamedTuple):
    """A join in the graph that ran, by stream and port names."""

    src: str
    out: str
    dst: str
    in_: str

    def __str__(self) -> str:
        return f"{self.src}.{self.out} -> {self.dst}.{self.in_}"


def merged_report(name: str, lives: list[float], *, blocked_s: float, starved_s: float, **fields: Any) -> StreamReport:
    """One stream's report from its copies: ``lives`` holds each copy's running time.

    Times add up over copies; the stream's elapsed time is its longest-lived
    copy's. Waiting to restart (``backoff_s``) is not work: a stream backing
    off is not a bottleneck, so it is left out of the busy time.
    """
    return StreamReport(
        name=name,
        elapsed_s=max(lives),
        busy_s=max(0.0, sum(lives) - blocked_s - starved_s - fields.get("backoff_s", 0.0)),
        blocked_s=blocked_s,
        starved_s=starved_s,
        workers=len(lives),
        **fields,
    )


@dataclass(frozen=True, slots=True)
class RunReport:
    """What a run did: ``report['name']`` is that stream's :class:`StreamReport`.

    ``str(report)`` is a table; :attr:`bottleneck` names the stream that held
    the run back; :meth:`to_dict` gives plain data for programs.
    """

    streams: dict[str, StreamReport]
    elapsed_s: float
    #: The bound of every queue in the run.
    capacity: int = 0
    #: The joins of the graph (empty if the report was made without it).
    links: tuple[Link, ...] = ()
    #: The workflow's name.
    name: str = "workflow"

    def __getitem__(self, name: str) -> StreamReport:
        return self.streams[name]

    def __iter__(self) -> Iterator[StreamReport]:
        return iter(self.streams.values())

    def __len__(self) -> int:
        return len(self.streams)

    # -- analysis -----------------------------------------------------------

    def producers(self, name: str) -> list[str]:
        """The streams joined to an input of ``name``."""
        return sorted({lk.src for lk in self.links if lk.dst == name and lk.src != name})

    def consumers(self, name: str) -> list[str]:
        """The streams an output of ``name`` is joined to."""
        return sorted({lk.dst for lk in self.links if lk.src == name and lk.dst != name})

    def run_share(self, s: StreamReport) -> float:
        """The share (0..1) of the whole run that ``s`` spent busy, per worker."""
        total = self.elapsed_s * max(1, s.workers)
        return min(1.0, s.busy_s / total) if total > 0 else 0.0

    def scores(self) -> dict[str, float]:
        """How strongly each stream looks like the bottleneck, from 0 to 1.

        A stream's share of the run spent busy, weighed up by how much of
        their lives its producers spent blocked pushing and its consumers spent
        starved. Evidence from a side the stream has no neighbours on (a
        source's producers, a sink's consumers) counts as full.
        """
        out: dict[str, float] = {}
        for s in self:
            busy = self.run_share(s)
            up = [self.streams[p].share(self.streams[p].blocked_s) for p in self.producers(s.name)]
            down = [self.streams[c].share(self.streams[c].starved_s) for c in self.consumers(s.name)]
            up_w = sum(up) / len(up) if up else 1.0
            down_w = sum(down) / len(down) if down else 1.0
            out[s.name] = min(1.0, busy) * (0.5 + 0.5 * up_w) * (0.5 + 0.5 * down_w)
        return out

    @property
    def bottleneck(self) -> str | None:
        """The stream that held the run back, or None when none stands out.

        That is the stream busiest for the largest share of the run while its
        producers were blocked pushing to it and its consumers were starved
        waiting on it (see :meth:`scores`); None if no stream scores at least
        ``BOTTLENECK_MIN_SCORE`` or was busy for ``MIN_SECONDS`` (10 ms): a
        run that short has no bottleneck worth the name.
        """
        scores = self.scores()
        if not scores:
            return None
        best = max(scores, key=lambda n: (scores[n], n))
        if scores[best] < BOTTLENECK_MIN_SCORE or self.streams[best].busy_s < MIN_SECONDS:
            return None
        return best

    def why_bottleneck(self) -> str:
        """One sentence on the bottleneck's figures ("" if there is none)."""
        name = self.bottleneck
        if name is None:
            return ""
        s = self.streams[name]
        parts = [f"{name} was busy {self.run_share(s):.0%} of the run"]
        ups = self.producers(name)
        if ups:
            share = sum(self.streams[p].share(self.streams[p].blocked_s) for p in ups) / len(ups)
            parts.append(f"its producers were blocked pushing {share:.0%} of their time")
        downs = self.consumers(name)
        if downs:
            share = sum(self.streams[c].share(self.streams[c].starved_s) for c in downs) / len(downs)
            parts.append(f"its consumers were starved {share:.0%} of theirs")
        return "; ".join(parts)

    def link_items(self, link: Link) -> int:
        """Items sent along ``link``: what its output pushed (broadcast to every join)."""
        s = self.streams.get(link.src)
        return s.items_out.get(link.out, 0) if s is not None else 0

    @property
    def backpressured(self) -> list[Link]:
        """The joins whose full queue kept their producers waiting.

        A join counts when the producers of its input waited on that queue for
        at least ``BACKPRESSURE_MIN_SHARE`` of the run, and ``MIN_SECONDS``.
        """
        found = []
        for lk in self.links:
            dst = self.streams.get(lk.dst)
            if dst is None or self.elapsed_s <= 0:
                continue
            waited = dst.backpressure_s.get(lk.in_, 0.0)
            if waited >= MIN_SECONDS and waited / self.elapsed_s >= BACKPRESSURE_MIN_SHARE:
                found.append(lk)
        return found

    # -- output -------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain data (dicts, lists, numbers, strings) for programs and logs."""
        streams = {}
        for n, s in self.streams.items():
            d = asdict(s)
            d["total_in"] = s.total_in
            d["total_out"] = s.total_out
            streams[n] = d
        return {
            "name": self.name,
            "elapsed_s": self.elapsed_s,
            "capacity": self.capacity,
            "bottleneck": self.bottleneck,
            "streams": streams,
            "links": [
                {"src": lk.src, "out": lk.out, "dst": lk.dst, "in": lk.in_, "items": self.link_items(lk)}
                for lk in self.links
            ],
            "backpressured": [str(lk) for lk in self.backpressured],
        }

    def __str__(self) -> str:
        # The restarts column appears only in runs where some stream restarted.
        restarted = [s for s in self if s.restarts]
        head: tuple[str, ...] = ("stream", "in", "out", "busy", "blocked", "starved")
        if restarted:
            head = (*head, "restarts")
        rows: list[tuple[str, ...]] = [head]
        bottleneck = self.bottleneck
        for s in self:
            ins = " ".join(f"{k}={v}" for k, v in s.items_in.items()) or "-"
            outs = " ".join(f"{k}={v}" for k, v in s.items_out.items()) or "-"
            times = [f"{t:.3f}s {s.share(t):>4.0%}" for t in (s.busy_s, s.blocked_s, s.starved_s)]
            label = s.name if s.workers == 1 else f"{s.name} ({s.workers} workers)"
            if s.stopped_early:
                label += " (stopped early)"
            extra = (f"{s.restarts} ({s.backoff_s:.3f}s)" if s.restarts else "-",) if restarted else ()
            rows.append((label, ins, outs, *times, *extra))
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        lines = []
        names = [None, *self.streams]
        for r, name in zip(rows, names):
            line = "  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
            if name is not None and name == bottleneck:
                line += "  <- bottleneck"
            lines.append(line.rstrip())
        lines.insert(1, "  ".join("-" * w for w in widths))
        lines.append(f"{self.name} ran {self.elapsed_s:.3f} s with queues of {self.capacity}")
        if bottleneck is not None:
            lines.append(f"bottleneck: {self.why_bottleneck()}")
        else:
            lines.append("bottleneck: none stands out")
        bp = self.backpressured
        if bp:
            lines.append("back-pressured: " + ", ".join(str(lk) for lk in bp))
        for s in restarted:
            lines.append(
                f"restarted: {s.name} {s.restarts} time(s), {s.backoff_s:.3f} s backing off; "
                f"last cause: {s.restart_causes[-1] if s.restart_causes else '?'}"
            )
        return "\n".join(lines)


def finish(report: RunReport, graph: Graph, name: str) -> RunReport:
    """Attach the graph's joins and the workflow's name, and log the report at INFO."""
    links = tuple(Link(e.src.name, e.out, e.dst.name, e.in_) for e in graph.edges)
    report = dataclasses.replace(report, links=links, name=name)
    if logger.isEnabledFor(logging.INFO):
        logger.info("%s finished\n%s", name, report, extra={"mimo_report": report.to_dict()})
    return report
