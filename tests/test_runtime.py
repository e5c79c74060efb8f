"""Failure, cancellation, Ctrl-C, cycles and deadlock; running and re-running.

See docs/concepts.md ("Errors", "Cycles"), docs/guarantees.md ("A local run") and
docs/cli.md ("Stopping a run: Ctrl-C and SIGTERM").
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from mimo import DeadlockError, Stream, Workflow, run_together
from mimo.testing import run_workflow
from tests.helpers import chain, collector, source


def endless_source(finals: list[str], name: str = "endless") -> Stream:
    async def fn(ins, outs, state):
        try:
            i = 0
            while True:
                await outs.out.push(i)
                i += 1
        finally:
            finals.append(name)

    return Stream(outs=["out"], fn=fn, name=name)


def test_a_failing_stream_fails_the_run_with_its_exception_and_name():
    finals: list[str] = []

    async def boom(ins, outs, state):
        await ins.inp.pop()
        raise ValueError("bad item")

    async def stuck(ins, outs, state):
        try:
            await asyncio.sleep(3600)
        finally:
            finals.append("stuck")

    wf = Workflow(capacity=1)
    wf.add_stream(endless_source(finals)).pipe(wf.add_stream(Stream(["inp"], fn=boom)))
    wf.add_stream(Stream(fn=stuck))
    with pytest.raises(ValueError, match="bad item") as info:
        wf.run()
    assert info.value.mimo_stream == "boom"  # type: ignore[attr-defined]
    assert "in mimo stream 'boom'" in info.value.__notes__
    assert sorted(finals) == ["endless", "stuck"]  # the blocked push woke, every finally ran


def test_several_failures_are_grouped():
    async def fail(ins, outs, state):
        await asyncio.sleep(0)
        raise KeyError(state["n"])

    wf = Workflow()
    wf.add_stream(Stream(fn=fail, name="f1", state={"n": 1}))
    wf.add_stream(Stream(fn=fail, name="f2", state={"n": 2}))
    with pytest.raises(ExceptionGroup) as info:
        wf.run()
    assert sorted(e.mimo_stream for e in info.value.exceptions) == ["f1", "f2"]  # type: ignore[attr-defined]


def test_failure_leaves_no_task_running():
    async def main():
        async def boom(ins, outs, state):
            raise RuntimeError("x")

        finals: list[str] = []
        wf = Workflow()
        wf.add_stream(endless_source(finals)).pipe(wf.add_stream(Stream(["inp"])))
        wf.add_stream(Stream(fn=boom))
        before = asyncio.all_tasks()
        with pytest.raises(RuntimeError, match=r"^x\b"):
            await wf.run_async()
        assert asyncio.all_tasks() == before

    asyncio.run(main())


def test_downstream_does_not_see_a_clean_end_after_an_upstream_failure():
    ended = []

    async def half(ins, outs, state):
        await outs.out.push(1)
        raise ValueError("half")

    async def sink(ins, outs, state):
        async for _ in ins.inp:
            pass
        ended.append("clean end")

    with pytest.raises(ValueError, match=r"^half\b"):
        chain(Stream(outs=["out"], fn=half), Stream(["inp"], fn=sink)).run()
    assert ended == []


def test_outside_cancellation_tears_down_and_leaves_no_task():
    finals: list[str] = []

    async def main():
        wf = Workflow(capacity=2)
        wf.add_stream(endless_source(finals, "a")).pipe(wf.add_stream(Stream(["inp"], ["out"], name="slow")))
        before = asyncio.all_tasks()
        task = asyncio.create_task(wf.run_async())
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert asyncio.all_tasks() == before

    asyncio.run(main())
    assert finals == ["a"]


def test_asyncio_timeout_around_a_run():
    finals: list[str] = []

    async def main():
        wf = chain(endless_source(finals), Stream(["inp"]))
        # asyncio.timeout's own error has no message; mimo's timeouts all have one.
        with pytest.raises(TimeoutError, match="^$"):
            async with asyncio.timeout(0.1):
                await wf.run_async()

    asyncio.run(main())
    assert finals == ["endless"]


@pytest.mark.timeout(30)
def test_ctrl_c_runs_every_finally_and_exits(tmp_path):
    script = tmp_path / "sigint.py"
    script.write_text(
        textwrap.dedent(
            """
            import asyncio, sys
            from mimo import Stream, Workflow

            async def produce(ins, outs, state):
                try:
                    i = 0
                    while True:
                        await outs.out.push(i)
                        i += 1
                finally:
                    print("finally produce", flush=True)

            async def consume(ins, outs, state):
                try:
                    async for x in ins.inp:
                        if x == 10:
                            print("started", flush=True)
                        await asyncio.sleep(0.001)
                finally:
                    print("finally consume", flush=True)

            wf = Workflow(capacity=4)
            wf.add_stream(Stream(outs=["out"], fn=produce)).pipe(wf.add_stream(Stream(["inp"], fn=consume)))
            try:
                wf.run()
            except KeyboardInterrupt:
                print("interrupted", flush=True)
                sys.exit(130)
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "started"
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 130
    assert sorted(out.split("\n")[:2]) == ["finally consume", "finally produce"]
    assert "interrupted" in out


