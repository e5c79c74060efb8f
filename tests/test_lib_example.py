"""examples/lib_pipeline.py runs and prints what it should."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

EXPECTED = """\
rain    3
stream  3
water   3
hills   2
river   2
lines about a river:
1: The river starts as rain on the hills, and the rain finds the stream.
3: Where two rivers meet, the water from both runs on in one bed.
5: The river reaches the sea at last, and the sea sends rain to the hills.
other lines: [2, 4]
"""


@pytest.mark.timeout(60)
def test_lib_pipeline_example_prints_frequencies_and_sorted_lines() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "lib_pipeline.py")],
        capture_output=True,
        text=True,
        timeout=50,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == EXPECTED
