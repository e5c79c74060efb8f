"""The public surface: what each public module exports, says it is, and documents.

docs/api.md documents every name in ``__all__`` of these modules; docs/errors.md
shows the exception tree these tests hold mimo to.
"""

from __future__ import annotations

import importlib
import inspect
import pickle
import subprocess
import sys
import types

import pytest

import mimo

PUBLIC = ["mimo", "mimo.lib", "mimo.testing", "mimo.executors"]


def _exports(module: str) -> list[tuple[str, object]]:
    mod = importlib.import_module(module)
    return [(name, getattr(mod, name)) for name in mod.__all__]


@pytest.mark.parametrize("module", PUBLIC)
def test_all_lists_each_name_once_and_each_resolves(module):
    mod = importlib.import_module(module)
    names = list(mod.__all__)
    assert names, f"{module}.__all__ is empty"
    assert len(names) == len(set(names)), f"{module}.__all__ repeats a name"
    missing = [n for n in names if not hasattr(mod, n)]
    assert missing == []


@pytest.mark.parametrize("module", PUBLIC)
def test_every_export_has_a_docstring(module):
    exports = [(n, o) for n, o in _exports(module) if isinstance(o, type | types.FunctionType)]
    assert exports, f"{module} exports no class or function"
    undocumented = [n for n, o in exports if not (inspect.getdoc(o) or "").strip()]
    assert undocumented == []


@pytest.mark.parametrize("module", PUBLIC)
def test_every_export_says_it_comes_from_a_public_module(module):
    exports = [(n, o) for n, o in _exports(module) if isinstance(o, type | types.FunctionType)]
    assert exports
    private = {n: o.__module__ for n, o in exports if any(p.startswith("_") for p in o.__module__.split("."))}
    assert private == {}


def test_mimo_classes_and_functions_report_mimo_as_their_module():
    exports = [(n, o) for n, o in _exports("mimo") if isinstance(o, type | types.FunctionType)]
    assert len(exports) >= 20
    assert {n: o.__module__ for n, o in exports if o.__module__ != "mimo"} == {}
    assert repr(mimo.EndOfStream) == "<class 'mimo.EndOfStream'>"
    assert repr(mimo.EndOfStream("x")) == "EndOfStream('x')"


@pytest.mark.timeout(30)
def test_dir_lists_every_export_before_first_use():
    # A fresh interpreter: nothing lazily loaded yet (the DSL, the dashboard).
    code = "import mimo, sys; assert 'mimo.dsl' not in sys.modules; print(sorted(set(mimo.__all__) - set(dir(mimo))))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=25)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_the_version_is_the_installed_distributions():
    from importlib.metadata import version

    assert mimo.__version__ == version("mimo")


@pytest.mark.parametrize(
    "error",
    [
        mimo.EndOfStream("the end"),
        mimo.WorkflowError("bad graph"),
        mimo.DeadlockError("stuck"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_errors_pickle_by_their_public_name(error):
    # Ray pickles a failed stream's exception to send it to the driver.
    data = pickle.dumps(error)
    assert b"mimo._errors" not in data
    back = pickle.loads(data)
    assert type(back) is type(error) and back.args == error.args


def test_exported_classes_and_functions_pickle_by_reference():
    for name, obj in _exports("mimo"):
        if isinstance(obj, type | types.FunctionType):
            assert pickle.loads(pickle.dumps(obj)) is obj, name


def _error_classes() -> dict[str, type[Exception]]:
    import mimo._cli
    import mimo._render
    import mimo.executors

    found: dict[str, type[Exception]] = {}
    for module in (mimo, mimo.executors, mimo._cli, mimo._render):
        for name, obj in vars(module).items():
            # Exception, not BaseException: a Ctrl-C or SIGTERM (KeyboardInterrupt) is no error of mimo's.
            if isinstance(obj, type) and issubclass(obj, Exception) and obj.__module__.startswith("mimo"):
                found[name] = obj
    return found


def test_every_exception_mimo_raises_on_purpose_derives_from_mimo_error():
    errors = _error_classes()
    assert {"RenderError", "EdgeError", "LoadError", "RemoteTraceback", "WorkflowError"} <= set(errors)
    assert sorted(n for n, e in errors.items() if not issubclass(e, mimo.MimoError)) == []


def test_errors_that_were_runtime_errors_still_are():
    # Code written before they joined the tree may catch them as RuntimeError.
    from mimo._render import RenderError
    from mimo.executors import EdgeError, StreamDiedError

    assert issubclass(RenderError, RuntimeError) and issubclass(RenderError, mimo.MimoError)
    assert issubclass(EdgeError, RuntimeError) and issubclass(EdgeError, mimo.MimoError)
    assert issubclass(StreamDiedError, RuntimeError) and issubclass(StreamDiedError, mimo.MimoError)


def test_executor_protocol_is_public_and_documented():
    assert "Executor" in mimo.__all__
    assert "run_async" in (inspect.getdoc(mimo.Executor) or "")
    method = inspect.getdoc(mimo.Executor.run_async) or ""
    assert "graph.nodes" in method and "on_start" in method
    assert inspect.iscoroutinefunction(mimo.Executor.run_async)


def test_the_api_reference_documents_every_public_module():
    # docs/api.md documents each module's __all__ with autodoc (built in CI with warnings as errors).
    from pathlib import Path

    page = (Path(__file__).resolve().parent.parent / "docs" / "api.md").read_text(encoding="utf-8")
    assert [m for m in PUBLIC if f".. automodule:: {m}\n" not in page] == []


def test_type_hints_of_exported_classes_still_resolve():
    # get_type_hints looks names up in the module __module__ names, which is now mimo.
    import typing

    classes = [(n, o) for n, o in _exports("mimo") if isinstance(o, type)]
    assert classes
    failing = {}
    for name, cls in classes:
        try:
            typing.get_type_hints(cls)
        except NameError as exc:
            failing[name] = str(exc)
    assert failing == {}


def test_the_errors_page_shows_every_exported_exception():
    from pathlib import Path

    page = (Path(__file__).resolve().parent.parent / "docs" / "errors.md").read_text(encoding="utf-8")
    exports = _exports("mimo") + _exports("mimo.executors")
    errors = [n for n, o in exports if isinstance(o, type) and issubclass(o, Exception)]
    assert len(errors) >= 10
    assert [n for n in errors if f"── {n} " not in page] == []


def test_executors_import_no_private_name_of_the_runtime():
    import ast
    from pathlib import Path

    folder = Path(mimo.__file__).parent / "executors"
    imported = []
    for path in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mimo._"):
                imported += [f"{path.name}: {node.module}.{a.name}" for a in node.names]
    assert any("mimo._runtime." in i for i in imported)
    assert [i for i in imported if i.rpartition(".")[2].startswith("_")] == []


def test_executors_errors_pickle_by_their_public_name():
    from mimo.executors import EdgeError, RemoteTraceback, StreamDiedError

    errors = [EdgeError("lost", consumer="b[1]", peer_lost=True), RemoteTraceback("tb"), StreamDiedError("m", "s", "n")]
    for error in errors:
        back = pickle.loads(pickle.dumps(error))
        assert type(back) is type(error) and type(back).__module__ == "mimo.executors"
        assert str(back) == str(error) and vars(back) == vars(error)
