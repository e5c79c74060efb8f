"""Graph pictures: DOT and Mermaid text, SVG and PNG through Graphviz, and the run drawn on them."""

from __future__ import annotations

import asyncio
import re
import sys

import pytest

from mimo import Stream, Workflow
from mimo._render import BACKPRESSURE_COLOR, BOTTLENECK_COLOR, RenderError, report_dot


def _pipeline() -> Workflow:
    async def numbers(ins, outs, state):
        for i in range(50):
            await outs.x.push(i)

    async def slow(ins, outs, state):
        async for v in ins.x:
            await asyncio.sleep(0.003)
            await outs.even.push(v) if v % 2 == 0 else await outs.odd.push(v)

    wf = Workflow(capacity=2, name="pipeline")
    src = wf.add_stream(Stream(outs=["x"], fn=numbers))
    mid = src.pipe(Stream(["x"], ["even", "odd"], fn=slow))
    mid.pipe(Stream(["n"], name="evens"), output="even")
    mid.pipe(Stream(["n"], name="odds"), output="odd")
    return wf


def test_dot_has_a_record_per_stream_and_an_edge_per_join_and_is_deterministic():
    wf = _pipeline()
    dot = wf.to_dot()
    assert dot == _pipeline().to_dot()
    assert dot.startswith('digraph "pipeline" {')
    assert 'n1 [label="{{<i_x> x}|slow|{<o_even> even|<o_odd> odd}}"];' in dot
    assert "n0:o_x -> n1:i_x;" in dot
    assert "n1:o_even -> n2:i_n;" in dot
    assert "n1:o_odd -> n3:i_n;" in dot


def test_mermaid_has_a_node_per_stream_and_labelled_joins():
    text = _pipeline().to_mermaid()
    assert text.splitlines()[0] == "flowchart LR"
    assert '  n1["slow"]' in text
    assert '  n1 -- "even → n" --> n2' in text


@pytest.mark.timeout(20)
def test_after_a_run_joins_carry_item_counts_and_the_slow_parts_are_coloured():
    wf = _pipeline()
    report = wf.run()
    assert report.bottleneck == "slow"
    dot = report_dot(wf.graph, wf.name, report)
    assert re.search(r'n0:o_x -> n1:i_x \[label="50", color="' + BACKPRESSURE_COLOR, dot)
    assert 'n1:o_even -> n2:i_n [label="25"];' in dot
    assert 'n1:o_odd -> n3:i_n [label="25"];' in dot
    slow_line = next(line for line in dot.splitlines() if line.startswith("  n1 ["))
    assert f'color="{BOTTLENECK_COLOR}"' in slow_line and 'style="filled"' in slow_line
    assert "red: the bottleneck (slow)" in dot


@pytest.mark.timeout(30)
def test_render_svg_draws_every_stream(tmp_path):
    out = _pipeline().render(tmp_path / "flow.svg")
    svg = out.read_text()
    assert out == tmp_path / "flow.svg"
    assert "<svg" in svg
    for name in ("numbers", "slow", "evens", "odds"):
        assert f">{name}</text>" in svg


@pytest.mark.timeout(30)
def test_render_png_writes_a_png(tmp_path):
    out = _pipeline().render(tmp_path / "flow.png")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 1000


@pytest.mark.timeout(30)
def test_render_with_a_report_puts_the_counts_in_the_picture(tmp_path):
    wf = _pipeline()
    report = wf.run()
    svg = wf.render(tmp_path / "run.svg", report=report).read_text()
    assert ">25</text>" in svg and ">50</text>" in svg
    assert BOTTLENECK_COLOR in svg


def test_dot_and_mmd_suffixes_write_text_without_graphviz(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "graphviz", None)
    wf = _pipeline()
    assert wf.render(tmp_path / "flow.dot").read_text() == wf.to_dot()
    assert wf.render(tmp_path / "flow.mmd").read_text() == wf.to_mermaid()


def test_without_the_graphviz_package_the_error_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "graphviz", None)
    with pytest.raises(ImportError, match=re.escape("pip install 'mimo[viz]'")):
        _pipeline().render(tmp_path / "flow.svg")


def test_without_the_dot_program_the_error_says_to_install_graphviz(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RenderError, match="install Graphviz"):
        _pipeline().render(tmp_path / "flow.svg")
    assert not (tmp_path / "flow.svg").exists()


def test_an_unknown_suffix_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="picture format"):
        _pipeline().render(tmp_path / "flow.txt")
