"""Error types shared by the library and the command line.

`UserInputError` marks a mistake the user can fix (a bad path, an unreadable file, no face
found). The CLI prints its message as one sentence and exits with status 2; any other
exception is an internal error (status 1).
"""

from __future__ import annotations


class UserInputError(Exception):
    """A problem with what the user gave us; the message is one sentence that says what to fix."""


class WriteRefusedError(UserInputError):
    """The system refused to write a file (disk full, quota, read-only, no permission): a problem
    of the output folder, not of one input, so a batch stops at the first one."""


class CheckpointError(UserInputError):
    """A checkpoint folder or file is missing, incomplete or does not match the model."""


class Terminated(KeyboardInterrupt):
    """A termination signal (SIGTERM, SIGHUP) turned into an interrupt, so that it unwinds like
    Ctrl-C: writers delete their temporary files on the way out. `signum` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def interrupt_status(exc: KeyboardInterrupt) -> int:
    """The exit status for an interrupt: 128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM)."""
    return 128 + (exc.signum if isinstance(exc, Terminated) else 2)