def test_a_cycle_that_terminates():
    """A counter loop: `step` sends n+1 back around until it reaches 10."""
    got: list[int] = []

    async def step(ins, outs, state):
        async for n in ins.inp:
            got.append(n)
            if n >= 10:
                return
            await outs.out.push(n + 1)

    wf = Workflow(capacity=1)
    s = wf.add_stream(Stream(["inp"], ["out"], fn=step))
    back = wf.add_stream(Stream(["inp"], ["out"], name="back"))
    s.pipe(back).pipe(s)
    s.push(0)
    run_workflow(wf, timeout=10)
    assert got == list(range(11))


def test_a_cycle_with_no_progress_is_a_deadlock_naming_who_waits_on_what():
    async def wait_first(ins, outs, state):
        x = await ins.inp.pop()
        await outs.out.push(x)

    wf = Workflow()
    a = wf.add_stream(Stream(["inp"], ["out"], fn=wait_first, name="a"))
    b = wf.add_stream(Stream(["inp"], ["out"], fn=wait_first, name="b"))
    a.pipe(b).pipe(a)
    with pytest.raises(DeadlockError) as info:
        run_workflow(wf, timeout=10)
    msg = str(info.value)
    assert "'a' waits to pop from b.out -> a.inp" in msg
    assert "'b' waits to pop from a.out -> b.inp" in msg


def test_a_full_queue_in_a_cycle_is_a_deadlock_too():
    async def flood(ins, outs, state):
        for i in range(100):
            await outs.out.push(i)
        async for _ in ins.inp:
            pass

    wf = Workflow(capacity=2)
    a = wf.add_stream(Stream(["inp"], ["out"], fn=flood, name="a"))
    b = wf.add_stream(Stream(["inp"], ["out"], fn=flood, name="b"))
    a.pipe(b).pipe(a)
    with pytest.raises(DeadlockError, match=r"'a' waits to push into a.out -> b.inp \(full: 2 of 2\)"):
        run_workflow(wf, timeout=10)


def test_a_stream_awaiting_something_else_is_not_stuck():
    got: list[str] = []

    async def late(ins, outs, state):
        await asyncio.sleep(0.2)
        await outs.out.push("late")

    run_workflow(chain(Stream(outs=["out"], fn=late), collector(got)), timeout=10)
    assert got == ["late"]


