"""@stream: the two declaration forms, settings, and the errors at decoration time."""

from __future__ import annotations

from typing import Any

import pytest

from mimo import EndOfStream, In, InputPort, Out, OutputPort, Stream, Workflow, stream
from mimo.dsl import PortStream, SinkStream, SourceStream, StageStream
from mimo.testing import run_stream


@stream
async def double(x: In[int], y: Out[int]) -> None:
    async for v in x:
        await y.push(2 * v)


@stream
async def scale(x: In[int], y: Out[int], *, factor: int = 2) -> None:
    async for v in x:
        await y.push(v * factor)


# -- the annotation form ----------------------------------------------------------


def test_annotated_ports_are_the_parameters_with_their_item_types() -> None:
    assert isinstance(double, Stream)
    assert double.name == "double"
    assert double.in_types == {"x": int}
    assert double.out_types == {"y": int}


def test_annotated_stream_runs_its_body_on_its_ports() -> None:
    assert run_stream(double, {"x": [1, 2, 3]}) == {"y": [2, 4, 6]}


def test_annotated_body_receives_mimo_ports() -> None:
    seen: list[type] = []

    @stream
    async def probe(x: In[int], y: Out[int]) -> None:
        seen.extend([type(x), type(y)])

    run_stream(probe, {"x": []})
    assert seen == [InputPort, OutputPort]


def test_the_shape_of_the_ports_picks_the_stream_class() -> None:
    @stream
    async def src(out: Out[int]) -> None:
        await out.push(1)

    @stream
    async def snk(inp: In[int]) -> None:
        await inp.pop()

    @stream
    async def two(a: In[int], b: In[int], c: Out[int]) -> None:
        pass

    assert isinstance(src, SourceStream)
    assert isinstance(snk, SinkStream)
    assert isinstance(double, StageStream)
    assert isinstance(two, PortStream)


def test_output_first_parameter_order_is_still_a_stage() -> None:
    @stream
    async def backwards(y: Out[str], x: In[str]) -> None:
        async for v in x:
            await y.push(v + "!")

    assert isinstance(backwards, StageStream)
    assert run_stream(backwards, {"x": ["a"]}) == {"y": ["a!"]}


def test_unparametrised_in_and_out_carry_anything() -> None:
    @stream
    async def loose(x: In, y: Out) -> None:  # type: ignore[type-arg]
        pass

    assert loose.in_types == {"x": Any}
    assert loose.out_types == {"y": Any}


def test_keyword_only_parameters_are_settings_with_their_defaults() -> None:
    assert scale.settings == {"factor": 2}
    assert run_stream(scale, {"x": [1, 2]}) == {"y": [2, 4]}


def test_calling_with_settings_gives_a_configured_copy_and_leaves_the_original() -> None:
    triple = scale(factor=3)
    assert triple is not scale
    assert isinstance(triple, StageStream)
    assert triple.settings == {"factor": 3}
    assert scale.settings == {"factor": 2}
    assert run_stream(triple, {"x": [1, 2]}) == {"y": [3, 6]}
    assert run_stream(scale, {"x": [1, 2]}) == {"y": [2, 4]}


def test_unknown_setting_is_a_type_error_with_a_suggestion() -> None:
    with pytest.raises(TypeError, match=r"no setting 'factr'; did you mean 'factor'"):
        scale(factr=3)


def test_settings_are_keyword_only_when_configuring() -> None:
    with pytest.raises(TypeError, match="by keyword"):
        scale(3)


def test_name_can_be_given() -> None:
    @stream(name="renamed")
    async def body(x: In[int], y: Out[int]) -> None:
        pass

    assert body.name == "renamed"
    assert isinstance(body, StageStream)


def test_annotations_naming_local_classes_resolve() -> None:
    class Point:
        pass

    @stream
    async def points(out: Out[Point]) -> None:
        await out.push(Point())

    assert points.out_types == {"out": Point}


# -- the dict and list form -------------------------------------------------------


def test_dict_form_declares_ports_with_item_types() -> None:
    @stream(ins={"x": int}, outs={"y": str})
    async def fmt(ins: Any, outs: Any, state: Any) -> None:
        async for v in ins.x:
            await outs.y.push(f"{v:04d}")

    assert isinstance(fmt, PortStream)
    assert fmt.in_types == {"x": int}
    assert fmt.out_types == {"y": str}
    assert run_stream(fmt, {"x": [7]}) == {"y": ["0007"]}


def test_list_form_declares_untyped_ports() -> None:
    @stream(ins=["a", "b"], outs=["total"])
    async def add(ins: Any, outs: Any) -> None:
        while True:
            try:
                a, b = await ins.a.pop(), await ins.b.pop()
            except EndOfStream:
                return
            await outs.total.push(a + b)

    assert add.in_types == {"a": Any, "b": Any}
    assert run_stream(add, {"a": [1, 2], "b": [10, 20]}) == {"total": [11, 22]}


def test_dict_form_state_is_handed_to_the_body_and_kept() -> None:
    seen: list[Any] = []

    @stream(outs=["n"], state=seen)
    async def counter(ins: Any, outs: Any, state: Any) -> None:
        state.append("ran")

    run_stream(counter, {})
    assert counter.state is seen
    assert seen == ["ran"]


def test_dict_form_accepts_keyword_only_settings() -> None:
    @stream(ins=["x"], outs=["y"])
    async def add(ins: Any, outs: Any, *, n: int = 1) -> None:
        async for v in ins.x:
            await outs.y.push(v + n)

    assert run_stream(add(n=5), {"x": [1]}) == {"y": [6]}


