"""The ``mimo`` command: run, draw and check a workflow named on the command line.

A target is ``path/to/file.py[:attr]`` or ``package.module[:attr]``. The
attribute may be a :class:`~mimo.Workflow`, a DSL graph (anything with a
``.graph``), a bare :class:`~mimo.Stream`, or a function taking no arguments
that returns one of those. Without ``:attr``, mimo uses the module's
``workflow``, else its ``build`` function, else the only workflow or DSL
graph the module defines.

A file is imported under its own name (``flow.py`` as ``flow``) with its
folder first on ``sys.path``, as ``import flow`` would: so the workers of a
process pool, whatever the start method, can import it to find its
functions. Its ``if __name__ == "__main__":`` block does not run. While it
loads and runs, ``sys.argv`` is ``[path, *args]``, the arguments given after
``--``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import inspect
import json
import os
import signal
import sys
import traceback
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any, NoReturn

from mimo._dashboard import Dashboard
from mimo._errors import MimoError, WorkflowError
from mimo._graph import Graph, compatible, type_name
from mimo._render import TEXT_FORMATS, RenderError
from mimo._report import RunReport
from mimo._stream import Stream
from mimo._workflow import Workflow

#: Exit codes scripts can rely on.
EXIT_OK = 0
EXIT_RUN_FAILED = 1  # a stream raised, or the run deadlocked
EXIT_USAGE = 2  # bad command line (argparse's own code)
EXIT_LOAD = 3  # the target could not be found, imported or made into a workflow
EXIT_INVALID = 4  # the graph is wrong (a WorkflowError, or problems found by `mimo check`)
EXIT_MISSING = 5  # an optional package or program is missing (rich, graphviz, dot)
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)
EXIT_BROKEN_PIPE = 141  # standard output closed by its reader (128 + SIGPIPE)
EXIT_TERMINATED = 143  # SIGTERM (128 + SIGTERM), torn down like Ctrl-C

EPILOG = """\
exit codes: 0 ok; 1 the run failed (a stream raised, or deadlock); 2 bad command line;
3 the target could not be loaded; 4 the graph is wrong; 5 a needed package or program
is missing; 130 interrupted (Ctrl-C); 141 standard output closed by its reader; 143
terminated (SIGTERM). Errors go to standard error.
Arguments after -- go to the loaded file as sys.argv[1:].
"""

TARGET_HELP = (
    "what to load: path/to/file.py[:attr] or package.module[:attr]; attr names a Workflow, "
    "a DSL graph, or a function returning one (default: 'workflow', else 'build', else the only one)"
)


class LoadError(MimoError):
    """The target could not be turned into a workflow."""


# -- loading ------------------------------------------------------------------


def _split(target: str) -> tuple[str, str | None]:
    where, sep, attr = target.rpartition(":")
    if sep and attr and all(part.isidentifier() for part in attr.split(".")):
        return where, attr
    return target, None


def _is_file(where: str) -> bool:
    return where.endswith(".py") or Path(where).is_file() or "/" in where or "\\" in where


def _import(where: str) -> Any:
    path = Path(where)
    if _is_file(where):
        if not path.is_file():
            raise LoadError(f"no such file: {where}")
        return _import_file(path)
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        return importlib.import_module(where)
    except ModuleNotFoundError as exc:
        if exc.name is not None and where.startswith(exc.name):
            raise LoadError(f"no module named {where!r} (and no file of that name)") from None
        raise


#: Modules that :func:`_import_file` put in ``sys.modules``; :func:`main` takes them out again.
_loaded: list[ModuleType] = []


def _import_file(path: Path) -> ModuleType:
    # Imported under its real name, not a private one, so that a process pool's
    # workers (spawn and forkserver re-import what they unpickle) find it: they
    # get the parent's sys.path, where this file's folder comes first.
    name = path.stem
    if "." in name or not name:
        raise LoadError(
            f"{path}: the file name must be usable as a module name (no dots); "
            f"{name!r} is not, so a process pool could not import it"
        )
    folder = str(path.resolve().parent)
    held = sys.modules.get(name)
    held_file = getattr(held, "__file__", None)
    if held is not None and (held_file is None or Path(held_file).resolve() != path.resolve()):
        where = f"the module at {held_file}" if held_file else "a built-in module"
        raise LoadError(f"{path} would be imported as {name!r}, which is already {where}; rename the file")
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise LoadError(f"cannot load {path} as Python")
    module = importlib.util.module_from_spec(spec)
    # Like `python file.py`: the file's own folder is importable, so are its siblings.
    if not sys.path or sys.path[0] != folder:
        sys.path.insert(0, folder)
    sys.modules[name] = module
    _loaded.append(module)
    spec.loader.exec_module(module)
    return module


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
        try:
            inspect.signature(obj).bind()
        except TypeError:
            raise LoadError(
                f"{target}: {attr}() needs arguments, and mimo calls it with none; "
                "give them defaults, or read the command line's (sys.argv, after --) inside it"
            ) from None
        except ValueError:  # no signature to read (a builtin): just call it
            pass
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


class _Signals:
    """SIGTERM handled as Ctrl-C is: the run is torn down, then the command exits 143.

    During a run the handler cancels the run's task, so every stream is
    cancelled and its ``finally`` runs; outside a run it raises
    :class:`Terminated`. A second SIGTERM kills the process at once (the
    handler puts the default action back), as a second Ctrl-C would.
    """

    def __init__(self) -> None:
        self.got = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task[Any] | None = None
        self._previous: Any = None
        self._installed = False

    def install(self) -> None:
        try:
            self._previous = signal.signal(signal.SIGTERM, self._on_term)
        except ValueError:  # not the main thread: SIGTERM is not ours to handle
            return
        self._installed = True

    def restore(self) -> None:
        if self._installed:
            signal.signal(signal.SIGTERM, self._previous)
            self._installed = False

    def _on_term(self, signum: int, frame: FrameType | None) -> None:
        self.got = True
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        loop, task = self.loop, self.task
        if loop is not None and task is not None and not loop.is_closed():
            # Called between two bytecodes of the loop's own thread: hand the
            # cancellation to the loop rather than raising in its middle.
            loop.call_soon_threadsafe(task.cancel)
            return
        raise Terminated


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived outside a run (while loading, say); handled like Ctrl-C."""


