"""One copy of a stream, run away from the driver, and the report made of such copies.

:class:`StreamHost` gives the user's ``run`` real mimo ports: each input is a
bounded :class:`~mimo.Channel` filled by an :class:`~mimo.executors._edges.Inbox`,
each output writes to :class:`~mimo.executors._edges.Outbox` channels, so the
stream's code, its counts and its clocks are those of a local run. It knows
nothing of the engine that places it; :mod:`mimo.executors._ray` wraps it in
an actor.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from mimo._channel import Channel
from mimo._errors import CLEAN_EXITS, EndOfStream, name_error
from mimo._ports import InputPort, Ins, OutputPort, Outs, PortTimes
from mimo._report import RunReport, StreamReport, merged_report
from mimo._runtime import feed
from mimo._supervision import CAUSES_KEPT, supervisor_for
from mimo.executors._edges import Inbox, Outbox, Sizer, Target


@dataclass
class Figures:
    """One copy's counts and clocks, as plain data that crosses processes."""

    items_in: dict[str, int]
    items_out: dict[str, int]
    life_s: float
    blocked_s: float
    starved_s: float
    buffered: dict[str, int]
    #: Seconds this copy waited for credits, per graph edge index.
    edge_wait_s: dict[int, float]
    done: bool
    #: Under ``on_error=Restart(...)``: restarts, latest causes, back-off seconds, backing off now.
    restarts: int = 0
    restart_causes: list[str] = field(default_factory=list)
    backoff_s: float = 0.0
    backing_off: bool = False
    #: It was cancelled because every consumer of its outputs had gone, and ended quietly.
    stopped_early: bool = False


@dataclass
class Outcome:
    """What a copy's run returns: its figures, its state, and its error if it failed."""

    figures: Figures
    state: Any = None
    error: BaseException | None = None
    traceback: str = ""
    has_state: bool = False


@dataclass
class Wiring:
    """One output's edges: per graph edge index, its targets (one per consumer copy)."""

    edges: dict[int, list[Target]] = field(default_factory=dict)


class StreamHost:
    """Runs one copy of a stream with channel-backed ports fed over edges."""

    def __init__(
        self,
        stream: Any,
        name: str,
        *,
        capacity: int | dict[str, int],
        producers: dict[str, int],
        fed: dict[str, list[Any]],
        return_state: bool,
    ) -> None:
        self.stream = stream
        self.name = name
        self.times = PortTimes()
        self.fed = fed
        self.return_state = return_state
        self.channels: dict[str, Channel[Any]] = {}
        self.inboxes: dict[str, Inbox] = {}
        for port in stream.in_types:
            n = producers.get(port, 0) + (1 if port in fed else 0)
            # A join's own bound (pipe(..., capacity=)) arrives per input port.
            cap = capacity[port] if isinstance(capacity, dict) else capacity
            ch: Channel[Any] = Channel(cap, producers=n, label=f"-> {name}.{port}", end=EndOfStream)
            self.channels[port] = ch
            self.inboxes[port] = Inbox(ch, port)
        self.ins = Ins(name, {p: InputPort(p, name, ch, self.times) for p, ch in self.channels.items()})
        self.outboxes: dict[str, dict[int, Outbox]] = {}
        self.outs: Outs | None = None
        self.start = 0.0
        self.end = 0.0
        self.stop_asked = False
        self.stopped_early = False
        self._task: asyncio.Task[Any] | None = None
        # A copy's own restart record: on Ray each copy keeps its own budget.
        self.supervisor = supervisor_for(stream, name)
        #: Its part in a checkpointed run (a :class:`~mimo.executors._cut.CopyCut`), or None.
        self.cut: Any = None

    def connect(
        self,
        wiring: dict[str, Wiring],
        *,
        credits: int,
        batch_size: int,
        linger_s: float,
        batch_bytes: int | None = None,
        link_bytes: int | None = None,
        sizeof: Sizer | None = None,
    ) -> None:
        """Make the output ports, writing to one :class:`Outbox` per edge."""
        ports: dict[str, OutputPort[Any]] = {}
        for port in self.stream.out_types:
            boxes = {
                index: Outbox(
                    targets,
                    credits=credits,
                    batch_size=batch_size,
                    linger_s=linger_s,
                    label=_edge_label(self.name, port, targets[0]),
                    batch_bytes=batch_bytes,
                    link_bytes=link_bytes,
                    sizeof=sizeof,
                )
                for index, targets in (wiring[port].edges.items() if port in wiring else ())
            }
            self.outboxes[port] = boxes
            if self.cut is not None:
                for box in boxes.values():
                    box.eager_end = True
            ports[port] = OutputPort(port, self.name, list(boxes.values()), self.times)
        self.outs = Outs(self.name, ports)
        # After the ports' own callbacks, so that the bundle is up to date when asked.
        for boxes in self.outboxes.values():
            for box in boxes.values():
                box.on_detach.append(self._output_left)

    def _output_left(self, box: Any) -> None:
        """An output lost its last consumer; with all of them gone, stop the stream at once."""
        if self.outs is None or self.stop_asked or self.end or not self.outs._all_gone():
            return
        self.stop_asked = True
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()

    def retarget(self, port: str, edge: int, index: int, send: Any, link: int) -> None:
        """Consumer copy ``index`` of ``port``'s edge ``edge`` was restarted: send to it along ``link``."""
        self.outboxes[port][edge].retarget(index, send, link)

    def consumer_gone(self, port: str, edge: int, index: int) -> None:
        """Consumer copy ``index`` of ``port``'s edge ``edge`` has finished."""
        self.outboxes[port][edge].target_gone(index)

    def replace_link(self, port: str, old: int, new: int) -> None:
        """The producer of ``port``'s link ``old`` was restarted and sends along ``new``."""
        self.inboxes[port].replace_link(old, new)

    async def deliver(self, port: str, link: int, seq: int, items: list[Any], end: bool) -> bool:
        """A batch arriving on ``port`` from ``link``; see :meth:`Inbox.deliver`."""
        return await self.inboxes[port].deliver(link, seq, items, end)

    async def run(self) -> Outcome:
        """Run the stream once; a failure comes back in the outcome, cancellation raises."""
        if self.outs is None:
            raise RuntimeError(f"stream {self.name!r} was run before it was connected")
        feeders = [asyncio.ensure_future(feed(self.channels[p], items)) for p, items in self.fed.items()]
        error: BaseException | None = None
        self.start = time.perf_counter()
        me = self._task = asyncio.current_task()
        try:
            try:
                if self.stop_asked:
                    raise asyncio.CancelledError  # its consumers left before it began
                if self.cut is not None:
                    self.cut.enter()
                if self.cut is not None and self.cut.skip:
                    pass  # it had ended at the checkpoint this run resumes from
                elif self.supervisor is None:
                    await self.stream.run(self.ins, self.outs)
                else:
                    outs = self.outs
                    await self.supervisor.run(lambda: self.stream.run(self.ins, outs), 0, lambda: False)
                for out in self.outs:
                    out._check_awaited()  # a push not awaited may have lost its item
                self.stopped_early = self.stop_asked  # it may have caught the cancellation and returned
            except CLEAN_EXITS:
                self.stopped_early = self.stop_asked
            except asyncio.CancelledError:
                # Stopped because its consumers left (and not also cancelled from outside): a quiet end.
                if not self.stop_asked or me is None or me.cancelling() > 1:
                    raise
                if me.cancelling():
                    me.uncancel()
                self.stopped_early = True
            except BaseException as exc:
                error = exc
            finally:
                self.end = time.perf_counter()
            if error is None:
                if self.cut is not None:
                    self.cut.finish()  # before its outputs end, which count as its barriers
                # As in a local run, only a clean end closes the outputs.
                for out in self.outs:
                    out.close()
                for ch in self.channels.values():
                    ch.detach()
                try:
                    for boxes in self.outboxes.values():
                        for box in boxes.values():
                            await box.drained()
                except Exception as exc:
                    error = exc
        except BaseException:
            for boxes in self.outboxes.values():
                for box in boxes.values():
                    box.abandon()
            raise
        finally:
            for f in feeders:
                f.cancel()
            if feeders:
                await asyncio.wait(feeders)
        if error is not None:
            name_error(error, self.name)
            text = "".join(traceback.format_exception(error))
            return Outcome(self.figures(), error=error, traceback=text)
        if self.return_state:
            return Outcome(self.figures(), state=self.stream.state, has_state=True)
        return Outcome(self.figures())

    def figures(self) -> Figures:
        """The counts and clocks so far."""
        now = time.perf_counter()
        life = ((self.end or now) - self.start) if self.start else 0.0
        return Figures(
            items_in={p: ch.statistics().popped for p, ch in self.channels.items()},
            items_out={p.name: p.count for p in self.outs} if self.outs is not None else {},
            life_s=life,
            blocked_s=self.times.blocked_s,
            starved_s=self.times.starved_s,
            buffered={p: len(ch) for p, ch in self.channels.items()},
            edge_wait_s={i: box.wait_s for boxes in self.outboxes.values() for i, box in boxes.items()},
            done=bool(self.end),
            stopped_early=self.stopped_early,
            **(self.supervisor.fields() if self.supervisor is not None else {}),
        )


