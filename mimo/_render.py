"""Pictures of a graph: DOT and Mermaid text, and SVG/PNG through Graphviz.

Text formats need nothing installed. Pictures need the ``graphviz`` package
(the optional extra ``mimo[viz]``) and Graphviz's ``dot`` program on PATH.
After a run, the picture can carry the report: every join labelled with the
items it carried, the bottleneck stream and the back-pressured joins coloured.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from mimo._errors import MimoError
from mimo._graph import Edge, Graph, Node
from mimo._report import Link, RunReport

#: What to install for pictures.
INSTALL_HINT = "pip install 'mimo[viz]'"
DOT_HINT = (
    "Graphviz's 'dot' program was not found on PATH; install Graphviz "
    "(apt-get install graphviz, brew install graphviz, or https://graphviz.org/download/)"
)

BOTTLENECK_COLOR = "#c92a2a"
BOTTLENECK_FILL = "#ffe3e3"
BACKPRESSURE_COLOR = "#e8590c"

#: Suffixes written as text, with no Graphviz needed.
TEXT_FORMATS = {".dot": "dot", ".gv": "dot", ".mmd": "mermaid"}


class RenderError(MimoError, RuntimeError):
    """A picture could not be made: Graphviz's ``dot`` is missing or failed.

    Also a ``RuntimeError``, as it was before it joined :class:`mimo.MimoError`'s tree.
    """


def _link(e: Edge) -> Link:
    return Link(e.src.name, e.out, e.dst.name, e.in_)


def report_dot(graph: Graph, name: str = "workflow", report: RunReport | None = None) -> str:
    """The graph in DOT; with ``report``, joins carry item counts and the slow parts are coloured.

    The bottleneck stream is drawn in red, the joins whose full queue held
    their producers back in orange, and the graph's label says so.
    """
    if report is None:
        return graph.to_dot(name)
    if not report.links:
        report = dataclasses.replace(report, links=tuple(_link(e) for e in graph.edges))
    labels = {e: f"{report.link_items(_link(e)):,}" for e in graph.edges}
    pressed = set(report.backpressured)
    edge_attrs = {
        e: {"color": BACKPRESSURE_COLOR, "fontcolor": BACKPRESSURE_COLOR, "penwidth": "2.5"}
        for e in graph.edges
        if _link(e) in pressed
    }
    bottleneck = report.bottleneck
    node_attrs: dict[Node, dict[str, str]] = {
        n: {"style": "filled", "fillcolor": BOTTLENECK_FILL, "color": BOTTLENECK_COLOR, "penwidth": "2"}
        for n in graph.nodes
        if n.name == bottleneck
    }
    caption = [f"{report.elapsed_s:.2f} s, queues of {report.capacity}; edges: items carried"]
    if bottleneck is not None:
        caption.append(f"red: the bottleneck ({bottleneck})")
    if pressed:
        caption.append("orange: back-pressured joins")
    graph_attrs = {"label": "; ".join(caption), "labelloc": "b", "fontname": "Helvetica", "fontsize": "10"}
    return graph.to_dot(name, labels, node_attrs=node_attrs, edge_attrs=edge_attrs, graph_attrs=graph_attrs)


def render(
    graph: Graph, path: str | os.PathLike[str], *, report: RunReport | None = None, name: str = "workflow"
) -> Path:
    """Write a picture of ``graph`` to ``path``; the suffix picks the format.

    ``.dot``/``.gv`` and ``.mmd`` (Mermaid) are written as text. Any other
    suffix Graphviz knows (``.svg``, ``.png``, ``.pdf``, ...) is drawn by
    ``dot``: that needs the ``graphviz`` package (``mimo[viz]``; otherwise
    ``ImportError`` saying so) and the ``dot`` program (otherwise
    :class:`RenderError`). With ``report`` (what ``run()`` returned) the
    picture carries the run's figures (see :func:`report_dot`).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if TEXT_FORMATS.get(suffix) == "mermaid":
        path.write_text(graph.to_mermaid(), encoding="utf-8")
        return path
    dot = report_dot(graph, name, report)
    if TEXT_FORMATS.get(suffix) == "dot":
        path.write_text(dot, encoding="utf-8")
        return path
    try:
        import graphviz  # type: ignore[import-untyped]
    except ImportError:
        raise ImportError(f"drawing {path.name} needs the graphviz package: {INSTALL_HINT}") from None
    fmt = suffix.lstrip(".")
    if fmt not in graphviz.FORMATS:
        known = ", ".join(sorted({".svg", ".png", ".pdf", *TEXT_FORMATS}))
        raise ValueError(f"cannot tell the picture format from {path.name!r}; use a suffix such as {known}")
    try:
        data = graphviz.Source(dot).pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise RenderError(DOT_HINT) from None
    except graphviz.CalledProcessError as exc:
        raise RenderError(f"Graphviz's dot failed to draw {path.name}: {exc}") from None
    path.write_bytes(data)
    return path
