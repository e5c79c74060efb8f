"""The workloads: what each computes, how many hops it has, and the right answer.

Every implementation of a workload gets ``n`` (the number of items) and returns
the value its sink computed; ``run.py`` compares it with :func:`expected`.
Helpers used by every implementation live here, so that they all do the same
per-item work.
"""

from __future__ import annotations

import zlib

#: Streams in the short and the long W4 chain.
CHAIN_SHORT = 3
CHAIN_LONG = 50
#: Sources merged into one sink in W4-merge.
MERGE_SOURCES = 100
#: Bytes per W3 payload.
PAYLOAD = 1024

WORKLOADS = {
    # name: (hops an item makes, what it is)
    "W1": (3, "linear: source -> map(x+1) -> map(x*2) -> sink(sum)"),
    "W2": (4, "fork/join: source broadcast to map(x+1) and map(x*2), zipped into sink(sum a+b)"),
    "W3": (2, "memory: 1 KiB payloads -> map -> slow sink (crc32); peak RSS"),
    "W3s": (2, "W3 at a tenth of the size, for the flatness check"),
    "W4c3": (CHAIN_SHORT - 1, f"chain of {CHAIN_SHORT} streams (identity stages)"),
    "W4c50": (CHAIN_LONG - 1, f"chain of {CHAIN_LONG} streams (identity stages)"),
    "W4m": (1, f"{MERGE_SOURCES} sources merged into one sink(sum)"),
}

#: What the ``--workload`` option accepts, and what each name selects.
GROUPS = {
    "W1": ["W1"],
    "W2": ["W2"],
    "W3": ["W3s", "W3"],
    "W4": ["W4c3", "W4c50", "W4m"],
}


def hops(workload: str) -> int:
    """Queue hops (edges) each item crosses in ``workload``."""
    return WORKLOADS[workload][0]


def merge_items(n: int) -> int:
    """Items per source in W4-merge (the total is rounded down to a multiple of the sources)."""
    return max(1, n // MERGE_SOURCES)


def effective_n(workload: str, n: int) -> int:
    """The number of items that actually flow for a requested ``n``."""
    if workload == "W4m":
        return merge_items(n) * MERGE_SOURCES
    return n


def expected(workload: str, n: int) -> object:
    """The correct result of ``workload`` over ``n`` items."""
    if workload == "W1":
        return n * (n + 1)  # sum of (i + 1) * 2
    if workload == "W2":
        return 3 * n * (n - 1) // 2 + n  # sum of (i + 1) + i * 2
    if workload in ("W3", "W3s"):
        return (n, n * (n - 1) // 2)  # (count, sum of the ids inside the payloads)
    if workload in ("W4c3", "W4c50"):
        return n * (n - 1) // 2
    if workload == "W4m":
        m = effective_n(workload, n)
        return m * (m - 1) // 2
    raise KeyError(workload)


def payload(i: int) -> bytes:
    """A fresh 1 KiB payload carrying ``i`` in its first 8 bytes."""
    return i.to_bytes(8, "little") * (PAYLOAD // 8)


class PayloadSink:
    """The slow W3 sink: a crc32 over each payload, and a count and sum of ids to check."""

    __slots__ = ("count", "total", "crc")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0
        self.crc = 0

    def add(self, b: bytes) -> None:
        self.count += 1
        self.total += int.from_bytes(b[:8], "little")
        self.crc = zlib.crc32(b, self.crc)

    def result(self) -> tuple[int, int]:
        return (self.count, self.total)
