"""The one way floatalk writes a file atomically: into a hidden temporary file beside the
target, renamed onto it only when writing succeeded, so a failure or Ctrl-C never leaves a
half-written file behind (nor damages an existing file of that name); and the one way an output
folder is made ready (`output_folder`).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["atomic_path", "atomic_write", "commit_temporary", "output_folder", "temporary_beside"]


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def temporary_beside(target: Path, suffix: str = "") -> Path:
    """Create an empty hidden file in `target`'s folder (same file system, so the rename is atomic)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.partial-", suffix=suffix, dir=target.parent)
    os.close(fd)
    return Path(tmp)


def commit_temporary(tmp: Path, target: Path) -> None:
    """Give `tmp` the permissions a new file would have, then rename it onto `target`."""
    os.chmod(tmp, 0o666 & ~_current_umask())
    os.replace(tmp, target)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside `target`; on a normal exit it replaces `target`, on any
    exception (KeyboardInterrupt included) it is deleted and `target` is left as it was."""
    target = Path(target)
    tmp = temporary_beside(target, suffix)
    try:
        yield tmp
        commit_temporary(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(target: str | os.PathLike, write: Callable[[Path], Any], suffix: str = "") -> None:
    """Call write(tmp) on a temporary file beside `target`, then rename it onto `target`."""
    with atomic_path(target, suffix) as tmp:
        write(tmp)


def output_folder(path: str | os.PathLike) -> Path:
    """`path` as a folder that exists and can be written into (made if missing), or a
    one-sentence UserInputError saying why not."""
    from floatalk.errors import UserInputError

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