def test_workflow_add_stream_accepts_every_form() -> None:
    got: list[Any] = []

    @stream(outs={"n": int})
    async def numbers(ins: Any, outs: Any, state: Any) -> None:
        for i in range(3):
            await outs.n.push(i)

    @stream
    async def keep(x: In[int]) -> None:
        async for v in x:
            got.append(v)

    wf = Workflow()
    wf.add_stream(numbers).pipe(wf.add_stream(scale(factor=10))).pipe(wf.add_stream(keep))
    wf.run()
    assert got == [0, 10, 20]


# -- decoration-time errors -----------------------------------------------------


def test_a_plain_function_is_rejected() -> None:
    def sync(x: In[int], y: Out[int]) -> None:
        pass

    with pytest.raises(TypeError, match="needs an 'async def' function"):
        stream(sync)  # type: ignore[arg-type]


def test_an_async_generator_is_rejected() -> None:
    async def gen(x: In[int]) -> Any:
        yield 1

    with pytest.raises(TypeError, match="async generator"):
        stream(gen)


def test_a_parameter_that_is_neither_port_nor_setting_is_rejected() -> None:
    async def body(x: In[int], factor: int) -> None:
        pass

    with pytest.raises(TypeError, match=r"parameter 'factor' \(annotated int\) is neither a port nor a setting"):
        stream(body)


def test_an_unannotated_parameter_is_rejected() -> None:
    async def body(x, y: Out[int]) -> None:  # type: ignore[no-untyped-def]
        pass

    with pytest.raises(TypeError, match=r"parameter 'x' \(not annotated\)"):
        stream(body)


def test_a_setting_without_default_is_required_at_each_copy() -> None:
    async def body(x: In[int], *, path: str) -> None:
        pass

    s = stream(body)  # a template: its copies give the setting (see tests/test_own_operator.py)
    assert s(path="p").settings == {"path": "p"}
    with pytest.raises(TypeError, match=r"stream 'body' needs the setting 'path', which has no default"):
        s()


def test_star_args_are_rejected() -> None:
    async def body(*ports: In[int]) -> None:
        pass

    with pytest.raises(TypeError, match=r"\*ports"):
        stream(body)


def test_a_port_declared_twice_is_rejected() -> None:
    with pytest.raises(TypeError, match="'x' is declared twice"):

        @stream(ins=["x", "x"])
        async def body(ins: Any, outs: Any) -> None:
            pass


def test_a_port_both_input_and_output_is_rejected() -> None:
    with pytest.raises(TypeError, match="'v' is declared both as an input and as an output"):

        @stream(ins={"v": int}, outs={"v": int})
        async def body(ins: Any, outs: Any) -> None:
            pass


@pytest.mark.parametrize("bad", ["not valid", "class", "_hidden", "1st"])
def test_an_invalid_port_name_is_rejected(bad: str) -> None:
    with pytest.raises(TypeError, match="port name"):

        @stream(ins=[bad])
        async def body(ins: Any, outs: Any) -> None:
            pass


def test_an_invalid_annotated_port_name_is_rejected() -> None:
    async def body(_x: In[int]) -> None:
        pass

    with pytest.raises(TypeError, match="'_x' may not start with '_'"):
        stream(body)


def test_dict_form_body_with_wrong_parameters_is_rejected() -> None:
    with pytest.raises(TypeError, match=r"called as f\(ins, outs, state\) or f\(ins, outs\)"):

        @stream(ins=["x"])
        async def f(x: Any) -> None:
            pass


def test_ports_declared_in_both_forms_are_rejected() -> None:
    with pytest.raises(TypeError, match="use one form"):

        @stream(ins={"x": int})
        async def f(x: In[int], outs: Any) -> None:
            pass


def test_decorating_a_stream_twice_is_rejected() -> None:
    with pytest.raises(TypeError, match="already a stream"):
        stream(double)  # type: ignore[arg-type]


def test_workers_apply_to_both_forms() -> None:
    @stream(workers=3)
    async def annotated(x: In[int], y: Out[int]) -> None:
        async for v in x:
            await y.push(v)

    @stream(ins=["x"], outs=["y"], workers=2)
    async def listed(ins: Any, outs: Any) -> None:
        async for v in ins.x:
            await outs.y.push(v)

    assert (annotated.workers, listed.workers) == (3, 2)
    assert sorted(run_stream(annotated, {"x": [1, 2, 3]})["y"]) == [1, 2, 3]


def test_a_copy_gets_fresh_default_state_but_shares_given_state() -> None:
    shared: list[Any] = []

    @stream(outs=["n"])
    async def fresh(ins: Any, outs: Any, state: Any) -> None:
        pass

    @stream(outs=["n"], state=shared)
    async def given(ins: Any, outs: Any, state: Any) -> None:
        pass

    assert fresh().state is not fresh.state
    assert given().state is shared


@pytest.mark.parametrize("bad", [5, ""])
def test_a_name_that_is_not_a_non_empty_str_is_rejected_when_given(bad: Any) -> None:
    with pytest.raises(TypeError, match="stream name must be a non-empty str"):
        stream(name=bad)
    with pytest.raises(TypeError, match="stream name must be a non-empty str"):
        stream(ins=["x"], name=bad)


def test_a_dict_port_name_that_changes_under_nfkc_is_rejected() -> None:
    with pytest.raises(TypeError, match="stream 'f': input port name '\ufb01le' changes under Unicode NFKC"):

        @stream(ins={"\ufb01le": str})
        async def f(ins: Any, outs: Any) -> None:
            pass


def test_a_dict_form_body_with_an_optional_state_gets_the_state() -> None:
    # One rule with Stream(fn=...): a third positional parameter receives the state.
    @stream(outs=["o"], state=[])
    async def f(ins: Any, outs: Any, state: Any = None) -> None:
        state.append(1)

    from mimo.testing import run_stream

    run_stream(f, timeout=5)
    assert f.state == [1]
