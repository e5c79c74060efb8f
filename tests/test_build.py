"""Streams and workflows: construction, validation and build-time checks.

See README.md ("The two APIs side by side") and docs/concepts.md ("Ports",
"Errors": mistakes in the graph are a WorkflowError before anything runs).
"""

from __future__ import annotations

import pytest

from mimo import Stream, Workflow, WorkflowError
from mimo.testing import run_workflow
from tests.helpers import collector, source


async def fn(ins, outs, state):
    pass


def test_name_defaults_to_fn_name_or_class_name():
    class Mine(Stream):
        OUT = ["x"]

        async def run(self, ins, outs):
            pass

    assert Stream(fn=fn).name == "fn"
    assert Mine().name == "Mine"
    assert Stream().name == "Stream"
    assert Stream(fn=fn, name="given").name == "given"


def test_ins_and_outs_override_the_class_ports():
    class Mine(Stream):
        IN = ["a"]
        OUT = ["b"]

    assert (Mine().ins, Mine().outs) == (("a",), ("b",))
    assert (Mine(ins=["c"], outs=[]).ins, Mine(ins=["c"], outs=[]).outs) == (("c",), ())


def test_state_is_a_fresh_dict_by_default_or_what_the_user_gives():
    assert Stream(fn=fn).state == {} and Stream(fn=fn).state is not Stream(fn=fn).state
    mine: list[int] = []

    async def record(ins, outs, state):
        async for x in ins.inp:
            state.append(x)

    s = Stream(["inp"], fn=record, state=mine)
    wf = Workflow()
    wf.add_stream(source([1, 2])).pipe(wf.add_stream(s))
    run_workflow(wf, timeout=10)
    assert s.state is mine and mine == [1, 2]


def test_non_async_fn_is_a_type_error_naming_the_stream():
    def plain(ins, outs, state):
        pass

    with pytest.raises(TypeError, match="'plain'.*async"):
        Stream(fn=plain)


def test_async_generator_fn_is_a_type_error():
    async def gen(ins, outs, state):
        yield 1

    with pytest.raises(TypeError, match="'gen'"):
        Stream(fn=gen)


def test_non_async_run_is_a_type_error_naming_the_class():
    class Bad(Stream):
        def run(self, ins, outs):  # type: ignore[override]
            pass

    with pytest.raises(TypeError, match="Bad.run.*async def"):
        Bad()


@pytest.mark.parametrize("name", ["1x", "a-b", "class", "", "_private", 3])
def test_port_names_must_be_identifiers(name):
    with pytest.raises(TypeError, match="port name"):
        Stream(ins=[name], fn=fn, name="s")


def test_duplicate_port_name_is_an_error_naming_stream_and_port():
    with pytest.raises(TypeError, match="stream 's'.*'x' is declared twice"):
        Stream(outs=["x", "x"], fn=fn, name="s")


def test_a_string_of_ports_is_refused():
    with pytest.raises(TypeError, match="list of names"):
        Stream(ins="abc", fn=fn)


def test_forwarding_needs_matching_counts():
    with pytest.raises(TypeError, match="1 inputs and 2 outputs"):
        Stream(["a"], ["b", "c"])


def test_workers_must_be_a_positive_int():
    with pytest.raises(ValueError, match="workers"):
        Stream(fn=fn, workers=0)


def test_pipe_returns_its_target_so_calls_chain():
    wf = Workflow()
    a, b, c = (wf.add_stream(s) for s in (Stream(outs=["a"]), Stream(["b"], ["c"]), Stream(["d"])))
    assert a.pipe(b) is b
    assert b.pipe(c) is c
    assert [str(e) for e in wf.graph.edges] == ["Stream.a -> Stream_2.b", "Stream_2.c -> Stream_3.d"]


def test_ambiguous_pipe_lists_the_candidates():
    wf = Workflow()
    a = wf.add_stream(Stream(outs=["x", "y"], fn=fn, name="a"))
    b = wf.add_stream(Stream(["i"], fn=fn, name="b"))
    with pytest.raises(WorkflowError, match="'a' has 2 output ports.*'x', 'y'"):
        a.pipe(b)
    a.pipe(b, output="y")
    assert str(wf.graph.edges[0]) == "a.y -> b.i"


def test_unknown_port_is_an_error_with_a_suggestion():
    wf = Workflow()
    a = wf.add_stream(Stream(outs=["entity"], fn=fn, name="a"))
    b = wf.add_stream(Stream(["items"], fn=fn, name="b"))
    with pytest.raises(WorkflowError, match="'a' has no output 'entty'; did you mean 'entity'"):
        a.pipe(b, output="entty")
    with pytest.raises(WorkflowError, match="'b' has no input 'item'; did you mean 'items'"):
        a.pipe(b, input="item")


