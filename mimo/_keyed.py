"""Keyed workers: ``workers=N, key=fn`` sends items with the same key to the same copy.

The input queues joined in the graph stay as they are, with one consumer: a
router per input port. Each copy gets a queue of its own per input port, and
the router pushes each item to copy ``stable_hash(fn(item)) % N``. A full copy
queue blocks the router (back-pressure reaches the producers as usual), one
router keeps each key's items in order, and the end of input reaches every copy.
"""

from __future__ import annotations

import contextlib
from collections.abc import Coroutine, Iterator
from typing import Any

from mimo._channel import Channel
from mimo._errors import EndOfStream, name_error
from mimo._graph import Graph, Node, workers_of


class CopyChannel(Channel[Any]):
    """One copy's own input queue; ``source`` is the graph's queue it is routed from (for the report)."""

    __slots__ = ("source",)

    def __init__(self, source: Channel[Any], copy: int, capacity: int, observer: Any) -> None:
        super().__init__(
            capacity,
            producers=1,
            consumers=1,
            label=f"{source.label} [copy {copy}]",
            end=EndOfStream,
            observer=observer,
        )
        self.source = source


def is_keyed(node: Node) -> bool:
    """True if ``node``'s stream runs as keyed workers (a key and more than one copy)."""
    return workers_of(node) > 1 and getattr(node.stream, "key", None) is not None


class KeyedInputs:
    """The per-copy queues and routers of a run's keyed-worker streams."""

    def __init__(self, graph: Graph, chans: dict[tuple[Node, str], Channel[Any]], observer: Any) -> None:
        self._chans = chans
        self._copies: dict[tuple[Node, str], list[CopyChannel]] = {}
        for node in graph.nodes:
            if not is_keyed(node):
                continue
            for p in node.ins:
                src = chans[(node, p)]
                self._copies[(node, p)] = [CopyChannel(src, i, src.capacity, observer) for i in range(workers_of(node))]

    def channel(self, node: Node, port: str, copy: int) -> Channel[Any]:
        """The queue copy ``copy`` of ``node`` reads ``port`` from."""
        own = self._copies.get((node, port))
        return self._chans[(node, port)] if own is None else own[copy]

    def channels(self) -> list[Channel[Any]]:
        """Every per-copy queue (torn down with the graph's queues)."""
        return [c for cs in self._copies.values() for c in cs]

    def routers(self) -> Iterator[tuple[Coroutine[Any, Any, None], str]]:
        """A routing coroutine and a task name per keyed input port."""
        for (node, p), copies in self._copies.items():
            yield _route(node.name, node.stream.key, self._chans[(node, p)], copies), f"{node.name}.{p} key router"


async def _route(name: str, key: Any, src: Channel[Any], copies: list[CopyChannel]) -> None:
    from mimo.lib._hashing import stable_hash  # imported here: mimo.lib sits above the runtime

    n = len(copies)
    while True:
        try:
            item = await src.pop()
        except EndOfStream:
            break
        try:
            i = stable_hash(key(item)) % n
        except Exception as exc:
            # The user's exception, as a stream's would be: its type kept, the stream named on it.
            name_error(exc, name)
            with contextlib.suppress(Exception):
                exc.add_note(f"raised by the key function of {name!r} (keyed workers) on {item!r}")
            raise
        await copies[i].push(item)
        if all(c.detached for c in copies):
            # Every copy has left: leave the graph's queue too, so its producers may stop.
            src.close_consumer()
            return
    for c in copies:
        c.close_producer()
