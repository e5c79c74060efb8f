"""mimo's benchmark suite: mimo against floors, an asyncio baseline and peers.

Run ``python benchmarks/run.py --help`` for the options, and see README.md for
how to read the table. Every figure is the median of several runs, each in a
fresh process; every ratio is taken between runs of the same round of the
same invocation and the same interpreter and build, then the median of those
ratios is reported.

With one interpreter and build (the default: the one running this script) the
output is the full table of every workload and implementation. With several
(``--python``, ``--pythons``, ``--builds``) it is one table of the key figures
with a column per Python version and build, the targets per column, and the
full table of each column after them.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


# -- the child: one measurement in a fresh process -------------------------------------

#: Run with ``python -c`` so that nothing but the interpreter's own start-up is
#: imported before the clock starts (run.py itself imports ``typing``, which mimo
#: needs too). CPU time, not wall time: the machines are shared.
STARTUP_CODE = """
import time
c0 = time.process_time()
import asyncio
c1 = time.process_time()
import mimo
c2 = time.process_time()
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
import json, statistics
print(json.dumps({"import_s": c2 - c0, "asyncio_s": c1 - c0, "empty_first_s": first_s,
                  "empty_s": statistics.median(laps)}))
"""

#: What an interpreter and build can run, printed as one JSON line. Importing
#: mimo here also writes its bytecode caches, so the timed imports find them.
PROBE_CODE = """
import importlib, importlib.metadata, importlib.util, json, os, platform, sys
out = {"version": "%d.%d" % sys.version_info[:2], "full": platform.python_version(),
       "impl": platform.python_implementation(), "executable": sys.executable, "dists": {}}
for d in importlib.metadata.distributions():
    out["dists"][(d.metadata["Name"] or "?").lower()] = d.version
try:
    import mimo
except Exception as e:
    out["mimo_error"] = "%s: %s" % (type(e).__name__, e)
else:
    out["mimo_file"] = mimo.__file__
    out["mimo_version"] = getattr(mimo, "__version__", "?")
    out["cached"] = os.path.exists(importlib.util.cache_from_source(mimo.__file__))
    out["dsl"] = importlib.util.find_spec("mimo.dsl") is not None
    out["build"], out["build_detail"] = BUILD_OF()
print(json.dumps(out))
"""

#: Which core is active, judged from ``mimo.speedups`` (the compiled core's
#: switch, see README.md). Kept tolerant: the module is being written.
BUILD_CODE = """
def BUILD_OF():
    import importlib
    try:
        importlib.import_module("mimo._ports")  # where the compiled core is switched on
    except ImportError:
        pass
    try:
        sp = importlib.import_module("mimo.speedups")
    except ImportError as e:
        return "pure", "no mimo.speedups (%s)" % e
    for name in ("BUILD", "build", "CORE", "core", "KIND", "kind", "ACTIVE", "active", "COMPILED",
                 "compiled", "enabled", "ENABLED", "is_active", "is_compiled", "using_extensions",
                 "USING_EXTENSIONS", "available"):
        v = getattr(sp, name, None)
        if v is None:
            continue
        if callable(v):
            v = v()
        if isinstance(v, str):
            low = v.lower()
            build = "pure" if low in ("", "pure", "python", "pure-python", "pure python", "none") else "compiled"
        else:
            build = "compiled" if v else "pure"
        why = getattr(sp, "reason", None)
        return build, "mimo.speedups.%s = %r%s" % (name, v, ": %s" % why if isinstance(why, str) else "")
    return "unknown", "mimo.speedups has none of the expected names: %s" % sorted(
        n for n in dir(sp) if not n.startswith("_"))