def test_joining_the_same_ports_twice_is_an_error():
    wf = Workflow()
    a = wf.add_stream(Stream(outs=["x"], fn=fn, name="a"))
    b = wf.add_stream(Stream(["y"], fn=fn, name="b"))
    a.pipe(b)
    with pytest.raises(WorkflowError, match="a.x is already joined to b.y"):
        a.pipe(b)


def test_streams_from_two_workflows_cannot_be_joined():
    one, two = Workflow(), Workflow()
    a = one.add_stream(Stream(outs=["x"], fn=fn, name="a"))
    b = two.add_stream(Stream(["y"], fn=fn, name="b"))
    with pytest.raises(WorkflowError, match="two different workflows"):
        a.pipe(b)


def test_piping_to_a_plain_stream_adds_it():
    wf = Workflow()
    a = wf.add_stream(Stream(outs=["x"], fn=fn, name="a"))
    b = a.pipe(Stream(["y"], fn=fn, name="b"))
    assert b.workflow is wf and [s.name for s in wf.steps] == ["a", "b"]


def test_default_names_get_a_suffix_but_explicit_duplicates_are_errors():
    wf = Workflow()
    assert [wf.add_stream(Stream()).name for _ in range(3)] == ["Stream", "Stream_2", "Stream_3"]
    wf.add_stream(Stream(fn=fn, name="x"))
    with pytest.raises(WorkflowError, match="duplicate stream name 'x'"):
        wf.add_stream(Stream(fn=fn, name="x"))


def test_the_same_stream_added_twice_is_two_steps():
    wf = Workflow()
    s = Stream(["a"], ["b"], name="fwd")
    one, two = wf.add_stream(s), wf.add_stream(s)
    one.pipe(two)
    assert (one.name, two.name) == ("fwd", "fwd_2")


def test_incompatible_item_types_are_an_error_naming_both_ports():
    wf = Workflow()
    a = wf.add_stream(Stream(outs={"x": str}, fn=fn, name="a"))
    b = wf.add_stream(Stream(ins={"y": int}, fn=fn, name="b"))
    with pytest.raises(WorkflowError, match=r"a\.x.*b\.y.*str.*int"):
        a.pipe(b)
    c = wf.add_stream(Stream(ins={"y": object}, fn=fn, name="c"))
    a.pipe(c)


def test_bad_capacity_is_a_value_error():
    with pytest.raises(ValueError, match="capacity"):
        Workflow(capacity=-1)
    with pytest.raises(ValueError, match="capacity"):
        Workflow().run(capacity=-2)


def test_push_feeds_an_input_before_the_run_and_it_ends_after_them():
    got: list[int] = []
    wf = Workflow()
    sink = wf.add_stream(collector(got))
    for i in range(3):
        sink.push(i)
    run_workflow(wf, timeout=10)
    assert got == [0, 1, 2]
    with pytest.raises(WorkflowError, match="did you mean 'inp'"):
        sink.push(3, input="in")


def test_dot_output_is_deterministic_and_names_every_join():
    def build() -> Workflow:
        wf = Workflow()
        a = wf.add_stream(Stream(outs=["a"]))
        b = wf.add_stream(Stream(["b"], ["c"]))
        a.pipe(b).pipe(wf.add_stream(Stream(["d"])))
        return wf

    dot = str(build())
    assert dot == str(build())
    assert dot.startswith('digraph "workflow" {')
    assert "n0:o_a -> n1:i_b;" in dot and "n1:o_c -> n2:i_d;" in dot
    assert "Stream_2" in dot
    assert build().to_mermaid().splitlines()[0] == "flowchart LR"


# -- issue 9: checked when made, errors come out clean --------------------------------


def test_a_two_argument_fn_runs_in_the_classic_api_as_in_the_dsl():
    # Case 11: (ins, outs) and (ins, outs, state) are both accepted, by both APIs.
    got: list[int] = []

    async def two(ins, outs):
        await outs.out.push(1)

    async def three(ins, outs, state):
        state["seen"] = True
        await outs.out.push(2)

    wf = Workflow()
    sink = wf.add_stream(collector(got))
    third = Stream(outs=["out"], fn=three)
    wf.add_stream(Stream(outs=["out"], fn=two)).pipe(sink)
    wf.add_stream(third).pipe(sink)
    run_workflow(wf, timeout=5)
    assert sorted(got) == [1, 2] and third.state == {"seen": True}


async def _one(ins):
    pass


async def _four(ins, outs, state, extra):
    pass


async def _bare_keyword(ins, outs, state, *, must):
    pass


