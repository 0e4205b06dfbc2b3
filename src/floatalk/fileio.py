"""The one way floatalk writes a file atomically: into a hidden temporary file beside the
target, renamed onto it only when writing succeeded, so a failure or Ctrl-C never leaves a
half-written file behind (nor damages an existing file of that name); the one way an output
folder is made ready (`output_folder`); and the one sentence for a write the system refused
(`write_error`: a full disk, a quota, a read-only file system, no permission).

A temporary file (`.NAME.partial-XXXXXXXX`) is locked (flock) by the process writing it for as
long as it exists. A process killed outright (SIGKILL, power loss) cannot delete its own, but
the system drops its lock: the next temporary file made in that folder removes every unlocked
one of ours it finds there (`remove_stale_partials`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from floatalk.errors import UserInputError, WriteRefusedError

__all__ = [
    "atomic_path",
    "atomic_write",
    "check_writable",
    "commit_temporary",
    "discard_temporary",
    "output_folder",
    "remove_stale_partials",
    "temporary_beside",
    "write_error",
    "writing",
]

try:
    import fcntl
except ImportError:  # not POSIX: temporaries are not locked, and stale ones cannot be told apart
    fcntl = None

_PARTIAL = ".partial-"
# mkstemp's names: PREFIX + 8 characters of [a-z0-9_] + suffix; anything else is not ours.
_OURS = re.compile(r"\..+\.partial-[a-z0-9_]{8}(\.[A-Za-z0-9]+)?")
_held: dict[Path, int] = {}  # this process's temporaries -> the descriptor holding their lock

# errno -> what the user is told; these are the write failures a user can do something about.
_WRITE_ERRORS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EFBIG: "the file is larger than the file system allows",
}


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _write_errno(exc: BaseException, folder: Path | None) -> int | None:
    """The errno of a refused write behind `exc`, or None when it is something else.

    Writers report a full disk in their own ways: an OSError (PyAV, Pillow, plain files), a
    short write (numpy), a RuntimeError with the system's words (safetensors) or without them
    (torch.save, libsndfile's 'System error'). The exception chain is searched for an OSError's
    errno, then the messages for the system's words; any other failure while writing is a full
    disk when the folder has no space left (asked before the temporary file is deleted).
    """
    seen: BaseException | None = exc
    messages = []
    while seen is not None and len(messages) < 8:
        if isinstance(seen, OSError) and seen.errno in _WRITE_ERRORS:
            return seen.errno
        messages.append(str(seen))
        seen = seen.__cause__ or seen.__context__
    text = " ".join(messages)
    for code in _WRITE_ERRORS:
        if os.strerror(code) in text:
            return code
    if folder is not None:
        with contextlib.suppress(OSError):
            if os.statvfs(folder).f_bavail == 0:
                return errno.ENOSPC
    return None


def write_error(exc: BaseException, target: str | os.PathLike, folder: Path | None = None) -> WriteRefusedError | None:
    """A one-sentence WriteRefusedError (a UserInputError) naming `target` when `exc` is a write
    the system refused (disk full, quota, read-only, permission), else None (a UserInputError
    already says what is wrong; an interrupt is no error). folder: where the bytes were going
    (default `target`'s folder)."""
    if isinstance(exc, UserInputError) or not isinstance(exc, Exception):
        return None
    target = Path(os.fspath(target))
    code = _write_errno(exc, folder if folder is not None else target.parent)
    if code is None:
        return None
    return WriteRefusedError(f"Cannot write '{target}': {_WRITE_ERRORS[code]}.")


@contextlib.contextmanager
def writing(target: str | os.PathLike, folder: Path | None = None) -> Iterator[None]:
    """Turn a refused write inside the block into `write_error`'s sentence about `target`."""
    try:
        yield
    except Exception as exc:
        error = write_error(exc, target, folder)
        if error is None:
            raise
        raise error from exc


def _lock(fd: int, wait: bool) -> bool:
    """Take the exclusive lock on `fd`; False when another process holds it (wait=False) or the
    file system has no locks."""
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def remove_stale_partials(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files of ours in `folder` whose writer is gone (unlocked); returns them.

    A file is ours when its name has the form `.NAME.partial-XXXXXXXX` that `temporary_beside`
    gives; a live writer (this process included) holds its lock, so its file is left alone. Nothing is done where locks
    do not exist (not POSIX)."""
    removed: list[Path] = []
    if fcntl is None:
        return removed
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if _PARTIAL not in entry.name or not _OURS.fullmatch(entry.name):
            continue
        path = Path(entry.path)
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            continue
        try:
            if _lock(fd, wait=False):
                with contextlib.suppress(OSError):
                    path.unlink()
                    removed.append(path)
        finally:
            os.close(fd)
    return removed


def temporary_beside(target: Path, suffix: str = "") -> Path:
    """Create an empty hidden file in `target`'s folder (same file system, so the rename is
    atomic), locked by this process until `commit_temporary` or `discard_temporary`. Stale
    temporaries of killed runs in that folder are removed first. A refused write is one sentence."""
    target = Path(target)
    folder = target.parent
    with writing(target):
        remove_stale_partials(folder)
        while True:
            fd, name = tempfile.mkstemp(prefix=f".{target.name}{_PARTIAL}", suffix=suffix, dir=folder)
            tmp = Path(name)
            _lock(fd, wait=True)  # where the file system has no locks, the file is simply not protected
            # Another run's clean-up may have taken the file for stale between mkstemp and the lock.
            if _same_file(fd, tmp):
                _held[tmp] = fd
                return tmp
            os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except OSError:
        return False


def _release(tmp: Path) -> None:
    fd = _held.pop(tmp, None)
    if fd is not None:
        os.close(fd)


def commit_temporary(tmp: Path, target: Path) -> None:
    """Give `tmp` the permissions a new file would have, then rename it onto `target`."""
    with writing(target):
        os.chmod(tmp, 0o666 & ~_current_umask())
        os.replace(tmp, target)
    _release(tmp)


def discard_temporary(tmp: Path) -> None:
    """Delete a temporary file of `temporary_beside` (it may already be gone)."""
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    _release(tmp)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside `target`; on a normal exit it replaces `target`, on any
    exception (KeyboardInterrupt included) it is deleted and `target` is left as it was. A
    write the system refuses (disk full, read-only, ...) becomes one sentence naming `target`."""
    target = Path(target)
    tmp = temporary_beside(target, suffix)
    try:
        with writing(target):
            yield tmp
        commit_temporary(tmp, target)
    except BaseException:
        discard_temporary(tmp)
        raise


def atomic_write(target: str | os.PathLike, write: Callable[[Path], Any], suffix: str = "") -> None:
    """Call write(tmp) on a temporary file beside `target`, then rename it onto `target`."""
    with atomic_path(target, suffix) as tmp:
        write(tmp)


def check_writable(path: str | os.PathLike) -> Path:
    """`path` as a Path if a file can be written there (not a folder; its folder exists and is
    writable), else a one-sentence UserInputError. Commands check their outputs with it first."""
    path = Path(os.fspath(path))
    folder = path.parent
    shown = str(folder) if str(folder) else "."
    if path.is_dir():
        raise UserInputError(f"Cannot write '{path}': it is an existing folder.")
    if not folder.exists():
        raise UserInputError(f"Cannot write '{path}': folder '{shown}' does not exist.")
    if not folder.is_dir():
        raise UserInputError(f"Cannot write '{path}': '{shown}' is not a folder.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserInputError(f"Cannot write '{path}': folder '{shown}' is not writable.")
    return path


def output_folder(path: str | os.PathLike) -> Path:
    """`path` as a folder that exists and can be written into (made if missing), or a
    one-sentence UserInputError saying why not."""
    folder = Path(os.fspath(path))
    if folder.exists() and not folder.is_dir():
        raise UserInputError(f"Output folder '{folder}' is a file, not a folder.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserInputError(f"Cannot make output folder '{folder}': {exc.strerror or exc}.") from exc
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserInputError(f"Output folder '{folder}' is not writable.")
    return folder
