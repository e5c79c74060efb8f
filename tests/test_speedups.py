"""The optional compiled core (mimo/_speedups.c) behaves as the pure-Python code does.

See README.md ("Install": the optional compiled core) and mimo/speedups.py.
Each behaviour test runs on both cores in this process (the ``core`` fixture
switches ``OutputPort.push``, ``InputPort.pop``, ``InputPort.__aiter__`` and the
delivered-push object between them); CI also runs the whole suite once per core.
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import mimo
from mimo import Channel, EndOfStream, InputPort, OutputPort, PortClosed, PushNotAwaited, speedups
from mimo import _ports as ports

ROOT = Path(__file__).resolve().parent.parent


def _compiled_available() -> str | None:
    """None if the compiled core can be used in this process, else why not."""
    return speedups._load(ports, Channel, InputPort, OutputPort, EndOfStream)


@pytest.fixture(params=["pure", "compiled"])
def core(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "compiled":
        why = _compiled_available()
        if why is not None:
            if os.environ.get("CI"):  # CI has a compiler: the core must be there
                pytest.fail(f"the compiled core is not available in CI: {why}")
            pytest.skip(f"compiled core not available: {why}")
    before = speedups._compiled if speedups.active else speedups._pure
    speedups._use(speedups._compiled if request.param == "compiled" else speedups._pure)
    try:
        yield request.param
    finally:
        speedups._use(before)


def pair(capacity: int, channel: type[Channel[Any]] = Channel) -> tuple[Channel[Any], OutputPort[Any], InputPort[Any]]:
    ch = channel(capacity)
    return ch, OutputPort("y", "src", [ch]), InputPort("x", "dst", ch)


def test_the_core_in_use_is_the_one_asked_for(core: str) -> None:
    _, out, inp = pair(4)
    compiled = core == "compiled"
    assert (type(out.push).__name__ == "builtin_function_or_method") is compiled
    assert (type(inp.pop).__name__ == "builtin_function_or_method") is compiled
    assert (type(out._pushed).__module__ == "mimo._speedups") is compiled
    assert (type(aiter(inp)).__module__ == "mimo._speedups") is compiled


def test_items_arrive_in_order_through_a_small_queue_and_the_end_stops_the_loop(core: str) -> None:
    async def main() -> list[object]:
        _, out, inp = pair(3)
        items: list[object] = [None, (1, 2), (), StopIteration(5), ValueError("x"), "s", 10**30, *range(300)]

        async def produce() -> None:
            for item in items:
                await out.push(item)
            out.close()

        got: list[object] = []

        async def consume() -> None:
            async for item in inp:
                got.append(item)

        await asyncio.gather(produce(), consume())
        assert all(a is b for a, b in zip(got, items, strict=True))  # the very objects, tuples included
        assert out.count == len(items)
        return got

    asyncio.run(main())


def test_after_the_end_every_next_raises_stop_async_iteration(core: str) -> None:
    async def main() -> None:
        _, out, inp = pair(2)
        await out.push(1)
        out.close()
        it = aiter(inp)
        assert await anext(it) == 1
        for _ in range(2):
            with pytest.raises(StopAsyncIteration):
                await anext(it)

    asyncio.run(main())


def test_a_push_not_awaited_is_found_by_the_next_push_and_by_close(core: str) -> None:
    async def main() -> None:
        _, out, _inp = pair(4)
        out.push(1)  # type: ignore[unused-coroutine]  # deliberately not awaited
        with pytest.raises(PushNotAwaited, match=r"src\.y was not awaited"):
            await out.push(2)
        with pytest.raises(PushNotAwaited):
            out.close()
        # A push that waits for room is a coroutine: not awaiting it is found too.
        _, out, _inp = pair(1)
        await out.push(1)
        pending = out.push(2)
        assert pending is not out._pushed
        with pytest.raises(PushNotAwaited):
            await out.push(3)
        pending.close()

    asyncio.run(main())


def test_an_awaited_or_started_push_counts_as_awaited(core: str) -> None:
    async def main() -> None:
        ch, out, inp = pair(8)
        pushed = out.push(1)
        assert asyncio.iscoroutine(pushed)  # so it may run as a task
        await pushed
        await asyncio.create_task(out.push(2))
        with pytest.raises(KeyError):
            await out.push(3).throw(KeyError("k"))  # type: ignore[attr-defined]
        out.push(4).close()
        await out.push(5)  # no PushNotAwaited: each one above was awaited, started or closed
        assert list(ch._buf) == [1, 2, 3, 4, 5]
        assert "delivered" in repr(out._pushed) and "src.y" in repr(out._pushed)
        out.close()
        assert [x async for x in inp] == [1, 2, 3, 4, 5]

    asyncio.run(main())


def test_counts_read_from_the_port_and_the_channel_never_change_under_the_reader(core: str) -> None:
    async def main() -> None:
        ch, out, inp = pair(5000)
        for i in range(1000):
            await out.push(i)
        count, high = out.count, ch._high
        await out.push(-1)
        assert (count, high, out.count, ch._high) == (1000, 1000, 1001, 1001)
        it = aiter(inp)
        for _ in range(600):
            await anext(it)
        popped = ch._popped
        await anext(it)
        assert (popped, ch._popped) == (600, 601)
        out.count += 5  # the Python side may write the counters too
        await out.push(0)
        assert out.count == 1007 and ch.statistics().popped == 601

    asyncio.run(main())


def test_back_pressure_holds_the_producer_at_the_bound(core: str) -> None:
    async def main() -> None:
        ch, out, inp = pair(2)
        pushed: list[int] = []

        async def produce() -> None:
            for i in range(6):
                await out.push(i)
                pushed.append(i)
            out.close()

        task = asyncio.create_task(produce())
        for _ in range(5):
            await asyncio.sleep(0)
        assert len(ch) == 2 and pushed == [0, 1]  # the third push waits for room
        assert ch.statistics().waiting_pushers == 1
        got = [x async for x in inp]
        await task
        assert got == list(range(6)) and ch.statistics().high_water == 2

    asyncio.run(main())


def test_a_cancelled_wait_for_an_item_takes_no_item(core: str) -> None:
    async def main() -> None:
        ch, out, inp = pair(4)
        got: list[int] = []

        async def consume() -> None:
            async for item in inp:
                got.append(item)

        task = asyncio.create_task(consume())
        await asyncio.sleep(0)
        assert ch.statistics().waiting_poppers == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await out.push(7)
        assert ch.statistics().waiting_poppers == 0 and len(ch) == 1
        out.close()
        assert [x async for x in inp] == [7] and got == []

    asyncio.run(main())


def test_pop_takes_items_in_order_and_raises_end_of_stream_at_the_end(core: str) -> None:
    async def main() -> None:
        _, out, inp = pair(2)

        async def produce() -> None:
            for item in [(1,), None, 3]:
                await out.push(item)
            out.close()

        task = asyncio.create_task(produce())
        assert [await inp.pop(), await inp.pop(), await inp.pop()] == [(1,), None, 3]
        await task
        with pytest.raises(EndOfStream):
            await inp.pop()
        with pytest.raises(EndOfStream):
            await inp.pop(timeout=1)

    asyncio.run(main())


def test_a_pop_takes_its_item_when_awaited_and_a_cancelled_one_takes_none(core: str) -> None:
    async def main() -> None:
        ch, out, inp = pair(4)
        await out.push(1)
        unawaited = inp.pop()
        assert len(ch) == 1  # made, not awaited: nothing taken yet
        unawaited.close()
        with pytest.raises(RuntimeError):
            await unawaited  # closed: it may not run any more, as a closed coroutine
        assert len(ch) == 1
        task = asyncio.ensure_future(inp.pop())
        task.cancel()  # before it ever ran
        with pytest.raises(asyncio.CancelledError):
            await task
        assert len(ch) == 1
        assert await asyncio.create_task(inp.pop()) == 1  # a pop may run as a task
        waiting = asyncio.create_task(inp.pop())
        await asyncio.sleep(0)
        assert ch.statistics().waiting_poppers == 1
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await out.push(2)
        assert len(ch) == 1 and ch.statistics().waiting_poppers == 0
        pop = inp.pop()
        assert await pop == 2
        with pytest.raises(RuntimeError):
            await pop  # a pop is awaited once, as a coroutine is
        with pytest.raises(TimeoutError):
            await inp.pop(timeout=0.01)
        with pytest.raises(ValueError, match="timeout"):
            await inp.pop(timeout=-1)

    asyncio.run(main())


def test_a_timed_out_next_takes_no_item_and_the_iterator_goes_on(core: str) -> None:
    async def main() -> None:
        ch, out, inp = pair(4)
        it = aiter(inp)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(it), 0.01)
        assert ch.statistics().waiting_poppers == 0
        await out.push(1)
        await out.push(2)
        out.close()
        assert [await anext(it), await anext(it)] == [1, 2]
        with pytest.raises(StopAsyncIteration):
            await anext(it)

    asyncio.run(main())


def test_a_waiting_next_that_is_dropped_or_closed_leaves_no_waiter(core: str) -> None:
    async def main() -> None:
        ch, out, inp = pair(4)
        it = aiter(inp)
        step = anext(it).__await__()
        assert isinstance(step.send(None), asyncio.Future)  # waits on the empty queue
        assert ch.statistics().waiting_poppers == 1
        step.close()
        assert ch.statistics().waiting_poppers == 0
        step = anext(it).__await__()
        step.send(None)
        del step
        gc.collect()
        assert ch.statistics().waiting_poppers == 0
        await out.push(5)
        assert await anext(it) == 5

    asyncio.run(main())


@pytest.mark.timeout(60)
def test_random_cancellation_delivers_every_item_exactly_once_in_order(core: str) -> None:
    rng = random.Random(13)

    async def main() -> None:
        _, out, inp = pair(3)
        n = 2000

        async def produce() -> None:
            for i in range(n):
                await out.push(i)
            out.close()

        got: list[int] = []

        async def consume() -> None:
            async for item in inp:
                got.append(item)
                if rng.random() < 0.05:
                    await asyncio.sleep(0)

        producer = asyncio.create_task(produce())
        while not producer.done() or len(inp):
            consumer = asyncio.create_task(consume())
            for _ in range(rng.randrange(1, 6)):
                await asyncio.sleep(0)
            consumer.cancel()
            try:
                await consumer
            except asyncio.CancelledError:
                pass
        assert got == list(range(n))

    asyncio.run(main())


def test_a_push_on_a_closed_output_and_a_channel_subclass_behave_alike(core: str) -> None:
    class Counting(Channel[Any]):
        pops = 0

        def _try_pop(self) -> Any:
            Counting.pops += 1
            return super()._try_pop()

    async def main() -> None:
        _, out, inp = pair(2, Counting)
        assert aiter(inp) is inp  # a subclass pops its own way: read through __anext__
        await out.push(1)
        out.close()
        with pytest.raises(PortClosed):
            await out.push(2)
        assert [x async for x in inp] == [1] and Counting.pops >= 1

    asyncio.run(main())


def test_a_workflow_gives_the_same_result_and_counts_on_both_cores(core: str) -> None:
    from mimo import Stream, Workflow

    async def source(ins: Any, outs: Any, state: Any) -> None:
        for i in range(1000):
            await outs.y.push(i)

    async def double(ins: Any, outs: Any, state: Any) -> None:
        async for x in ins.x:
            await outs.y.push(2 * x)

    async def total(ins: Any, outs: Any, state: Any) -> None:
        state["t"] = sum([x async for x in ins.x])

    wf = Workflow(capacity=7)
    sink = Stream(["x"], fn=total)
    wf.add_stream(Stream(outs=["y"], fn=source)).pipe(Stream(["x"], ["y"], fn=double)).pipe(sink)
    report = wf.run()
    assert sink.state["t"] == 2 * sum(range(1000))
    # The report's counts come from the ports' counters, which the compiled push keeps too.
    assert sum(sum(s.items_out.values()) for s in report.streams.values()) == 2000
    assert sum(sum(s.items_in.values()) for s in report.streams.values()) == 2000


def _python(code: str, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if k != "MIMO_NO_EXTENSIONS"}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**environ, **env}, cwd=ROOT, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_mimo_no_extensions_forces_pure_python_and_version_says_so() -> None:
    code = "import mimo, mimo.speedups as s; print(s.active, '|', s.reason)"
    assert _python(code, MIMO_NO_EXTENSIONS="1") == "False | pure Python: MIMO_NO_EXTENSIONS is set"
    version = _python("from mimo._cli import main; main(['--version'])", MIMO_NO_EXTENSIONS="1")
    assert version == f"mimo {mimo.__version__} (pure Python: MIMO_NO_EXTENSIONS is set)"


def test_without_the_variable_the_compiled_core_is_used_when_built() -> None:
    built = _python("import importlib.util as u; print(u.find_spec('mimo._speedups') is not None)") == "True"
    if not built and os.environ.get("CI"):
        pytest.fail("the compiled core is not built in CI (pip install -e . compiles it)")
    reason = "compiled core" if built else "pure Python: the compiled core is not built"
    state = _python("import mimo, mimo.speedups as s; print(s.active, '|', s.reason)", MIMO_NO_EXTENSIONS="0")
    assert state == f"{built} | {reason}"
    assert _python("from mimo._cli import main; main(['--version'])") == f"mimo {mimo.__version__} ({reason})"


@pytest.mark.timeout(120)
def test_the_build_hook_compiles_the_core_or_says_why_not(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sys.path.insert(0, str(ROOT))
    try:
        import hatch_build
    finally:
        sys.path.remove(str(ROOT))
    target = tmp_path / "_speedups.so"
    monkeypatch.setenv("MIMO_NO_EXTENSIONS", "1")
    assert hatch_build.build_speedups(ROOT, target) == "MIMO_NO_EXTENSIONS is set"
    monkeypatch.delenv("MIMO_NO_EXTENSIONS")
    monkeypatch.setenv("CC", "false")  # no working compiler: a reason, and nothing half-built left
    why = hatch_build.build_speedups(ROOT, target)
    assert why is not None and "false" in why
    assert list(tmp_path.iterdir()) == []
    if os.name != "nt" and shutil.which("cc"):
        monkeypatch.setenv("CC", "cc")
        assert hatch_build.build_speedups(ROOT, target) is None
        assert target.stat().st_size > 0 and list(tmp_path.iterdir()) == [target]
