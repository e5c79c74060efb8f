"""A live web view of a running graph, served from the run's own event loop.

``workflow.run(dashboard=True)`` serves a page on 127.0.0.1 that draws the
graph and updates it a few times a second over Server-Sent Events: every
join's queue fill and items carried, every stream's rate, its busy, blocked
and starved shares, the current bottleneck, and a short rate history. The
page is read-only and every request needs the random token in its URL
(others get 403). Serving needs ``aiohttp`` (the optional extra
``mimo[web]``); every asset ships in the package, so the page works offline.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import hmac
import json
import secrets
import shutil
import socket
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import TYPE_CHECKING, Any, TextIO

from mimo._report import Link, RunReport

if TYPE_CHECKING:
    from aiohttp import web

    from mimo._graph import Graph
    from mimo._runtime import OnStart

#: What to install for the dashboard.
INSTALL_HINT = "pip install 'mimo[web]'"

#: Seconds between updates of the page (it must be at least once a second).
INTERVAL = 0.5
#: Rates kept per stream for the history drawn on the page.
HISTORY = 120
#: The current bottleneck is judged on the last this many seconds of the run.
WINDOW_S = 5.0

_STATIC = {
    "index.html": "text/html",
    "app.js": "text/javascript",
    "style.css": "text/css",
}
# Nothing but this server's own files: no CDN, no inline script, no third-party requests.
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


class Dashboard:
    """Serves a live web view of a run; pass one as ``run(dashboard=...)``.

    ``dashboard=True`` is ``Dashboard()``: a free port on 127.0.0.1, serving
    stops when the run ends. ``linger`` keeps the final state on the page for
    that many seconds after the run (``None``: until Ctrl-C or :meth:`stop`).
    ``host`` other than loopback exposes the page to the network; the token
    still guards it. The URL, token included, is written to ``file``
    (standard error by default), passed to ``on_url`` once the page is up,
    and kept in :attr:`url`. ``run()`` still returns (or raises) what the run
    did, after the linger.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        linger: float | None = 0.0,
        interval: float = INTERVAL,
        on_url: Callable[[str], None] | None = None,
        file: TextIO | None = None,
    ) -> None:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port must be an int from 0 (any free port) to 65535, not {port!r}")
        if linger is not None and linger < 0:
            raise ValueError(f"linger must be >= 0 seconds or None (until Ctrl-C), not {linger!r}")
        if not 0 < interval <= 1:
            raise ValueError(f"interval must be more than 0 and at most 1 second, not {interval!r}")
        self.port = port
        self.host = host
        self.linger = linger
        self.interval = interval
        self.on_url = on_url
        self.file = file
        #: The page's address with its token; None until the page is served.
        self.url: str | None = None
        #: The report of the last run, once it has finished (None if it failed).
        self.report: RunReport | None = None
        #: The exception the last run raised, if it failed.
        self.error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    @classmethod
    def of(cls, spec: Any) -> Dashboard:
        """The dashboard that a ``dashboard=`` argument asks for."""
        if isinstance(spec, Dashboard):
            return spec
        if spec is True:
            return cls()
        raise TypeError(f"dashboard must be True, False or a mimo.Dashboard, not {spec!r}")

    def stop(self) -> None:
        """End the linger: at once, or as soon as the run ends if it is still going; safe from any thread."""
        loop, ev = self._loop, self._stop
        if loop is not None and ev is not None and not loop.is_closed():
            loop.call_soon_threadsafe(ev.set)

    def __repr__(self) -> str:
        return f"<Dashboard {self.url or f'{self.host}:{self.port}'}>"

    async def _watch(self, graph: Graph, name: str, run: Callable[[OnStart], Awaitable[RunReport]]) -> RunReport:
        """Serve the page while ``run`` runs (given the hook that feeds it), then linger."""
        try:
            import aiohttp.web  # noqa: F401
        except ImportError:
            raise ImportError(f"the dashboard needs the aiohttp package: {INSTALL_HINT}") from None
        self.report, self.error = None, None
        board = Board(graph, name)
        server = _Server(board, self.interval)
        runner = await server.start(self.host, self.port)
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        try:
            self.url = server.url
            print(f"mimo: dashboard for {name} at {self.url}", file=self.file or sys.stderr, flush=True)
            if self.on_url is not None:
                self.on_url(self.url)
            try:
                report = await run(server.on_start)
            except Exception as exc:
                self.error = exc
                server.end(None, exc)
                await self._linger(name)
                raise
            self.report = report
            server.end(report, None)
            await self._linger(name)
            return report
        finally:
            self._stop = None
            await server.close(runner)

    async def _linger(self, name: str) -> None:
        if self.linger == 0 or self._stop is None:
            return
        until = "until Ctrl-C" if self.linger is None else f"for {self.linger:g} s (Ctrl-C ends it sooner)"
        print(f"mimo: {name} has ended; its dashboard stays up {until}", file=self.file or sys.stderr, flush=True)
        try:
            await asyncio.wait_for(self._stop.wait(), self.linger)
        except TimeoutError:
            pass


