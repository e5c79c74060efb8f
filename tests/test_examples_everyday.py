"""The eight everyday tasks (examples/everyday/) run, give their checked results, and stay short.

Each program hands its result to a ``check_*`` in ``everyday_data`` that
asserts it; here each must exit 0 having printed its summary. Sizes are
counted as in the conciseness study (physical lines holding a token other
than a comment, formatted at 88 columns), and none may be longer than the
shortest of aiostream, plain asyncio and bytewax for the same task.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EVERYDAY = ROOT / "examples" / "everyday"

#: program -> (what it prints, the shortest peer's line count for that task)
TASKS = {
    "t1_word_count.py": ("words: 9", 8),
    "t2_bounded_fetches.py": ("fetched: 1000 peak: 20", 6),
    "t3_fan_out.py": ("evens: 50 sum of squares: 328350", 12),
    "t4_fan_in.py": ("merged: ", 6),
    "t5_split.py": ("valid: 3 rejected: 2", 12),
    "t6_batches.py": ("batches: [100, 30, 70, 100, 50, 5]", 26),
    "t7_process_pool.py": ("digests: 2000", 10),
    "t8_keyed_join.py": ("pairs: 3 unmatched: 2", 20),
}

_NOT_CODE = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING}


def code_lines(path: Path) -> int:
    """Physical lines that hold at least one token other than a comment."""
    tokens = tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline)
    return len({t.start[0] for t in tokens if t.type not in _NOT_CODE and t.type != tokenize.ENDMARKER})


#: Timed to 50 ms: run alone, after the others, so that their load cannot stretch a burst.
_TIMED = "t6_batches.py"


def _start(name: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, name], cwd=EVERYDAY, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _wait(p: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    out, err = p.communicate(timeout=50)
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


@pytest.fixture(scope="module")
def finished() -> dict[str, subprocess.CompletedProcess[str]]:
    # The untimed ones at once: the suite waits for the slowest, not for their sum.
    procs = {name: _start(name) for name in TASKS if name != _TIMED}
    done = {name: _wait(p) for name, p in procs.items()}
    done[_TIMED] = _wait(_start(_TIMED))
    return done


@pytest.mark.parametrize("name", sorted(TASKS))
def test_everyday_task_runs_and_passes_its_check(
    name: str, finished: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    done = finished[name]
    assert done.returncode == 0, done.stderr
    assert TASKS[name][0] in done.stdout


@pytest.mark.parametrize("name", sorted(TASKS))
def test_everyday_task_is_no_longer_than_the_shortest_peer(name: str) -> None:
    path = EVERYDAY / name
    assert max(len(line) for line in path.read_text(encoding="utf-8").splitlines()) <= 88
    assert code_lines(path) <= TASKS[name][1]


def test_the_readme_table_gives_the_sizes_counted_here() -> None:
    readme = (EVERYDAY / "README.md").read_text(encoding="utf-8")
    for name in TASKS:
        row = next(line for line in readme.splitlines() if f"`{name}`" in line)
        assert f"| **{code_lines(EVERYDAY / name)}** |" in row, row