def test_a_stream_whose_sub_task_will_push_is_not_stuck():
    got: list[str] = []

    async def helper_pushes(ins, outs, state):
        async def later():
            await asyncio.sleep(0.1)
            await outs.out.push("from the sub-task")
            outs.out.close()

        task = asyncio.create_task(later())
        async for x in ins.inp:  # waits on a port while its sub-task sleeps
            got.append(x)
        await task

    async def echo(ins, outs, state):
        async for x in ins.inp:
            await outs.out.push(x)

    wf = Workflow()
    a = wf.add_stream(Stream(["inp"], ["out"], fn=helper_pushes, name="a"))
    b = wf.add_stream(Stream(["inp"], ["out"], fn=echo, name="b"))
    a.pipe(b).pipe(a)
    run_workflow(wf, timeout=10)
    assert got == ["from the sub-task"]


def test_run_inside_a_running_loop_points_to_run_async():
    async def main():
        with pytest.raises(RuntimeError, match="run_async"):
            Workflow().run()

    asyncio.run(main())


def test_a_workflow_runs_again_with_fresh_queues():
    got: list[int] = []
    wf = chain(source([1, 2, 3]), Stream(["a"], ["b"]), collector(got), capacity=1)
    wf.run()
    wf.run()
    assert got == [1, 2, 3, 1, 2, 3]


def test_an_empty_workflow_runs():
    report = Workflow().run()
    assert report.streams == {}


def test_the_report_counts_items_and_times():
    async def slow(ins, outs, state):
        async for _ in ins.inp:
            await asyncio.sleep(0.002)

    report = run_workflow(
        chain(source(list(range(40))), Stream(["a"], ["b"], name="fwd"), Stream(["inp"], fn=slow), capacity=2),
        timeout=10,
    )
    assert report["source"].items_out == {"out": 40}
    assert report["fwd"].items_in == {"a": 40} and report["fwd"].items_out == {"b": 40}
    assert report["slow"].items_in == {"inp": 40}
    assert report["source"].blocked_s > 0.01  # held back by the slow sink
    assert report["slow"].busy_s > 0.05
    assert report["slow"].starved_s < report["slow"].busy_s
    assert "source" in str(report) and report.to_dict()["streams"]["fwd"]["items_in"] == {"a": 40}


def test_workers_share_the_input_and_close_the_output_after_the_last():
    got: list[int] = []

    busy = 0
    most = 0

    async def work(ins, outs, state):
        nonlocal busy, most
        async for x in ins.inp:
            busy += 1
            most = max(most, busy)
            await asyncio.sleep(0.005)
            busy -= 1
            await outs.out.push(x * 10)

    wf = chain(source(list(range(40))), Stream(["inp"], ["out"], fn=work, workers=4), collector(got), capacity=2)
    report = run_workflow(wf, timeout=10)
    assert sorted(got) == [x * 10 for x in range(40)]
    assert report["work"].workers == 4 and report["work"].items_out == {"out": 40}
    assert "work (4 workers)" in str(report)
    assert most > 1  # the copies worked at the same time


def test_default_streams_forward_source_nothing_and_drain():
    got: list[int] = []
    wf = Workflow()
    two = wf.add_stream(Stream(["a", "b"], ["x", "y"], name="two"))
    wf.add_stream(source([1, 2], "s1")).pipe(two, input="a")
    wf.add_stream(source([3], "s2")).pipe(two, input="b")
    two.pipe(wf.add_stream(collector(got)), output="x")
    two.pipe(wf.add_stream(Stream(["d"], name="drain")), output="y")
    report = run_workflow(wf, timeout=10)
    assert got == [1, 2] and report["drain"].items_in == {"d": 1}


def test_a_deadlock_through_a_streams_sub_tasks_is_found():
    """The default forwarder of two pairs reads both inputs in sub-tasks."""

    async def a(ins, outs, state):
        await ins.x.pop()

    wf = Workflow()
    sa = wf.add_stream(Stream(["x"], ["p", "q"], fn=a, name="a"))
    fwd = wf.add_stream(Stream(["i", "j"], ["o", "k"], name="fwd"))
    sa.pipe(fwd, "p", "i")
    sa.pipe(fwd, "q", "j")
    fwd.pipe(sa, "o", "x")
    with pytest.raises(DeadlockError) as info:
        run_workflow(wf, timeout=10)
    assert "'a' waits to pop from fwd.o -> a.x" in str(info.value)
    assert "'fwd (its sub-task)' waits to pop from a.p -> fwd.i" in str(info.value)