async def watch(spec: Any, graph: Graph, name: str, run: Callable[[OnStart], Awaitable[RunReport]]) -> RunReport:
    """Run ``run`` with the dashboard that ``spec`` (``True`` or a :class:`Dashboard`) asks for."""
    return await Dashboard.of(spec)._watch(graph, name, run)


# -- the figures ----------------------------------------------------------------------------


def _pace(s: Any) -> int:
    # A stream's pace is what it takes in; a source's, what it gives out (as the progress view).
    return int(s.total_in if s.items_in else s.total_out)


def _since(now: RunReport, then: RunReport) -> RunReport:
    """The run between two snapshots of it, as a report of its own."""
    streams = {}
    for n, s in now.streams.items():
        p = then.streams.get(n)
        if p is None:
            streams[n] = s
            continue
        streams[n] = dataclasses.replace(
            s,
            elapsed_s=max(0.0, s.elapsed_s - p.elapsed_s),
            busy_s=max(0.0, s.busy_s - p.busy_s),
            blocked_s=max(0.0, s.blocked_s - p.blocked_s),
            starved_s=max(0.0, s.starved_s - p.starved_s),
            backpressure_s={k: max(0.0, v - p.backpressure_s.get(k, 0.0)) for k, v in s.backpressure_s.items()},
        )
    return dataclasses.replace(now, streams=streams, elapsed_s=max(0.0, now.elapsed_s - then.elapsed_s))


def _errors(exc: BaseException) -> tuple[dict[str, str], list[str]]:
    """A failed run's errors: by stream name, and those that belong to no stream (a deadlock)."""
    by_stream: dict[str, str] = {}
    other: list[str] = []
    if isinstance(exc, BaseExceptionGroup):
        for e in exc.exceptions:
            s, o = _errors(e)
            by_stream.update(s)
            other += o
        return by_stream, other
    text = "".join(traceback.format_exception(exc)).rstrip()
    name = getattr(exc, "mimo_stream", None)
    if isinstance(name, str):
        by_stream[name] = text
    else:
        other.append(text)
    return by_stream, other