async def _run_here(wf: Workflow, args: argparse.Namespace, signals: _Signals) -> RunReport | None:
    """The run, or ``None`` if SIGTERM tore it down."""
    signals.loop, signals.task = asyncio.get_running_loop(), asyncio.current_task()
    board = _dashboard(args)
    try:
        return await wf.run_async(
            capacity=args.capacity,
            progress=args.progress or False,
            dashboard=board or False,
            checkpoint=args.checkpoint,
            checkpoint_every=args.checkpoint_every,
        )
    except asyncio.CancelledError:
        if board is not None and (board.report is not None or board.error is not None):
            # Ctrl-C or SIGTERM while the dashboard lingered: it ends the linger, not the finished run.
            if board.error is not None:
                raise board.error from None
            return board.report
        if signals.got:
            return None
        raise  # Ctrl-C: asyncio.run turns it into KeyboardInterrupt
    finally:
        signals.loop = signals.task = None


def _dashboard(args: argparse.Namespace) -> Dashboard | None:
    """The dashboard that ``--dashboard`` asks for: it lingers until Ctrl-C unless ``--linger`` says otherwise."""
    if not args.dashboard:
        return None
    return Dashboard(port=args.port or 0, host=args.host or "127.0.0.1", linger=args.linger)


def _has_rich() -> bool:
    try:
        import rich.live  # noqa: F401
    except ImportError:
        return False
    return True


