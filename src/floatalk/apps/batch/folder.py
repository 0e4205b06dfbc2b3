"""The output folder of a batch: one run at a time holds its lock, and the hidden temporary files
of a run that was killed are removed when the next one starts."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from floatalk.errors import UserInputError

__all__ = ["LOCK_NAME", "output_lock", "remove_partials"]

LOCK_NAME = ".floatalk-batch.lock"


@contextlib.contextmanager
def output_lock(out: Path) -> Iterator[None]:
    """Hold the output folder's lock (refused in one sentence while another batch holds it); the
    system releases it when the process ends, however it ends."""
    try:
        import fcntl
    except ImportError:  # not on POSIX: no lock
        yield
        return
    with open(out / LOCK_NAME, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise UserInputError(
                f"Another 'floatalk batch' is writing into '{out}'; wait for it or choose another --out."
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def remove_partials(out: Path, names: set[str]) -> None:
    """Delete the hidden temporary files (floatalk.fileio) that a killed run left for these outputs."""
    for path in out.iterdir():
        base, sep, _ = path.name.rpartition(".partial-")
        if sep and base.startswith(".") and base[1:] in names:
            path.unlink(missing_ok=True)
