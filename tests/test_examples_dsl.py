"""Every DSL example runs and prints what it should."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

EXPECTED = {
    "dsl_pipeline.py": [
        "0000\n0001\n0002\n",
        "0099\nprinted 100 lines\n",
        "hex: 0x0\nhex: 0x14\nhex: 0x28\nhex: 0x3c\n",
        "stages: count, scale, scale_2, hexed, printer\n",
    ],
    "dsl_multi_io.py": [
        "2 x tea      5.00\n",
        "3 x coffee   9.00\n",
        "rejected: no price for 'cake'\n",
        "total: 23.50 over 4 lines\n",
        '  n1 -- "priced → lines" --> n3\n  n1 -- "priced → lines" --> n4\n',
    ],
}


def test_every_dsl_example_is_checked() -> None:
    assert sorted(p.name for p in (ROOT / "examples").glob("dsl_*.py")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_dsl_example_runs(name: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name)], capture_output=True, text=True, timeout=30, env=env
    )
    assert done.returncode == 0, done.stderr
    for part in EXPECTED[name]:
        assert part in done.stdout
