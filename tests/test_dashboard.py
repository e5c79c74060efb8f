"""The live web view (``run(dashboard=...)``), driven in a real headless Chromium.

The browser is the system's Chromium (Debian's ``chromium`` package; another
path through ``MIMO_CHROMIUM``) driven by Playwright's Python package; no
browser is ever downloaded. Without it these tests skip on a workstation, but
fail in CI (the ``CI`` environment variable set), which installs it. A
screenshot of the page is saved in ``MIMO_TEST_ARTIFACTS`` (default
``test-artifacts/``) as ``dashboard.png``.

The Ray test runs only with ``-m ray``, in a pytest process of its own (see
``.ci/run``): it shares test_ray.py's fixture, which starts one Ray per module.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

import mimo
from mimo import Dashboard, Stream, Workflow
from tests.test_ray import ray_session  # noqa: F401 - the session's one Ray, shared with test_ray.py

try:
    import aiohttp  # noqa: F401
except ImportError:
    if os.environ.get("CI"):
        raise  # CI installs the dev extra, which has it
    pytest.skip(
        "the dashboard needs aiohttp (pip install 'mimo[web]'); skipped outside CI only",
        allow_module_level=True,
    )

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("MIMO_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("MIMO_TEST_ARTIFACTS", ROOT / "test-artifacts"))
# Flags that work as root in a container; the profile is a fresh temporary one per launch.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 15_000
T = TypeVar("T")


def _browser_missing(why: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{why}: CI must run the dashboard's browser tests (.ci/run installs chromium)")
    pytest.skip(f"{why} (skipped outside CI only; with CI set this fails)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _browser_missing("playwright is not installed (pip install -e '.[dev]')")
    if not os.path.exists(CHROMIUM):
        _browser_missing(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1200, "height": 760})
    p = ctx.new_page()
    p.set_default_timeout(WAIT_MS)
    try:
        yield p
    finally:
        ctx.close()


class Run:
    """A workflow running with a dashboard in a thread of its own, as a user's program would."""

    def __init__(self, wf: Any, linger: float | None, executor: Any = None) -> None:
        self.executor = executor
        self.ready = threading.Event()
        self.log = io.StringIO()
        self.board = Dashboard(linger=linger, on_url=lambda _: self.ready.set(), file=self.log)
        self.report: mimo.RunReport | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, args=(wf,), daemon=True)

    def _main(self, wf: Any) -> None:
        try:
            self.report = wf.run(dashboard=self.board, executor=self.executor)
        except BaseException as exc:
            self.error = exc
        finally:
            self.ready.set()

    @property
    def url(self) -> str:
        assert self.board.url is not None, self.error
        return self.board.url

    def get(self, path: str = "") -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def state(self) -> dict[str, Any]:
        status, body = self.get("state")
        assert status == 200
        return json.loads(body)  # type: ignore[no-any-return]


@contextmanager
def running(wf: Any, linger: float | None = None, executor: Any = None) -> Iterator[Run]:
    run = Run(wf, linger, executor)
    run.thread.start()
    assert run.ready.wait(10), "the dashboard did not come up"
    try:
        yield run
    finally:
        run.board.stop()
        run.thread.join(10)
        assert not run.thread.is_alive(), "run() did not return after the dashboard was stopped"


def paced(n: int, pause: float, name: str = "numbers") -> Stream:
    async def numbers(ins: Any, outs: Any, state: Any) -> None:
        for i in range(n):
            await outs.n.push(i)
            await asyncio.sleep(pause)

    return Stream(outs=["n"], fn=numbers, name=name)


def slow(pause: float, name: str = "slow") -> Stream:
    async def work(ins: Any, outs: Any, state: Any) -> None:
        async for x in ins.x:
            await asyncio.sleep(pause)
            await outs.y.push(x)

    return Stream(["x"], ["y"], fn=work, name=name)


def chain(*streams: Stream, capacity: int = 8, name: str = "demo") -> Workflow:
    wf = Workflow(capacity=capacity, name=name)
    step = wf.add_stream(streams[0])
    for s in streams[1:]:
        step = step.pipe(s)
    return wf


def sink(name: str = "sink") -> Stream:
    return Stream(["z"], name=name)


def in_thread(fn: Callable[[], T]) -> T:
    """Call ``fn`` in a thread: while the browser is open, Playwright holds this thread's event loop."""
    out: list[T] = []
    err: list[BaseException] = []

    def main() -> None:
        try:
            out.append(fn())
        except BaseException as exc:
            err.append(exc)

    t = threading.Thread(target=main)
    t.start()
    t.join(10)
    if err:
        raise err[0]
    return out[0]