class Board:
    """What the page shows, taken from snapshots of the run's report; no I/O."""

    def __init__(self, graph: Graph, name: str) -> None:
        self.name = name
        self.graph = graph
        self.links = tuple(Link(e.src.name, e.out, e.dst.name, e.in_) for e in graph.edges)
        self.capacity = graph.capacity
        self.report: RunReport | None = None
        self.outcome = "starting"
        self.errors: dict[str, str] = {}
        self.run_errors: list[str] = []
        self.rates: dict[str, float] = {}
        self.history: dict[str, collections.deque[float]] = {
            n.name: collections.deque(maxlen=HISTORY) for n in graph.nodes
        }
        self._last: tuple[float, dict[str, int]] | None = None
        # Snapshots of the last WINDOW_S seconds (bounded, should a run's clock stand still).
        self._past: collections.deque[RunReport] = collections.deque(maxlen=256)
        self.bottleneck: str | None = None
        self.why = ""

    def layout(self) -> dict[str, Any]:
        """The graph's shape, for drawing it: streams with their ports, and joins."""
        return {
            "name": self.name,
            "capacity": self.capacity,
            "streams": [{"name": n.name, "ins": list(n.ins), "outs": list(n.outs)} for n in self.graph.nodes],
            "links": [{"src": lk.src, "out": lk.out, "dst": lk.dst, "in": lk.in_} for lk in self.links],
        }

    def update(self, report: RunReport, now: float | None = None) -> None:
        """Take in a snapshot of the running graph: rates, history, the current bottleneck."""
        now = time.perf_counter() if now is None else now
        report = dataclasses.replace(report, links=self.links, name=self.name)
        self.capacity = report.capacity
        counts = {s.name: _pace(s) for s in report}
        if self._last is not None:
            t, before = self._last
            dt = now - t
            for n, c in counts.items():
                self.rates[n] = (c - before.get(n, 0)) / dt if dt > 0 else 0.0
                self.history.setdefault(n, collections.deque(maxlen=HISTORY)).append(self.rates[n])
        self._last = (now, counts)
        # The bottleneck now, not over the whole run: judged on the last WINDOW_S seconds.
        self._past.append(report)
        while len(self._past) > 1 and report.elapsed_s - self._past[1].elapsed_s >= WINDOW_S:
            self._past.popleft()
        recent = _since(report, self._past[0]) if len(self._past) > 1 else report
        self.bottleneck, self.why = recent.bottleneck, recent.why_bottleneck()
        self.report = report
        self.outcome = "running"

    def end(self, report: RunReport | None, exc: BaseException | None) -> None:
        """The run is over: keep its final figures, its bottleneck and its errors."""
        if report is not None:
            self.update(report)
        if self.report is not None:
            # Once it is over, the bottleneck is the whole run's, as the report names it.
            self.bottleneck, self.why = self.report.bottleneck, self.report.why_bottleneck()
        if exc is not None:
            self.errors, self.run_errors = _errors(exc)
            self.outcome = "failed"
        else:
            self.outcome = "finished"

    def state(self) -> dict[str, Any]:
        """Everything the page shows, as plain data."""
        rep = self.report
        streams = []
        for node in self.graph.nodes:
            n = node.name
            s = rep.streams.get(n) if rep is not None else None
            if n in self.errors:
                status = "failed"
            elif s is None or self.outcome == "starting":
                status = "waiting"
            elif s.done:
                status = "done"
            else:
                status = "running" if self.outcome == "running" else "stopped"
            life = s.elapsed_s if s is not None else 0.0
            streams.append(
                {
                    "name": n,
                    "status": status,
                    "workers": s.workers if s is not None else 1,
                    "restarts": int(getattr(s, "restarts", 0)),
                    "items_in": dict(s.items_in) if s is not None else {p: 0 for p in node.ins},
                    "items_out": dict(s.items_out) if s is not None else {p: 0 for p in node.outs},
                    "total_in": s.total_in if s is not None else 0,
                    "total_out": s.total_out if s is not None else 0,
                    "rate": self.rates.get(n, 0.0) if self.outcome == "running" else 0.0,
                    "avg_rate": _pace(s) / life if s is not None and life > 0 else 0.0,
                    "elapsed_s": life,
                    "busy_s": s.busy_s if s is not None else 0.0,
                    "blocked_s": s.blocked_s if s is not None else 0.0,
                    "starved_s": s.starved_s if s is not None else 0.0,
                    "busy": s.share(s.busy_s) if s is not None else 0.0,
                    "blocked": s.share(s.blocked_s) if s is not None else 0.0,
                    "starved": s.share(s.starved_s) if s is not None else 0.0,
                    "history": [round(r, 3) for r in self.history.get(n, ())],
                    "error": self.errors.get(n),
                }
            )
        links = []
        for lk in self.links:
            dst = rep.streams.get(lk.dst) if rep is not None else None
            queued = dst.buffered.get(lk.in_, 0) if dst is not None else 0
            cap = self.capacity
            links.append(
                {
                    "src": lk.src,
                    "out": lk.out,
                    "dst": lk.dst,
                    "in": lk.in_,
                    "items": rep.link_items(lk) if rep is not None else 0,
                    "queued": queued,
                    "fill": min(1.0, queued / cap) if cap else (1.0 if queued else 0.0),
                }
            )
        return {
            "name": self.name,
            "outcome": self.outcome,
            "elapsed_s": rep.elapsed_s if rep is not None else 0.0,
            "capacity": self.capacity,
            "bottleneck": self.bottleneck,
            "why": self.why,
            # While the run goes on the bottleneck is judged on its last few seconds only.
            "window_s": WINDOW_S if self.outcome == "running" else None,
            "errors": self.run_errors,
            "streams": streams,
            "links": links,
        }


# -- the server -----------------------------------------------------------------------------