def test_tasks_a_stream_started_do_not_outlive_the_run():
    async def main():
        async def src(ins, outs, state):
            state["helper"] = asyncio.create_task(asyncio.sleep(3600))
            await outs.out.push(1)

        async def boom(ins, outs, state):
            await ins.inp.pop()
            raise ValueError("x")

        before = asyncio.all_tasks()
        with pytest.raises(ValueError, match=r"^x\b"):
            await chain(Stream(outs=["out"], fn=src), Stream(["inp"], fn=boom)).run_async()
        assert asyncio.all_tasks() == before

    asyncio.run(main())


def test_a_cancelled_error_from_a_streams_own_code_fails_the_run_naming_it():
    async def a(ins, outs, state):
        await outs.out.push(1)
        f = asyncio.get_running_loop().create_future()
        f.cancel()
        await f

    with pytest.raises(RuntimeError, match="'a' raised CancelledError but was not cancelled") as info:
        run_workflow(chain(Stream(outs=["out"], fn=a), Stream(["inp"])), timeout=10)
    assert info.value.mimo_stream == "a"  # type: ignore[attr-defined]


# -- issue 9: stopping early, teardown, run_together, naming ------------------


def take(k: int, bucket: list, name: str = "take") -> Stream:
    async def fn(ins, outs, state):
        for _ in range(k):
            bucket.append(await ins.inp.pop())

    return Stream(["inp"], fn=fn, name=name)


@pytest.mark.timeout(10)
def test_a_producer_whose_consumers_all_left_is_cancelled_at_once_and_its_finally_runs():
    finals: list[str] = []

    async def slow_source(ins, outs, state):
        try:
            await outs.out.push(1)
            await asyncio.sleep(3600)  # a long await (a socket, a sleep): no push to learn from
            await outs.out.push(2)
        finally:
            finals.append("source")

    got: list[int] = []
    report = run_workflow(chain(Stream(outs=["out"], fn=slow_source), take(1, got)), timeout=5)
    assert got == [1] and finals == ["source"]
    assert report["slow_source"].stopped_early and not report["take"].stopped_early
    assert "slow_source (stopped early)" in str(report)
    assert report.to_dict()["streams"]["slow_source"]["stopped_early"] is True


@pytest.mark.timeout(10)
def test_stopping_early_goes_up_a_chain_at_once():
    finals: list[str] = []

    async def src(ins, outs, state):
        try:
            for i in range(3):
                await outs.out.push(i)
            await asyncio.sleep(3600)
        finally:
            finals.append("src")

    async def mid(ins, outs, state):
        try:
            async for x in ins.inp:
                await outs.out.push(x)
        finally:
            finals.append("mid")

    got: list[int] = []
    report = run_workflow(
        chain(Stream(outs=["out"], fn=src), Stream(["inp"], ["out"], fn=mid), take(2, got)), timeout=5
    )
    assert got == [0, 1] and sorted(finals) == ["mid", "src"]
    assert report["src"].stopped_early and report["mid"].stopped_early
    assert report.elapsed_s < 2


@pytest.mark.timeout(10)
def test_every_copy_of_a_multi_worker_stream_is_stopped_when_its_consumers_leave():
    finals: list[int] = []

    async def work(ins, outs, state):
        try:
            async for x in ins.inp:
                await outs.out.push(x)
                await asyncio.sleep(3600)
        finally:
            finals.append(1)

    got: list[int] = []
    wf = chain(source(list(range(10))), Stream(["inp"], ["out"], fn=work, workers=3), take(2, got), capacity=1)
    report = run_workflow(wf, timeout=5)
    assert len(got) == 2 and finals == [1, 1, 1]
    assert report["work"].stopped_early and report["work"].workers == 3


