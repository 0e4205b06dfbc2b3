"""Error types shared by the library and the command line.

`UserInputError` marks a mistake the user can fix (a bad path, an unreadable file, no face
found). The CLI prints its message as one sentence and exits with status 2; any other
exception is an internal error (status 1).
"""

from __future__ import annotations


class UserInputError(Exception):
    """A problem with what the user gave us; the message is one sentence that says what to fix."""


class CheckpointError(UserInputError):
    """A checkpoint folder or file is missing, incomplete or does not match the model."""
