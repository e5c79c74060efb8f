"""Mutation testing for mimo's core modules: does the suite notice a one-token bug?

Each mutant is the module with one small change, the kind a tired programmer
makes: a comparison flipped (``<`` and ``<=``, ``==`` and ``!=``, ``is`` and
``is not``, ``in`` and ``not in``), ``+`` and ``-`` swapped, an integer one
higher, ``True`` and ``False`` swapped, ``and`` and ``or`` swapped, a ``not``
dropped, or a call statement removed (a lost wake-up, a lost ``close()``).
A mutant is *killed* when the module's tests fail or hang on it, and
*survives* when they all pass. The score is killed / (all - equivalent), where
the equivalent mutants (those no test can tell from the original, such as a
removed call whose effect is repeated just after) are listed with the reason
in ``tests/mutation/EQUIVALENT.md``.

Run by hand, not in CI (a module takes minutes)::

    python tools/mutation.py                       # every module
    python tools/mutation.py mimo/_channel.py -j 2 # one module, two workers
    python tools/mutation.py --list mimo/_ports.py # the mutants, not run

Each mutant runs in a child forked from this process, which has pytest and the
test dependencies already imported: the child puts the mutated code in place
of the module with an import hook (nothing is written to disk) and runs the
module's test files with ``-x``. Nothing here needs mutmut.
"""

from __future__ import annotations

import argparse
import ast
import copy
import importlib.machinery
import importlib.util
import os
import re
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import CodeType

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENT_FILE = ROOT / "tests" / "mutation" / "EQUIVALENT.md"

# The test files that judge each module, most telling and fastest first (the
# run stops at the first failure). Tests that start a Python subprocess are
# left out: the subprocess would import the unmutated module.
MODULES: dict[str, list[str]] = {
    "mimo/_channel.py": [
        "tests/test_channel.py",
        "tests/test_ports.py",
        "tests/test_batched_ports.py",
        "tests/test_edges.py",
        "tests/test_report.py",
        "tests/test_runtime.py",
        "tests/test_properties.py",
        "tests/test_api_state_machine.py",
    ],
    "mimo/_ports.py": [
        "tests/test_ports.py",
        "tests/test_batched_ports.py",
        "tests/test_channel.py",
        "tests/test_edges.py",
        "tests/test_edges_bytes.py",
        "tests/test_report.py",
        "tests/test_runtime.py",
        "tests/test_properties.py",
        "tests/test_api_state_machine.py",
    ],
    "mimo/_runtime.py": [
        "tests/test_mutants_runtime.py",
        "tests/test_runtime.py",
        "tests/test_report.py",
        "tests/test_guarantees.py",
        "tests/test_supervision.py",
        "tests/test_checkpoint.py",
        "tests/test_parallel.py",
        "tests/test_testing.py",
        "tests/test_resources.py",
        "tests/test_edges.py",
        "tests/test_properties.py",
    ],
    "mimo/_graph.py": [
        "tests/test_mutants_graph.py",
        "tests/test_build.py",
        "tests/test_render.py",
        "tests/test_runtime.py",
        "tests/test_dsl_operators.py",
    ],
    "mimo/dsl/_decorator.py": [
        "tests/test_mutants_dsl.py",
        "tests/test_dsl_stream.py",
        "tests/test_dsl_operators.py",
        "tests/test_build.py",
    ],
    "mimo/lib/transforms.py": [
        "tests/test_mutants_transforms.py",
        "tests/test_lib_transforms.py",
        "tests/test_lib_retry.py",
        "tests/test_lib_async_workers.py",
        "tests/test_lib_calls.py",
        "tests/test_lib_arguments.py",
    ],
}

# Tests that run a Python subprocess, which would import the unmutated module
# (the files of tests/ that only do so are left out of MODULES altogether).
DESELECT = [
    "tests/test_runtime.py::test_ctrl_c_runs_every_finally_and_exits",
    "tests/test_parallel.py::test_a_pool_broken_by_an_unpicklable_exception_fails_the_run_and_leaves_no_worker",
]
# Property tests run fewer examples per mutant than in CI: most mutants fail
# long before, and the survivors would otherwise take minutes each.
MUTATION_EXAMPLES = 20
PYTEST_ARGS = ["-x", "-q", "-p", "no:randomly", "-p", "no:cacheprovider", "--hypothesis-seed=0"]
PYTEST_ARGS += [arg for test in DESELECT for arg in ("--deselect", test)]