class _Server:
    """The aiohttp application: the page, its assets, the graph, and the live figures."""

    def __init__(self, board: Board, interval: float) -> None:
        self.board = board
        self.interval = interval
        self.token = secrets.token_urlsafe(18)
        self.url = ""
        self._snapshot: Callable[[], RunReport] | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._payload = b""
        self._changed = asyncio.Event()
        self._closing = False
        self._svg: asyncio.Task[bytes | None] | None = None
        self._publish()

    async def start(self, host: str, port: int) -> web.AppRunner:
        from aiohttp import web

        @web.middleware
        async def guard(request: web.Request, handler: Callable[[web.Request], Awaitable[Any]]) -> Any:
            return await self._guard(request, handler)

        app = web.Application(middlewares=[guard])
        base = f"/{self.token}/"
        app.router.add_get(base, self._index)
        app.router.add_get(base.rstrip("/"), self._to_index)
        app.router.add_get(base + "static/{file}", self._static)
        app.router.add_get(base + "graph.json", self._layout)
        app.router.add_get(base + "graph.svg", self._graph_svg)
        app.router.add_get(base + "state", self._state)
        app.router.add_get(base + "events", self._events)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            await runner.cleanup()
            raise OSError(exc.errno, f"the dashboard cannot listen on {host}:{port}: {exc.strerror}") from None
        site = web.SockSite(runner, sock)
        await site.start()
        shown = f"[{host}]" if family == socket.AF_INET6 else host
        self.url = f"http://{shown}:{sock.getsockname()[1]}{base}"
        return runner

    def on_start(self, snapshot: Callable[[], RunReport]) -> None:
        """The runtime's hook: from now on the run can be looked at."""
        self._snapshot = snapshot
        self._tick()
        self._ticker = asyncio.get_running_loop().create_task(self._tick_forever())

    def end(self, report: RunReport | None, exc: BaseException | None) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        if report is None and self._snapshot is not None:
            self.board.update(self._snapshot())  # a failed run's last figures
        self.board.end(report, exc)
        self._publish()

    async def close(self, runner: web.AppRunner) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
        self._closing = True
        self._changed.set()
        await runner.cleanup()

    def _tick(self) -> None:
        assert self._snapshot is not None
        self.board.update(self._snapshot())
        self._publish()

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self._tick()

    def _publish(self) -> None:
        self._payload = json.dumps(self.board.state(), separators=(",", ":")).encode()
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    # -- handlers ------------------------------------------------------------------------

    @staticmethod
    def _response(body: bytes, content_type: str, status: int = 200) -> web.Response:
        from aiohttp import web

        return web.Response(body=body, status=status, content_type=content_type, headers=_HEADERS)

    async def _guard(self, request: web.Request, handler: Callable[[web.Request], Awaitable[Any]]) -> Any:
        first = request.path.split("/", 2)[1] if request.path.startswith("/") else ""
        # Read-only, and only for whoever has the token.
        if not hmac.compare_digest(first.encode(), self.token.encode()) or request.method not in ("GET", "HEAD"):
            return self._response(b"403: this page needs the token from the URL mimo printed\n", "text/plain", 403)
        return await handler(request)

    async def _index(self, request: web.Request) -> web.Response:
        return self._response(_asset("index.html"), "text/html")

    async def _to_index(self, request: web.Request) -> web.Response:
        from aiohttp import web

        raise web.HTTPFound(f"/{self.token}/")

    async def _static(self, request: web.Request) -> web.Response:
        from aiohttp import web

        name = request.match_info["file"]
        if name not in _STATIC or name == "index.html":
            raise web.HTTPNotFound()
        return self._response(_asset(name), _STATIC[name])

    async def _layout(self, request: web.Request) -> web.Response:
        return self._response(json.dumps(self.board.layout()).encode(), "application/json")

    async def _state(self, request: web.Request) -> web.Response:
        return self._response(self._payload, "application/json")

    async def _graph_svg(self, request: web.Request) -> web.Response:
        if self._svg is None:
            self._svg = asyncio.ensure_future(_draw(self.board.graph, self.board.name))
        svg = await asyncio.shield(self._svg)
        if svg is None:
            # The page lays the graph out itself.
            return self._response(b"Graphviz's dot is not installed\n", "text/plain", 404)
        return self._response(svg, "image/svg+xml")

    async def _events(self, request: web.Request) -> web.StreamResponse:
        from aiohttp import web

        resp = web.StreamResponse(headers={**_HEADERS, "Content-Type": "text/event-stream"})
        await resp.prepare(request)
        sent = b""
        try:
            while not self._closing:
                changed = self._changed
                if self._payload is not sent:
                    sent = self._payload
                    await resp.write(b"data: " + sent + b"\n\n")
                await changed.wait()
        except (ConnectionResetError, ConnectionError):
            pass  # the page was closed
        return resp


def _asset(name: str) -> bytes:
    return resources.files("mimo").joinpath("_dashboard_static", name).read_bytes()


async def _draw(graph: Graph, name: str) -> bytes | None:
    """The graph drawn by Graphviz as SVG, with ids the page finds streams and joins by; None without ``dot``."""
    dot_exe = shutil.which("dot")
    if dot_exe is None:
        return None
    # Edge labels are rewritten live; the placeholder reserves their room in the layout.
    labels = {e: "0,000,000 · 000/000" for e in graph.edges}
    dot = graph.to_dot(
        name,
        labels,
        node_attrs={n: {"id": f"mimo-node-{i}"} for i, n in enumerate(graph.nodes)},
        edge_attrs={e: {"id": f"mimo-edge-{i}"} for i, e in enumerate(graph.edges)},
        graph_attrs={"nodesep": "0.5", "ranksep": "0.6", "bgcolor": "transparent"},
    )
    try:
        proc = await asyncio.create_subprocess_exec(
            dot_exe,
            "-Tsvg",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        out, _ = await proc.communicate(dot.encode())
    except OSError:
        return None
    return out if proc.returncode == 0 else None
