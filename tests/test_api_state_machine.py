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
  the same order wherever the order is determined (one producer per input).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from mimo import MimoError, Stream, Workflow, WorkflowError
from mimo._graph import Graph
from mimo.testing import run_workflow

ITEMS = st.lists(st.integers(0, 99), max_size=5)
#: Explicit names, disjoint from the default ones (the functions' names).
NAMES = st.sampled_from(["alpha", "beta", "gamma"])
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
            return [x + 1 for x in items], ordered
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

    @rule(kind=st.sampled_from(sorted(KINDS)), name=st.one_of(st.none(), NAMES))
    def add_stream(self, kind: str, name: str | None) -> None:
        ins, outs = KINDS[kind]
        fn = {"relay": relay, "pair": pair, "sink": sink}[kind]
        s = Stream(ins, outs, fn=fn, name=name, state={"got": []} if kind == "sink" else None)
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
        taken = [i for i, other in enumerate(self.streams) if other.name == s.name and other is not s]
        if name is not None and any(self.streams[i].named for i in taken):
            self.refused(WorkflowError, f"duplicate stream name '{name}'", lambda: self.wf.add_stream(s))
            return
        step = self.wf.add_stream(s)
        assert step.name not in [t.name for t in self.steps], "two steps share a name"
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

    def not_async(self, data: Any) -> None:
        fn = data.draw(st.sampled_from([lambda ins, outs, state: None, 5, "relay"]))
        self.refused(TypeError, "fn must be an async function", lambda: Stream(["inp"], fn=fn, name="bad"))

    def bad_capacity(self, data: Any) -> None:
        capacity = data.draw(BAD_CAPACITIES)
        self.refused((MimoError, TypeError, ValueError), "capacity", lambda: Workflow(capacity=capacity))
        if capacity is not None:  # None means the workflow's own
            self.refused((MimoError, TypeError, ValueError), "capacity", lambda: self.wf.run(capacity=capacity))

    # -- running -------------------------------------------------------------------

    @rule()
    def run(self) -> None:
        for i, k in enumerate(self.kind):
            if k == "sink":
                self.streams[i].state["got"].clear()
        before = snapshot(self.wf.graph)
        run_workflow(self.wf, timeout=10)
        event(f"ran a graph with {min(len(self.edges), 5)}{'+' if len(self.edges) >= 5 else ''} joins")
        assert snapshot(self.wf.graph) == before, "running changed the graph"
        for i, k in enumerate(self.kind):
            if k != "sink":
                continue
            got = self.streams[i].state["got"]
            want, ordered = self.arriving(i, "inp")
            if ordered:
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