@pytest.mark.timeout(10)
def test_a_stream_with_a_consumer_left_is_not_stopped_and_a_sink_never_is():
    got_a: list[int] = []
    got_b: list[int] = []

    async def two(ins, outs, state):
        for i in range(3):
            await outs.a.push(i)
            await outs.b.push(i)
            await asyncio.sleep(0.01)  # the take(1) on a leaves while two still runs

    async def lonely(ins, outs, state):
        await asyncio.sleep(0.05)  # an output joined to nothing: a sink for this purpose
        state.append("done")

    wf = Workflow()
    s = wf.add_stream(Stream(outs=["a", "b"], fn=two))
    s.pipe(wf.add_stream(take(1, got_a)), output="a")
    s.pipe(wf.add_stream(collector(got_b)), output="b")
    lone = wf.add_stream(Stream(outs=["nowhere"], fn=lonely, state=[]))
    report = run_workflow(wf, timeout=5)
    assert got_a == [0] and got_b == [0, 1, 2]
    assert not report["two"].stopped_early and not report["lonely"].stopped_early
    assert lone.stream.state == ["done"]


def _flush_chain(mid_fn) -> Workflow:
    async def src(ins, outs, state):
        i = 0
        while True:
            await outs.out.push(i)
            i += 1

    async def bad(ins, outs, state):
        await ins.inp.pop()
        await asyncio.sleep(0.01)
        raise ValueError("bad item")

    return chain(
        Stream(outs=["out"], fn=src),
        Stream(["inp"], ["out"], fn=mid_fn, name="mid"),
        Stream(["inp"], fn=bad),
        capacity=1,
    )


@pytest.mark.timeout(10)
def test_a_push_in_a_finally_during_teardown_does_not_hang_the_run():
    async def mid(ins, outs, state):
        try:
            async for x in ins.inp:
                await outs.out.push(x)
        finally:
            await outs.out.push("flush")

    with pytest.raises(ValueError, match="bad item"):
        _flush_chain(mid).run()


@pytest.mark.timeout(10)
def test_draining_an_input_in_a_finally_during_teardown_does_not_hang_the_run():
    async def mid(ins, outs, state):
        try:
            async for x in ins.inp:
                await outs.out.push(x)
        finally:
            async for _ in ins.inp:  # drain the rest: src is endless
                pass

    with pytest.raises(ValueError, match="bad item"):
        _flush_chain(mid).run()


@pytest.mark.timeout(10)
def test_reading_on_after_catching_cancelled_error_does_not_hang_the_run():
    async def mid(ins, outs, state):
        while True:
            try:
                x = await ins.inp.pop()
                await outs.out.push(x)
            except asyncio.CancelledError:
                continue

    with pytest.raises(ValueError, match="bad item"):
        _flush_chain(mid).run()


@pytest.mark.timeout(10)
def test_an_outer_timeout_wins_over_a_teardown_that_pushes():
    async def mid(ins, outs, state):
        try:
            await asyncio.sleep(3600)
        finally:
            await outs.out.push("flush")  # the queue is full and nobody reads it

    async def stuck_sink(ins, outs, state):
        await asyncio.sleep(3600)

    async def main():
        wf = chain(
            source(list(range(5))),
            Stream(["inp"], ["out"], fn=mid, name="mid"),
            Stream(["inp"], fn=stuck_sink),
            capacity=0,
        )
        before = asyncio.all_tasks()
        with pytest.raises(TimeoutError, match="^$"):  # asyncio.timeout's, not one of mimo's
            async with asyncio.timeout(0.1):
                await wf.run_async()
        assert asyncio.all_tasks() == before

    asyncio.run(main())