_COMPARE_SWAP: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}
_ARITH_SWAP: dict[type[ast.operator], type[ast.operator]] = {ast.Add: ast.Sub, ast.Sub: ast.Add}


@dataclass
class Mutation:
    """One change to a module's syntax tree, described for people."""

    function: str  # qualified name of the enclosing def ("<module>" outside any)
    line: int
    before: str
    after: str
    apply: Callable[[], None]
    occurrence: int = 0  # among mutations of the same function with the same before/after

    @property
    def key(self) -> str:
        """A name for this mutant that survives edits elsewhere in the file."""
        n = f" #{self.occurrence + 1}" if self.occurrence else ""
        return f"{self.function}: `{self.before}` -> `{self.after}`{n}"


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING"
    )


def mutations(tree: ast.Module) -> list[Mutation]:
    """Every mutation of ``tree``, in a fixed order; ``apply`` changes ``tree`` in place."""
    found: list[Mutation] = []

    def add(
        fn: str, node: ast.AST, before: ast.AST, make_after: Callable[[], ast.AST], apply: Callable[[], None]
    ) -> None:
        after = ast.unparse(make_after())
        found.append(Mutation(fn, getattr(node, "lineno", 0), ast.unparse(before), after, apply))

    def visit(node: ast.AST, fn: str, parent_body: list[ast.stmt] | None) -> None:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            return  # docstring or bare literal
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and any(
            (isinstance(d, ast.Name) and d.id == "overload") or (isinstance(d, ast.Attribute) and d.attr == "overload")
            for d in node.decorator_list
        ):
            return  # a typing stub: never run
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            fn = node.name if fn == "<module>" else f"{fn}.{node.name}"
        if isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                swap = _COMPARE_SWAP.get(type(op))
                if swap is None:
                    continue

                def make(node: ast.Compare = node, i: int = i, swap: type[ast.cmpop] = swap) -> ast.Compare:
                    other = copy.deepcopy(node)
                    other.ops[i] = swap()
                    return other

                def apply(node: ast.Compare = node, i: int = i, swap: type[ast.cmpop] = swap) -> None:
                    node.ops[i] = swap()

                add(fn, node, node, make, apply)
        elif isinstance(node, (ast.BinOp, ast.AugAssign)) and type(node.op) in _ARITH_SWAP:
            swap_op = _ARITH_SWAP[type(node.op)]

            def make_b(node: ast.BinOp | ast.AugAssign = node, swap_op: type[ast.operator] = swap_op) -> ast.AST:
                other = copy.deepcopy(node)
                other.op = swap_op()
                return other

            def apply_b(node: ast.BinOp | ast.AugAssign = node, swap_op: type[ast.operator] = swap_op) -> None:
                node.op = swap_op()

            add(fn, node, node, make_b, apply_b)
        elif isinstance(node, ast.BoolOp):
            swap_bool: type[ast.boolop] = ast.Or if isinstance(node.op, ast.And) else ast.And

            def make_o(node: ast.BoolOp = node, swap_bool: type[ast.boolop] = swap_bool) -> ast.AST:
                other = copy.deepcopy(node)
                other.op = swap_bool()
                return other

            def apply_o(node: ast.BoolOp = node, swap_bool: type[ast.boolop] = swap_bool) -> None:
                node.op = swap_bool()

            add(fn, node, node, make_o, apply_o)
        elif isinstance(node, ast.Constant) and type(node.value) is bool:
            value = node.value

            def make_c(node: ast.Constant = node, value: bool = value) -> ast.AST:
                return ast.Constant(not value)

            def apply_c(node: ast.Constant = node, value: bool = value) -> None:
                node.value = not value

            add(fn, node, node, make_c, apply_c)
        elif isinstance(node, ast.Constant) and type(node.value) is int:
            ivalue = node.value

            def make_i(ivalue: int = ivalue) -> ast.AST:
                return ast.Constant(ivalue + 1)

            def apply_i(node: ast.Constant = node, ivalue: int = ivalue) -> None:
                node.value = ivalue + 1

            add(fn, node, node, make_i, apply_i)

        for name, value in ast.iter_fields(node):
            if name in ("annotation", "returns", "type_comment", "decorator_list"):
                continue
            if isinstance(node, ast.AnnAssign) and name == "target":
                continue
            if isinstance(value, list):
                for idx, item in enumerate(value):
                    if not isinstance(item, ast.AST):
                        continue
                    if isinstance(item, ast.If) and _is_type_checking(item):
                        continue
                    if isinstance(item, ast.UnaryOp) and isinstance(item.op, ast.Not):
                        _drop_not(fn, item, lambda new, value=value, idx=idx: value.__setitem__(idx, new))
                    if isinstance(item, ast.Expr) and _is_call(item.value):
                        _drop_stmt(fn, item, value, idx)
                    visit(item, fn, value if isinstance(item, ast.stmt) else None)
            elif isinstance(value, ast.AST):
                if isinstance(value, ast.UnaryOp) and isinstance(value.op, ast.Not):
                    _drop_not(fn, value, lambda new, node=node, name=name: setattr(node, name, new))
                visit(value, fn, None)

    def _drop_not(fn: str, item: ast.UnaryOp, put: Callable[[ast.expr], None]) -> None:
        def make() -> ast.AST:
            return item.operand

        def apply() -> None:
            put(item.operand)

        add(fn, item, item, make, apply)

    def _drop_stmt(fn: str, item: ast.Expr, body: list[ast.stmt], idx: int) -> None:
        def make() -> ast.AST:
            return ast.Pass()

        def apply() -> None:
            body[idx] = ast.copy_location(ast.Pass(), item)

        add(fn, item, item, make, apply)

    visit(tree, "<module>", None)
    # Number mutations that read the same within one function, so keys stay unique.
    seen: Counter[tuple[str, str, str]] = Counter()
    for m in found:
        k = (m.function, m.before, m.after)
        m.occurrence = seen[k]
        seen[k] += 1
    return found