def count(page: Any, stream: str, column: str) -> int:
    text = page.inner_text(f'#streams tr[data-stream="{stream}"] td.{column}')
    return int(re.sub(r"\D", "", text) or "0")


# -- the browser ----------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_the_page_needs_the_token(page: Any) -> None:
    with running(chain(paced(5, 0.01), sink()), linger=None) as run:
        base = run.url.split("/", 3)
        root = f"{base[0]}//{base[2]}/"
        assert page.goto(run.url).status == 200
        assert page.goto(root).status == 403
        assert page.goto(root + "not-the-token/").status == 403
        assert page.goto(root + "not-the-token/state").status == 403


@pytest.mark.timeout(30)
def test_the_page_shows_every_stream_and_its_counts_grow_while_the_run_goes_on(page: Any) -> None:
    wf = chain(paced(600, 0.005, "numbers"), slow(0.002, "double"), sink("total"))
    with running(wf) as run:
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(run.url)
        for name in ("numbers", "double", "total"):
            page.wait_for_selector(f'#graph g.node[data-stream="{name}"]')
            assert page.inner_text(f'#streams tr[data-stream="{name}"] td.name').startswith(name)
        page.wait_for_function("() => document.querySelector('#outcome').textContent === 'running'")
        total_in = "document.querySelector('#streams tr[data-stream=\"total\"] td.in').textContent"
        page.wait_for_function(f"() => +{total_in}.replace(/\\D/g, '') > 0")
        first = count(page, "total", "in")
        page.wait_for_timeout(1200)
        second = count(page, "total", "in")
        assert run.thread.is_alive(), "the run ended before the second look; make it longer"
        assert 0 < first < second < 600
    # Everything the page needs comes from mimo's own server: it works with no internet access.
    origin = run.url.split("/", 3)[:3]
    assert {"static/app.js", "static/style.css", "graph.svg", "events"} <= {u.split("/", 4)[-1] for u in requests}
    assert all(u.split("/", 3)[:3] == origin for u in requests), requests


@pytest.mark.timeout(30)
def test_the_bottleneck_is_marked_and_a_screenshot_is_saved(page: Any) -> None:
    wf = Workflow(capacity=8, name="pipeline")
    src = wf.add_stream(paced(200, 0.0005, "read"))  # about 4 s, held back by enrich
    parse = src.pipe(slow(0.0005, "parse"))
    enrich = parse.pipe(slow(0.02, "enrich"))
    enrich.pipe(slow(0.0, "store")).pipe(sink("archive"))
    parse.pipe(slow(0.001, "index")).pipe(sink("search"))
    with running(wf) as run:
        page.goto(run.url)
        page.wait_for_selector('#streams tr.bottleneck[data-stream="enrich"]')
        page.wait_for_selector('#graph g.node.bottleneck[data-stream="enrich"]')
        assert "enrich" in page.inner_text("#bottleneck")
        page.click('#graph g.node[data-stream="enrich"]')
        page.wait_for_selector("#detail h2")
        page.wait_for_timeout(1000)  # a few more updates, for the rate history in the picture
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
        assert page.inner_text("#outcome") == "running", "the picture should show a run going on; make it longer"
    assert (ARTIFACTS / "dashboard.png").stat().st_size > 10_000


@pytest.mark.timeout(30)
def test_a_failed_stream_shows_its_error_after_the_run(page: Any) -> None:
    async def check(ins: Any, outs: Any, state: Any) -> None:
        async for x in ins.x:
            if x == 7:
                raise ValueError(f"bad item {x}")
            await outs.y.push(x)

    wf = chain(paced(100, 0.001), Stream(["x"], ["y"], fn=check, name="check"), sink())
    with running(wf, linger=None) as run:
        page.goto(run.url)
        page.wait_for_selector('#streams tr[data-stream="check"] td.status-failed')
        assert page.inner_text("#outcome").startswith("failed")
        page.click('#streams tr[data-stream="check"]')
        assert "ValueError: bad item 7" in page.inner_text("#detail pre.error")
        assert run.thread.is_alive(), "the final state is served until the dashboard is stopped"
    assert isinstance(run.error, ValueError)
    assert run.board.error is run.error


