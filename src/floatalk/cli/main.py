"""The `floatalk` command: one sub-command per job.

Exit status: 0 success, 2 a user mistake (one sentence on stderr, no traceback), 1 an
internal error (with traceback, please report it), 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from collections.abc import Sequence

from floatalk import __version__
from floatalk.errors import UserInputError


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad command line in one sentence (and exit 2), without the usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help').\n")


# Each name is a module of floatalk.cli with an `add_parser(subparsers)` function.
SUBCOMMANDS: tuple[str, ...] = (
    "generate",
    "live",
    "reenact",
    "demo",
    "batch",
    "preprocess",
    "train",
    "synth",
    "eval_lipsync",
    "evaluate",
    "serve",
    "ui",
)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="floatalk",
        description="Audio-driven talking portraits (FLOAT): one photo + speech in, a talking video out.",
    )
    parser.add_argument("--version", action="version", version=f"floatalk {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    for name in SUBCOMMANDS:
        importlib.import_module(f"floatalk.cli.{name}").add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (the console script exits with it)."""
    command = "floatalk"
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        command = f"floatalk {args.command}" if getattr(args, "command", None) else command
        if not getattr(args, "run", None):
            parser.print_help(sys.stderr)
            return 2
        return int(args.run(args) or 0)
    except UserInputError as exc:
        print(f"{command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # Writers delete their temporary files as the interrupt unwinds them: nothing is left half-written.
        print(f"{command}: interrupted; no half-written file was left.", file=sys.stderr)
        return 130
    except Exception:  # noqa: BLE001 - anything else is our bug: show it in full
        traceback.print_exc()
        print(f"{command}: internal error (a bug in floatalk); please report the traceback above.", file=sys.stderr)
        return 1


def entry() -> None:
    """The console script: exit with `main`'s status (130 for a Ctrl-C pressed before `main` ran)."""
    try:
        code = main()
    except KeyboardInterrupt:  # pressed before main's own handler was reached
        print("floatalk: interrupted; no half-written file was left.", file=sys.stderr)
        code = 130
    sys.exit(code)


if __name__ == "__main__":
    entry()