def _edge_label(stream: str, port: str, target: Target) -> str:
    """``numbers.out -> affine.inp``: both ends, stream and port."""
    consumer = f"{target.consumer}.{target.port}" if target.consumer else target.port
    return f"{stream}.{port} -> {consumer}"


def build_report(
    copies: dict[str, list[Figures]],
    edge_inputs: dict[int, tuple[str, str]],
    outs: dict[str, tuple[str, ...]],
    elapsed: float,
    capacity: int,
) -> RunReport:
    """Merge each stream's copies into the figures a local run would report.

    ``edge_inputs`` maps a graph edge index to the (stream, input) it feeds,
    so that the producers' waits for credit count as that input's back-pressure.
    """
    pressure: dict[tuple[str, str], float] = {}
    for figs in copies.values():
        for f in figs:
            for index, seconds in f.edge_wait_s.items():
                key = edge_inputs[index]
                pressure[key] = pressure.get(key, 0.0) + seconds
    streams: dict[str, StreamReport] = {}
    for name, figs in copies.items():
        ports_in = list(figs[0].items_in)
        streams[name] = merged_report(
            name,
            [f.life_s for f in figs],
            blocked_s=sum(f.blocked_s for f in figs),
            starved_s=sum(f.starved_s for f in figs),
            items_in={p: sum(f.items_in[p] for f in figs) for p in ports_in},
            items_out={p: sum(f.items_out.get(p, 0) for f in figs) for p in outs[name]},
            buffered={p: sum(f.buffered[p] for f in figs) for p in ports_in},
            done=all(f.done for f in figs),
            backpressure_s={p: pressure.get((name, p), 0.0) for p in ports_in},
            restarts=sum(f.restarts for f in figs),
            restart_causes=[c for f in figs for c in f.restart_causes][-CAUSES_KEPT:],
            backoff_s=sum(f.backoff_s for f in figs),
            backing_off=any(f.backing_off for f in figs),
            stopped_early=any(f.stopped_early for f in figs),
        )
    return RunReport(streams, elapsed, capacity)