@pytest.mark.timeout(30)
def test_without_graphviz_the_page_lays_the_graph_out_itself(page: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")  # no `dot`: the server says so and the page draws the graph
    with running(chain(paced(3, 0.0), slow(0.0, "middle"), sink()), linger=None) as run:
        assert run.get("graph.svg")[0] == 404
        page.goto(run.url)
        for name in ("numbers", "middle", "sink"):
            page.wait_for_selector(f'#graph g.node[data-stream="{name}"]')
        page.wait_for_function("() => document.querySelector('#outcome').textContent === 'finished'")
        assert (page.text_content("#graph g.edge text >> nth=0") or "").startswith("3 ·")


# -- the server, without a browser ----------------------------------------------------------


@pytest.mark.timeout(15)
def test_nothing_changes_the_run_and_requests_without_the_token_get_403() -> None:
    with running(chain(paced(3, 0.0), sink()), linger=None) as run:
        req = urllib.request.Request(run.url + "state", method="POST", data=b"{}")
        with pytest.raises(urllib.error.HTTPError, match="403"):
            urllib.request.urlopen(req, timeout=5)
        assert run.get("state")[0] == 200
        assert run.get("static/app.js")[0] == 200
        assert run.get("static/../../state")[0] in (403, 404)


@pytest.mark.timeout(15)
def test_updates_come_at_least_once_a_second() -> None:
    with running(chain(paced(220, 0.01), sink())) as run:
        stamps = []  # the run's clock in each update: the server's pace, whatever this thread's
        with urllib.request.urlopen(run.url + "events", timeout=5) as events:
            t0 = time.monotonic()
            while time.monotonic() - t0 < 2.2:
                line = events.readline()
                if line.startswith(b"data: "):
                    state = json.loads(line[6:])
                    if state["outcome"] == "running":
                        stamps.append(state["elapsed_s"])
        gaps = [b - a for a, b in itertools.pairwise(stamps)]
        assert len(stamps) >= 3
        assert 0 < min(gaps) and max(gaps) <= 1.0, gaps


@pytest.mark.timeout(15)
def test_the_final_state_is_served_until_linger_runs_out() -> None:
    wf = chain(paced(20, 0.0), slow(0.0, "middle"), sink())
    t0 = time.monotonic()
    with running(wf, linger=0.8) as run:
        while run.state()["outcome"] == "running" or run.state()["outcome"] == "starting":
            time.sleep(0.05)
        state = run.state()
        assert state["outcome"] == "finished"
        assert [s["total_in"] for s in state["streams"]] == [0, 20, 20]
        assert [lk["items"] for lk in state["links"]] == [20, 20]
        run.thread.join(5)  # not stopped: the linger ends on its own
        assert not run.thread.is_alive()
    assert time.monotonic() - t0 >= 0.8
    assert run.report is not None and run.report["sink"].total_in == 20
    assert run.board.report is run.report


@pytest.mark.timeout(15)
def test_the_url_is_printed_to_stderr_and_given_to_code(capsys: pytest.CaptureFixture[str]) -> None:
    urls: list[str] = []
    report = in_thread(lambda: chain(paced(3, 0.0), sink()).run(dashboard=Dashboard(on_url=urls.append)))
    assert report["sink"].total_in == 3
    err = capsys.readouterr().err
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/[\w-]{20,}/", urls[0])
    assert f"dashboard for demo at {urls[0]}" in err


@pytest.mark.timeout(15)
def test_the_dsl_runs_with_a_dashboard_too(capsys: pytest.CaptureFixture[str]) -> None:
    from mimo.lib import collect, from_iterable

    out: list[int] = []
    report = in_thread(lambda: (from_iterable([1, 2, 3]) | collect(out)).run(dashboard=True))
    assert out == [1, 2, 3]
    assert len(report) == 2
    assert "mimo: dashboard for workflow at http://127.0.0.1:" in capsys.readouterr().err


@pytest.mark.timeout(15)
def test_copies_of_a_stream_are_shown_as_one_with_their_count() -> None:
    async def double(ins: Any, outs: Any, state: Any) -> None:
        async for x in ins.x:
            await outs.y.push(2 * x)

    wf = chain(paced(50, 0.0), Stream(["x"], ["y"], fn=double, name="double", workers=3), sink())
    with running(wf, linger=None) as run:
        while run.state()["outcome"] in ("starting", "running"):
            time.sleep(0.05)
        stages = run.state()["streams"]
    assert [s["workers"] for s in stages] == [1, 3, 1]
    assert [s["total_in"] for s in stages] == [0, 50, 50]


@pytest.mark.timeout(15)
def test_a_deadlock_is_shown_as_the_runs_error() -> None:
    async def ask(ins: Any, outs: Any, state: Any) -> None:
        await ins.answer.pop()

    wf = Workflow(name="stuck")
    a = wf.add_stream(Stream(["answer"], ["question"], fn=ask, name="a"))
    b = wf.add_stream(Stream(["answer"], ["question"], fn=ask, name="b"))
    a.pipe(b)
    b.pipe(a)
    with running(wf, linger=None) as run:
        while (state := run.state())["outcome"] in ("starting", "running"):
            time.sleep(0.05)
        assert state["outcome"] == "failed"
        assert "DeadlockError" in state["errors"][0]
    assert isinstance(run.error, mimo.DeadlockError)


@pytest.mark.timeout(15)
def test_progress_and_dashboard_watch_the_same_run_async(capsys: pytest.CaptureFixture[str]) -> None:
    board = Dashboard()

    async def main() -> mimo.RunReport:
        return await chain(paced(30, 0.01), sink()).run_async(progress="plain", dashboard=board)

    report = in_thread(lambda: asyncio.run(main()))
    err = capsys.readouterr().err
    assert report["sink"].total_in == 30 and board.report is report
    assert "mimo: dashboard for demo at http://127.0.0.1:" in err
    assert "[demo " in err and " done] sink: in=30" in err


@pytest.mark.timeout(15)
def test_an_empty_workflow_runs_with_a_dashboard() -> None:
    board = Dashboard(file=io.StringIO())
    report = in_thread(lambda: Workflow().run(dashboard=board))
    assert len(report) == 0 and board.report is report


def test_a_dashboard_argument_must_be_true_false_or_a_dashboard() -> None:
    with pytest.raises(TypeError, match="dashboard must be True, False or a mimo.Dashboard"):
        in_thread(lambda: chain(paced(1, 0.0), sink()).run(dashboard="yes"))
    with pytest.raises(ValueError, match="port must be an int from 0"):
        Dashboard(port=70000)
    with pytest.raises(ValueError, match="linger must be >= 0"):
        Dashboard(linger=-1)
    with pytest.raises(ValueError, match="at most 1 second"):
        Dashboard(interval=2)


def test_without_aiohttp_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "aiohttp", None)
    with pytest.raises(ImportError, match=re.escape("pip install 'mimo[web]'")):
        in_thread(lambda: chain(paced(1, 0.0), sink()).run(dashboard=True))


