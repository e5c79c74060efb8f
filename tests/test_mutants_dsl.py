"""The DSL decorator: behaviour that mutation testing found untested (see docs/mutation.md)."""

from __future__ import annotations

import pytest

from mimo import In, Out, Restart, WorkflowError, lib, stream


@stream
async def scale(x: In[int], y: Out[int], *, factor: int = 2) -> None:
    async for item in x:
        await y.push(item * factor)


@stream
async def plain(x: In[int], y: Out[int]) -> None:
    async for item in x:
        await y.push(item)


def test_settings_given_positionally_are_refused_naming_the_settings_there_are() -> None:
    with pytest.raises(TypeError, match=r"stream 'scale' takes its settings by keyword \(factor\), not positionally"):
        scale(3)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"stream 'plain' takes its settings by keyword \(it has none\)"):
        plain(3)  # type: ignore[call-arg]


def test_an_unknown_setting_is_refused_naming_the_settings_there_are() -> None:
    with pytest.raises(TypeError, match=r"has no setting 'fator'; did you mean 'factor'\? \(its settings: factor\)"):
        scale(fator=3)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"stream 'plain' has no setting 'factor' \(its settings: none\)"):
        plain(factor=3)  # type: ignore[call-arg]


@stream
async def count_to(y: Out[int], *, n: int = 3) -> None:
    for i in range(n):
        await y.push(i)


@stream
async def wants_str(x: In[str]) -> None:
    async for _ in x:
        pass


def test_a_stage_of_a_failed_pipe_chain_is_free_to_be_joined_by_name() -> None:
    with pytest.raises(WorkflowError, match="expects str") as failed:
        count_to() | plain | wants_str  # type: ignore[operator]
    got: list[int] = []
    count_to().out["y"] >> plain.in_["x"]
    flow = plain.out["y"] >> lib.collect(got).in_["inp"]
    flow.run()
    assert got == [0, 1, 2]
    assert failed.value is not None  # the failed chain is still referenced here, as in a REPL


def test_a_bad_on_error_is_refused_where_the_decorator_is_written_naming_the_stream() -> None:
    with pytest.raises(TypeError, match=r"stream '@stream': on_error must be mimo.Stop\(\) or mimo.Restart"):
        stream(on_error="bad")  # type: ignore[call-overload]
    with pytest.raises(TypeError, match=r"stream 'mine': on_error must be mimo.Stop\(\) or mimo.Restart"):
        stream(name="mine", on_error="bad")  # type: ignore[call-overload]


async def _body(x: In[int]) -> None:
    async for _ in x:
        pass


@pytest.mark.parametrize(
    "options",
    [{"name": "x"}, {"workers": 2}, {"state": {}}, {"ins": ["x"]}, {"on_error": Restart()}],
    ids=["name", "workers", "state", "ins", "on_error"],
)
def test_the_bare_decorator_form_with_options_is_refused(options: dict[str, object]) -> None:
    with pytest.raises(TypeError, match=r"use either @stream or @stream\(ins=.*\), not both"):
        stream(_body, **options)  # type: ignore[call-overload]


def test_a_join_by_name_checks_the_item_types_of_the_output_and_the_input() -> None:
    @stream
    async def to_str(x: In[int], y: Out[str]) -> None:
        async for item in x:
            await y.push(str(item))

    with pytest.raises(WorkflowError, match=r"to_str\.y produces str, plain\.x expects int"):
        to_str.out["y"] >> plain.in_["x"]


def test_a_declaration_mistake_names_the_function_or_the_name_given() -> None:
    async def bad(x) -> None:  # type: ignore[no-untyped-def]
        pass

    with pytest.raises(TypeError, match=r"stream 'bad': parameter 'x' \(not annotated\) is neither a port"):
        stream(bad)
    with pytest.raises(TypeError, match=r"stream 'given': parameter 'x' \(not annotated\) is neither a port"):
        stream(name="given")(bad)


def test_the_ports_form_refuses_a_plain_function_and_extra_positional_parameters() -> None:
    def not_async(ins, outs) -> None:  # type: ignore[no-untyped-def]
        pass

    with pytest.raises(TypeError, match=r"stream 'not_async': @stream needs an 'async def' function"):
        stream(ins=["x"])(not_async)  # type: ignore[arg-type]

    async def four(ins, outs, state, extra) -> None:  # type: ignore[no-untyped-def]
        pass

    with pytest.raises(TypeError, match=r"but its parameters are \(ins, outs, state, extra\); make any other"):
        stream(ins=["x"])(four)


def test_a_streams_port_views_list_its_own_inputs_and_outputs() -> None:
    assert list(plain.in_) == ["x"] and list(plain.out) == ["y"]
    assert len(count_to.in_) == 0 and len(count_to.out) == 1
    assert "x" in plain.in_ and "x" not in plain.out and "y" in plain.out