@pytest.mark.timeout(10)
def test_a_cancellation_during_teardown_is_not_swallowed():
    async def main():
        release = asyncio.Event()

        async def slow_finally(ins, outs, state):
            try:
                await ins.inp.pop()
            finally:
                await asyncio.shield(release.wait())

        async def boom(ins, outs, state):
            await asyncio.sleep(0.01)
            raise ValueError("boom")

        async def quiet(ins, outs, state):
            await asyncio.sleep(3600)

        wf = Workflow()
        wf.add_stream(Stream(fn=boom))
        wf.add_stream(Stream(outs=["out"], fn=quiet)).pipe(wf.add_stream(Stream(["inp"], fn=slow_finally)))
        task = asyncio.create_task(wf.run_async())
        await asyncio.sleep(0.05)  # boom failed; teardown waits on slow_finally
        task.cancel()
        await asyncio.sleep(0.01)
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())


@pytest.mark.timeout(10)
def test_run_together_readers_whose_consumer_left_end_quietly():
    got: list[int] = []

    async def both(ins, outs, state):
        async def pump(port):
            async for x in port:
                await outs.out.push(x)

        await run_together(pump(ins.a), pump(ins.b))

    wf = Workflow(capacity=1)
    m = wf.add_stream(Stream(["a", "b"], ["out"], fn=both))
    wf.add_stream(source(list(range(100)), "s1")).pipe(m, input="a")
    wf.add_stream(source(list(range(100)), "s2")).pipe(m, input="b")
    m.pipe(wf.add_stream(take(3, got)))
    run_workflow(wf, timeout=5)
    assert len(got) == 3


@pytest.mark.timeout(10)
def test_a_run_together_job_whose_input_ends_ends_alone():
    got: list[int] = []

    async def both(ins, outs, state):
        async def pump(port):
            while True:
                await outs.out.push(await port.pop())  # EndOfStream ends this job only

        await run_together(pump(ins.a), pump(ins.b))

    async def slow(ins, outs, state):
        for i in range(50):
            await asyncio.sleep(0.001)
            await outs.out.push(i)

    wf = Workflow(capacity=1)
    m = wf.add_stream(Stream(["a", "b"], ["out"], fn=both))
    wf.add_stream(source([-1, -2, -3], "short")).pipe(m, input="a")
    wf.add_stream(Stream(outs=["out"], fn=slow)).pipe(m, input="b")
    m.pipe(wf.add_stream(collector(got)))
    run_workflow(wf, timeout=5)
    assert sorted(got) == [-3, -2, -1, *range(50)]


@pytest.mark.timeout(20)
def test_many_blocked_pushes_do_not_make_deadlock_detection_quadratic():
    import time

    def run(n: int) -> float:
        async def many(ins, outs, state):
            async def one(i):
                await outs.out.push(i)

            await run_together(*(one(i) for i in range(n)))

        got: list[int] = []
        t0 = time.perf_counter()
        run_workflow(chain(Stream(outs=["out"], fn=many), collector(got), capacity=1), timeout=15)
        assert sorted(got) == list(range(n))
        return time.perf_counter() - t0

    run(500)  # warm up
    small, big = run(1000), run(4000)
    assert big < 8 * small + 0.5, (small, big)  # linear is 4x; quadratic was 16x and more


class FrozenError(Exception):
    __slots__ = ()

    def __setattr__(self, name, value):
        raise TypeError("read-only exception")


def test_a_streams_exception_that_refuses_attributes_comes_out_unchanged():
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class Frozen(Exception):
        code: int

    for exc in (Frozen(7), FrozenError("ro")):

        async def fail(ins, outs, state, exc=exc):
            raise exc

        with pytest.raises(type(exc)) as info:
            run_workflow(Workflow().add_stream(Stream(fn=fail)).workflow, timeout=10)
        assert info.value is exc