# -- the command line -----------------------------------------------------------------------

FLOW = """
from mimo import Stream, Workflow

async def numbers(ins, outs, state):
    for i in range(5):
        await outs.n.push(i)

workflow = Workflow(name="five")
workflow.add_stream(Stream(outs=["n"], fn=numbers)).pipe(Stream(["n"], name="sink"))
"""


def mimo_command(*args: str, **kw: Any) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "mimo", *args], stderr=subprocess.PIPE, text=True, env=env, **kw)


@pytest.mark.timeout(30)
def test_mimo_run_dashboard_stays_up_until_ctrl_c_then_reports_the_run(tmp_path: Path) -> None:
    (tmp_path / "flow.py").write_text(FLOW)
    proc = mimo_command("run", str(tmp_path / "flow.py"), "--dashboard", "--port", "0", cwd=tmp_path)
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if "stays up until Ctrl-C" in line:
            break
    url = re.search(r"dashboard for five at (http://127\.0\.0\.1:\d+/\S+/)", "".join(lines))
    assert url is not None, "".join(lines)
    with urllib.request.urlopen(url[1] + "state", timeout=5) as r:
        assert json.loads(r.read())["outcome"] == "finished"
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read()
    assert proc.wait(10) == 0, rest
    assert "sink" in rest and "five ran" in rest


@pytest.mark.timeout(30)
def test_mimo_run_linger_ends_on_its_own(tmp_path: Path) -> None:
    (tmp_path / "flow.py").write_text(FLOW)
    proc = mimo_command("run", "flow.py", "--dashboard", "--linger", "0.2", cwd=tmp_path)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "stays up for 0.2 s" in err


@pytest.mark.timeout(30)
def test_mimo_run_dashboard_options_need_dashboard(tmp_path: Path) -> None:
    (tmp_path / "flow.py").write_text(FLOW)
    proc = mimo_command("run", "flow.py", "--port", "8123", cwd=tmp_path)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 2
    assert "--port only go with --dashboard" in err


# -- Ray ------------------------------------------------------------------------------------


@pytest.mark.ray
@pytest.mark.timeout(120)
def test_a_ray_run_is_shown_live_and_so_is_its_failure(request: pytest.FixtureRequest) -> None:
    ray_executor = request.getfixturevalue("ray_session")

    async def check(ins: Any, outs: Any, state: Any) -> None:
        async for x in ins.n:
            if x == 40:
                raise ValueError(f"bad item {x}")

    wf = chain(paced(60, 0.02), Stream(["n"], fn=check, name="check"))
    seen = []
    with running(wf, linger=None, executor=ray_executor) as run:
        while (state := run.state())["outcome"] in ("starting", "running"):
            seen.append(state["streams"][1]["total_in"])
            time.sleep(0.1)
        check_state = state["streams"][1]
        assert state["outcome"] == "failed"
        assert check_state["status"] == "failed"
        assert "ValueError: bad item 40" in check_state["error"]
    assert any(0 < n < 40 for n in seen), seen
    assert isinstance(run.error, ValueError)
