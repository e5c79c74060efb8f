"""The report a run returns: per stream, items per port and where time went."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class StreamReport:
    """One stream's figures for one run.

    ``blocked_s`` is the time spent waiting to push into a full queue
    (back-pressure from downstream); ``starved_s`` the time spent waiting to
    pop from an empty one; ``busy_s`` the rest of its life (its own work,
    including its own awaits on anything other than a mimo port).
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

    @property
    def total_in(self) -> int:
        return sum(self.items_in.values())

    @property
    def total_out(self) -> int:
        return sum(self.items_out.values())


@dataclass(frozen=True, slots=True)
class RunReport:
    """What a run did: ``report['name']`` is that stream's :class:`StreamReport`."""

    streams: dict[str, StreamReport]
    elapsed_s: float
    #: The bound of every queue in the run.
    capacity: int = 0

    def __getitem__(self, name: str) -> StreamReport:
        return self.streams[name]

    def __iter__(self) -> Any:
        return iter(self.streams.values())

    def to_dict(self) -> dict[str, Any]:
        """Plain data (dicts, numbers, strings) for programs and logs."""
        streams = {n: asdict(s) for n, s in self.streams.items()}
        return {"elapsed_s": self.elapsed_s, "capacity": self.capacity, "streams": streams}

    def __str__(self) -> str:
        head = ("stream", "in", "out", "busy s", "blocked s", "starved s")
        rows = [head]
        for s in self.streams.values():
            ins = " ".join(f"{k}={v}" for k, v in s.items_in.items()) or "-"
            outs = " ".join(f"{k}={v}" for k, v in s.items_out.items()) or "-"
            rows.append((s.name, ins, outs, f"{s.busy_s:.3f}", f"{s.blocked_s:.3f}", f"{s.starved_s:.3f}"))
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        lines.append(f"run took {self.elapsed_s:.3f} s")
        return "\n".join(lines)
