"""The DSL decorator: behaviour that mutation testing found untested (see docs/mutation.md)."""

from __future__ import annotations

import pytest

from mimo import In, Out, WorkflowError, lib, stream


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