def _sync_gen(ins, outs, state):
    yield 1


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (_one, r"stream 'x': its function is called as x\(ins, outs, state\) or x\(ins, outs\)"),
        (_four, r"stream 'x': its function is called as .*\(ins, outs, state, extra\)"),
        (_bare_keyword, "stream 'x': .*give keyword-only parameters a default"),
        (_sync_gen, "stream 'x': fn must be an async function"),
        (lambda ins, outs, state: None, "stream 'x': fn must be an async function"),
    ],
)
def test_a_fn_that_cannot_be_called_as_a_stream_is_a_type_error_when_made(bad, match):
    with pytest.raises(TypeError, match=match):
        Stream(outs=["o"], fn=bad, name="x")


def test_a_run_method_with_the_wrong_parameters_is_a_type_error_when_made():
    class Wrong(Stream):
        async def run(self, ins):  # type: ignore[override]
            pass

    with pytest.raises(TypeError, match=r"stream 'Wrong': run must be 'async def run\(self, ins, outs\)'"):
        Wrong()


@pytest.mark.parametrize("bad", [5, "", b"x", ["a"]])
def test_a_stream_name_that_is_not_a_non_empty_str_is_refused_when_given(bad):
    with pytest.raises(TypeError, match="stream name must be a non-empty str"):
        Workflow().add_stream(Stream(fn=fn), name=bad)
    with pytest.raises(TypeError, match="stream name must be a non-empty str"):
        Stream(fn=fn, name=bad)


def test_port_names_that_change_under_nfkc_are_refused_naming_stream_and_port():
    # Python reads ins.\ufb01le as ins.file: such a port could never be reached by attribute.
    with pytest.raises(TypeError, match="stream 'x': input port name '\ufb01le' changes under .*NFKC.*write 'file'"):
        Stream(ins=["\ufb01le"], fn=fn, name="x")
    with pytest.raises(TypeError, match="stream 'x': output port name '\u212bngstr\u00f6m' changes"):
        Stream(outs={"\u212bngstr\u00f6m": int}, fn=fn, name="x")
    assert Stream(ins=["file", "\u00e9t\u00e9"], fn=fn).ins == ("file", "\u00e9t\u00e9")


@pytest.mark.timeout(10)
def test_a_stream_error_leaves_run_with_no_chained_context_from_mimo():
    # Case 9: no "During handling of the above exception" from mimo's own plumbing.
    import traceback

    from mimo import In, Out, stream

    async def bad(ins, outs, state):
        raise ValueError("boom")

    wf = Workflow()
    wf.add_stream(Stream(outs=["x"], fn=bad))

    @stream
    async def bad_source(out: Out[int]) -> None:
        raise ValueError("boom")

    @stream
    async def drain(inp: In[int]) -> None:
        async for _ in inp:
            pass

    for run in (wf.run, (bad_source | drain).run):
        with pytest.raises(ValueError, match="boom") as err:
            run()
        assert err.value.__context__ is None and err.value.__cause__ is None
        assert "During handling" not in "".join(traceback.format_exception(err.value))


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: Stream(ins=5, fn=fn, name="x"), "stream 'x': input ports must be a list of names or a dict"),
        (lambda: Stream(outs={"a": 1}, fn=fn, name="x"), "stream 'x': the item type of output port 'a' must be a type"),
        (lambda: Workflow(name=5), "workflow name must be a non-empty str"),
        (lambda: Workflow(name=""), "workflow name must be a non-empty str"),
    ],
)
def test_other_declarations_are_checked_when_made(make, match):
    with pytest.raises(TypeError, match=match):
        make()


def test_an_explicit_name_that_another_stream_has_by_default_is_refused_not_suffixed() -> None:
    async def relay(ins, outs, state):
        pass

    wf = Workflow()
    wf.add_stream(Stream(["inp"], ["out"], fn=relay))  # 'relay' by default
    with pytest.raises(WorkflowError, match="duplicate stream name 'relay'"):
        wf.add_stream(Stream(["inp"], ["out"], fn=relay, name="relay"))
    assert [n.name for n in wf.graph.nodes] == ["relay"]


def test_wrong_typed_names_and_executors_are_type_errors_naming_what_is_wrong() -> None:
    async def a(ins, outs, state):
        pass

    wf = Workflow()
    x = wf.add_stream(Stream(outs=["o"], fn=a, name="a"))
    y = wf.add_stream(Stream(["i"], fn=a, name="b"))
    with pytest.raises(TypeError, match=r"executor must be a mimo.Executor .*not 5"):
        wf.run(executor=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"graph: a stream name must be a str, not 5"):
        wf.step(5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"stream 'a': an output name must be a str, not 5"):
        x.pipe(y, output=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"stream 'b': an input name must be a str, not 5"):
        y.push(1, input=5)  # type: ignore[arg-type]