def _is_call(value: ast.expr) -> bool:
    if isinstance(value, ast.Await):
        value = value.value
    return isinstance(value, ast.Call)


def mutant_code(path: Path, index: int) -> tuple[Mutation, CodeType]:
    """The ``index``-th mutant of the module at ``path``, compiled."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    ms = mutations(tree)
    m = ms[index]
    m.apply()
    ast.fix_missing_locations(tree)
    return m, compile(tree, str(path), "exec")


def module_name(rel: str) -> str:
    return rel.removesuffix(".py").replace("/", ".")


class _MutantLoader(importlib.machinery.SourceFileLoader):
    code: CodeType | None = None

    def get_code(self, fullname: str) -> CodeType:  # type: ignore[override]
        assert self.code is not None
        return self.code


class _MutantFinder:
    """Serves the mutated module's code; every other import is left alone."""

    def __init__(self, name: str, path: Path, code: CodeType) -> None:
        self.name, self.path, self.code = name, path, code

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.name:
            return None
        loader = _MutantLoader(fullname, str(self.path))
        loader.code = self.code
        return importlib.util.spec_from_file_location(fullname, self.path, loader=loader)


class _FewerExamples:
    """A pytest plugin: after conftest loaded its hypothesis profile, use fewer examples."""

    def pytest_configure(self, config: object) -> None:
        from hypothesis import Phase, settings

        # No shrinking either: a failure is all a mutant run needs to know.
        settings.register_profile(
            "mutation",
            parent=settings.default,
            max_examples=MUTATION_EXAMPLES,
            phases=[Phase.explicit, Phase.reuse, Phase.generate],
        )
        settings.load_profile("mutation")


def _child(rel: str, index: int | None, tests: list[str], log: Path) -> None:
    """In the forked child: put the mutant in place, run the tests, exit with pytest's status."""
    os.setpgid(0, 0)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    try:
        if index is not None:
            path = ROOT / rel
            _, code = mutant_code(path, index)
            sys.meta_path.insert(0, _MutantFinder(module_name(rel), path, code))
        import pytest

        rc = pytest.main([*tests, *PYTEST_ARGS], plugins=[_FewerExamples()])
    except BaseException:  # the mutant broke the import: the tests cannot run
        import traceback

        traceback.print_exc()
        rc = 99
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(int(rc))


@dataclass
class Result:
    index: int | None
    status: str  # killed, survived, timeout, error
    seconds: float


