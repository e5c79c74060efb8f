"""Crash test for checkpointed runs: kill a run with SIGKILL at random moments, resume it each time.

The short form (the suite) kills it at 5 moments; the long form, by hand::

    MIMO_CRASH_KILLS=25 python -m pytest tests/test_checkpoint_crash.py -q -s

The seed is printed (``MIMO_CRASH_SEED`` replays it). At the end the file,
the counter and the collected list must be those of an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests import crash_graph

SCRIPT = Path(__file__).parent / "crash_graph.py"
KILLS = int(os.environ.get("MIMO_CRASH_KILLS", "5"))


def _start(tmp: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), str(tmp / "run.db"), str(tmp / "out.txt"), str(tmp / "result.json")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _checkpoint_number(db: Path) -> int:
    import sqlite3

    if not db.exists():
        return 0
    con = sqlite3.connect(db)
    try:
        row = con.execute("SELECT number FROM mimo_checkpoint").fetchone()
    except sqlite3.OperationalError:
        return 0
    finally:
        con.close()
    return int(row[0]) if row else 0


@pytest.mark.timeout(60 + 6 * KILLS)
def test_a_run_killed_and_resumed_again_and_again_ends_as_an_uninterrupted_one(tmp_path: Path) -> None:
    seed = int(os.environ.get("MIMO_CRASH_SEED", random.randrange(2**32)))
    print(f"crash test: {KILLS} kill points, MIMO_CRASH_SEED={seed}")
    rng = random.Random(seed)
    killed = 0
    resumed_from = []
    while killed < KILLS:
        before = _checkpoint_number(tmp_path / "run.db")
        proc = _start(tmp_path)
        try:
            proc.wait(timeout=rng.uniform(0.15, 0.9))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            killed += 1
            resumed_from.append(before)
            continue
        # It finished before the kill: the file is marked done, start again from nothing.
        assert proc.returncode == 0, proc.stderr.read().decode() if proc.stderr else ""
        (tmp_path / "result.json").unlink()
    proc = _start(tmp_path)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    text, counter, lines = crash_graph.expected()
    result = json.loads((tmp_path / "result.json").read_text())
    assert (tmp_path / "out.txt").read_text() == text
    assert result["counter"] == counter
    assert result["collected"] == lines
    # The kills did land on runs that had checkpoints to resume from.
    assert any(n > 0 for n in resumed_from), resumed_from
    print(f"crash test: killed {killed} times; checkpoints resumed from: {resumed_from}")
