"""``|`` and ``>>``: what they join, the graphs they build, and how those run."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from mimo import In, Out, RunReport, Stream, Workflow, WorkflowError, stream
from mimo.dsl import Closed, Flow, Runnable, Sink, SinkStream, Source, SourceStream, Stage


def numbers(n: int = 5, name: str = "nums") -> SourceStream[int]:
    @stream(name=name)
    async def nums(out: Out[int]) -> None:
        for i in range(n):
            await out.push(i)

    return nums


@stream
async def inc(x: In[int], y: Out[int], *, by: int = 1) -> None:
    async for v in x:
        await y.push(v + by)


@stream
async def to_str(x: In[int], y: Out[str]) -> None:
    async for v in x:
        await y.push(str(v))


def collector() -> tuple[SinkStream[object], list[Any]]:
    got: list[Any] = []

    @stream
    async def keep(x: In[object]) -> None:
        async for v in x:
            got.append(v)

    return keep, got


@stream(ins={"x": int}, outs={"evens": int, "odds": int})
async def split(ins: Any, outs: Any, state: Any) -> None:
    async for v in ins.x:
        await (outs.evens if v % 2 == 0 else outs.odds).push(v)


@stream(ins={"left": int, "right": int}, outs={"pairs": tuple})
async def pair(ins: Any, outs: Any) -> None:
    async for a in ins.left:
        await outs.pairs.push((a, await ins.right.pop()))


# -- | ------------------------------------------------------------------------------


def test_pipe_joins_only_output_to_only_input_and_runs() -> None:
    keep, got = collector()
    chain = numbers(3) | inc | keep
    report = chain.run()
    assert got == [1, 2, 3]
    assert isinstance(report, RunReport)
    assert report["inc"].items_in == {"x": 3}


def test_pipe_result_shapes_follow_the_open_ends() -> None:
    keep, _ = collector()
    assert isinstance(numbers() | inc, Source)
    assert isinstance(inc | inc, Stage)
    assert isinstance(inc | keep, Sink)
    closed = numbers() | inc | keep
    assert isinstance(closed, Closed)
    assert isinstance(closed, Runnable)


def test_long_chain_with_the_same_stream_repeated_has_a_stage_per_mention() -> None:
    keep, got = collector()
    chain = numbers(2) | inc | inc | inc(by=10) | inc | keep
    assert [n.name for n in chain.graph.nodes] == ["nums", "inc", "inc_2", "inc_3", "inc_4", "keep"]
    chain.run()
    assert got == [13, 14]


def test_a_source_in_two_chains_is_one_fan_out_graph() -> None:
    # Case 25 of issue 9: the first chain is not lost; both consumers get every item.
    nums = numbers(2)
    keep1, got1 = collector()
    keep2, got2 = collector()
    nums | inc | keep1
    second = nums | keep2
    assert [n.name for n in second.graph.nodes] == ["nums", "inc", "keep", "keep_2"]
    second.run()
    assert (got1, got2) == ([1, 2], [0, 1])


def test_pipe_and_rshift_place_a_source_at_one_node_alike() -> None:
    nums = numbers(2)
    keep1, got1 = collector()
    keep2, got2 = collector()
    by_name = nums.out["out"] >> keep1.in_["x"]
    by_pipe = nums | inc | keep2
    assert by_pipe.graph is by_name.graph
    by_name.run()
    assert (got1, got2) == ([0, 1], [1, 2])


def test_a_module_level_source_starts_a_new_pipeline_once_its_graph_has_run() -> None:
    nums = numbers(2)
    keep1, got1 = collector()
    keep2, got2 = collector()
    first = nums | inc | keep1
    first.run()
    second = nums | keep2
    assert first.graph is not second.graph
    second.run()
    assert (got1, got2) == ([1, 2], [0, 1])


def _build_split_graph(got: list[Any]) -> Flow:
    """A build function over module-level streams, as a notebook cell or a test writes it."""
    from mimo import lib

    source = lib.range(6)
    source.out["out"] >> split.in_["x"]
    split.out["evens"] >> lib.collect(got).in_["inp"]
    return split.out["odds"] >> lib.collect(got).in_["inp"]


def test_building_twice_with_a_run_between_gives_the_same_graph() -> None:
    # Case 3 of issue 9: a re-run cell must not double the items.
    first: list[int] = []
    flow = _build_split_graph(first)
    flow.run()
    again: list[int] = []
    flow2 = _build_split_graph(again)
    assert flow2.graph is not flow.graph
    assert flow2.to_dot() == flow.to_dot()
    flow2.run()
    assert sorted(first) == sorted(again) == [0, 1, 2, 3, 4, 5]


def test_building_twice_without_running_is_an_error_that_says_what_to_do() -> None:
    flow = _build_split_graph([])
    before = flow.to_dot()
    twice = r"split\.x is already fed by range\.out, an identical stream.*run the first"
    with pytest.raises(WorkflowError, match=twice):
        _build_split_graph([])
    assert flow.to_dot() == before
    flow.run()  # the first build is whole, and runs; then the streams are free again
    got: list[int] = []
    _build_split_graph(got).run()
    assert sorted(got) == [0, 1, 2, 3, 4, 5]


def test_a_pipe_chain_built_twice_without_running_is_an_error() -> None:
    nums = numbers(2)
    nums | inc
    with pytest.raises(WorkflowError, match="nums.out already feeds inc.x, an identical stream"):
        nums | inc


def test_a_failed_pipe_chain_leaves_its_source_free() -> None:
    nums = numbers(2)

    @stream
    async def wants_str(x: In[str]) -> None:
        pass

    with pytest.raises(WorkflowError, match="expects str"):
        nums | inc | wants_str  # type: ignore[operator]
    keep, got = collector()
    chain = nums | keep
    assert [n.name for n in chain.graph.nodes] == ["nums", "keep"]
    chain.run()
    assert got == [0, 1]


def test_a_stage_of_an_unrun_pipe_chain_joined_by_name_is_an_error_saying_which_to_use() -> None:
    # Before, split.out[...] started a second, unjoined split node: keep silently got nothing.
    odd_keep, odds = collector()
    chain = numbers(4) | split
    with pytest.raises(WorkflowError, match=r"stream 'split' is already a stage \('split'\) of a \| chain.*chain\.out"):
        split.out["odds"] >> odd_keep.in_["x"]
    even_keep, evens = collector()
    chain.out["evens"] >> even_keep.in_["x"]
    flow = chain.out["odds"] >> odd_keep.in_["x"]
    flow.run()
    assert (evens, odds) == ([0, 2], [1, 3])


def test_identical_streams_on_purpose_can_be_named_apart() -> None:
    from mimo import lib

    got: list[int] = []
    sink = lib.collect(got)
    lib.range(2, name="a").out["out"] >> sink.in_["inp"]
    flow = lib.range(2, name="b").out["out"] >> sink.in_["inp"]
    flow.run()
    assert sorted(got) == [0, 0, 1, 1]


def test_extending_a_chain_adds_to_the_same_graph() -> None:
    keep, got = collector()
    head = numbers(2) | inc
    whole = head | keep
    assert whole.graph is head.graph  # type: ignore[attr-defined]
    whole.run()
    assert got == [1, 2]


def test_pipe_from_several_outputs_is_an_error_listing_them() -> None:
    with pytest.raises(WorkflowError, match=r"stream 'split' has 2 output ports.*'evens', 'odds'"):
        split | inc


def test_pipe_into_several_inputs_is_an_error_listing_them() -> None:
    with pytest.raises(WorkflowError, match=r"stream 'pair' has 2 input ports.*'left', 'right'"):
        inc | pair


def test_pipe_after_a_sink_is_an_error() -> None:
    keep, _ = collector()
    with pytest.raises(WorkflowError, match="has no output ports"):
        keep | inc  # type: ignore[operator]


def test_pipe_with_something_that_is_not_a_stream_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"unsupported operand type\(s\) for \|"):
        inc | 3  # type: ignore[operator]


def test_untyped_streams_give_a_flow_that_runs() -> None:
    keep, got = collector()

    @stream(outs=["n"])
    async def src(ins: Any, outs: Any) -> None:
        await outs.n.push("a")

    @stream(ins=["x"], outs=["y"])
    async def up(ins: Any, outs: Any) -> None:
        async for v in ins.x:
            await outs.y.push(v.upper())

    flow = src | up | keep
    assert isinstance(flow, Flow)
    flow.run()
    assert got == ["A"]


# -- >> ---------------------------------------------------------------------------


def test_named_ports_join_with_rshift() -> None:
    keep_e, evens = collector()
    keep_o, odds = collector()
    nums = numbers(6)
    nums.out["out"] >> split.in_["x"]
    split.out["evens"] >> keep_e.in_["x"]
    flow = split.out["odds"] >> keep_o.in_["x"]
    flow.run()
    assert evens == [0, 2, 4]
    assert odds == [1, 3, 5]


def test_every_join_on_the_same_streams_is_one_graph_runnable_from_either_result() -> None:
    nums = numbers(3)
    a = inc()
    keep, got = collector()
    first = nums.out["out"] >> a.in_["x"]
    second = a.out["y"] >> keep.in_["x"]
    assert first.graph is second.graph
    assert len(first.graph.nodes) == 3
    first.run()
    assert got == [1, 2, 3]
    got.clear()
    second.run()
    assert got == [1, 2, 3]


def test_fan_out_is_repeated_rshift_from_one_output() -> None:
    nums = numbers(3)
    k1, got1 = collector()
    k2, got2 = collector()
    nums.out["out"] >> k1.in_["x"]
    flow = nums.out["out"] >> k2.in_["x"]
    flow.run()
    assert got1 == got2 == [0, 1, 2]


def test_fan_in_is_repeated_rshift_into_one_input() -> None:
    a, b = numbers(2, "a"), numbers(3, "b")
    keep, got = collector()
    a.out["out"] >> keep.in_["x"]
    flow = b.out["out"] >> keep.in_["x"]
    flow.run()
    assert sorted(got) == [0, 0, 1, 1, 2]


def test_to_is_rshift_as_a_call_for_strict_checkers() -> None:
    # docs/typing.md: `.to()` is the join strict pyright accepts as a statement.
    keep_e, evens = collector()
    keep_o, odds = collector()
    nums = numbers(4)
    nums.out["out"].to(split.in_["x"])
    split.out["evens"].to(keep_e.in_["x"])
    flow = split.out["odds"].to(keep_o.in_["x"])
    assert isinstance(flow, Flow)
    assert [n.name for n in flow.graph.nodes] == ["nums", "split", "keep", "keep_2"]
    flow.run()
    assert (evens, odds) == ([0, 2], [1, 3])
    with pytest.raises(TypeError, match="input port"):
        split.out["evens"].to(inc)  # type: ignore[arg-type]


def test_a_stream_joined_by_name_is_that_node_in_later_pipes() -> None:
    nums = numbers(2)
    mid = inc()
    keep, got = collector()
    flow = nums.out["out"] >> mid.in_["x"]
    mid | keep
    assert [n.name for n in flow.graph.nodes] == ["nums", "inc", "keep"]
    flow.run()
    assert got == [1, 2]


def test_a_copy_is_a_distinct_node_under_rshift() -> None:
    nums = numbers(1)
    a, b = inc(), inc()
    keep, got = collector()
    nums.out["out"] >> a.in_["x"]
    a.out["y"] >> b.in_["x"]
    flow = b.out["y"] >> keep.in_["x"]
    assert [n.name for n in flow.graph.nodes] == ["nums", "inc", "inc_2", "keep"]
    flow.run()
    assert got == [2]


def test_chain_ports_are_those_of_its_first_and_last_stage() -> None:
    keep, got = collector()
    chain = numbers(2) | inc | to_str
    assert list(chain.out) == ["y"]
    flow = chain.out["y"] >> keep.in_["x"]
    assert flow.graph is chain.graph  # type: ignore[attr-defined]
    flow.run()
    assert got == ["1", "2"]


def test_misspelt_port_name_is_an_error_with_a_suggestion() -> None:
    with pytest.raises(WorkflowError, match=r"no output 'evnes'; did you mean 'evens'"):
        split.out["evnes"]
    with pytest.raises(WorkflowError, match=r"no input 'lft'; did you mean 'left'"):
        pair.in_["lft"]


def test_rshift_needs_an_input_port_on_the_right() -> None:
    with pytest.raises(TypeError, match="input port"):
        split.out["evens"] >> inc  # type: ignore[operator]


def test_joining_the_same_ports_twice_is_an_error() -> None:
    nums = numbers(1)
    keep, _ = collector()
    nums.out["out"] >> keep.in_["x"]
    with pytest.raises(WorkflowError, match="already joined"):
        nums.out["out"] >> keep.in_["x"]


def test_a_name_given_to_stream_names_the_definition_and_copies_are_suffixed() -> None:
    # Case 5 of issue 9: @stream(name=...) behaves like a stock stream's kind.
    a, b = numbers(1), numbers(1)  # both defined with @stream(name='nums')
    keep, got = collector()
    a.out["out"] >> keep.in_["x"]
    flow = b.out["out"] >> keep.in_["x"]
    assert [n.name for n in flow.graph.nodes] == ["nums", "keep", "nums_2"]
    flow.run()
    assert got == [0, 0]


def test_the_documented_custom_operator_recipe_can_be_used_many_times_in_one_graph() -> None:
    @stream(name="every_nth")
    async def _every_nth(inp: In[Any], out: Out[Any], *, n: int = 1) -> None:
        i = 0
        async for item in inp:
            if i % n == 0:
                await out.push(item)
            i += 1

    keep, got = collector()
    chain = numbers(13) | _every_nth(n=2) | _every_nth(n=3) | _every_nth(n=1) | keep
    assert [n.name for n in chain.graph.nodes] == ["nums", "every_nth", "every_nth_2", "every_nth_3", "keep"]
    chain.run()
    assert got == [0, 6, 12]


def test_an_explicit_instance_name_twice_in_one_graph_is_an_error_for_user_and_stock_streams() -> None:
    from mimo import lib

    wf = Workflow()
    wf.add_stream(inc, name="step")
    with pytest.raises(WorkflowError, match="duplicate stream name 'step'"):
        wf.add_stream(to_str, name="step")
    with pytest.raises(WorkflowError, match="duplicate stream name 'twice'"):
        lib.range(3) | lib.map(abs, name="twice") | lib.map(abs, name="twice")


# -- build-time item types ---------------------------------------------------------


def test_pipe_of_mismatched_item_types_names_both_ports_and_types() -> None:
    @stream
    async def wants_int(x: In[int]) -> None:
        pass

    with pytest.raises(WorkflowError) as err:
        numbers() | to_str | wants_int  # type: ignore[operator]
    msg = str(err.value)
    assert "to_str.y" in msg and "wants_int.x" in msg
    assert "produces str" in msg and "expects int" in msg


def test_rshift_of_mismatched_item_types_names_both_ports_and_types() -> None:
    @stream(outs={"text": str})
    async def words(ins: Any, outs: Any) -> None:
        pass

    with pytest.raises(WorkflowError, match=r"cannot join words\.text to pair\.left: .*produces str.*expects int"):
        words.out["text"] >> pair.in_["left"]


def test_a_failed_join_leaves_the_chain_unchanged() -> None:
    chain = numbers() | to_str
    before = (list(chain.graph.nodes), list(chain.graph.edges))  # type: ignore[attr-defined]
    with pytest.raises(WorkflowError, match=r"produces str.*expects int"):
        chain | inc  # type: ignore[operator]
    assert (chain.graph.nodes, chain.graph.edges) == before  # type: ignore[attr-defined]


def test_subtype_items_join_a_wider_input() -> None:
    @stream
    async def flags(out: Out[bool]) -> None:
        await out.push(True)

    keep, got = collector()
    (flags | inc | keep).run()
    assert got == [2]


def test_narrowing_join_is_rejected() -> None:
    @stream
    async def wants_bool(x: In[bool]) -> None:
        pass

    with pytest.raises(WorkflowError, match="produces int, .* expects bool"):
        numbers() | wants_bool  # type: ignore[operator]


def test_ports_listed_by_name_join_any_typed_port() -> None:
    keep, got = collector()

    @stream(ins=["x"], outs=["y"])
    async def untyped(ins: Any, outs: Any) -> None:
        async for v in ins.x:
            await outs.y.push(int(v))

    (numbers(2) | to_str | untyped | inc | keep).run()
    assert got == [1, 2]


# -- running and converting ---------------------------------------------------------


def test_run_async_inside_a_running_loop() -> None:
    keep, got = collector()
    chain = numbers(2) | keep

    async def main() -> RunReport:
        return await chain.run_async()

    report = asyncio.run(main())
    assert got == [0, 1]
    assert report["keep"].items_in == {"x": 2}


def test_run_inside_a_running_loop_points_to_run_async() -> None:
    keep, _ = collector()
    chain = numbers(2) | keep

    async def main() -> None:
        chain.run()

    with pytest.raises(RuntimeError, match="run_async"):
        asyncio.run(main())


def test_a_graph_runs_again_with_fresh_queues() -> None:
    keep, got = collector()
    chain = numbers(2) | keep
    chain.run()
    chain.run()
    assert got == [0, 1, 0, 1]


def test_to_workflow_shares_the_graph() -> None:
    keep, got = collector()
    chain = numbers(2) | inc | keep
    wf = chain.workflow()
    assert isinstance(wf, Workflow)
    assert wf.graph is chain.graph
    assert [s.name for s in wf.steps] == ["nums", "inc", "keep"]
    wf.run()
    assert got == [1, 2]


def test_from_workflow_extends_the_classic_graph_by_step_name() -> None:
    keep, got = collector()
    wf = Workflow()
    wf.add_stream(Stream(outs={"a": int}, fn=_three, name="three"))
    flow = Flow.from_workflow(wf)
    flow.step("three").out["a"] >> keep.in_["x"]
    assert [s.name for s in wf.steps] == ["three", "keep"]
    wf.run()
    assert got == [0, 1, 2]


async def _three(ins: Any, outs: Any, state: Any) -> None:
    for i in range(3):
        await outs.a.push(i)


def test_dsl_graph_renders_like_a_workflow() -> None:
    keep, _ = collector()
    chain = numbers() | inc | keep
    assert chain.to_dot() == chain.workflow().to_dot()
    assert "inc" in chain.to_mermaid()


def test_union_item_types_join_by_their_members() -> None:
    @stream
    async def maybe(x: In[int | None]) -> None:
        async for _ in x:
            pass

    @stream
    async def maybe_out(out: Out[int | None]) -> None:
        await out.push(None)

    (numbers(1) | maybe).run()  # int into int | None
    with pytest.raises(WorkflowError, match=r"produces int \| None, .* expects int"):
        maybe_out | inc  # type: ignore[operator]


def test_a_flow_extends_with_pipe_at_either_end() -> None:
    keep, got = collector()
    nums = numbers(2)
    a, b = inc(), inc(by=10)
    middle = a.out["y"] >> b.in_["x"]
    whole = nums | middle | keep
    assert isinstance(whole, Flow)
    assert whole.graph is middle.graph
    whole.run()
    assert got == [11, 12]


def test_two_workflows_cannot_be_joined() -> None:
    wf1, wf2 = Workflow(), Workflow()
    wf1.add_stream(Stream(outs={"a": int}, fn=_three, name="three"))
    wf2.add_stream(Stream(ins={"x": int}, name="drain"))
    with pytest.raises(WorkflowError, match="two different workflows"):
        Flow.from_workflow(wf1).step("three").out["a"] >> Flow.from_workflow(wf2).step("drain").in_["x"]


def test_a_classic_untyped_stream_feeds_a_typed_dsl_stream() -> None:
    keep, got = collector()
    wf = Workflow()
    wf.add_stream(Stream(outs=["a"], fn=_three)).pipe(wf.add_stream(inc)).pipe(wf.add_stream(keep))
    wf.run()
    assert got == [1, 2, 3]


def test_a_dsl_graph_renders_like_a_workflow(tmp_path):
    from mimo import lib

    flow = lib.range(3) | lib.collect([])
    out = flow.render(tmp_path / "flow.dot")
    assert out.read_text() == flow.to_dot()


def test_a_stream_placed_in_a_graph_being_built_pickles_without_its_place() -> None:
    # Ray pickles streams (with cloudpickle); where one stands in a graph being built stays here.
    import cloudpickle as pickle

    from mimo import lib

    stage = lib.map(abs)
    chain = lib.range(3) | stage | lib.collect([])
    copy = pickle.loads(pickle.dumps(stage))
    assert copy.settings == stage.settings and copy._home is None and copy._stages == []
    assert len(pickle.loads(pickle.dumps(chain.graph)).nodes) == 3


def test_a_module_level_stage_used_in_many_runs_keeps_no_record_of_them() -> None:
    keep, got = collector()
    stage = inc()
    for _ in range(50):
        (numbers(1) | stage | keep).run()
    assert got == [1] * 50
    assert len(stage._stages) <= 1


@stream(ins={"x": int}, outs={"evens": int, "odds": int})
async def _split_again(ins: Any, outs: Any) -> None:
    async for v in ins.x:
        await (outs.evens if v % 2 == 0 else outs.odds).push(v)


@stream
async def _fixed_source(out: Out[int]) -> None:
    for i in range(4):
        await out.push(i)


@pytest.mark.timeout(60)
def test_repeated_builds_are_the_same_graph_or_refused_never_doubled() -> None:
    # Cases 3 and 25 together: any mix of builds, with or without a run between them.
    from hypothesis import given
    from hypothesis import strategies as st

    from mimo import lib

    def build(style: str, got: list[int]) -> Runnable:
        if style == "pipe":  # module-level source and stage in | chains
            return _fixed_source | inc | lib.collect(got)
        _fixed_source.out["out"] >> _split_again.in_["x"]
        _split_again.out["evens"] >> lib.collect(got).in_["inp"]
        return _split_again.out["odds"] >> lib.collect(got).in_["inp"]

    want = {"pipe": [1, 2, 3, 4], "rshift": [0, 1, 2, 3]}

    @given(st.lists(st.tuples(st.sampled_from(["pipe", "rshift"]), st.booleans()), min_size=1, max_size=6))
    def check(steps: list[tuple[str, bool]]) -> None:
        pending: Runnable | None = None  # a graph built and not run: the streams are still in it
        for style, run in steps:
            got: list[int] = []
            try:
                flow = build(style, got)
            except WorkflowError as err:
                assert pending is not None, f"refused with nothing pending: {err}"
                assert "run the first" in str(err)
                pending.run()  # what the error says to do
                pending = None
                continue
            if run:
                flow.run()
                assert sorted(got) == want[style]
                pending = None
            else:
                pending = flow
        if pending is not None:
            pending.run()  # leave the module-level streams free for the next example

    check()


def test_running_an_open_chain_says_how_to_close_it() -> None:
    from mimo import lib

    with pytest.raises(AttributeError, match=r"open output, so it cannot run: end it with a sink .*to_list"):
        (lib.from_iterable([1]) | lib.map(abs)).run()  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match=r"open input, so it cannot run"):
        (lib.map(abs) | lib.collect([])).run_async()  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        (lib.from_iterable([1]) | lib.map(abs)).nope  # type: ignore[attr-defined]  # noqa: B018