def run_all(rel: str, indices: list[int | None], jobs: int, timeout: float, logdir: Path) -> Iterator[Result]:
    """Run the tests against each mutant, ``jobs`` children at a time."""
    tests = [t for t in MODULES[rel] if (ROOT / t).exists()]
    pending = list(indices)
    running: dict[int, tuple[int | None, float]] = {}
    while pending or running:
        while pending and len(running) < jobs:
            index = pending.pop(0)
            log = logdir / f"{Path(rel).stem}-{'clean' if index is None else index}.log"
            pid = os.fork()
            if pid == 0:
                _child(rel, index, tests, log)
            running[pid] = (index, time.monotonic())
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            now = time.monotonic()
            for p, (index, start) in list(running.items()):
                if now - start > timeout:
                    try:
                        os.killpg(p, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    os.waitpid(p, 0)
                    del running[p]
                    yield Result(index, "timeout", now - start)
            time.sleep(0.05)
            continue
        if pid not in running:
            continue
        index, start = running.pop(pid)
        try:
            os.killpg(pid, signal.SIGKILL)  # leftovers of the run (pool workers)
        except (ProcessLookupError, PermissionError):
            pass
        code = os.waitstatus_to_exitcode(status)
        kind = "survived" if code == 0 else ("error" if code == 99 else "killed")
        yield Result(index, kind, time.monotonic() - start)


_EQUIV_LINE = re.compile(r"^- `(?P<module>[^`]+)` (?P<key>.+?) — ")


def equivalent_keys() -> dict[str, set[str]]:
    """The mutants listed as equivalent, by module (a line: - `module` key — reason)."""
    out: dict[str, set[str]] = {}
    if EQUIVALENT_FILE.exists():
        for line in EQUIVALENT_FILE.read_text(encoding="utf-8").splitlines():
            m = _EQUIV_LINE.match(line)
            if m:
                out.setdefault(m["module"], set()).add(m["key"])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="module paths (default: all of " + ", ".join(MODULES) + ")")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="children at a time (default 2)")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--only", type=int, nargs="*", help="run only these mutant numbers")
    parser.add_argument("--timeout", type=float, default=0, help="seconds per mutant (default: 3x the clean run + 15)")
    parser.add_argument("--logs", default="/tmp/mimo-mutation", help="directory for each run's pytest output")
    args = parser.parse_args(argv)
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    modules = args.modules or list(MODULES)
    logdir = Path(args.logs)
    logdir.mkdir(parents=True, exist_ok=True)
    equivalent = equivalent_keys()
    # Imported once here so each child starts warm; mimo itself must not be imported.
    import hypothesis  # noqa: F401
    import pytest  # noqa: F401

    assert not any(name == "mimo" or name.startswith("mimo.") for name in sys.modules)
    totals = Counter[str]()
    exit_code = 0
    for rel in modules:
        if rel not in MODULES:
            parser.error(f"not a module with mutation tests: {rel} (one of {', '.join(MODULES)})")
        ms = mutations(ast.parse((ROOT / rel).read_text(encoding="utf-8")))
        if args.list:
            for i, m in enumerate(ms):
                print(f"{rel}:{m.line} [{i}] {m.key}")
            continue
        clean = next(run_all(rel, [None], 1, 600, logdir))
        if clean.status != "survived":
            print(f"{rel}: the tests fail without any mutation; see {logdir}/{Path(rel).stem}-clean.log")
            return 2
        timeout = args.timeout or clean.seconds * 3 + 15
        indices: list[int | None] = list(args.only if args.only is not None else range(len(ms)))
        counts = Counter[str]()
        survivors: list[str] = []
        eq = equivalent.get(rel, set())
        listed = {ms[i].key for i in range(len(ms))}
        for stale in sorted(eq - listed):
            print(f"{rel}: listed as equivalent but no longer a mutant: {stale}")
        for res in run_all(rel, indices, args.jobs, timeout, logdir):
            assert res.index is not None
            m = ms[res.index]
            status = res.status
            if status == "survived" and m.key in eq:
                status = "equivalent"
            counts[status] += 1
            if status in ("survived", "error"):
                survivors.append(f"  {status}: {rel}:{m.line} [{res.index}] {m.key}")
            print(f"[{res.index}] {status:10} {res.seconds:5.1f}s {rel}:{m.line} {m.key}", flush=True)
        detected = counts["killed"] + counts["timeout"]
        judged = sum(counts.values()) - counts["equivalent"]
        score = 100.0 * detected / judged if judged else 100.0
        print(
            f"\n{rel}: {len(indices)} mutants, {counts['killed']} killed, {counts['timeout']} timed out, "
            f"{counts['survived']} survived, {counts['equivalent']} equivalent, {counts['error']} errors; "
            f"score {score:.1f}% ({detected}/{judged})"
        )
        print("\n".join(survivors))
        totals.update(counts)
        if survivors:
            exit_code = 1
    if not args.list and len(modules) > 1:
        detected = totals["killed"] + totals["timeout"]
        judged = sum(totals.values()) - totals["equivalent"]
        print(
            f"\noverall: score {100.0 * detected / max(judged, 1):.1f}% ({detected}/{judged}), "
            f"{totals['equivalent']} equivalent"
        )
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
