"""Issue 11's operators are typed: every snippet below is checked in one mypy --strict run and one pyright run.

The snippets live beside the behaviour they type (windows, retries and dead
letters, workers, a join's capacity); in the wrong ones, exactly the lines
marked ``# E`` must be errors. One run of each checker keeps the suite quick.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import test_join_capacity as capacity
from tests import test_lib_async_workers as workers
from tests import test_lib_retry as retry
from tests import test_lib_windows as windows
from tests.test_lib_typing import _marked, _mypy, _pyright, _write

#: File name: (snippet, whether pyright checks it too; see test_lib_typing's MYPY_ONLY).
SNIPPETS = {
    "ok_windows.py": (windows.TYPED_OK, True),
    "bad_windows.py": (windows.TYPED_BAD, True),
    "bad_windows_mypy.py": (windows.TYPED_BAD_MYPY_ONLY, False),
    "ok_retry.py": (retry.TYPED_OK, True),
    "bad_retry.py": (retry.TYPED_BAD, True),
    "ok_workers.py": (workers.TYPED_OK, True),
    "bad_workers.py": (workers.TYPED_BAD, True),
    "capacity.py": (capacity.TYPED, True),
}


@pytest.mark.timeout(240)
def test_the_operators_are_checked_by_mypy_strict_and_pyright(tmp_path: Path) -> None:
    files = {name: _write(tmp_path, name, body) for name, (body, _) in SNIPPETS.items()}
    assert _mypy(tmp_path, list(files.values())) == {name: _marked(f) for name, f in files.items()}
    both = [f for name, f in files.items() if SNIPPETS[name][1]]
    assert _pyright(tmp_path, both) == {f.name: _marked(f) for f in both}