def _cmd_run(args: argparse.Namespace) -> int:
    if args.progress == "rich" and not _has_rich():
        _err("--progress rich needs the rich package: pip install 'mimo[progress]'")
        return EXIT_MISSING
    wf = load(args.target)
    # asyncio.run here rather than wf.run(), so that SIGTERM can cancel the run's task.
    report = asyncio.run(_run_here(wf, args, args.signals))
    if report is None:
        _err("terminated (SIGTERM); the run was torn down")
        return EXIT_TERMINATED
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


# -- option values: each checked before anything is loaded or run -----------------------

#: Picture formats accepted when the graphviz package is not installed to say (it then fails with exit 5).
_PICTURES = frozenset({"svg", "png", "pdf", "jpg", "jpeg", "gif", "bmp", "ps", "eps", "webp", "tif", "tiff"})


def _capacity(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, not {text!r}")
    return n


def _port(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = -1
    if not 0 <= n <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 0 (any free port) to 65535, not {text!r}")
    return n


def _seconds(text: str) -> float:
    try:
        s = float(text)
    except ValueError:
        s = -1.0
    if not 0 <= s < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds >= 0, not {text!r}")
    return s


def _interval(text: str) -> float:
    s = _seconds(text)
    if s == 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, not {text!r}")
    return s


def _writable(text: str) -> str:
    """``text`` names a file that can be written: its folder exists and it is no folder itself."""
    path = Path(text)
    folder = path.parent
    if not text or path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a folder, not a file")
    if not folder.is_dir():
        raise argparse.ArgumentTypeError(f"cannot write {text!r}: no folder {str(folder)!r}")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise argparse.ArgumentTypeError(f"cannot write {text!r}: permission denied")
    return text


def _json_path(text: str) -> str:
    return text if text == "-" else _writable(text)


def _picture_path(text: str) -> str:
    suffix = Path(text).suffix.lower()
    if suffix not in TEXT_FORMATS:
        try:
            import graphviz  # type: ignore[import-untyped]

            known = frozenset(graphviz.FORMATS)
        except ImportError:
            known = _PICTURES
        if suffix.lstrip(".") not in known:
            raise argparse.ArgumentTypeError(
                f"cannot tell the picture format from {text!r}: use a suffix such as "
                f".svg, .png, .pdf (pictures) or {', '.join(sorted(TEXT_FORMATS))} (text)"
            )
    return _writable(text)


def _output(text: str) -> str:
    return text if text == "-" else _picture_path(text)


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line, exit 2: no traceback, no usage block to scroll past."""

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments"):
            message += "; arguments for the loaded file go after --"
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def parser() -> argparse.ArgumentParser:
    """The command line's parser."""
    from mimo import __version__, speedups

    top = _Parser(
        prog="mimo",
        description="Run, draw and check mimo workflows.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # Which core runs, compiled or pure Python (and why), as mimo.speedups says.
    top.add_argument("--version", action="version", version=f"mimo {__version__} ({speedups.reason})")
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
    run.add_argument(
        "--json", metavar="PATH", type=_json_path, help="also write the report as JSON to PATH (- for standard output)"
    )
    run.add_argument(
        "--graph",
        metavar="PATH",
        type=_picture_path,
        help="after the run, draw the graph with the run's figures to PATH (.svg, .png, .dot, .mmd, ...)",
    )
    run.add_argument(
        "--dashboard",
        action="store_true",
        help="serve a live web view of the run on 127.0.0.1 (needs mimo[web]); its address, with its access "
        "token, goes to standard error; after the run it stays up until Ctrl-C (or --linger)",
    )
    run.add_argument("--port", type=_port, metavar="N", help="with --dashboard: serve on port N (default: a free one)")
    run.add_argument(
        "--host", metavar="ADDR", help="with --dashboard: listen on ADDR, not 127.0.0.1 (the token still guards it)"
    )
    run.add_argument(
        "--linger",
        type=_seconds,
        metavar="S",
        help="with --dashboard: keep the final state up S seconds after the run (default: until Ctrl-C)",
    )
    run.add_argument(
        "--checkpoint",
        metavar="PATH",
        type=_writable,
        help="save a checkpoint of the run to the SQLite file PATH every --checkpoint-every seconds; "
        "run again with the same PATH after a crash to resume from the last one (see docs/recovery.md)",
    )
    run.add_argument(
        "--checkpoint-every",
        type=_interval,
        default=5.0,
        metavar="S",
        help="with --checkpoint: seconds between checkpoints (default: 5)",
    )
    run.set_defaults(func=_cmd_run)

    graph = command(
        "graph",
        "draw a workflow's graph",
        "Draw a workflow's graph without running it: to a file whose suffix picks the format "
        "(.svg, .png, .pdf need mimo[viz] and Graphviz; .dot and .mmd are text), or as text "
        "on standard output.",
    )
    graph.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        type=_output,
        help="where to write (.svg, .png, .dot, .mmd, ...; - or none: stdout)",
    )
    graph.add_argument(
        "--format",
        choices=("dot", "mermaid"),
        help="text format for standard output (default: dot); a file's format is its suffix",
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
    """Run the ``mimo`` command line; return its exit code.

    Arguments after ``--`` are the loaded file's: it sees ``sys.argv`` as
    ``[target path, *those]`` while it loads and runs. ``sys.argv``,
    ``sys.path`` and the SIGTERM handler are put back before returning.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    script_args: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, script_args = argv[:cut], argv[cut + 1 :]
    top = parser()
    args = top.parse_args(argv)
    if args.command == "graph" and args.format is not None and args.output not in (None, "-"):
        top.exit(
            EXIT_USAGE,
            f"mimo graph: error: --format is for standard output; the suffix of {args.output!r} "
            "already picks the file's format (see 'mimo graph --help')\n",
        )
    if args.command == "run" and not args.dashboard:
        given = [f"--{k}" for k in ("port", "host", "linger") if getattr(args, k) is not None]
        if given:
            usage = f"mimo run: error: {' and '.join(given)} only go with --dashboard (see 'mimo run --help')\n"
            top.exit(EXIT_USAGE, usage)
    saved_argv, saved_path = sys.argv, sys.path[:]
    args.signals = signals = _Signals()
    sys.argv = [_split(args.target)[0], *script_args]
    signals.install()
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        # Here only if SIGTERM or Ctrl-C came while the command was finishing up.
        return _interrupted(signals)
    finally:
        signals.restore()
        sys.argv = saved_argv
        sys.path[:] = saved_path
        while _loaded:
            module = _loaded.pop()
            if sys.modules.get(module.__name__) is module:
                del sys.modules[module.__name__]


def _interrupted(signals: _Signals) -> int:
    if signals.got:
        _err("terminated (SIGTERM)")
        return EXIT_TERMINATED
    _err("interrupted")
    return EXIT_INTERRUPTED


def _dispatch(args: argparse.Namespace) -> int:
    try:
        code = int(args.func(args))
        sys.stdout.flush()  # here, where a closed pipe can be handled, not at exit
        return code
    except BrokenPipeError:
        # Whoever read standard output has gone (`mimo graph ... | head`): stop
        # quietly, as a Unix tool killed by SIGPIPE would, and keep the exit's
        # own flush from failing again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):  # standard output replaced by one with no file descriptor
            pass
        finally:
            os.close(devnull)
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        return _interrupted(args.signals)
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
        return _failed(exc, args.command)
    except MimoError as exc:  # a deadlock: the message says it all
        _err(f"the run failed: {type(exc).__name__}: {exc}")
        return EXIT_RUN_FAILED
    except Exception as exc:
        return _failed(exc, args.command)


def _failed(exc: BaseException, command: str) -> int:
    traceback.print_exc()
    if command != "run":  # nothing ran: an error of mimo's or of the file's
        _err(f"{command} failed: {exc!r}")
        return EXIT_RUN_FAILED
    where = getattr(exc, "mimo_stream", None)
    _err(f"the run failed in stream {where!r}: {exc!r}" if where else f"the run failed: {exc!r}")
    return EXIT_RUN_FAILED
