"""mimo's benchmark suite: mimo against floors, an asyncio baseline and peers.

Run ``python benchmarks/run.py --help`` for the options, and see README.md for
how to read the table. Every figure is the median of several runs, each in a
fresh process; every ratio is taken between runs of the same round of the
same invocation, then the median of those ratios is reported.
"""

from __future__ import annotations

import sys
import time
from typing import Any

HERE = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."


# -- the child: one measurement in a fresh process -------------------------------------


def _child_startup() -> None:
    # asyncio is timed on its own: it is most of the import and not mimo's code.
    t0 = time.perf_counter()
    import asyncio  # noqa: F401 - the import is what is timed

    t1 = time.perf_counter()
    import mimo  # noqa: F401

    import_s = time.perf_counter() - t0
    asyncio_s = t1 - t0
    from mimo import Workflow

    wf = Workflow()
    t0 = time.perf_counter()
    wf.run()
    first_s = time.perf_counter() - t0
    laps = []
    for _ in range(50):
        t0 = time.perf_counter()
        Workflow().run()
        laps.append(time.perf_counter() - t0)
    import json
    import statistics

    print(
        json.dumps(
            {"import_s": import_s, "asyncio_s": asyncio_s, "empty_first_s": first_s, "empty_s": statistics.median(laps)}
        )
    )


def _rss_kib() -> int:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    import os

    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def _child(impl: str, workload: str, n: int) -> None:
    import gc
    import json
    import resource

    sys.path.insert(0, HERE)
    cls = _impl_class(impl)
    fn = getattr(cls, workload)
    # Libraries are imported before the clock starts: the timer covers the pipeline.
    import importlib

    for module in getattr(cls, "IMPORTS", ("asyncio",)):
        importlib.import_module(module)
    gc.collect()
    rss_before = _rss_kib()
    c0, t0 = time.process_time(), time.perf_counter()
    result = fn(n)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    from workloads import effective_n, expected

    want = expected(workload, n)
    out = {
        "n": effective_n(workload, n),
        "wall_s": wall,
        "cpu_s": cpu,
        "rss_before_kib": rss_before,
        "peak_rss_kib": peak,
        "ok": (tuple(result) == want) if isinstance(want, tuple) else result == want,
        "result": repr(result)[:80],
        "expected": repr(want)[:80],
    }
    print(json.dumps(out))


# -- implementations ---------------------------------------------------------------------

#: impl -> (module, one-line description); order is the table's order.
IMPLS: dict[str, tuple[str, str]] = {
    "B0": ("baselines", "floor: sync generator chain"),
    "B1": ("baselines", "floor: async generator chain"),
    "B2": ("baselines", "baseline: task per stage + asyncio.Queue(maxsize=100)"),
    "B2unb": ("baselines", "control: B2 with unbounded asyncio.Queue()"),
    "B3": ("baselines", "batched baseline: lists of 256 through asyncio.Queue(maxsize=4)"),
    "aiostream": ("peers", "aiostream stream.map chain (pull, no tasks)"),
    "streamz": ("peers", "streamz, synchronous emit"),
    "reactivex": ("peers", "reactivex, synchronous observables"),
    "pypeln-task": ("peers", "pypeln pl.task stages, maxsize=100"),
    "bytewax": ("peers", "bytewax run_main, input batch 1"),
    "bytewax-b256": ("peers", "bytewax run_main, input batch 256"),
    "mimo": ("mimo_impls", "mimo classic API: await push / async for"),
    "mimo-batch": ("mimo_impls", "mimo classic API: push_many / pop_many, batches of 256, capacity 1024"),
    "mimo-dsl": ("mimo_dsl_impls", "mimo DSL: @stream, | and >> (capacity 100)"),
}

#: Rough ns per item per hop (measured here), only to pick sizes that take about ``--budget`` s.
COST_NS: dict[str, float] = {
    "B0": 20, "B1": 80, "B2": 650, "B2unb": 800, "B3": 30, "aiostream": 1800, "streamz": 2500,
    "reactivex": 130, "pypeln-task": 25000, "bytewax": 2200, "bytewax-b256": 130,
    "mimo": 420, "mimo-batch": 40, "mimo-dsl": 420,
}  # fmt: skip
COST_OVERRIDE: dict[tuple[str, str], float] = {
    ("aiostream", "W2"): 7000, ("reactivex", "W2"): 1000, ("bytewax", "W2"): 5500,
    ("bytewax-b256", "W2"): 1500, ("B2", "W4m"): 1400, ("aiostream", "W4m"): 16000,
    ("reactivex", "W4m"): 500, ("bytewax", "W4m"): 4400, ("bytewax-b256", "W4m"): 350,
    ("mimo", "W4m"): 2000, ("mimo-dsl", "W4m"): 2000, ("mimo-batch", "W4m"): 250,
    ("B2unb", "W3"): 1200, ("pypeln-task", "W3"): 40000,
}  # fmt: skip


