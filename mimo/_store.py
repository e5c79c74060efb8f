"""Where checkpoints are kept: a small store interface and its SQLite form.

A store holds one checkpoint per run (the latest); writing a new one
replaces the old one atomically, so a crash at any moment leaves either the
old checkpoint or the new one, never a mix. :class:`SQLiteStore` (stdlib
``sqlite3``, one file) is the default; anything with the methods of
:class:`CheckpointStore` can be passed as ``run(checkpoint=...)`` instead.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import sqlite3


@dataclass(frozen=True)
class SavedCheckpoint:
    """A checkpoint as stored: the graph's fingerprint, its number, whether the run finished, and its bytes."""

    fingerprint: str
    number: int
    done: bool
    data: bytes


@runtime_checkable
class CheckpointStore(Protocol):
    """What a checkpoint backend provides. Calls come one at a time, maybe from a worker thread."""

    def load(self) -> SavedCheckpoint | None:
        """The latest checkpoint, or None if there is none."""
        ...

    def save(self, fingerprint: str, number: int, data: bytes) -> None:
        """Replace the latest checkpoint with this one, atomically."""
        ...

    def mark_done(self) -> None:
        """Mark the latest checkpoint as that of a finished run (the next run starts afresh)."""
        ...

    def close(self) -> None:
        """Release the store's resources; idempotent."""
        ...


class SQLiteStore:
    """A checkpoint store in one SQLite file; each checkpoint is written in one transaction."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path: str = os.fspath(path)
        # A save runs in a worker thread; closing waits for it (closing under it would crash sqlite3).
        self._lock = threading.Lock()
        # Used from one worker thread at a time (the run's writes never overlap).
        import sqlite3  # here: most runs take no checkpoint, and sqlite3 costs a few ms to import

        self._db: sqlite3.Connection | None = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS mimo_checkpoint ("
            "id INTEGER PRIMARY KEY CHECK (id = 1), fingerprint TEXT NOT NULL, number INTEGER NOT NULL, "
            "done INTEGER NOT NULL, saved_at REAL NOT NULL, data BLOB NOT NULL)"
        )

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError(f"checkpoint store {self.path!r} is closed")
        return self._db

    def load(self) -> SavedCheckpoint | None:
        query = "SELECT fingerprint, number, done, data FROM mimo_checkpoint WHERE id = 1"
        with self._lock:
            row = self._conn().execute(query).fetchone()
        if row is None:
            return None
        return SavedCheckpoint(row[0], int(row[1]), bool(row[2]), bytes(row[3]))

    def save(self, fingerprint: str, number: int, data: bytes) -> None:
        with self._lock:
            db = self._conn()
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute(
                    "INSERT OR REPLACE INTO mimo_checkpoint (id, fingerprint, number, done, saved_at, data) "
                    "VALUES (1, ?, ?, 0, ?, ?)",
                    (fingerprint, number, time.time(), data),
                )
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def mark_done(self) -> None:
        with self._lock:
            self._conn().execute("UPDATE mimo_checkpoint SET done = 1 WHERE id = 1")

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


def open_store(spec: object) -> CheckpointStore:
    """A store from ``run(checkpoint=...)``: a file name (SQLite) or a :class:`CheckpointStore`."""
    if isinstance(spec, str | os.PathLike):
        return SQLiteStore(spec)
    if isinstance(spec, CheckpointStore):
        return spec
    raise TypeError(
        f"checkpoint must be a file name (str or os.PathLike, for a SQLite store) or a CheckpointStore, not {spec!r}"
    )
