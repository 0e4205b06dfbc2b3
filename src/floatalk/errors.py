"""Error types shared by the library and the command line.

`UserInputError` marks a mistake the user can fix (a bad path, an unreadable file, no face
found). The CLI prints its message as one sentence and exits with status 2; any other
exception is an internal error (status 1). `one_line` turns any exception into the one line a
report or a job's record shows.
"""

from __future__ import annotations

import re
from collections.abc import Callable


class UserInputError(Exception):
    """A problem with what the user gave us; the message is one sentence that says what to fix."""


class WriteRefusedError(UserInputError):
    """The system refused to write a file (disk full, quota, read-only, no permission): a problem
    of the output folder, not of one input, so a batch stops at the first one."""


class CheckpointError(UserInputError):
    """A checkpoint folder or file is missing, incomplete or does not match the model."""


class OptionError(UserInputError):
    """A bad option value, said in one sentence that each caller words its own way: the field
    name (`nfe`), a command-line flag (`--nfe`, `as_flags`) or an API key (`Option 'nfe'`).

    problem: the rest of the sentence after the option's name ("must be ... (got 0)."); it may
    name other options as `{name}` for each field in `others`."""

    def __init__(self, field: str, problem: str, others: tuple[str, ...] = ()) -> None:
        self.field, self.problem, self.others = field, problem, tuple(others)
        super().__init__(self.named())

    def named(self, subject: str | None = None, other: Callable[[str], str] = str) -> str:
        """The sentence with the option called `subject` (default its field name) and the other
        options it names called `other(field)`."""
        text = self.problem.format(**{name: other(name) for name in self.others})
        return f"{subject or self.field} {text}"

    def as_flags(self) -> UserInputError:
        """The same sentence naming command-line flags."""

        def flag(name: str) -> str:
            return "--" + name.replace("_", "-")

        return UserInputError(self.named(flag(self.field), flag))


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


class Terminated(KeyboardInterrupt):
    """A termination signal (SIGTERM, SIGHUP) turned into an interrupt, so that it unwinds like
    Ctrl-C: writers delete their temporary files on the way out. `signum` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def interrupt_status(exc: KeyboardInterrupt) -> int:
    """The exit status for an interrupt: 128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM)."""
    return 128 + (exc.signum if isinstance(exc, Terminated) else 2)
