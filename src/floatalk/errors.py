"""Error types shared by the library and the command line.

`UserInputError` marks a mistake the user can fix (a bad path, an unreadable file, no face
found). The CLI prints its message as one sentence and exits with status 2; any other
exception is an internal error (status 1).
"""

from __future__ import annotations

from collections.abc import Callable


class UserInputError(Exception):
    """A problem with what the user gave us; the message is one sentence that says what to fix."""


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