"""


def _rss_kib() -> int:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
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
    "B0": ("baselines", "sync floor: a chain of plain def generators, one resume per hop"),
    "B1": ("baselines", "floor: the same chain of async def generators in one task"),
    "B2": ("baselines", "baseline: task per stage + asyncio.Queue(maxsize=100)"),
    "B2unb": ("baselines", "control: B2 with unbounded asyncio.Queue()"),
    "B3": ("baselines", "batched baseline: lists of 256 through asyncio.Queue(maxsize=4)"),
    "aiostream": ("peers", "aiostream stream.map chain (pull, no tasks), fed by an async generator"),
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
    "B0": 30, "B1": 80, "B2": 650, "B2unb": 800, "B3": 30, "aiostream": 650, "streamz": 2500,
    "reactivex": 130, "pypeln-task": 25000, "bytewax": 2200, "bytewax-b256": 130,
    "mimo": 420, "mimo-batch": 40, "mimo-dsl": 420,
}  # fmt: skip
COST_OVERRIDE: dict[tuple[str, str], float] = {
    ("aiostream", "W2"): 5000, ("reactivex", "W2"): 1000, ("bytewax", "W2"): 5500,
    ("bytewax-b256", "W2"): 1500, ("B2", "W4m"): 1400, ("aiostream", "W4m"): 13000,
    ("reactivex", "W4m"): 500, ("bytewax", "W4m"): 4400, ("bytewax-b256", "W4m"): 350,
    ("mimo", "W4m"): 2000, ("mimo-dsl", "W4m"): 2000, ("mimo-batch", "W4m"): 250,
    ("B2unb", "W3"): 1200, ("pypeln-task", "W3"): 40000,
}  # fmt: skip

#: What the per-version mode measures unless -w / -i say otherwise: the targets' figures.
KEY_WORKLOADS = "W1,W3,W4"
KEY_IMPLS = "mimo,mimo-batch,mimo-dsl"

#: Issue 13's limit for W1 per-item mimo / B2, by build.
PER_ITEM_LIMIT = {"pure": 0.40, "compiled": 0.20}


def _impl_class(impl: str) -> object:
    import importlib

    module, _ = IMPLS[impl]
    return importlib.import_module(module).IMPLS[impl]


def _applies(impl: str, workload: str) -> bool:
    """Whether ``impl`` implements ``workload`` (read from its module's source, not imported)."""
    import ast

    module, _ = IMPLS[impl]
    with open(f"{HERE}/{module}.py") as f:
        tree = ast.parse(f.read())
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


# -- interpreters and builds ----------------------------------------------------------------


class Config:
    """One column: an interpreter, a build of mimo, and the environment that selects it."""

    def __init__(self, python: str, requested: str, env: dict[str, str]) -> None:
        self.python = python
        self.requested = requested  # "compiled", "pure", or "" (as the environment has it)
        self.env = env
        self.probe: dict[str, Any] = {}
        self.skip = ""  # why this column is not measured
        self.suffix = ""  # tells apart two columns of the same version and build

    @property
    def version(self) -> str:
        return str(self.probe.get("version", "?"))

    @property
    def build(self) -> str:
        return str(self.probe.get("build", "pure"))

    @property
    def label(self) -> str:
        return f"{self.version} {self.requested or self.build}{self.suffix}"


def _python_version(python: str) -> str | None:
    import subprocess

    try:
        p = subprocess.run(
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return p.stdout.strip() if p.returncode == 0 else None


def _resolve_path(path: str) -> str:
    """An interpreter path as given, else relative to the repository root; not resolved further,
    since a venv's python is a symlink whose target is not the venv."""
    import shutil

    for cand in (path, os.path.join(ROOT, path)):
        if os.path.isfile(cand) and os.access(cand, os.X_OK):
            return os.path.abspath(cand)
    found = shutil.which(path)
    if found:
        return found
    raise SystemExit(f"run.py: no interpreter at {path!r}")


def _discover(version: str) -> str | None:
    """An interpreter for ``version``: this one, ``python3.X`` on PATH, or a pyenv version."""
    import glob
    import shutil
    import subprocess

    if "{}.{}".format(*sys.version_info[:2]) == version:
        return sys.executable
    found = shutil.which(f"python{version}")
    if found and _python_version(found) == version:
        return found
    root = os.environ.get("PYENV_ROOT", "")
    if not root:
        try:
            root = subprocess.run(["pyenv", "root"], capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            root = os.path.expanduser("~/.pyenv")

    def key(path: str) -> tuple[int, ...]:
        tail = path.split("/versions/")[1].split("/")[0]
        return tuple(int(p) if p.isdigit() else -1 for p in tail.split("."))

    cands = sorted(
        glob.glob(f"{root}/versions/{version}/bin/python") + glob.glob(f"{root}/versions/{version}.*/bin/python"),
        key=key,
    )
    for cand in reversed(cands):
        if _python_version(cand) == version:
            return cand
    return None


def _configs(args: Any, ap: Any) -> list[Config]:
    pythons: list[str] = []
    given: dict[str, str] = {}
    for spec in args.python:
        want, _, path = spec.rpartition("=")
        python = _resolve_path(path)
        got = _python_version(python)
        if got is None:
            ap.error(f"--python {spec}: {python} does not run")
        if want and want != got:
            ap.error(f"--python {spec}: {python} is Python {got}, not {want}")
        given[str(got)] = python
        pythons.append(python)
    for version in [v.strip() for v in args.pythons.split(",") if v.strip()]:
        if version in given:
            continue
        python = _discover(version)
        if python is None:
            ap.error(f"--pythons: no Python {version} found (give it with --python {version}=PATH)")
        given[version] = python
        pythons.append(python)
    if not pythons:
        pythons = [sys.executable]
    builds = [b.strip() for b in args.builds.split(",") if b.strip()] or [""]
    for b in builds:
        if b not in ("compiled", "pure", ""):
            ap.error(f"--builds: unknown build {b!r} (compiled, pure)")
    configs = []
    for python in pythons:
        for b in builds:
            env = dict(os.environ)
            # The timed import must find bytecode caches (warmed by the probe).
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            if b:
                env.pop("MIMO_NO_EXTENSIONS", None)
            if b == "pure":
                env["MIMO_NO_EXTENSIONS"] = "1"
            configs.append(Config(python, b, env))
    return configs


def _probe(cfg: Config) -> None:
    """Fill ``cfg.probe``; if the interpreter cannot import mimo, try it from this checkout."""
    import json
    import subprocess

    code = BUILD_CODE + PROBE_CODE
    for attempt in range(2):
        p = subprocess.run([cfg.python, "-c", code], capture_output=True, text=True, env=cfg.env, timeout=120, cwd=HERE)
        if p.returncode != 0:
            cfg.skip = f"probe failed: {(p.stderr.strip().splitlines() or ['?'])[-1][:160]}"
            return
        cfg.probe = json.loads(p.stdout.strip().splitlines()[-1])
        if "mimo_error" not in cfg.probe or attempt:
            break
        # Not installed in that interpreter (a bare pyenv version): use the checkout.
        cfg.env["PYTHONPATH"] = os.pathsep.join(x for x in (ROOT, cfg.env.get("PYTHONPATH", "")) if x)
    if "mimo_error" in cfg.probe:
        cfg.skip = f"mimo does not import: {cfg.probe['mimo_error'][:160]}"
    elif cfg.requested == "compiled" and cfg.build != "compiled":
        cfg.skip = f"the compiled core is not active ({cfg.probe.get('build_detail', '?')})"
    elif cfg.requested == "pure" and cfg.build == "compiled":
        cfg.skip = f"MIMO_NO_EXTENSIONS=1 did not select the pure-Python core ({cfg.probe.get('build_detail')})"


def _missing(cfg: Config, impl: str) -> str | None:
    """Why ``impl`` cannot run under ``cfg``, or None."""
    if IMPLS[impl][0] == "peers":
        sys.path.insert(0, HERE)
        from peers import DISTS

        if DISTS[impl] not in cfg.probe.get("dists", {}):
            return f"{DISTS[impl]} is not installed (pip install -e . --group bench)"
    if impl == "mimo-dsl" and not cfg.probe.get("dsl", True):
        return "mimo.dsl does not exist"
    return None


# -- the parent: rounds of child runs, then the tables -----------------------------------------


def _run_child(cfg: Config, cmd: list[str], timeout: float) -> tuple[dict[str, Any] | None, str]:
    import json
    import subprocess

    try:
        p = subprocess.run([cfg.python, *cmd], capture_output=True, text=True, timeout=timeout, env=cfg.env, cwd=HERE)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout:.0f} s"
    if p.returncode != 0:
        last = (p.stderr.strip().splitlines() or ["?"])[-1]
        return None, f"exit {p.returncode}: {last[:120]}"
    try:
        return json.loads(p.stdout.strip().splitlines()[-1]), ""
    except (ValueError, IndexError):
        return None, f"no JSON result: {p.stdout.strip()[-120:]!r}"


#: The fused-chain benchmark, written separately; run.py runs it per column if it exists.
FUSED = os.path.join(HERE, "bench_fused.py")


def _run_fused(cfg: Config, args: Any) -> tuple[float | None, str]:
    """Fused chain / generator chain from ``bench_fused.py --json`` (its last line, key ``ratio``)."""
    import json
    import re
    import subprocess

    cmd = [cfg.python, FUSED]
    try:
        helptext = subprocess.run(
            [*cmd, "--help"], capture_output=True, text=True, timeout=60, env=cfg.env, cwd=HERE
        ).stdout
    except subprocess.TimeoutExpired:
        helptext = ""
    if "--json" in helptext:
        cmd.append("--json")
    if "--budget" in helptext:
        cmd += ["--budget", str(args.budget)]
    for flag in ("--reps", "--rounds"):
        if flag in helptext:
            cmd += [flag, str(args.reps)]
            break
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout * 4, env=cfg.env, cwd=HERE)
    except subprocess.TimeoutExpired:
        return None, "timed out"
    if p.returncode != 0:
        return None, f"exit {p.returncode}: {(p.stderr.strip().splitlines() or ['?'])[-1][:120]}"
    lines = p.stdout.strip().splitlines()
    try:
        data = json.loads(lines[-1])
    except (ValueError, IndexError):
        data = None
    if isinstance(data, dict):
        keys = ["ratio", *sorted(k for k in data if "ratio" in k or k.startswith("x_"))]
        for k in keys:
            if isinstance(data.get(k), int | float):
                return float(data[k]), ""
    # No JSON: the last "<number>x" on a line that names the fused chain.
    for line in reversed(lines):
        m = re.findall(r"(\d+(?:\.\d+)?)\s*x\b", line)
        if m and "fus" in line.lower():
            return float(m[-1]), ""
    return None, "no ratio in its output (expected a JSON last line with 'ratio')"


def _median(xs: list[float]) -> float:
    import statistics

    return statistics.median(xs)


def _fmt_int(x: float) -> str:
    return f"{x:,.0f}"


def _fmt_ratio(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.2f}" if x < 100 else f"{x:,.0f}"


class Results:
    """Everything measured under one Config, and the figures taken from it."""

    def __init__(self, cfg: Config, workloads: list[str], impls: list[str]) -> None:
        self.cfg = cfg
        self.workloads = workloads
        self.impls = impls
        self.missing: dict[str, str] = {}
        self.plan: list[tuple[str, str]] = []
        self.sizes: dict[tuple[str, str], int] = {}
        self.runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.failed: dict[tuple[str, str], str] = {}
        self.startup: list[dict[str, Any]] = []
        self.startup_failed = ""
        self.fused: float | None = None
        self.fused_note = ""
        self.summary: dict[tuple[str, str], dict[str, float | None]] = {}

    def ns_of(self, res: dict[str, Any], w: str) -> float:
        from workloads import hops

        return float(res["cpu_s"]) * 1e9 / int(res["n"]) / hops(w)

    def by_round(self, w: str, i: str) -> dict[int, float]:
        return {int(x["round"]): self.ns_of(x, w) for x in self.runs.get((w, i), []) if x["ok"]}

    def paired(self, w: str, i: str, ref_w: str, ref_i: str) -> float | None:
        a, b = self.by_round(w, i), self.by_round(ref_w, ref_i)
        rs = [a[k] / b[k] for k in a if k in b]
        return _median(rs) if rs else None

    def get(self, w: str, i: str, key: str) -> float | None:
        return self.summary.get((w, i), {}).get(key)

    def table(self) -> list[str]:
        lines: list[str] = []
        head = ("workload", "implementation", "N", "runs", "ns/item/hop CPU median [min-max]", "items/s wall",
                "peak RSS MiB", "x B0", "x B2", "result")  # fmt: skip
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "|".join(["---", "---"] + ["---:"] * 7 + ["---"]) + "|")
        for w in self.workloads:
            for i in self.impls:
                if i in self.missing:
                    if w == self.workloads[0] or i == "mimo-dsl":
                        lines.append(f"| {w} | {i} | | | missing: {self.missing[i]} | | | | | |")
                    continue
                if (w, i) not in self.runs:
                    continue
                rs = self.runs[(w, i)]
                if (w, i) in self.failed and not rs:
                    lines.append(
                        f"| {w} | {i} | {self.sizes[(w, i)]:,} | 0 | failed: {self.failed[(w, i)]} | | | | | |"
                    )
                    continue
                ns = [self.ns_of(x, w) for x in rs]
                ips = [int(x["n"]) / float(x["wall_s"]) for x in rs]
                peak = [int(x["peak_rss_kib"]) / 1024 for x in rs]
                ok = all(x["ok"] for x in rs)
                x0 = self.paired(w, i, w, "B0")
                x2 = self.paired(w, i, w, "B2")
                self.summary[(w, i)] = {"ns": _median(ns), "x0": x0, "x2": x2, "rss": _median(peak)}
                lines.append(
                    f"| {w} | {i} | {int(rs[0]['n']):,} | {len(rs)} | {_fmt_int(_median(ns))} "
                    f"[{_fmt_int(min(ns))}-{_fmt_int(max(ns))}] | {_fmt_int(_median(ips))} | {_median(peak):.0f} | "
                    f"{_fmt_ratio(x0)} | {_fmt_ratio(x2)} | {'ok' if ok else 'WRONG'}"
                    f"{' (' + self.failed[(w, i)] + ')' if (w, i) in self.failed else ''} |"
                )
        return lines

    def checks(self) -> list[dict[str, Any]]:
        """Issue 13's targets, and reference figures, as rows: key figures first (call table() before)."""
        from workloads import WORKLOADS

        rows: list[dict[str, Any]] = []
        build = self.cfg.build if self.cfg.build in PER_ITEM_LIMIT else (self.cfg.requested or "pure")

        def add(w: str, i: str, what: str, value: float | None, unit: str, limit: float | None = None,
                text: str | None = None, ok: bool | None = None, key: bool = True) -> None:  # fmt: skip
            if value is None and text is None:
                shown = "not measured"
            elif text is not None:
                shown = text
            else:
                shown = f"{value:.2f}{unit}" if unit != " ns" else f"{value:,.0f} ns"
            verdict = "-"
            if limit is not None and value is not None and ok is None:
                ok = value <= limit
            if limit is not None or ok is not None:
                verdict = "not measured" if ok is None else ("met" if ok else "NOT met")
            lim = f"<= {limit:g}{unit}" if limit is not None else ""
            rows.append({"w": w, "i": i, "what": what, "value": shown, "limit": lim, "verdict": verdict,
                         "ok": ok, "key": key})  # fmt: skip

        W = self.workloads
        if "W1" in W:
            lim = PER_ITEM_LIMIT[build]
            per_item = f"per item per hop x B2 (paired; {build})"
            add("W1", "mimo", per_item, self.get("W1", "mimo", "x2"), "x", lim)
            add("W1", "mimo-dsl", per_item, self.get("W1", "mimo-dsl", "x2"), "x", lim)
            add("W1", "mimo-batch", "per item per hop x B0 (paired)", self.get("W1", "mimo-batch", "x0"), "x", 2.5)
            for i in ("B0", "B2", "mimo"):
                add("W1", i, "CPU ns/item/hop (reference)", self.get("W1", i, "ns"), " ns")
            if ("W1", "B3") in self.runs and ("W1", "mimo-batch") in self.runs:
                add("W1", "mimo-batch", "x B3, same batch and bound (reference)",
                    self.paired("W1", "mimo-batch", "W1", "B3"), "x", key=False)  # fmt: skip
            m = self.get("W1", "mimo", "ns")
            pn = self.get("W1", "pypeln-task", "ns")
            if m is not None and pn:
                add("W1", "mimo", "x pypeln-task (task-per-stage peer)", m / pn, "x", 1.0, key=False)
        if os.path.exists(FUSED):
            failed = f"failed: {self.fused_note}" if self.fused is None and self.fused_note else None
            add("fused", "mimo", "fused chain (range, map, filter, map, collect) x generator chain (bench_fused.py)",
                self.fused, "x", 2.0, text=failed)  # fmt: skip
        if "W3" in W:
            for i in self.impls:
                a, b = self.get("W3s", i, "rss"), self.get("W3", i, "rss")
                if a is None or b is None:
                    continue
                na, nb = int(self.runs[("W3s", i)][0]["n"]), int(self.runs[("W3", i)][0]["n"])
                growth = b - a
                if i == "B2unb":
                    add("W3", i, f"peak RSS {na:,} -> {nb:,} items (control)", growth, " MiB",
                        text=f"+{growth:.0f} MiB ({a:.0f} -> {b:.0f}), {'grows' if growth > 20 else 'did not grow'}",
                        key=False)  # fmt: skip
                elif i.startswith("mimo"):
                    add("W3", i, f"peak RSS growth {na:,} -> {nb:,} items", growth, " MiB", 20,
                        text=f"{round(growth):+d} MiB ({a:.0f} -> {b:.0f})")  # fmt: skip
        if "W4c50" in W:
            for i in self.impls:
                x = self.paired("W4c50", i, "W4c3", i) if ("W4c50", i) in self.runs else None
                if i.startswith("mimo") and ("W4c50", i) in self.runs:
                    add("W4", i, "50-chain / 3-chain per hop (paired)", x, "x", 1.5)
                elif x is not None:
                    add("W4", i, "50-chain / 3-chain per hop (reference)", x, "x", key=False)
        if "W4m" in W:
            for i in self.impls:
                if ("W4m", i) in self.runs and i.startswith("mimo") and self.runs[("W4m", i)]:
                    ok = all(x["ok"] for x in self.runs[("W4m", i)])
                    x2 = self.get("W4m", i, "x2")
                    rss = self.get("W4m", i, "rss") or 0.0
                    add("W4m", i, f"{WORKLOADS['W4m'][1]}: works, bounded (x B2 paired, peak RSS)", x2, "x",
                        text=f"{'correct' if ok else 'WRONG'}, {_fmt_ratio(x2)}x B2, {rss:.0f} MiB", ok=ok)  # fmt: skip
        if self.startup:
            med = {k: _median([float(s[k]) for s in self.startup]) * 1e3 for k in self.startup[0]}
            add("start-up", "mimo", "import mimo, CPU ms (warm bytecode caches, asyncio included)",
                med["import_s"], " ms", 50)  # fmt: skip
            add("start-up", "asyncio", "import asyncio alone, CPU ms (reference)", med["asyncio_s"], " ms")
            mine = _median([float(s["import_s"]) - float(s["asyncio_s"]) for s in self.startup]) * 1e3
            add("start-up", "mimo", "import mimo without asyncio's share, CPU ms (reference)", mine, " ms")
            add("start-up", "mimo", "empty Workflow().run(), first in process, wall ms", med["empty_first_s"], " ms", 1)
            add("start-up", "mimo", "empty Workflow().run(), later ones, wall ms", med["empty_s"], " ms", 1)
        elif self.startup_failed:
            add("start-up", "mimo", "import mimo / empty run", None, "", text=f"failed: {self.startup_failed}")
        return rows


