"""The ``mimo`` command: run, draw and check a workflow named on the command line.

A target is ``path/to/file.py[:attr]`` or ``package.module[:attr]``. The
attribute may be a :class:`~mimo.Workflow`, a DSL graph (anything with a
``.graph``), a bare :class:`~mimo.Stream`, or a function taking no arguments
that returns one of those. Without ``:attr``, mimo uses the module's
``workflow``, else its ``build`` function, else the only workflow or DSL
graph the module defines.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import sys
import traceback
from pathlib import Path
from typing import Any

from mimo._errors import MimoError, WorkflowError
from mimo._graph import Graph, compatible, type_name
from mimo._render import RenderError
from mimo._stream import Stream
from mimo._workflow import Workflow

#: Exit codes scripts can rely on.
EXIT_OK = 0
EXIT_RUN_FAILED = 1  # a stream raised, or the run deadlocked
EXIT_USAGE = 2  # bad command line (argparse's own code)
EXIT_LOAD = 3  # the target could not be found, imported or made into a workflow
EXIT_INVALID = 4  # the graph is wrong (a WorkflowError, or problems found by `mimo check`)
EXIT_MISSING = 5  # an optional package or program is missing (rich, graphviz, dot)
EXIT_INTERRUPTED = 130  # Ctrl-C

EPILOG = """\
exit codes: 0 ok; 1 the run failed (a stream raised, or deadlock); 2 bad command line;
3 the target could not be loaded; 4 the graph is wrong; 5 a needed package or program
is missing; 130 interrupted. Errors go to standard error.
"""

TARGET_HELP = (
    "what to load: path/to/file.py[:attr] or package.module[:attr]; attr names a Workflow, "
    "a DSL graph, or a function returning one (default: 'workflow', else 'build', else the only one)"
)


class LoadError(Exception):
    """The target could not be turned into a workflow."""


# -- loading ------------------------------------------------------------------


def _split(target: str) -> tuple[str, str | None]:
    where, sep, attr = target.rpartition(":")
    if sep and attr and all(part.isidentifier() for part in attr.split(".")):
        return where, attr
    return target, None


def _import(where: str) -> Any:
    path = Path(where)
    if where.endswith(".py") or path.is_file() or "/" in where or "\\" in where:
        if not path.is_file():
            raise LoadError(f"no such file: {where}")
        name = "_mimo_target_" + "".join(c if c.isalnum() else "_" for c in path.stem)
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise LoadError(f"cannot load {where} as Python")
        module = importlib.util.module_from_spec(spec)
        # Like `python file.py`: the file's own folder is importable, so are its siblings.
        sys.path.insert(0, str(path.resolve().parent))
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        return importlib.import_module(where)
    except ModuleNotFoundError as exc:
        if exc.name is not None and where.startswith(exc.name):
            raise LoadError(f"no module named {where!r} (and no file of that name)") from None
        raise


def _as_workflow(obj: Any, name: str) -> Workflow | None:
    if isinstance(obj, Workflow):
        return obj
    if isinstance(obj, Graph):
        return Workflow.from_graph(obj, name)
    graph = getattr(obj, "graph", None)
    if isinstance(graph, Graph) and not isinstance(obj, type):
        return Workflow.from_graph(graph, name)
    if isinstance(obj, Stream):
        wf = Workflow(name=name)
        wf.add_stream(obj)
        return wf
    return None


def load(target: str) -> Workflow:
    """The workflow that ``target`` names (see the module's docstring).

    :class:`LoadError` if it cannot be had (the cause's traceback printed to
    standard error when the target's own code raised); a
    :class:`~mimo.WorkflowError` raised while building passes through.
    """
    try:
        return _load(target)
    except (LoadError, WorkflowError):
        raise
    except Exception as exc:
        traceback.print_exc()
        raise LoadError(f"could not load {target}: {exc!r}") from exc


def _load(target: str) -> Workflow:
    where, attr = _split(target)
    module = _import(where)
    stem = Path(where).stem if where.endswith(".py") else where.rsplit(".", 1)[-1]
    if attr is None:
        for default in ("workflow", "build"):
            if hasattr(module, default):
                attr = default
                break
        else:
            found = [
                k
                for k, v in vars(module).items()
                if not k.startswith("_") and not isinstance(v, Stream) and _as_workflow(v, k) is not None
            ]
            if len(found) != 1:
                what = f"it defines {', '.join(found)}" if found else "it defines none"
                raise LoadError(
                    f"{where}: say which workflow to use, as {target}:NAME (no 'workflow' or 'build' there, and {what})"
                )
            attr = found[0]
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise LoadError(f"{where} has no attribute {attr!r}")
        obj = getattr(obj, part)
    name = attr if attr not in ("workflow", "build") else stem
    wf = _as_workflow(obj, name)
    if wf is None and callable(obj) and not isinstance(obj, type):
        obj = obj()
        wf = _as_workflow(obj, name)
    if wf is None:
        raise LoadError(f"{target} is {type(obj).__name__}, not a Workflow, a DSL graph or a function returning one")
    return wf


# -- checking -----------------------------------------------------------------


def problems(graph: Graph) -> tuple[list[str], list[str]]:
    """Errors and warnings about a built graph, beyond those raised while building it."""
    errors: list[str] = []
    warnings: list[str] = []
    if not graph.nodes:
        errors.append("the workflow has no streams")
    for e in graph.edges:
        t_out, t_in = e.src.stream.out_types[e.out], e.dst.stream.in_types[e.in_]
        if not compatible(t_out, t_in):
            errors.append(f"{e}: {type_name(t_out)} items go into an input that expects {type_name(t_in)}")
    for n in graph.nodes:
        for p in n.ins:
            if not graph.inputs_of(n, p) and (n, p) not in graph.feeds:
                warnings.append(f"input {n.name}.{p} is joined to nothing and fed nothing: it ends at once")
        for p in n.outs:
            if not graph.outputs_of(n, p):
                warnings.append(f"output {n.name}.{p} is joined to nothing: what it pushes is discarded")
    return errors, warnings


# -- commands -----------------------------------------------------------------


def _err(msg: str) -> None:
    print(f"mimo: {msg}", file=sys.stderr)


def _cmd_run(args: argparse.Namespace) -> int:
    wf = load(args.target)
    report = wf.run(capacity=args.capacity, progress=args.progress or False)
    if not args.quiet:
        print(report, file=sys.stderr)
    if args.json == "-":
        print(json.dumps(report.to_dict(), indent=2))
    elif args.json:
        Path(args.json).write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    if args.graph:
        wf.render(args.graph, report=report)
    return EXIT_OK


def _cmd_graph(args: argparse.Namespace) -> int:
    wf = load(args.target)
    if args.output in (None, "-"):
        sys.stdout.write(wf.to_mermaid() if args.format == "mermaid" else wf.to_dot())
        return EXIT_OK
    wf.render(args.output)
    return EXIT_OK


def _cmd_check(args: argparse.Namespace) -> int:
    wf = load(args.target)
    errors, warnings = problems(wf.graph)
    for msg in errors:
        print(f"error: {msg}", file=sys.stderr)
    for msg in warnings:
        print(f"warning: {msg}", file=sys.stderr)
    if errors or (args.strict and warnings):
        return EXIT_INVALID
    g = wf.graph
    print(f"{wf.name}: ok ({len(g.nodes)} streams, {len(g.edges)} joins, {len(warnings)} warnings)")
    return EXIT_OK


def _capacity(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, not {text!r}")
    return n


def parser() -> argparse.ArgumentParser:
    """The command line's parser."""
    from mimo import __version__

    top = argparse.ArgumentParser(
        prog="mimo",
        description="Run, draw and check mimo workflows.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top.add_argument("--version", action="version", version=f"mimo {__version__}")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, description: str) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name,
            help=help,
            description=description,
            epilog=EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.add_argument("target", help=TARGET_HELP)
        return p

    run = command(
        "run",
        "run a workflow to the end and print its report",
        "Run a workflow to the end. The report goes to standard error as a table; --json writes it as JSON too.",
    )
    run.add_argument(
        "--progress",
        nargs="?",
        const="auto",
        choices=("auto", "rich", "plain"),
        help="show progress on standard error: a live table on a terminal (needs mimo[progress]), "
        "plain lines elsewhere (default when given: auto)",
    )
    run.add_argument("--capacity", type=_capacity, metavar="N", help="bound every queue at N items for this run")
    run.add_argument("--quiet", "-q", action="store_true", help="do not print the report table")
    run.add_argument("--json", metavar="PATH", help="also write the report as JSON to PATH (- for standard output)")
    run.add_argument("--graph", metavar="PATH", help="after the run, draw the graph with the run's figures to PATH")
    run.set_defaults(func=_cmd_run)

    graph = command(
        "graph",
        "draw a workflow's graph",
        "Draw a workflow's graph without running it: to a file whose suffix picks the format "
        "(.svg, .png, .pdf need mimo[viz] and Graphviz; .dot and .mmd are text), or as text "
        "on standard output.",
    )
    graph.add_argument(
        "-o", "--output", metavar="PATH", help="where to write (.svg, .png, .dot, .mmd, ...; - or none: stdout)"
    )
    graph.add_argument(
        "--format",
        choices=("dot", "mermaid"),
        default="dot",
        help="text format for standard output (default: dot)",
    )
    graph.set_defaults(func=_cmd_graph)

    check = command(
        "check",
        "build a workflow and run every check that needs no running",
        "Build a workflow (which checks port names, joins and item types) and look for joins "
        "likely to be mistakes. Exits 4 with the errors on standard error if any are found.",
    )
    check.add_argument("--strict", action="store_true", help="treat warnings as errors")
    check.set_defaults(func=_cmd_check)
    return top


def main(argv: list[str] | None = None) -> int:
    """Run the ``mimo`` command line; return its exit code."""
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        _err("interrupted")
        return EXIT_INTERRUPTED
    except LoadError as exc:
        _err(str(exc))
        return EXIT_LOAD
    except WorkflowError as exc:
        _err(f"the graph is wrong: {exc}")
        return EXIT_INVALID
    except (ImportError, RenderError) as exc:
        if isinstance(exc, RenderError) or "mimo[" in str(exc):  # an optional extra or Graphviz's dot
            _err(str(exc))
            return EXIT_MISSING
        return _failed(exc)
    except MimoError as exc:  # a deadlock: the message says it all
        _err(f"the run failed: {type(exc).__name__}: {exc}")
        return EXIT_RUN_FAILED
    except Exception as exc:
        return _failed(exc)


def _failed(exc: BaseException) -> int:
    traceback.print_exc()
    where = getattr(exc, "mimo_stream", None)
    _err(f"the run failed in stream {where!r}: {exc!r}" if where else f"the run failed: {exc!r}")
    return EXIT_RUN_FAILED
