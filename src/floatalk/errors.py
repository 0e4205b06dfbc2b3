"""Error types shared by the library and the command line.

`UserInputError` marks a mistake the user can fix (a bad path, an unreadable file, no face
found). The CLI prints its message as one sentence and exits with status 2; any other
exception is an internal error (status 1). `one_line` turns any exception into the one line a
report or a job's record shows.
"""

from __future__ import annotations

import re


class UserInputError(Exception):
    """A problem with what the user gave us; the message is one sentence that says what to fix."""


class CheckpointError(UserInputError):
    """A checkpoint folder or file is missing, incomplete or does not match the model."""


_COLOUR_CODES = re.compile(r"\x1b\[[0-9;]*m")


def one_line(exc: BaseException, *, with_type: bool = False, first_line: bool = False) -> str:
    """An exception's message on one line, for a report, a job's record or an answer.

    Terminal colour codes are removed and white space is folded; first_line: only the message's
    first non-empty line (messages that carry a remote traceback, as Ray's do). A UserInputError's
    sentence is kept whole; any other message loses its final full stop (the caller wraps it in
    a sentence of its own) and, with_type, is led by the type's name ("RuntimeError: boom"). A
    message that is empty becomes the type's name.
    """
    text = _COLOUR_CODES.sub("", str(exc))
    if first_line:
        text = next((line for line in text.splitlines() if line.strip()), "")
    text = " ".join(text.split())
    if isinstance(exc, UserInputError):
        return text or type(exc).__name__
    text = text.rstrip(".")
    name = type(exc).__name__
    if not text:
        return name
    return f"{name}: {text}" if with_type else text