def _impl_class(impl: str) -> object:
    import importlib

    module, _ = IMPLS[impl]
    return importlib.import_module(module).IMPLS[impl]


def _missing(impl: str) -> str | None:
    """Why ``impl`` cannot run here, or None."""
    import importlib.metadata

    if IMPLS[impl][0] == "peers":
        sys.path.insert(0, HERE)
        from peers import DISTS

        try:
            importlib.metadata.version(DISTS[impl])
        except importlib.metadata.PackageNotFoundError:
            return f"{DISTS[impl]} is not installed (pip install -e . --group bench)"
    if impl == "mimo-dsl":
        sys.path.insert(0, HERE)
        from mimo_impls import dsl_missing

        return dsl_missing()
    return None


def _applies(impl: str, workload: str) -> bool:
    """Whether ``impl`` implements ``workload`` (checked in a throwaway import of its module)."""
    import ast

    module, _ = IMPLS[impl]
    tree = ast.parse(open(f"{HERE}/{module}.py").read())
    classes = {c.name: c for c in tree.body if isinstance(c, ast.ClassDef)}
    # IMPLS = {"name": ClassName, ...} at the end of each module.
    mapping: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            target = node.targets[0] if isinstance(node, ast.Assign) else node.target
            if isinstance(target, ast.Name) and target.id == "IMPLS" and isinstance(node.value, ast.Dict):
                for k, v in zip(node.value.keys, node.value.values):
                    if isinstance(k, ast.Constant) and isinstance(v, ast.Name):
                        mapping[k.value] = v.id
    name: str | None = mapping.get(impl)
    while name is not None:
        c = classes[name]
        only = None
        for stmt in c.body:
            if isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name):
                if stmt.targets[0].id == "ONLY":
                    only = ast.literal_eval(stmt.value)
                if stmt.targets[0].id == workload:
                    return only is None or workload in only
            if isinstance(stmt, ast.FunctionDef) and stmt.name == workload:
                return only is None or workload in only
        if only is not None:
            return workload in only
        bases = [b.id for b in c.bases if isinstance(b, ast.Name) and b.id in classes]
        name = bases[0] if bases else None
    return False


