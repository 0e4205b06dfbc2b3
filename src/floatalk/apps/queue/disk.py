"""The data folder's disk: how much room is left, whether an error means it ran out, and the one
error that says so (`StorageFullError`). The queue refuses new jobs and its workers wait while
free space is under the folder's reserve, so a full disk delays jobs instead of losing them.
"""

from __future__ import annotations

import errno
import shutil
import sqlite3
from pathlib import Path

from floatalk.errors import UserInputError

__all__ = ["StorageFullError", "free_bytes", "is_disk_full", "megabytes"]

_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
_SQLITE_FULL = 13  # SQLITE_FULL: "database or disk is full"


class StorageFullError(UserInputError):
    """The data folder's disk has too little room for what was asked (a new job, a record);
    the same request succeeds once space returns. One sentence, like every UserInputError."""


def free_bytes(folder: str | Path) -> int:
    """Bytes free to this process on the filesystem that holds `folder` (0 if it cannot be read)."""
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return 0


def megabytes(count: int) -> str:
    """A byte count in MB for a sentence ('3.2 MB')."""
    return f"{count / 1024 / 1024:.1f} MB"


def is_disk_full(exc: BaseException | None) -> bool:
    """Whether `exc` (or an exception it was raised from) means the disk or its quota is full:
    OSError ENOSPC/EDQUOT (PyAV's and python's own) or SQLite's SQLITE_FULL."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, StorageFullError):
            return True
        if isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS:
            return True
        if isinstance(exc, sqlite3.Error) and getattr(exc, "sqlite_errorcode", None) == _SQLITE_FULL:
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False
