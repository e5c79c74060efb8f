"""Every code block in README.md and docs/*.md is executed.

The convention, for everybody who writes docs (read this before adding a block):

- ```python            runs. The blocks of one file run in order, in one shared
                       namespace (a later block may use what an earlier one
                       defined), as a script's ``__main__``, in a fresh subprocess whose working directory
                       is an empty temporary folder holding ``examples/`` (a link
                       to the project's) and an empty ``docs/``. ``examples/`` is
                       also importable (``import stdlib_tokens``). Make blocks
                       check their own claims with ``assert``; keep each fast.
- ```python no-run     is shown, not run: for fragments that cannot run alone or
                       that show a mistake on purpose (say why in the prose).
- ```console           lines starting with ``$ `` run in bash, in order, in the
                       same kind of folder; each must exit 0 (show a failure with
                       ``...; echo "exit $?"``). Other lines are output, not
                       compared. Commands starting ``pip`` are not run here: the
                       README's "Two commands" run in CI itself.
- anything else        (```text, ```dot, ```toml, a bare ```) is shown, not run:
                       printed output and file contents.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^(?P<indent> *)(?P<fence>```+|~~~+)(?P<info>[^\n`]*)$")

# Blocks run in the real __main__ module, so that what they define can be pickled
# by reference (a process pool, say), as in a script.
RUNNER = r"""
import __main__, json, sys
blocks = json.load(sys.stdin)
for name, line, code in blocks:
    exec(compile(code, f"{name}, code block at line {line}", "exec"), __main__.__dict__)
"""


def blocks(path: Path) -> list[tuple[str, int, str]]:
    """(info string, first line number, code) of every fenced block in ``path``."""
    found = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, indent, info = m["fence"], len(m["indent"]), m["info"].strip()
        start = i + 1
        i += 1
        body = []
        while i < len(lines) and not lines[i].strip().startswith(fence[0] * len(fence)):
            body.append(lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i])
            i += 1
        i += 1
        found.append((info, start + 1, "\n".join(body) + "\n"))
    return found


def _folder(tmp_path: Path) -> Path:
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    (tmp_path / "docs").mkdir()
    return tmp_path


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "examples"), str(ROOT)])
    env.pop("COLUMNS", None)
    return env


def _ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(ROOT)) for p in paths]


def test_the_docs_exist():
    names = {p.name for p in DOCS}
    assert {"README.md", "concepts.md", "cli.md"} <= names


def test_a_fence_with_a_language_is_read_with_its_info_string(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("text\n```python no-run\nx = 1\n```\n\n```console\n$ mimo --help\nusage\n```\n")
    assert blocks(page) == [("python no-run", 3, "x = 1\n"), ("console", 7, "$ mimo --help\nusage\n")]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("page", DOCS, ids=_ids(DOCS))
def test_python_blocks_run(page: Path, tmp_path: Path):
    code = [(str(page.relative_to(ROOT)), line, body) for info, line, body in blocks(page) if info == "python"]
    if not code:
        return
    r = subprocess.run(
        [sys.executable, "-c", RUNNER],
        input=json.dumps(code),
        capture_output=True,
        text=True,
        cwd=_folder(tmp_path),
        env=_env(),
        timeout=110,
    )
    assert r.returncode == 0, f"{page.name}: a python block failed\n{r.stderr[-4000:]}"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("page", DOCS, ids=_ids(DOCS))
def test_console_blocks_run(page: Path, tmp_path: Path):
    commands = [
        (line, text[2:])
        for info, start, body in blocks(page)
        if info == "console"
        for line, text in enumerate(body.splitlines(), start)
        if text.startswith("$ ") and not text[2:].startswith("pip")
    ]
    folder = _folder(tmp_path)
    for line, command in commands:
        r = subprocess.run(
            ["bash", "-c", f"set -o pipefail; {command}"],
            capture_output=True,
            text=True,
            cwd=folder,
            env=_env(),
            timeout=100,
        )
        assert r.returncode == 0, f"{page.name}:{line}: `{command}` exited {r.returncode}\n{r.stderr[-4000:]}"