def _size(impl: str, workload: str, args: Any) -> int:
    from workloads import effective_n, hops

    size = args.size
    if workload in ("W3", "W3s"):
        n = args.w3_size
        if impl == "B2unb":
            # The control buffers everything (about 1.1 KiB per item): 1,000,000
            # items already show the growth without taking 5 GiB of a shared box.
            n = min(n, 1_000_000)
        if workload == "W3s":
            n //= 10
        # Slow implementations get fewer items, so that a run stays under ~--w3-cap s.
        cost = COST_OVERRIDE.get((impl, "W3"), COST_NS[impl] + 350)
        cap = int(args.w3_cap * 1e9 / (cost * 2))
        if cap < n:
            n = max(_round(cap), 1000) if workload == "W3" else max(_round(cap) // 10, 100)
        return n
    if size:
        return effective_n(workload, size)
    cost = COST_OVERRIDE.get((impl, workload), COST_NS[impl])
    n = args.budget * 1e9 / (cost * hops(workload))
    return effective_n(workload, max(_round(n), 2000))


def _round(n: float) -> int:
    """Round down to 1, 2 or 5 times a power of ten."""
    import math

    if n < 1:
        return 1
    p = 10 ** math.floor(math.log10(n))
    for m in (5, 2, 1):
        if n >= m * p:
            return m * p
    return p


# -- the parent: rounds of child runs, then the table -----------------------------------------


def _run_child(cmd: list[str], timeout: float) -> tuple[dict[str, Any] | None, str]:
    import json
    import subprocess

    try:
        p = subprocess.run([sys.executable, f"{HERE}/run.py", *cmd], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout:.0f} s"
    if p.returncode != 0:
        last = (p.stderr.strip().splitlines() or ["?"])[-1]
        return None, f"exit {p.returncode}: {last[:120]}"
    return json.loads(p.stdout.strip().splitlines()[-1]), ""


def _median(xs: list[float]) -> float:
    import statistics

    return statistics.median(xs)


def _fmt_int(x: float) -> str:
    return f"{x:,.0f}"


def _fmt_ratio(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.2f}" if x < 100 else f"{x:,.0f}"


def _machine() -> list[str]:
    import os
    import platform
    import subprocess

    model = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    try:
        rev = subprocess.run(
            ["git", "-C", HERE, "describe", "--always", "--dirty"], capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        rev = "?"
    return [
        f"- machine: {platform.machine()}, {model}, {os.cpu_count()} CPUs, {mem} RAM, {platform.platform()}",
        f"- Python: {platform.python_implementation()} {platform.python_version()} ({sys.executable})",
        f"- mimo: git {rev or '?'}",
    ]


def _versions() -> str:
    import importlib.metadata

    dists = sorted({(d.metadata["Name"] or "?").lower(): d.version for d in importlib.metadata.distributions()}.items())
    return ", ".join(f"{name} {v}" for name, v in dists)


def main(argv: list[str]) -> int:
    import argparse
    import os

    if argv[:1] == ["--child"]:
        if argv[1] == "startup":
            _child_startup()
        else:
            _child(argv[1], argv[2], int(argv[3]))
        return 0

    sys.path.insert(0, HERE)
    from workloads import GROUPS, WORKLOADS, hops

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-w", "--workload", default="W1,W2,W3,W4", help="comma list of W1,W2,W3,W4 (default all)")
    ap.add_argument("-i", "--impl", default="", help=f"comma list of implementations (default all): {','.join(IMPLS)}")
    ap.add_argument(
        "-n",
        "--size",
        type=int,
        default=0,
        help="W1/W2/W4: items per run for every implementation (default: each gets about --budget s of CPU)",
    )
    ap.add_argument(
        "--w3-size",
        type=int,
        default=5_000_000,
        help="W3: items of 1 KiB (default 5,000,000); a tenth as many are run too, for the flatness check",
    )
    ap.add_argument("-r", "--reps", type=int, default=5, help="runs per figure, each in a fresh process (default 5)")
    ap.add_argument("--w3-reps", type=int, default=3, help="runs per W3 figure (default 3)")
    ap.add_argument("--budget", type=float, default=0.5, help="target CPU seconds per run when --size is not given")
    ap.add_argument(
        "--w3-cap",
        type=float,
        default=15.0,
        help="W3: slow implementations get fewer items, so that a run takes about this many seconds (default 15)",
    )
    ap.add_argument("--timeout", type=float, default=180.0, help="seconds before a run is abandoned")
    ap.add_argument("-o", "--output", default=f"{HERE}/RESULTS.md", help="where to write the table ('-': nowhere)")
    ap.add_argument("--no-startup", action="store_true", help="skip the import / empty-workflow timing")
    args = ap.parse_args(argv)

    wanted = [w.strip().upper() for w in args.workload.split(",") if w.strip()]
    workloads = [w for g in wanted for w in GROUPS[g]]
    impls = [i.strip() for i in args.impl.split(",") if i.strip()] or list(IMPLS)
    for i in impls:
        if i not in IMPLS:
            ap.error(f"unknown implementation {i!r}; known: {', '.join(IMPLS)}")
    # Ratios need the yardsticks in the same rounds.
    for y in ("B2", "B0"):
        if y not in impls:
            impls.insert(0, y)
    impls = [i for i in IMPLS if i in impls]

    missing = {i: why for i in impls if (why := _missing(i))}
    plan = [(w, i) for w in workloads for i in impls if i not in missing and _applies(i, w)]
    sizes = {(w, i): _size(i, w, args) for w, i in plan}
    load0 = os.getloadavg()
    print(f"{len(plan)} (workload, implementation) pairs; load average {load0[0]:.2f}", file=sys.stderr)

    runs: dict[tuple[str, str], list[dict[str, Any]]] = {k: [] for k in plan}
    failed: dict[tuple[str, str], str] = {}
    max_reps = max(args.reps, args.w3_reps if any(w.startswith("W3") for w in workloads) else 0)
    t_start = time.time()
    for r in range(max_reps):
        for w, i in plan:
            reps = args.w3_reps if w.startswith("W3") else args.reps
            if r >= reps or (w, i) in failed:
                continue
            res, err = _run_child(["--child", i, w, str(sizes[(w, i)])], args.timeout)
            if res is None:
                failed[(w, i)] = err
                print(f"  round {r + 1}: {w} {i}: FAILED {err}", file=sys.stderr)
                continue
            res["round"] = r
            runs[(w, i)].append(res)
            ns = float(res["cpu_s"]) * 1e9 / int(res["n"]) / hops(w)
            flag = "" if res["ok"] else f"  WRONG RESULT {res['result']} != {res['expected']}"
            print(f"  round {r + 1}: {w:6} {i:13} n={res['n']:>9,} {ns:9,.0f} ns/item/hop{flag}", file=sys.stderr)

    startup: list[dict[str, Any]] = []
    if not args.no_startup:
        for _ in range(args.reps):
            res, err = _run_child(["--child", "startup"], 60)
            if res is not None:
                startup.append(res)
    load1 = os.getloadavg()

    # -- per-round figures and paired ratios ------------------------------------------------
    def ns_of(res: dict[str, Any], w: str) -> float:
        return float(res["cpu_s"]) * 1e9 / int(res["n"]) / hops(w)

    def by_round(w: str, i: str) -> dict[int, float]:
        return {int(x["round"]): ns_of(x, w) for x in runs.get((w, i), []) if x["ok"]}

    def paired(w: str, i: str, ref_w: str, ref_i: str) -> float | None:
        a, b = by_round(w, i), by_round(ref_w, ref_i)
        rs = [a[k] / b[k] for k in a if k in b]
        return _median(rs) if rs else None

    lines: list[str] = []
    head = ("workload", "implementation", "N", "runs", "ns/item/hop CPU median [min-max]", "items/s wall",
            "peak RSS MiB", "x B0", "x B2", "result")  # fmt: skip
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(["---", "---"] + ["---:"] * 7 + ["---"]) + "|")
    summary: dict[tuple[str, str], dict[str, float | None]] = {}
    for w in workloads:
        for i in impls:
            if i in missing:
                if w == workloads[0] or i == "mimo-dsl":
                    lines.append(f"| {w} | {i} | | | missing: {missing[i]} | | | | | |")
                continue
            if (w, i) not in runs:
                continue
            rs = runs[(w, i)]
            if (w, i) in failed and not rs:
                lines.append(f"| {w} | {i} | {sizes[(w, i)]:,} | 0 | failed: {failed[(w, i)]} | | | | | |")
                continue
            ns = [ns_of(x, w) for x in rs]
            ips = [int(x["n"]) / float(x["wall_s"]) for x in rs]
            peak = [int(x["peak_rss_kib"]) / 1024 for x in rs]
            ok = all(x["ok"] for x in rs)
            x0 = paired(w, i, w, "B0")
            x2 = paired(w, i, w, "B2")
            summary[(w, i)] = {"ns": _median(ns), "x0": x0, "x2": x2, "rss": _median(peak)}
            lines.append(
                f"| {w} | {i} | {int(rs[0]['n']):,} | {len(rs)} | {_fmt_int(_median(ns))} "
                f"[{_fmt_int(min(ns))}-{_fmt_int(max(ns))}] | {_fmt_int(_median(ips))} | {_median(peak):.0f} | "
                f"{_fmt_ratio(x0)} | {_fmt_ratio(x2)} | {'ok' if ok else 'WRONG'}"
                f"{' (' + failed[(w, i)] + ')' if (w, i) in failed else ''} |"
            )

    # -- the targets ------------------------------------------------------------
    checks: list[str] = []

    def check(label: str, value: float | None, limit: float, unit: str = "x") -> None:
        if value is None:
            checks.append(f"| {label} | not measured | {limit:g}{unit} | - |")
            return
        verdict = "met" if value <= limit else "NOT met"
        checks.append(f"| {label} | {value:.2f}{unit} | <= {limit:g}{unit} | {verdict} |")

    if "W1" in workloads:
        check("W1 mimo per-item / B2 (per hop, paired)", summary.get(("W1", "mimo"), {}).get("x2"), 0.4)
        check("W1 mimo-dsl per-item / B2", summary.get(("W1", "mimo-dsl"), {}).get("x2"), 0.4)
        check("W1 mimo-batch / B0 (per item per hop, paired)", summary.get(("W1", "mimo-batch"), {}).get("x0"), 2.5)
        if ("W1", "B3") in runs and ("W1", "mimo-batch") in runs:
            x = paired("W1", "mimo-batch", "W1", "B3")
            checks.append(
                f"| W1 mimo-batch / B3 (same batch and bound, paired) | "
                f"{'-' if x is None else f'{x:.2f}x'} | (reference) | - |"
            )
        task_peers = [p for p in ("pypeln-task",) if ("W1", p) in summary]
        m = summary.get(("W1", "mimo"), {}).get("ns")
        for p in task_peers:
            pn = summary[("W1", p)]["ns"]
            if m is not None and pn:
                check(f"W1 mimo / {p} (task-per-stage peer)", m / pn, 1.0)
    if "W3" in workloads:
        for i in impls:
            a, b = summary.get(("W3s", i), {}).get("rss"), summary.get(("W3", i), {}).get("rss")
            if a is not None and b is not None:
                na, nb = int(runs[("W3s", i)][0]["n"]), int(runs[("W3", i)][0]["n"])
                growth = b - a
                if i == "B2unb":
                    checks.append(
                        f"| W3 {i} peak RSS {na:,} -> {nb:,} items (control) | +{growth:.0f} MiB "
                        f"({a:.0f} -> {b:.0f}) | grows | {'grows' if growth > 20 else 'did not grow'} |"
                    )
                elif i.startswith("mimo"):
                    check(f"W3 {i} peak RSS growth {na:,} -> {nb:,} items ({a:.0f} -> {b:.0f} MiB)", growth, 20, " MiB")
    if "W4c50" in workloads:
        for i in impls:
            x = paired("W4c50", i, "W4c3", i) if ("W4c50", i) in runs else None
            if x is not None and i.startswith("mimo"):
                check(f"W4 {i}: 50-chain / 3-chain per hop (paired)", x, 1.5)
            elif x is not None:
                checks.append(f"| W4 {i}: 50-chain / 3-chain per hop (paired) | {x:.2f}x | (reference) | - |")
        for i in impls:
            if ("W4m", i) in summary and i.startswith("mimo"):
                ok = all(x["ok"] for x in runs[("W4m", i)])
                checks.append(
                    f"| W4 {i}: {WORKLOADS['W4m'][1]} | {'correct' if ok else 'WRONG'}, peak RSS "
                    f"{summary[('W4m', i)]['rss']:.0f} MiB | works, bounded | {'met' if ok else 'NOT met'} |"
                )
    if startup:
        check(
            "import mimo (fresh process, median), asyncio included",
            _median([float(s["import_s"]) for s in startup]) * 1e3,
            50,
            " ms",
        )
        a = _median([float(s["asyncio_s"]) for s in startup]) * 1e3
        checks.append(f"| of which import asyncio (stdlib) | {a:.2f} ms | (reference) | - |")
        check(
            "empty Workflow().run(), first in process",
            _median([float(s["empty_first_s"]) for s in startup]) * 1e3,
            1,
            " ms",
        )
        check("empty Workflow().run(), later ones", _median([float(s["empty_s"]) for s in startup]) * 1e3, 1, " ms")

    cmd = "python benchmarks/run.py " + " ".join(argv)
    out: list[str] = ["# mimo benchmark results", ""]
    out.append(
        f"Command: `{cmd.strip()}`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{time.time() - t_start:.0f} s; load average {load0[0]:.2f} before, {load1[0]:.2f} after."
    )
    out.append("")
    out += _machine()
    out.append("")
    out.append(
        "ns/item/hop is process CPU time / items / hops; items/s is wall time. x B0 and x B2 are the median "
        "of ratios taken within each round (runs of one round are minutes apart at most). "
        "See README.md for how to read it."
    )
    out.append("")
    out += lines
    out += ["", "## Targets (issue 4)", "", "| target | measured | limit | verdict |", "|---|---:|---:|---|"]
    out += checks
    out += ["", "## Workloads and implementations", ""]
    out += [f"- {w}: {WORKLOADS[w][1]}; {hops(w)} hop(s) per item" for w in workloads]
    out += [f"- {i}: {IMPLS[i][1]}" for i in impls]
    out += ["", "## Package versions", "", _versions(), ""]
    text = "\n".join(out)
    print(text)
    if args.output != "-":
        with open(args.output, "w") as f:
            f.write(text)
        print(f"\n(written to {args.output})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
