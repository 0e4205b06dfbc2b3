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
SUBCOMMANDS: tuple[str, ...] = ("generate", "demo", "preprocess", "train", "synth", "evaluate")


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
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.run(args) or 0)
    except UserInputError as exc:
        print(f"floatalk {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"floatalk {args.command}: interrupted; nothing was written.", file=sys.stderr)
        return 130
    except Exception:  # noqa: BLE001 - anything else is our bug: show it in full
        traceback.print_exc()
        print(
            f"floatalk {args.command}: internal error (a bug in floatalk); please report the traceback above.",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
