"""The run report: its table, its bottleneck, its plain-data form and its log record."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from mimo import RunReport, Stream, StreamReport, Workflow


def _slow_middle(n: int = 60, delay: float = 0.004, capacity: int = 2) -> Workflow:
    """source -> slow -> sink, where only ``slow`` takes time per item."""

    async def source(ins, outs, state):
        for i in range(n):
            await outs.x.push(i)

    async def slow(ins, outs, state):
        async for v in ins.x:
            await asyncio.sleep(delay)
            await outs.y.push(v * 2)

    async def sink(ins, outs, state):
        async for v in ins.y:
            state.append(v)

    wf = Workflow(capacity=capacity, name="pipeline")
    a = wf.add_stream(Stream(outs=["x"], fn=source))
    b = wf.add_stream(Stream(["x"], ["y"], fn=slow))
    c = wf.add_stream(Stream(["y"], fn=sink, state=[]))
    a.pipe(b).pipe(c)
    return wf


@pytest.mark.timeout(20)
def test_the_slow_stream_is_named_the_bottleneck():
    report = _slow_middle().run()
    assert report.bottleneck == "slow"
    assert "slow was busy" in report.why_bottleneck()


@pytest.mark.timeout(20)
def test_a_slow_sink_is_the_bottleneck_and_its_input_is_back_pressured():
    async def source(ins, outs, state):
        for i in range(60):
            await outs.x.push(i)

    async def sink(ins, outs, state):
        async for _ in ins.x:
            await asyncio.sleep(0.004)

    wf = Workflow(capacity=2)
    wf.add_stream(Stream(outs=["x"], fn=source)).pipe(Stream(["x"], fn=sink))
    report = wf.run()
    assert report.bottleneck == "sink"
    assert [str(lk) for lk in report.backpressured] == ["source.x -> sink.x"]


@pytest.mark.timeout(20)
def test_the_join_into_the_slow_stream_is_back_pressured_and_the_one_after_it_is_not():
    report = _slow_middle().run()
    assert [str(lk) for lk in report.backpressured] == ["source.x -> slow.x"]


@pytest.mark.timeout(20)
def test_the_table_shows_every_stream_its_ports_and_marks_the_bottleneck():
    report = _slow_middle(n=30).run()
    text = str(report)
    lines = text.splitlines()
    assert lines[0].split() == ["stream", "in", "out", "busy", "blocked", "starved"]
    assert any(line.startswith("source") and "x=30" in line for line in lines)
    slow_line = next(line for line in lines if line.startswith("slow"))
    assert "x=30" in slow_line and "y=30" in slow_line and slow_line.endswith("<- bottleneck")
    assert any(line.startswith("sink") and "y=30" in line for line in lines)
    assert "pipeline ran" in text and "queues of 2" in text
    assert "back-pressured: source.x -> slow.x" in text


@pytest.mark.timeout(20)
def test_to_dict_is_plain_json_with_the_same_figures():
    report = _slow_middle(n=20).run()
    data = json.loads(json.dumps(report.to_dict()))
    assert data["name"] == "pipeline"
    assert data["capacity"] == 2
    assert data["bottleneck"] == "slow"
    assert data["streams"]["slow"]["items_in"] == {"x": 20}
    assert data["streams"]["slow"]["items_out"] == {"y": 20}
    assert data["streams"]["sink"]["total_in"] == 20
    assert {"src": "slow", "out": "y", "dst": "sink", "in": "y", "items": 20} in data["links"]
    assert data["elapsed_s"] == report.elapsed_s


@pytest.mark.timeout(20)
def test_the_report_is_logged_at_info_when_the_run_ends(caplog):
    with caplog.at_level(logging.INFO, logger="mimo"):
        report = _slow_middle(n=10).run()
    records = [r for r in caplog.records if r.name == "mimo"]
    assert len(records) == 1
    rec = records[0]
    assert rec.levelno == logging.INFO
    assert "pipeline finished" in rec.getMessage()
    assert "<- bottleneck" in rec.getMessage()
    assert rec.mimo_report == report.to_dict()


def test_nothing_is_logged_below_info(caplog):
    wf = Workflow()
    wf.add_stream(Stream(outs=["a"])).pipe(Stream(["a"]))
    with caplog.at_level(logging.WARNING, logger="mimo"):
        wf.run()
    assert not [r for r in caplog.records if r.name == "mimo"]


def _stream(name: str, busy: float, blocked: float = 0.0, starved: float = 0.0) -> StreamReport:
    life = busy + blocked + starved
    return StreamReport(name, {}, {}, life, busy, blocked, starved)


def test_no_bottleneck_is_named_when_no_stream_was_busy():
    from mimo._report import Link

    streams = {"a": _stream("a", 0.0, blocked=1.0), "b": _stream("b", 0.0, starved=1.0)}
    report = RunReport(streams, 1.0, 4, links=(Link("a", "x", "b", "x"),))
    assert report.bottleneck is None
    assert "bottleneck: none stands out" in str(report)


def test_a_busy_stream_between_a_blocked_producer_and_a_starved_consumer_outranks_a_busy_sink():
    from mimo._report import Link

    streams = {
        "src": _stream("src", 0.05, blocked=0.95),
        "mid": _stream("mid", 0.9, starved=0.1),
        "out": _stream("out", 0.3, starved=0.7),
    }
    links = (Link("src", "x", "mid", "x"), Link("mid", "y", "out", "y"))
    report = RunReport(streams, 1.0, 4, links=links)
    scores = report.scores()
    assert report.bottleneck == "mid"
    assert scores["mid"] > scores["out"] > scores["src"]


def test_a_run_too_short_to_measure_names_no_bottleneck_and_no_back_pressure():
    from mimo._report import Link

    # Shares as in a real slow-middle run, but every figure in microseconds.
    streams = {
        "src": _stream("src", 0.00005, blocked=0.00095),
        "mid": _stream("mid", 0.0009, starved=0.0001),
        "out": _stream("out", 0.0001, starved=0.0009),
    }
    streams["mid"] = StreamReport("mid", {}, {}, 0.001, 0.0009, 0.0, 0.0001, backpressure_s={"x": 0.0009})
    links = (Link("src", "x", "mid", "x"), Link("mid", "y", "out", "y"))
    report = RunReport(streams, 0.001, 4, links=links)
    assert report.scores()["mid"] > 0.5
    assert report.bottleneck is None
    assert report.backpressured == []


@pytest.mark.timeout(20)
def test_a_stream_waiting_on_a_push_and_a_pop_at_once_counts_the_time_once():
    from mimo import run_together

    async def late(ins, outs, state):
        await asyncio.sleep(0.15)  # ends while both's push still waits
        await outs.out.push(1)

    async def both(ins, outs, state):
        async def read():
            async for _ in ins.a:
                pass

        async def write():
            for i in range(3):
                await outs.out.push(i)  # the sink does not read for 0.2 s: blocked

        await run_together(read(), write())

    async def sleepy_sink(ins, outs, state):
        await asyncio.sleep(0.2)
        async for _ in ins.inp:
            pass

    wf = Workflow(capacity=1)
    m = wf.add_stream(Stream(["a"], ["out"], fn=both))
    wf.add_stream(Stream(outs=["out"], fn=late)).pipe(m)
    m.pipe(wf.add_stream(Stream(["inp"], fn=sleepy_sink)))
    s = wf.run()["both"]
    assert s.blocked_s > 0.15  # a push waited about 0.2 s ...
    assert s.starved_s < 0.05  # ... and the pop waiting meanwhile is not counted again
    total = s.busy_s + s.blocked_s + s.starved_s
    assert total == pytest.approx(s.elapsed_s, rel=0.02, abs=0.002)
    assert s.share(s.blocked_s) + s.share(s.starved_s) <= 1.0
