"""Static typing: the snippets in tests/typing/ under mypy --strict and pyright.

Every ``ok_*`` / ``plugin_ok`` snippet must check clean. In the others, each
line that must be an error says so: ``# E: mypy=CODE pyright=RULE``; a checker
not named there must report nothing on that line. The ``plugin_*`` snippets
run mypy with ``plugins = mimo.dsl.mypy_plugin``; pyright, which has no
plugins, sees the same files untyped. Both checkers are dev dependencies and
must be installed: this test never skips.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

SNIPPETS = Path(__file__).parent / "typing"
FILES = sorted(SNIPPETS.glob("*.py"))
PLUGIN = [f for f in FILES if f.name.startswith("plugin_")]
PLAIN = [f for f in FILES if not f.name.startswith("plugin_")]

Found = dict[str, set[tuple[int, str]]]

_EXPECT = re.compile(r"#\s*E:(?P<spec>.*)$")
_MYPY_LINE = re.compile(r"^(?P<file>[^:]+\.py):(?P<line>\d+): error: .*\[(?P<code>[a-z0-9-]+)\]$")


def expected(path: Path, checker: str) -> set[tuple[int, str]]:
    """The (line, code) pairs ``checker`` must report in ``path``."""
    out = set()
    for n, text in enumerate(path.read_text().splitlines(), start=1):
        m = _EXPECT.search(text)
        if not m:
            continue
        for part in m["spec"].split():
            name, _, codes = part.partition("=")
            if name == checker:
                out |= {(n, code) for code in codes.split(",")}
    return out


def _run(cmd: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


#: Every line mypy printed, by snippet: for tests of what its messages say.
MYPY_OUTPUT: dict[str, list[str]] = {}


def run_mypy(files: list[Path], config: str, tmp: Path) -> Found:
    ini = tmp / "mypy.ini"
    ini.write_text(config)
    proc = _run(
        [sys.executable, "-m", "mypy", "--config-file", str(ini), "--cache-dir", str(tmp / "cache"), *map(str, files)],
        SNIPPETS,
        240,
    )
    assert proc.returncode in (0, 1), f"mypy did not run:\n{proc.stdout}\n{proc.stderr}"
    found: Found = {f.name: set() for f in files}
    for line in proc.stdout.splitlines():
        MYPY_OUTPUT.setdefault(Path(line.partition(":")[0]).name, []).append(line)
        m = _MYPY_LINE.match(line)
        if m:
            found.setdefault(Path(m["file"]).name, set()).add((int(m["line"]), m["code"]))
    return found


def run_pyright(files: list[Path]) -> Found:
    proc = _run(
        [sys.executable, "-m", "pyright", "--outputjson", "--pythonpath", sys.executable, *map(str, files)],
        SNIPPETS,
        280,
    )
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"pyright did not run:\n{proc.stdout}\n{proc.stderr}")
    found: Found = {f.name: set() for f in files}
    for d in report["generalDiagnostics"]:
        if d["severity"] == "error":
            found.setdefault(Path(d["file"]).name, set()).add((d["range"]["start"]["line"] + 1, d.get("rule", "")))
    return found


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Found]]:
    tmp = tmp_path_factory.mktemp("typing")
    (tmp / "plain").mkdir()
    (tmp / "plugin").mkdir()
    yield {
        "mypy": {
            **run_mypy(PLAIN, "[mypy]\nstrict = True\n", tmp / "plain"),
            **run_mypy(PLUGIN, "[mypy]\nstrict = True\nplugins = mimo.dsl.mypy_plugin\n", tmp / "plugin"),
        },
        "pyright": run_pyright(FILES),
    }


def test_there_are_snippets_of_each_kind() -> None:
    names = {f.name for f in FILES}
    assert {"ok_chains.py", "ok_bodies.py", "bad_chains.py", "bad_bodies.py", "plugin_ok.py", "plugin_bad.py"} <= names


@pytest.mark.timeout(600)
@pytest.mark.parametrize("checker", ["mypy", "pyright"])
@pytest.mark.parametrize("snippet", FILES, ids=lambda p: p.name)
def test_checker_reports_exactly_the_marked_errors(results: dict[str, Found], checker: str, snippet: Path) -> None:
    want = expected(snippet, checker)
    got = results[checker][snippet.name]
    if snippet.name.startswith("ok") or snippet.name == "plugin_ok.py":
        assert not want
    assert sorted(got) == sorted(want), f"{checker} on {snippet.name}: got {sorted(got)}, marked {sorted(want)}"


def test_every_wrong_snippet_line_is_caught_by_mypy() -> None:
    for snippet in FILES:
        if snippet.name.startswith("bad") or snippet.name == "plugin_bad.py":
            lines = {n for n, _ in expected(snippet, "mypy")}
            assert lines, f"{snippet.name} marks no errors"


def test_mypy_reports_a_wrong_map_function_against_the_signature_written(results: dict[str, Found]) -> None:
    # docs/typing.md: a plain function is reported as a plain one, not as "Callable[[int], Awaitable[Never]]".
    lines = MYPY_OUTPUT["bad_map_message.py"]
    plain = [line for line in lines if '"Callable[[str], int]"' in line]
    assert len(plain) == 2
    assert all('expected "Callable[[int], int | Awaitable[int]]"' in line for line in plain)
    assert not any("Never" in line for line in plain)