@pytest.mark.timeout(10)
def test_a_stream_that_cancels_itself_fails_the_run_naming_it():
    async def a(ins, outs, state):
        await outs.out.push(1)
        asyncio.current_task().cancel()
        await asyncio.sleep(1)

    async def waits(ins, outs, state):
        await asyncio.sleep(3600)

    with pytest.raises(RuntimeError, match="stream 'a' was cancelled from inside") as info:
        run_workflow(chain(Stream(outs=["out"], fn=a), Stream(["inp"], fn=waits)), timeout=5)
    assert info.value.mimo_stream == "a"  # type: ignore[attr-defined]


@pytest.mark.timeout(10)
def test_no_task_of_a_failed_run_outlives_it():
    async def main():
        async def mid(ins, outs, state):
            state["t"] = asyncio.ensure_future(asyncio.sleep(3600))
            try:
                async for x in ins.inp:
                    await outs.out.push(x)
            finally:
                state["u"] = asyncio.ensure_future(asyncio.sleep(3600))  # started during teardown
                await outs.out.push("flush")

        before = asyncio.all_tasks()
        with pytest.raises(ValueError, match="bad item"):
            await _flush_chain(mid).run_async()
        assert asyncio.all_tasks() == before

    asyncio.run(main())


@pytest.mark.timeout(10)
def test_run_together_raises_consumers_gone_itself_not_a_group():
    from mimo import ConsumersGone

    seen: list[str] = []

    async def s(ins, outs, state):
        async def gone():
            await asyncio.sleep(0.01)
            raise ConsumersGone("nobody reads")

        async def long():
            try:
                await asyncio.sleep(3600)
            finally:
                seen.append("sibling cancelled")

        try:
            await run_together(gone(), long())
        except ConsumersGone as exc:  # not an ExceptionGroup
            seen.append(str(exc))
            raise

    report = run_workflow(Workflow().add_stream(Stream(fn=s)).workflow, timeout=5)
    assert seen == ["sibling cancelled", "nobody reads"] and report["s"].done


@pytest.mark.timeout(10)
def test_a_deadlock_among_many_blocked_pushes_is_still_found():
    async def many(ins, outs, state):
        async def one(i):
            await outs.out.push(i)

        await run_together(*(one(i) for i in range(500)))

    async def stalls(ins, outs, state):
        for _ in range(100):
            await ins.inp.pop()  # takes some, moving the pushers on ...
        await ins.never.pop()  # ... then waits on an input that nothing feeds but itself

    wf = Workflow(capacity=1)
    st = wf.add_stream(Stream(["inp", "never"], ["loop"], fn=stalls))
    wf.add_stream(Stream(outs=["out"], fn=many)).pipe(st, input="inp")
    st.pipe(st, output="loop", input="never")
    with pytest.raises(DeadlockError, match="'stalls' waits to pop from stalls.loop -> stalls.never"):
        run_workflow(wf, timeout=5)


@pytest.mark.timeout(10)
def test_an_error_raised_while_an_outer_cancellation_tears_down_is_logged_naming_the_stream(caplog) -> None:
    import gc
    import logging

    async def cleanup_fails(ins, outs, state):
        try:
            await asyncio.sleep(10)
        finally:
            raise ValueError("cleanup failed")

    async def main() -> None:
        wf = Workflow()
        wf.add_stream(Stream(fn=cleanup_fails, name="s"))
        async with asyncio.timeout(0.05):
            await wf.run_async()

    unretrieved: list[dict[str, object]] = []

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
        unretrieved.append(context)

    async def runner() -> None:
        asyncio.get_running_loop().set_exception_handler(handler)
        await main()

    with caplog.at_level(logging.ERROR, logger="mimo"), pytest.raises(TimeoutError, match="^$"):
        asyncio.run(runner())
    gc.collect()
    failed = [r for r in caplog.records if "'s' failed while the run was being cancelled" in r.getMessage()]
    assert len(failed) == 1
    assert failed[0].exc_info is not None and str(failed[0].exc_info[1]) == "cleanup failed"
    assert unretrieved == []