def _machine() -> list[str]:
    import platform
    import subprocess

    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            for line in f:
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
        f"- mimo: git {rev or '?'}",
    ]


def _python_line(cfg: Config) -> str:
    p = cfg.probe
    where = p.get("mimo_file", "?")
    if where.startswith(ROOT + "/"):
        where = where[len(ROOT) + 1 :]
    env = " with MIMO_NO_EXTENSIONS=1" if cfg.env.get("MIMO_NO_EXTENSIONS") else ""
    cache = "" if p.get("cached", True) else "; no bytecode cache was written for mimo (import time includes compiling)"
    return (
        f"- {cfg.label}: {p.get('impl', '?')} {p.get('full', '?')} ({cfg.python}){env}; mimo from {where}; "
        f"build {cfg.build} ({p.get('build_detail', '?')}){cache}"
        + (f"; **not measured: {cfg.skip}**" if cfg.skip else "")
    )


def _versions(cfg: Config) -> str:
    return ", ".join(f"{name} {v}" for name, v in sorted(cfg.probe.get("dists", {}).items()))


def _kept_sections(path: str) -> list[str]:
    """Sections of the old file that another script writes ("Not written by `run.py`"): kept."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return []
    kept: list[str] = []
    parts = text.split("\n## ")
    for part in parts[1:]:
        if "Not written by `run.py`" in part:
            kept += ["## " + part.rstrip("\n"), ""]
    return kept


def _command(argv: list[str]) -> str:
    import shlex

    def rel(path: str) -> str:
        cwd = os.getcwd()
        return os.path.relpath(path, cwd) if path.startswith(cwd + os.sep) else path

    exe = sys.executable
    if exe.startswith(os.getcwd() + os.sep):
        exe = rel(exe)
    elif os.path.dirname(exe) in os.environ.get("PATH", "").split(os.pathsep):
        exe = os.path.basename(exe)
    return shlex.join([exe, rel(os.path.abspath(sys.argv[0])) if sys.argv[0] else "benchmarks/run.py", *argv])


def main(argv: list[str]) -> int:
    import argparse

    if argv[:1] == ["--child"]:
        _child(argv[1], argv[2], int(argv[3]))
        return 0

    sys.path.insert(0, HERE)
    from workloads import GROUPS, WORKLOADS, hops

    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument(
        "-w", "--workload", default=None, help=f"comma list of W1,W2,W3,W4 (default all; per version: {KEY_WORKLOADS})"
    )
    ap.add_argument(
        "-i",
        "--impl",
        default=None,
        help=f"comma list of implementations (default all; per version: {KEY_IMPLS}): {','.join(IMPLS)}",
    )
    ap.add_argument(
        "--python",
        action="append",
        default=[],
        metavar="[VERSION=]PATH",
        help="an interpreter to measure (repeat for several), e.g. 3.12=.venv3.12/bin/python; "
        "VERSION, if given, is checked (default: the interpreter running run.py)",
    )
    ap.add_argument(
        "--pythons",
        default="",
        metavar="3.11,3.12,...",
        help="versions to measure; each is found as --python gave it, else this interpreter, python3.X on "
        "PATH, or a pyenv version",
    )
    ap.add_argument(
        "--builds",
        default="",
        metavar="compiled,pure",
        help="builds to measure per interpreter: pure runs with MIMO_NO_EXTENSIONS=1, compiled without "
        "(a column whose compiled core is not active is not measured)",
    )
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
    ap.add_argument("-o", "--output", default=f"{HERE}/RESULTS.md", help="where to write the results ('-': nowhere)")
    ap.add_argument("--no-startup", action="store_true", help="skip the import / empty-workflow timing")
    ap.add_argument("--no-fused", action="store_true", help="skip bench_fused.py even if it exists")
    args = ap.parse_args(argv)

    configs = _configs(args, ap)
    multi = len(configs) > 1
    labels: dict[str, int] = {}
    for cfg in configs:
        _probe(cfg)
        labels[cfg.label] = labels.get(cfg.label, 0) + 1
        if labels[cfg.label] > 1:
            cfg.suffix = f" #{labels[cfg.label]}"
    active = [c for c in configs if not c.skip]

    workload_arg = args.workload or (KEY_WORKLOADS if multi else "W1,W2,W3,W4")
    wanted = [w.strip().upper() for w in workload_arg.split(",") if w.strip()]
    for w in wanted:
        if w not in GROUPS:
            ap.error(f"unknown workload {w!r}; known: {', '.join(GROUPS)}")
    workloads = [w for g in wanted for w in GROUPS[g]]
    impls = [i.strip() for i in (args.impl or (KEY_IMPLS if multi else "")).split(",") if i.strip()] or list(IMPLS)
    for i in impls:
        if i not in IMPLS:
            ap.error(f"unknown implementation {i!r}; known: {', '.join(IMPLS)}")
    # Ratios need the yardsticks in the same rounds.
    for y in ("B2", "B0"):
        if y not in impls:
            impls.insert(0, y)
    impls = [i for i in IMPLS if i in impls]

    results = {id(c): Results(c, workloads, impls) for c in configs}
    for cfg in active:
        res = results[id(cfg)]
        res.missing = {i: why for i in impls if (why := _missing(cfg, i))}
        res.plan = [(w, i) for w in workloads for i in impls if i not in res.missing and _applies(i, w)]
        res.sizes = {(w, i): _size(i, w, args) for w, i in res.plan}
        res.runs = {k: [] for k in res.plan}
    load0 = os.getloadavg()
    for cfg in configs:
        print(f"{cfg.label}: {cfg.python} {cfg.skip or ''}", file=sys.stderr)
    n_pairs = sum(len(results[id(c)].plan) for c in active)
    print(f"{n_pairs} (workload, implementation) pairs; load average {load0[0]:.2f}", file=sys.stderr)

    max_reps = max(args.reps, args.w3_reps if any(w.startswith("W3") for w in workloads) else 0)
    t_start = time.time()
    # A round runs every figure of every column once, so paired figures are minutes apart at most.
    for r in range(max_reps):
        for cfg in active:
            res = results[id(cfg)]
            tag = f"{cfg.label:13} " if multi else ""
            for w, i in res.plan:
                reps = args.w3_reps if w.startswith("W3") else args.reps
                if r >= reps or (w, i) in res.failed:
                    continue
                cmd = [f"{HERE}/run.py", "--child", i, w, str(res.sizes[(w, i)])]
                out, err = _run_child(cfg, cmd, args.timeout)
                if out is None:
                    res.failed[(w, i)] = err
                    print(f"  round {r + 1}: {tag}{w} {i}: FAILED {err}", file=sys.stderr)
                    continue
                out["round"] = r
                res.runs[(w, i)].append(out)
                ns = float(out["cpu_s"]) * 1e9 / int(out["n"]) / hops(w)
                flag = "" if out["ok"] else f"  WRONG RESULT {out['result']} != {out['expected']}"
                print(
                    f"  round {r + 1}: {tag}{w:6} {i:13} n={out['n']:>9,} {ns:9,.0f} ns/item/hop{flag}",
                    file=sys.stderr,
                )

    if not args.no_startup:
        for _ in range(args.reps):
            for cfg in active:
                res = results[id(cfg)]
                out, err = _run_child(cfg, ["-c", STARTUP_CODE], 60)
                if out is not None:
                    res.startup.append(out)
                else:
                    res.startup_failed = err
    if os.path.exists(FUSED) and not args.no_fused:
        for cfg in active:
            res = results[id(cfg)]
            print(f"  {cfg.label}: bench_fused.py", file=sys.stderr)
            res.fused, res.fused_note = _run_fused(cfg, args)
    load1 = os.getloadavg()

    for cfg in active:
        results[id(cfg)].table()  # fills the summaries the checks read

    # -- the document ----------------------------------------------------------------------
    cmd = _command(argv)
    out: list[str] = ["# mimo benchmark results", ""]
    cwd = os.getcwd()
    where = "the repository root" if cwd == ROOT else f"`{os.path.relpath(cwd, ROOT) if cwd.startswith(ROOT) else cwd}`"
    out += [f"Regenerate this file with (from {where}):", "", "```", cmd, "```", ""]
    out.append(
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {time.time() - t_start:.0f} s; "
        f"load average {load0[0]:.2f} before, {load1[0]:.2f} after."
    )
    out.append("")
    out += _machine()
    out += [_python_line(c) for c in configs]
    out.append("")
    out.append(
        "ns/item/hop is process CPU time / items / hops; items/s is wall time. x B0 and x B2 are the median "
        "of ratios taken within each round (runs of one round are minutes apart at most), always against "
        "B0 and B2 run by the same interpreter and build. See README.md for how to read it."
    )
    out.append("")

    if multi:
        out += _per_version(configs, results)
    else:
        res = results[id(configs[0])]
        if configs[0].skip:
            out += [f"Not measured: {configs[0].skip}", ""]
        else:
            out += res.table()
            out += ["", "## Targets (issue 13)", "", "| target | measured | limit | verdict |", "|---|---:|---:|---|"]
            for row in res.checks():
                label = f"{row['w']} {row['i']}: {row['what']}"
                out.append(f"| {label} | {row['value']} | {row['limit'] or '(reference)'} | {row['verdict']} |")
            out.append("")

    if args.output not in ("-", "") and os.path.abspath(args.output) == os.path.abspath(f"{HERE}/RESULTS.md"):
        out += _kept_sections(args.output)
    out += ["## Workloads and implementations", ""]
    out += [f"- {w}: {WORKLOADS[w][1]}; {hops(w)} hop(s) per item" for w in workloads]
    out += [f"- {i}: {IMPLS[i][1]}" for i in impls]
    out += ["", "## Package versions", ""]
    seen: set[str] = set()
    for cfg in configs:
        if cfg.python in seen or not cfg.probe:
            continue
        seen.add(cfg.python)
        out += [f"Python {cfg.probe.get('full', '?')} ({cfg.python}): {_versions(cfg)}", ""]
    text = "\n".join(out)
    print(text)
    if args.output not in ("-", ""):
        with open(args.output, "w") as f:
            f.write(text)
        print(f"\n(written to {args.output})", file=sys.stderr)
    return 0


def _per_version(configs: list[Config], results: dict[int, Results]) -> list[str]:
    """The per-version table, the targets per column, a closing note, then each column's full table."""
    cols = [c.label for c in configs]
    cells: dict[tuple[str, str, str], dict[str, dict[str, Any]]] = {}
    order: list[tuple[str, str, str]] = []
    limits: dict[tuple[str, str, str], set[str]] = {}
    for cfg in configs:
        if cfg.skip:
            continue
        for row in results[id(cfg)].checks():
            k = (row["w"], row["i"], row["what"].replace(f"; {cfg.build})", ")"))
            if k not in cells:
                cells[k] = {}
                order.append(k)
            cells[k][cfg.label] = row
            if "x B2 (paired" in k[2] and row["limit"]:
                limits[k] = {", ".join(f"<= {v:g}x ({b})" for b, v in PER_ITEM_LIMIT.items())}
            elif row["limit"]:
                limits.setdefault(k, set()).add(row["limit"])
            elif row["ok"] is not None:
                limits.setdefault(k, set()).add("works, bounded")

    def na(cfg: Config) -> str:
        return "not built" if cfg.requested == "compiled" and "compiled core" in cfg.skip else "n/a"

    lines = ["## Per Python version and build", ""]
    lines.append("| workload | implementation | figure | target | " + " | ".join(cols) + " |")
    lines.append("|---|---|---|---|" + "---:|" * len(cols))
    for k in order:
        if not any(r["key"] for r in cells[k].values()):
            continue
        row_cells = [na(c) if c.skip else (cells[k][c.label]["value"] if c.label in cells[k] else "-") for c in configs]
        target = ", ".join(sorted(limits.get(k, set()))) or "(reference)"
        lines.append(f"| {k[0]} | {k[1]} | {k[2]} | {target} | " + " | ".join(row_cells) + " |")
    skipped = [c for c in configs if c.skip]
    if skipped:
        lines.append("")
        lines += [f"- {c.label}: not measured: {c.skip}" for c in skipped]

    lines += ["", "## Targets (issue 13), per version and build", ""]
    lines.append("| target | limit | " + " | ".join(cols) + " |")
    lines.append("|---|---|" + "---|" * len(cols))
    note: list[str] = []
    for k in order:
        if k not in limits and not any(r["ok"] is not None for r in cells[k].values()):
            continue
        row_cells = []
        quoted = []
        met = total = 0
        for c in configs:
            r = cells[k].get(c.label)
            if c.skip or r is None:
                row_cells.append(na(c) if c.skip else "not measured")
                continue
            row_cells.append(f"{r['verdict']} ({r['value']})" if r["ok"] is not None else r["value"])
            quoted.append(f"{c.label} {r['value']}")
            if r["ok"] is not None:
                total += 1
                met += bool(r["ok"])
        limit = ", ".join(sorted(limits.get(k, set())))
        label = f"{k[0]} {k[1]}: {k[2]}"
        lines.append(f"| {label} | {limit} | " + " | ".join(row_cells) + " |")
        verdict = f"Met in {met} of {total}." if total else "Not measured."
        note.append(f"- {label} ({limit}): {'; '.join(quoted) or 'not measured'}. {verdict}")
    lines += ["", "## Closing note", "", "Each target's figure, per column:", "", *note, ""]

    for cfg in configs:
        if cfg.skip:
            continue
        res = results[id(cfg)]
        lines += [f"## All figures: {cfg.label}", "", f"{cfg.python}", ""]
        lines += res.table()
        refs = [r for r in res.checks() if not r["key"]]
        if refs:
            lines += ["", "| reference | measured |", "|---|---:|"]
            lines += [f"| {r['w']} {r['i']}: {r['what']} | {r['value']} |" for r in refs]
        lines.append("")
    return lines


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
