"""The progress view: the live rich table, the plain fallback, and the hint when rich is missing."""

from __future__ import annotations

import asyncio
import io
import re
import sys

import pytest

from mimo import Stream, Workflow
from mimo._progress import INSTALL_HINT, Progress
from mimo._runtime import run_graph

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class FakeTerminal(io.StringIO):
    """A text buffer that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def _pipeline(n: int = 40, delay: float = 0.003) -> Workflow:
    async def numbers(ins, outs, state):
        for i in range(n):
            await outs.x.push(i)

    async def slow(ins, outs, state):
        async for v in ins.x:
            await asyncio.sleep(delay)
            await outs.y.push(v)

    wf = Workflow(capacity=4, name="demo")
    wf.add_stream(Stream(outs=["x"], fn=numbers)).pipe(Stream(["x"], ["y"], fn=slow)).pipe(Stream(["y"], name="sink"))
    return wf


def _run_with(view: Progress, wf: Workflow) -> None:
    async def go() -> None:
        async with view:
            await run_graph(wf.graph, on_start=view.start)

    asyncio.run(go())


@pytest.mark.timeout(20)
def test_rich_view_draws_a_table_of_streams_counts_and_queue_fill():
    buf = io.StringIO()
    view = Progress("rich", name="demo", file=buf, interval=0.02, width=120)
    assert view.mode == "rich"
    _run_with(view, _pipeline())
    text = ANSI.sub("", buf.getvalue())
    assert "demo" in text and "finished" in text
    assert "input queues (of 4)" in text
    for name in ("numbers", "slow", "sink"):
        assert name in text
    # The final table: every stream done, 40 items through each join.
    final = text[text.rindex("finished") :]
    rows = {line.split()[1]: line for line in final.splitlines() if line.startswith("│")}
    assert re.search(r"done\s+│\s+0\s+│\s+40\s+│", rows["numbers"])
    assert re.search(r"done\s+│\s+40\s+│\s+40\s+│", rows["slow"])
    assert re.search(r"done\s+│\s+40\s+│\s+0\s+│", rows["sink"])
    # Redrawn while running, too: more than the first and the final frame.
    assert text.count("input queues") >= 3


def test_a_queue_bar_fills_with_the_queue():
    from mimo._progress import _bar

    assert _bar(0, 8).plain == "░" * 10
    assert _bar(4, 8).plain == "█" * 5 + "░" * 5
    assert _bar(8, 8).plain == "█" * 10


@pytest.mark.timeout(20)
def test_plain_lines_when_the_output_is_not_a_terminal():
    buf = io.StringIO()
    view = Progress(True, name="demo", file=buf, interval=0.03)
    assert view.mode == "plain"
    _run_with(view, _pipeline())
    lines = buf.getvalue().splitlines()
    final = [line for line in lines if " done]" in line]
    assert len(final) == 3
    assert re.search(r"numbers: in=0 out=40 [\d,]+/s done$", final[0])
    assert re.search(r"slow: in=40 out=40 [\d,]+/s x:0/4 done$", final[1])
    assert re.search(r"sink: in=40 out=0 [\d,]+/s y:0/4 done$", final[2])
    # Periodic lines came before the final ones, while streams were running.
    assert any(line.endswith("running") for line in lines)


@pytest.mark.timeout(20)
def test_workflow_run_progress_true_writes_plain_lines_to_stderr(capsys):
    report = _pipeline(n=10, delay=0.0).run(progress=True)
    err = capsys.readouterr().err
    assert "[demo " in err and "slow: in=10 out=10" in err
    assert report["sink"].total_in == 10


@pytest.mark.timeout(20)
def test_on_a_terminal_without_rich_it_says_what_to_install_and_shows_plain_lines(monkeypatch):
    monkeypatch.setitem(sys.modules, "rich", None)
    monkeypatch.setitem(sys.modules, "rich.live", None)
    term = FakeTerminal()
    view = Progress(True, name="demo", file=term, interval=10)
    assert view.mode == "plain"
    _run_with(view, _pipeline(n=5, delay=0.0))
    out = term.getvalue()
    assert out.splitlines()[0] == (
        f"mimo: the live progress view needs rich ({INSTALL_HINT}); showing plain lines instead"
    )
    assert "sink: in=5 out=0" in out


def test_asking_for_rich_without_rich_is_an_import_error_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "rich", None)
    monkeypatch.setitem(sys.modules, "rich.live", None)
    with pytest.raises(ImportError, match=re.escape("mimo[progress]")):
        Progress("rich")


def test_on_a_terminal_with_rich_auto_picks_the_live_view():
    assert Progress(True, file=FakeTerminal()).mode == "rich"


def test_an_unknown_progress_value_is_a_value_error():
    with pytest.raises(ValueError, match="progress must be"):
        _pipeline().run(progress="fancy")


def test_standard_output_sent_elsewhere_is_left_alone_by_the_live_view(capsys):
    # Under capsys standard output is not a terminal: a program's prints must reach it, not the view.
    view = Progress(True, file=FakeTerminal())
    assert view.mode == "rich"
    assert view._redirect_stdout is False


@pytest.mark.timeout(20)
def test_prints_during_a_rich_view_reach_standard_output(capsys):
    async def talk(ins, outs, state):
        print("hello from a stream")

    wf = Workflow()
    wf.add_stream(Stream(fn=talk))
    buf = FakeTerminal()
    view = Progress(True, file=buf, interval=0.01)
    _run_with(view, wf)
    assert capsys.readouterr().out == "hello from a stream\n"
    assert "hello" not in buf.getvalue()
