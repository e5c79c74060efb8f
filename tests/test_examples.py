"""Every classic example runs and prints what it should."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

EXPECTED = {
    "seed.py": 'digraph "workflow" {',
    "linear.py": "sum of squares: 328350",
    "fork.py": "words: 9 longest: quick",
    "join.py": "ada (1815)\ngrace (1906)\nedsger (1930)",
    "split.py": "evens: [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]\nodds: [1, 3, 5, 7, 9, 11, 13, 15, 17, 19]",
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs(name: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name)], capture_output=True, text=True, timeout=30, env=env
    )
    assert done.returncode == 0, done.stderr
    assert EXPECTED[name] in done.stdout
