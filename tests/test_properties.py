"""Hypothesis properties over random graphs (§2.1, §2.2, termination).

Random DAGs (some inputs fed by several edges), capacities 0-5, item counts
and per-item delays: every item reaches every connected input exactly once and
in order per connection, the run terminates, and queues never exceed their
bound.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mimo import Stream, Workflow
from mimo.testing import run_workflow


@st.composite
def graphs(draw: Any) -> dict[str, Any]:
    n = draw(st.integers(2, 6))
    edges = []  # (src, dst, port index)
    ports = {i: 0 for i in range(n)}
    for dst in range(1, n):
        for src in range(dst):
            if draw(st.booleans()):
                # Join a new input port, or fan in to an existing one.
                if ports[dst] and draw(st.booleans()):
                    port = draw(st.integers(0, ports[dst] - 1))
                else:
                    port = ports[dst]
                    ports[dst] += 1
                edges.append((src, dst, port))
    return {
        "n": n,
        "edges": edges,
        "ports": ports,
        "capacity": draw(st.integers(0, 5)),
        "counts": [draw(st.integers(0, 30)) for _ in range(n)],
        "delays": [draw(st.sampled_from([0.0, 0.0, 0.0001, 0.001])) for _ in range(n)],
        "pauses": [draw(st.integers(1, 7)) for _ in range(n)],
    }


@given(graphs())
@pytest.mark.timeout(120)
def test_random_graphs_deliver_exactly_once_in_order_within_bounds(g: dict[str, Any]) -> None:
    n, capacity = g["n"], g["capacity"]
    received: dict[tuple[int, int], list[tuple[int, int]]] = {}
    emitted: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    all_inputs: list[Any] = []
    worst_total = 0
    n_inputs = sum(g["ports"].values())

    def check_bound() -> None:
        nonlocal worst_total
        total = sum(len(p) for p in all_inputs)
        worst_total = max(worst_total, total)

    def make(i: int) -> Stream:
        ins = [f"i{k}" for k in range(g["ports"][i])]

        async def fn(ins_: Any, outs: Any, state: Any) -> None:
            all_inputs.extend(ins_)
            seq = 0

            async def emit() -> None:
                nonlocal seq
                item = (i, seq)
                seq += 1
                await outs.out.push(item)
                # Readers of several inputs push concurrently: the order on
                # every connection is the order in which pushes completed.
                emitted[i].append(item)
                if g["delays"][i] and seq % g["pauses"][i] == 0:
                    await asyncio.sleep(g["delays"][i])
                check_bound()

            if not ins:
                for _ in range(g["counts"][i]):
                    await emit()
                return

            async def read(k: int) -> None:
                async for item in ins_[f"i{k}"]:
                    check_bound()
                    received.setdefault((i, k), []).append(item)
                    await emit()

            async with asyncio.TaskGroup() as tg:
                for k in range(len(ins)):
                    tg.create_task(read(k))

        return Stream(ins, ["out"], fn=fn, name=f"s{i}")

    wf = Workflow(capacity=capacity)
    steps = [wf.add_stream(make(i)) for i in range(n)]
    for src, dst, port in g["edges"]:
        steps[src].pipe(steps[dst], input=f"i{port}")
    report = run_workflow(wf, timeout=60)

    for src, dst, port in g["edges"]:
        from_src = [item for item in received.get((dst, port), []) if item[0] == src]
        assert from_src == emitted[src], (src, dst, port)
    for i in range(n):
        assert report[f"s{i}"].items_out == {"out": len(emitted[i])}
    # A producer is never more than `capacity` items ahead (capacity 0 hands
    # an item over to a consumer that is already waiting, so it may sit in the
    # queue for that moment).
    assert worst_total <= n_inputs * max(capacity, 1)
    for port in all_inputs:
        assert port.statistics().high_water <= capacity
