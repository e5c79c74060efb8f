"""A state machine over the public building API: misuse is an error, never a different result.

Hypothesis builds graphs step by step, through the classic API
(``Workflow.add_stream``, ``Step.pipe``, ``Step.push``) and through the DSL
(``|`` and ``>>``), mixing valid operations with invalid ones: unknown or
ambiguous port names, duplicate names, a join made twice, steps of another
workflow, bad capacities, bad port declarations. Invariants:

* an invalid operation raises a mimo error (``WorkflowError``) or a
  ``TypeError``/``ValueError`` that names the stream or port at fault, at
  build time, and leaves the graph exactly as it was;
* a valid graph runs to completion, and every sink received what a reference
  model computed from the same operations: the same items, each as often, in
  the same order wherever the order is determined (one producer per input);
  running one graph runs none of the others.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from mimo import In, MimoError, Out, Restart, Stream, Workflow, WorkflowError, lib, stream
from mimo._graph import Graph
from mimo.testing import run_workflow

ITEMS = st.lists(st.integers(0, 99), max_size=5)
#: Explicit names; "relay" and "sink" are also default names (the functions' names).
NAMES = st.sampled_from(["alpha", "beta", "relay", "sink"])
BAD_CAPACITIES = st.sampled_from([-1, 1.5, "8", True, None])


async def source(ins: Any, outs: Any, state: Any) -> None:
    for x in state["items"]:
        await outs[state["port"]].push(x)


async def relay(ins: Any, outs: Any, state: Any) -> None:
    async for x in ins.inp:
        await outs.out.push(x + 1)


async def pair(ins: Any, outs: Any, state: Any) -> None:
    async def copy(src: Any, dst: Any) -> None:
        async for x in src:
            await dst.push(x)

    from mimo import run_together

    await run_together(copy(ins.a, outs.x), copy(ins.b, outs.y))


async def sink(ins: Any, outs: Any, state: Any) -> None:
    async for x in ins.inp:
        state["got"].append(x)


KINDS: dict[str, tuple[list[str], list[str]]] = {
    "relay": (["inp"], ["out"]),
    "pair": (["a", "b"], ["x", "y"]),
    "sink": (["inp"], []),
}


def snapshot(graph: Graph) -> tuple[Any, ...]:
    """Everything a build operation may change."""
    return (
        graph.capacity,
        [(n.name, id(n.stream)) for n in graph.nodes],
        [(e.src.name, e.out, e.dst.name, e.in_) for e in graph.edges],
        {(n.name, p): list(items) for (n, p), items in graph.feeds.items()},
    )


class ClassicAPI(RuleBasedStateMachine):
    """``Workflow``, ``Stream``, ``Step.pipe`` and ``Step.push`` against a model of the graph."""

    def __init__(self) -> None:
        super().__init__()
        self.wf = Workflow(capacity=2)
        self.other = Workflow()
        self.foreign = self.other.add_stream(Stream(["inp"], fn=sink, name="elsewhere", state={"got": []}))
        # The model: per step its kind, ports, stream; the joins; the fed items.
        self.kind: list[str] = []
        self.ports: list[tuple[list[str], list[str]]] = []
        self.streams: list[Stream] = []
        self.steps: list[Any] = []
        self.edges: list[tuple[int, str, int, str]] = []
        self.feeds: dict[tuple[int, str], list[int]] = {}

    # -- the model's reading of a graph ----------------------------------------

    def reaches(self, a: int, b: int) -> bool:
        seen, todo = set(), [a]
        while todo:
            i = todo.pop()
            if i == b:
                return True
            if i not in seen:
                seen.add(i)
                todo.extend(d for s, _, d, _ in self.edges if s == i)
        return False

    def arriving(self, j: int, port: str) -> tuple[list[int], bool]:
        """The items input ``port`` of step ``j`` receives, and whether their order is determined."""
        producers: list[tuple[list[int], bool]] = []
        if (j, port) in self.feeds:
            producers.append((self.feeds[(j, port)], True))
        producers += [self.produced(s, o) for s, o, d, p in self.edges if d == j and p == port]
        items = [x for got, _ in producers for x in got]
        return items, len(producers) <= 1 and all(ordered for _, ordered in producers)

    def produced(self, i: int, port: str) -> tuple[list[int], bool]:
        kind = self.kind[i]
        if kind == "source":
            return list(self.streams[i].state["items"]), True
        if kind == "relay":
            items, ordered = self.arriving(i, "inp")
            # Copies share the input; order across them is not kept.
            return [x + 1 for x in items], ordered and self.streams[i].workers == 1
        return self.arriving(i, {"x": "a", "y": "b"}[port])  # pair

    # -- checks shared by the invalid operations ---------------------------------

    def refused(self, exc_types: Any, match: str, op: Any) -> None:
        event(f"refused: {match[:40]}")
        before = snapshot(self.wf.graph)
        with pytest.raises(exc_types, match=match):
            op()
        assert snapshot(self.wf.graph) == before, "a refused operation changed the graph"

    # -- valid operations ----------------------------------------------------------

    @initialize(items=ITEMS)
    def start_with_a_source(self, items: list[int]) -> None:
        self.add_source(items, None, "out")

    @rule(items=ITEMS, name=st.one_of(st.none(), NAMES), port=st.sampled_from(["out", "o"]))
    def add_source(self, items: list[int], name: str | None, port: str) -> None:
        s = Stream(outs=[port], fn=source, name=name, state={"items": items, "port": port})
        self._add(s, "source", ([], [port]), name)

    @rule(kind=st.sampled_from(sorted(KINDS)), name=st.one_of(st.none(), NAMES), workers=st.sampled_from([1, 1, 2]))
    def add_stream(self, kind: str, name: str | None, workers: int = 1) -> None:
        ins, outs = KINDS[kind]
        fn = {"relay": relay, "pair": pair, "sink": sink}[kind]
        if kind == "pair":
            workers = 1
        s = Stream(ins, outs, fn=fn, name=name, state={"got": []} if kind == "sink" else None, workers=workers)
        self._add(s, kind, (ins, outs), name)

    @rule(kind=st.sampled_from(sorted(KINDS)), data=st.data())
    def add_stream_fed_by_another(self, kind: str, data: Any) -> None:
        """A new stream joined at once from a producer already there: graphs grow quickly."""
        self.add_stream(kind, None)
        producers = [i for i, p in enumerate(self.ports[:-1]) if p[1]]
        if producers:
            i = data.draw(st.sampled_from(producers))
            out = data.draw(st.sampled_from([None, *self.ports[i][1]]))
            inp = data.draw(st.sampled_from([None, *self.ports[-1][0]]))
            self._pipe(i, out, len(self.steps) - 1, inp)

    def _add(self, s: Stream, kind: str, ports: tuple[list[str], list[str]], name: str | None) -> None:
        # A name asked for is never silently changed, even when another stream has it by default.
        taken = [i for i, step in enumerate(self.steps) if step.name == s.name and self.streams[i] is not s]
        if name is not None and taken:
            self.refused(WorkflowError, f"duplicate stream name '{name}'", lambda: self.wf.add_stream(s))
            return
        step = self.wf.add_stream(s)
        assert step.name not in [t.name for t in self.steps], "two steps share a name"
        assert name is None or step.name == name, "an explicit name was changed"
        assert step.name == s.name or re.fullmatch(re.escape(s.name) + r"_\d+", step.name)
        self.kind.append(kind)
        self.ports.append(ports)
        self.streams.append(s)
        self.steps.append(step)

    @precondition(lambda self: any(k == "relay" for k in self.kind))
    @rule(data=st.data())
    def add_the_same_stream_again(self, data: Any) -> None:
        """A stream object may be placed twice; each placement is its own step."""
        i = data.draw(st.sampled_from([i for i, k in enumerate(self.kind) if k == "relay"]))
        step = self.wf.add_stream(self.streams[i])
        assert step.name != self.steps[i].name
        self.kind.append("relay")
        self.ports.append(self.ports[i])
        self.streams.append(self.streams[i])
        self.steps.append(step)

    @precondition(lambda self: any(p[1] for p in self.ports) and any(p[0] for p in self.ports))
    @rule(data=st.data(), joins=st.integers(1, 3))
    def pipe(self, data: Any, joins: int) -> None:
        """Valid joins, mostly: a producer, a consumer, their own port names or none."""
        for _ in range(joins):
            self._pipe_valid(data)

    def _pipe_valid(self, data: Any) -> None:
        i = data.draw(st.sampled_from([i for i, p in enumerate(self.ports) if p[1]]), label="from")
        j = data.draw(st.sampled_from([i for i, p in enumerate(self.ports) if p[0]]), label="to")
        out = data.draw(st.sampled_from([None, *self.ports[i][1]]), label="output")
        inp = data.draw(st.sampled_from([None, *self.ports[j][0]]), label="input")
        self._pipe(i, out, j, inp)

    def _pipe(self, i: int, out: str | None, j: int, inp: str | None) -> None:
        outs, ins = self.ports[i][1], self.ports[j][0]
        src, dst = self.steps[i], self.steps[j]
        do = lambda: src.pipe(dst, output=out, input=inp)  # noqa: E731
        if out is None and len(outs) != 1:
            self.refused(WorkflowError, re.escape(repr(src.name)) + ".*output", do)
            return
        if out is not None and out not in outs:
            self.refused(WorkflowError, f"{re.escape(repr(src.name))} has no output {out!r}", do)
            return
        if inp is None and len(ins) != 1:
            self.refused(WorkflowError, re.escape(repr(dst.name)) + ".*input", do)
            return
        if inp is not None and inp not in ins:
            self.refused(WorkflowError, f"{re.escape(repr(dst.name))} has no input {inp!r}", do)
            return
        o, p = out or outs[0], inp or ins[0]
        if (i, o, j, p) in self.edges:
            self.refused(WorkflowError, f"{re.escape(src.name)}.{o} is already joined to {re.escape(dst.name)}.{p}", do)
            return
        if self.reaches(j, i):
            return  # cycles are allowed, but these relays would pass items round for ever
        result = do()
        assert result is dst, "pipe() returns its target, so that calls chain"
        self.edges.append((i, o, j, p))

    @precondition(lambda self: any(self.ports[i][0] for i in range(len(self.steps))))
    @rule(data=st.data(), item=st.integers(0, 99))
    def push(self, data: Any, item: int) -> None:
        j = data.draw(st.sampled_from([i for i in range(len(self.steps)) if self.ports[i][0]]))
        ins = self.ports[j][0]
        inp = data.draw(st.sampled_from([None, *ins, "nope"]))
        step = self.steps[j]
        if inp is None and len(ins) != 1:
            self.refused(WorkflowError, re.escape(repr(step.name)) + ".*input", lambda: step.push(item))
            return
        if inp == "nope":
            self.refused(WorkflowError, "has no input 'nope'", lambda: step.push(item, input="nope"))
            return
        step.push(item, input=inp)
        self.feeds.setdefault((j, inp or ins[0]), []).append(item)

    # -- invalid operations ---------------------------------------------------------

    @rule(
        data=st.data(),
        misuse=st.sampled_from(
            [
                "pipe_anything",
                "pipe_sink_or_source",
                "pipe_across_workflows",
                "bad_name",
                "bad_ports",
                "not_async",
                "bad_on_error",
                "bad_capacity",
            ]
        ),
    )
    def misuse(self, data: Any, misuse: str) -> None:
        """One misuse of the building API (a rule of its own each would crowd out the building)."""
        getattr(self, misuse)(data)

    def pipe_anything(self, data: Any) -> None:
        """Any two steps, any port names: right, wrong, missing."""
        n = len(self.steps)
        i = data.draw(st.integers(0, n - 1), label="from")
        j = data.draw(st.integers(0, n - 1), label="to")
        out = data.draw(st.sampled_from([None, "out", "x", "y", "o", "nope"]), label="output")
        inp = data.draw(st.sampled_from([None, "inp", "a", "b", "nope"]), label="input")
        self._pipe(i, out, j, inp)

    def pipe_sink_or_source(self, data: Any) -> None:
        sinks = [i for i, k in enumerate(self.kind) if k == "sink"]
        sources = [i for i, k in enumerate(self.kind) if k == "source"]
        if not sinks:
            return
        i, j = data.draw(st.sampled_from(sinks)), data.draw(st.sampled_from(sources))
        src, dst = self.steps[i], self.steps[j]
        self.refused(WorkflowError, f"{re.escape(repr(src.name))} has no output ports", lambda: src.pipe(dst))
        self.refused(WorkflowError, f"{re.escape(repr(dst.name))} has no input ports", lambda: dst.pipe(dst))

    def pipe_across_workflows(self, data: Any) -> None:
        src = self.steps[data.draw(st.integers(0, len(self.steps) - 1))]
        self.refused(WorkflowError, "two different workflows", lambda: src.pipe(self.foreign))
        self.refused(TypeError, "pipe\\(\\) needs a Step or a Stream", lambda: src.pipe(5))  # type: ignore[arg-type]

    def bad_name(self, data: Any) -> None:
        name = data.draw(st.sampled_from(["", 5, b"alpha"]))
        s = Stream(["inp"], fn=sink, state={"got": []})
        self.refused(TypeError, "stream name must be a non-empty str", lambda: self.wf.add_stream(s, name=name))
        self.refused(TypeError, "add_stream\\(\\) needs a Stream", lambda: self.wf.add_stream(sink))  # type: ignore[arg-type]

    def bad_ports(self, data: Any) -> None:
        spec, why = data.draw(
            st.sampled_from(
                [
                    (["1x"], "'1x' is not a valid Python identifier"),
                    (["class"], "'class' is not a valid Python identifier"),
                    (["_x"], "'_x' may not start with '_'"),
                    (["a", "a"], "'a' is declared twice"),
                    ("ab", "not the string 'ab'"),
                ]
            )
        )
        side = data.draw(st.sampled_from(["ins", "outs"]))
        self.refused(TypeError, f"stream 'relay'.*{re.escape(why)}", lambda: Stream(fn=relay, **{side: spec}))

    def bad_on_error(self, data: Any) -> None:
        policy = data.draw(st.sampled_from([Restart, "restart", 5, None, Restart(max_restarts=1).delay]))
        self.refused(
            TypeError,
            "stream 'bad': on_error must be mimo.Stop\\(\\) or mimo.Restart",
            lambda: Stream(["inp"], fn=sink, name="bad", on_error=policy),
        )

    def not_async(self, data: Any) -> None:
        fn = data.draw(st.sampled_from([lambda ins, outs, state: None, 5, "relay"]))
        self.refused(TypeError, "fn must be an async function", lambda: Stream(["inp"], fn=fn, name="bad"))

    def bad_capacity(self, data: Any) -> None:
        capacity = data.draw(BAD_CAPACITIES)
        self.refused((MimoError, TypeError, ValueError), "capacity", lambda: Workflow(capacity=capacity))
        if capacity is not None:  # None means the workflow's own
            self.refused((MimoError, TypeError, ValueError), "capacity", lambda: self.wf.run(capacity=capacity))

    # -- running -------------------------------------------------------------------

    @rule(capacity=st.sampled_from([None, 0, 1, 3]))
    def run(self, capacity: int | None = None) -> None:
        for i, k in enumerate(self.kind):
            if k == "sink":
                self.streams[i].state["got"].clear()
        before = snapshot(self.wf.graph)
        run_workflow(self.wf, timeout=10, capacity=capacity)
        event(f"ran a graph with {min(len(self.edges), 5)}{'+' if len(self.edges) >= 5 else ''} joins")
        assert snapshot(self.wf.graph) == before, "running changed the graph"
        for i, k in enumerate(self.kind):
            if k != "sink":
                continue
            got = self.streams[i].state["got"]
            want, ordered = self.arriving(i, "inp")
            if ordered and self.streams[i].workers == 1:
                assert got == want, (self.steps[i].name, self.wf.graph)
            else:
                assert Counter(got) == Counter(want), (self.steps[i].name, self.wf.graph)

    def teardown(self) -> None:
        # Every sequence ends with a run of the whole graph built so far.
        self.run()

    @invariant()
    def the_graph_is_the_model(self) -> None:
        g = self.wf.graph
        assert [n.stream for n in g.nodes] == self.streams
        names = [(self.steps[s].name, o, self.steps[d].name, p) for s, o, d, p in self.edges]
        assert [(e.src.name, e.out, e.dst.name, e.in_) for e in g.edges] == names


ClassicAPI.TestCase.settings = settings(settings.default, stateful_step_count=30)
test_classic_api = pytest.mark.timeout(120)(ClassicAPI.TestCase)


# -- the DSL ------------------------------------------------------------------------


def add1(x: int) -> int:
    return x + 1


def typed_pair() -> tuple[Any, Any]:
    """A fresh stream giving ``str`` and a fresh one taking ``int``."""

    @stream
    async def words(out: Out[str]) -> None:
        await out.push("one")

    @stream
    async def double(x: In[int], y: Out[int]) -> None:
        async for v in x:
            await y.push(2 * v)

    return words, double


class DslAPI(RuleBasedStateMachine):
    """``|`` and ``>>`` over stock streams, against a model of the graphs they build.

    Each piece is what user code holds: a fresh stream or a chain. A bare
    stream is used in one ``|`` only (the identity rule for a stream used in
    two chains is the subject of its own tests); chains and streams joined by
    name may be extended again, which joins onto the same graph.
    """

    def __init__(self) -> None:
        super().__init__()
        # Model nodes: kind ("source", "map", "sink"), items of a source, bucket of a sink.
        self.nodes: list[dict[str, Any]] = []
        self.edges: list[tuple[int, int]] = []
        # Pieces: (object, first node, last node, bare stream not used yet).
        self.pieces: list[tuple[Any, int, int]] = []
        self.bare_used: set[int] = set()
        # Nodes of graphs that have run. Joining onto them again is left out: whether a
        # finished graph's streams start a new graph is the identity rule's business.
        self.ran: set[int] = set()

    def node(self, kind: str, **kw: Any) -> int:
        self.nodes.append({"kind": kind, **kw})
        return len(self.nodes) - 1

    def component(self, n: int) -> set[int]:
        seen, todo = set(), [n]
        while todo:
            i = todo.pop()
            if i in seen:
                continue
            seen.add(i)
            todo += [b for a, b in self.edges if a == i] + [a for a, b in self.edges if b == i]
        return seen

    def arriving(self, n: int) -> tuple[list[int], bool]:
        producers = [self.produced(a) for a, b in self.edges if b == n]
        return [x for got, _ in producers for x in got], len(producers) <= 1 and all(o for _, o in producers)

    def produced(self, n: int) -> tuple[list[int], bool]:
        node = self.nodes[n]
        if node["kind"] == "source":
            return list(node["items"]), True
        items, ordered = self.arriving(n)
        return [x + 1 for x in items], ordered

    def graph_of(self, k: int) -> Graph:
        """The graph piece ``k`` is part of, read from a chain of it (a stream does not expose its graph)."""
        ran = self.component(self.pieces[k][1])
        return next(obj.graph for obj, first, _ in self.pieces if first in ran and hasattr(obj, "graph"))

    def refused(self, exc_types: Any, match: str, op: Any, k: int | None = None) -> None:
        event(f"refused: {match[:40]}")
        before = None if k is None else snapshot(self.graph_of(k))
        with pytest.raises(exc_types, match=match):
            op()
        assert before is None or snapshot(self.graph_of(k)) == before, "a refused join changed the graph"

    def open_out(self) -> list[int]:
        """Pieces whose last stage has an output: sources, stages and chains ending in one."""
        return [
            k
            for k, (_, _, last) in enumerate(self.pieces)
            if self.nodes[last]["kind"] != "sink" and k not in self.bare_used and last not in self.ran
        ]

    # -- valid operations ----------------------------------------------------------------

    @initialize(items=ITEMS)
    def start(self, items: list[int]) -> None:
        self.new_source(items)

    @rule(items=ITEMS)
    def new_source(self, items: list[int]) -> None:
        n = self.node("source", items=items)
        self.pieces.append((lib.from_iterable(items), n, n))

    @precondition(lambda self: self.open_out())
    @rule(data=st.data(), to=st.sampled_from(["map", "sink"]))
    def pipe(self, data: Any, to: str) -> None:
        """``piece | lib.map(add1)`` or ``piece | lib.collect(bucket)``."""
        k = data.draw(st.sampled_from(self.open_out()))
        obj, first, last = self.pieces[k]
        if self.is_bare(k):
            self.bare_used.add(k)
        if to == "map":
            # Named apart: two identical stages fed by one output look like a graph built twice.
            n = self.node("map")
            new = lib.map(add1, name=f"m{n}")
        else:
            bucket: list[int] = []
            n, new = self.node("sink", bucket=bucket), lib.collect(bucket)
        chain = obj | new
        self.edges.append((last, n))
        self.pieces.append((chain, first, n))
        assert chain.graph is self.graph_of(len(self.pieces) - 1), "a chain is a view on one graph"

    @precondition(lambda self: self.open_out())
    @rule(data=st.data())
    def fan_out_by_name(self, data: Any) -> None:
        """``piece.out['out'] >> lib.collect(bucket).in_['inp']``: adds to the piece's graph."""
        k = data.draw(st.sampled_from(self.open_out()))
        obj, _, last = self.pieces[k]
        bucket: list[int] = []
        n = self.node("sink", bucket=bucket)
        sink = lib.collect(bucket)
        flow = obj.out["out"] >> sink.in_["inp"]
        self.edges.append((last, n))
        # A stream joined by name has its place in the graph: later joins add to it.
        self.pieces.append((flow, last, n))
        self.pieces.append((sink, n, n))

    @rule(items=ITEMS)
    def use_a_stream_in_two_chains(self, items: list[int]) -> None:
        """``src | a`` then ``src | b``: one fan-out graph, or an error; never half of it run."""
        src = lib.from_iterable(items)
        b1: list[int] = []
        b2: list[int] = []
        first = src | lib.collect(b1)
        before = snapshot(first.graph)
        try:
            second = src | lib.collect(b2)
        except WorkflowError as exc:
            event("a stream used in two chains: refused")
            assert "fan-out" in str(exc) or ">>" in str(exc), exc
            assert snapshot(first.graph) == before
            return
        event("a stream used in two chains: one graph")
        run_workflow(second.workflow(), timeout=10)
        assert (b1, b2) == (items, items), "a stream used in two chains ran only one of them"

    @rule(run=st.booleans())
    def build_by_name_again(self, run: bool) -> None:
        """A ``build()`` joining the same stream objects with ``>>``, called again (a re-run cell, a second test).

        Each call gives the same graph as the first, or an error saying what to
        do; a run never doubles or drops items.
        """
        if not hasattr(self, "parts"):
            self.bucket: list[int] = []
            self.parts = (lib.from_iterable([1, 2, 3]), lib.map(add1, name="plus"), lib.collect(self.bucket))
            self.built: Any = None
        src, plus, sink = self.parts

        def build() -> Any:
            src.out["out"] >> plus.in_["inp"]
            return plus.out["out"] >> sink.in_["inp"]

        try:
            flow = build()
        except WorkflowError as exc:
            event("a second build of an unrun graph: refused")
            assert self.built is not None, f"a first build was refused: {exc}"
            assert "run" in str(exc) or "cop" in str(exc), exc  # says what to do
            flow = self.built
        else:
            if self.built is not None:
                event("a second build of an unrun graph: the same graph")
                assert snapshot(flow.graph) == snapshot(self.built.graph)
        self.built = flow
        assert len(flow.graph.nodes) == 3 and len(flow.graph.edges) == 2
        if run:
            self.bucket.clear()
            run_workflow(flow.workflow(), timeout=10)
            assert self.bucket == [2, 3, 4]
            self.built = None  # a graph that has run frees its streams for the next build

    def is_bare(self, k: int) -> bool:
        _, first, last = self.pieces[k]
        return first == last and not any(first in e for e in self.edges)

    @rule(data=st.data())
    def run(self, data: Any) -> None:
        runnable = [k for k, (obj, _, _) in enumerate(self.pieces) if hasattr(obj, "run_async")]
        if not runnable:
            return
        obj, first, _ = self.pieces[data.draw(st.sampled_from(runnable))]
        for node in self.nodes:
            if node["kind"] == "sink":
                node["bucket"].clear()
        before = snapshot(obj.graph)
        run_workflow(obj.workflow(), timeout=10)
        assert snapshot(obj.graph) == before, "running changed the graph"
        ran = self.component(first)
        self.ran |= ran
        event(f"ran a graph of {min(len(ran), 6)}{'+' if len(ran) >= 6 else ''} streams")
        for i, node in enumerate(self.nodes):
            if node["kind"] != "sink":
                continue
            if i not in ran:
                assert node["bucket"] == [], "a stream of another graph ran"
                continue
            want, ordered = self.arriving(i)
            if ordered:
                assert node["bucket"] == want
            else:
                assert Counter(node["bucket"]) == Counter(want)

    # -- invalid operations ---------------------------------------------------------------

    @rule(
        data=st.data(),
        misuse=st.sampled_from(["port_name", "past_the_end", "into_a_source", "types", "not_an_input", "twice"]),
    )
    def misuse(self, data: Any, misuse: str) -> None:
        k = data.draw(st.integers(0, len(self.pieces) - 1))
        obj, _, last = self.pieces[k]
        if self.is_bare(k) or last in self.ran:
            return  # a bare stream has no graph of its own to compare; a graph that ran is done
        base = {"source": "from_iterable", "map": f"m{last}", "sink": "collect"}[self.nodes[last]["kind"]]
        last_name = f"'{base}(_[0-9]+)?'"
        if misuse == "port_name":
            kind = self.nodes[last]["kind"]
            if kind == "sink":
                self.refused(WorkflowError, f"{last_name} has no output 'nope'", lambda: obj.out["nope"], k)
            else:
                self.refused(WorkflowError, "has no output 'outt'; did you mean 'out'", lambda: obj.out["outt"], k)
        elif misuse == "past_the_end":
            if self.nodes[last]["kind"] == "sink":
                self.refused(WorkflowError, f"{last_name} has no output ports", lambda: obj | lib.map(add1), k)
        elif misuse == "into_a_source":
            if self.nodes[last]["kind"] != "sink":
                self.refused(
                    WorkflowError, "'from_iterable' has no input ports", lambda: obj | lib.from_iterable([1]), k
                )
        elif misuse == "types":
            words, double = typed_pair()
            self.refused(WorkflowError, "words.out produces str, double.x expects int", lambda: words | double)
        elif misuse == "not_an_input":
            if self.nodes[last]["kind"] != "sink":
                self.refused(TypeError, "right side of >> must be an input port", lambda: obj.out["out"] >> 5, k)
        elif misuse == "twice":
            joined = {b for a, b in self.edges if a == last}
            sinks = [obj for obj, first, end in self.pieces if first == end and first in joined]
            if sinks:
                target = sinks[0]
                self.refused(WorkflowError, "is already joined to", lambda: obj.out["out"] >> target.in_["inp"], k)


DslAPI.TestCase.settings = settings(settings.default, stateful_step_count=30)
test_dsl_api = pytest.mark.timeout(120)(DslAPI.TestCase)
