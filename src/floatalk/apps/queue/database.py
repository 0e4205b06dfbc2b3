"""The job store's SQLite file: one connection per thread (WAL, synchronous=NORMAL), immediate
transactions that wake waiters after each commit, and a full disk turned into `StorageFullError`
with the transaction rolled back, so the next transaction starts clean once space returns.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from floatalk.apps.queue.disk import StorageFullError, free_bytes, is_disk_full, megabytes

__all__ = ["Database", "update"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL,
    stage TEXT,
    progress REAL NOT NULL DEFAULT 0,
    error TEXT,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    updated REAL NOT NULL,
    options TEXT NOT NULL,
    checked TEXT,
    image TEXT NOT NULL,
    audio TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, seq);
"""


class Database:
    """The jobs table in `path`, made if missing (StorageFullError when the disk has no room for it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self.changed = threading.Condition()  # notified after every commit
        try:
            db = self.connection()
            db.executescript(SCHEMA)
            if "checked" not in {row[1] for row in db.execute("PRAGMA table_info(jobs)")}:
                db.execute("ALTER TABLE jobs ADD COLUMN checked TEXT")  # a data folder of an earlier version
        except (sqlite3.Error, OSError) as exc:
            if is_disk_full(exc) or free_bytes(path.parent) == 0:
                raise self.full() from None
            raise

    def full(self) -> StorageFullError:
        """The error of a write the disk had no room for, naming the folder and what is free."""
        free = megabytes(free_bytes(self.path.parent))
        return StorageFullError(f"The data folder {self.path.parent} is out of disk space ({free} free).")

    def connection(self) -> sqlite3.Connection:
        """This thread's connection."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            self._local.db = db
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: commits survive a crash of the process
            db.execute("PRAGMA busy_timeout=30000")
        return db

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any error (a COMMIT that failed too); waiters
        are woken after a commit. A full disk raises StorageFullError."""
        db = self.connection()
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            finally:
                if db.in_transaction:
                    db.execute("ROLLBACK")
        except (sqlite3.Error, OSError) as exc:
            if is_disk_full(exc):
                raise self.full() from exc
            raise
        with self.changed:
            self.changed.notify_all()

    def close(self) -> None:
        """Close this thread's connection (others close when their threads end)."""
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None


def update(db: sqlite3.Connection, job_id: str, **values: Any) -> None:
    """Set columns of one job's row; its `updated` time grows strictly with every change, so
    waiting for a change after a given time never misses one."""
    sets = ", ".join(f"{k} = ?" for k in values)
    db.execute(
        f"UPDATE jobs SET {sets}{', ' if sets else ''}updated = MAX(?, updated + 0.000001) WHERE id = ?",
        (*values.values(), time.time(), job_id),
    )
