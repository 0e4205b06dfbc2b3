"""The `floatalk` command: one sub-command per job.

Exit status: 0 success, 2 a user mistake (one sentence on stderr, no traceback), 1 an
internal error (with traceback, please report it), 130 interrupted (Ctrl-C), 143 terminated
(SIGTERM, as `kill` and `timeout` send; 129 for SIGHUP). A termination signal unwinds like
Ctrl-C, so no command leaves a half-written file behind.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import signal
import sys
import threading
import traceback
from collections.abc import Iterator, Sequence

from floatalk import __version__
from floatalk.errors import Terminated, UserInputError, interrupt_status

TERMINATION_SIGNALS = ("SIGTERM", "SIGHUP")


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad command line in one sentence (and exit 2), without the usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help').\n")


# Each name is a module of floatalk.cli with an `add_parser(subparsers)` function.
SUBCOMMANDS: tuple[str, ...] = (
    "generate",
    "scene",
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


def _terminate(signum: int, frame: object) -> None:
    # Later signals are ignored while this one unwinds, so the clean-up itself is not cut short.
    for number in _termination_numbers():
        signal.signal(number, signal.SIG_IGN)
    raise Terminated(signum)


def _termination_numbers() -> list[int]:
    return [getattr(signal, name) for name in TERMINATION_SIGNALS if hasattr(signal, name)]


@contextlib.contextmanager
def termination_as_interrupt() -> Iterator[None]:
    """While the block runs, SIGTERM and SIGHUP raise `Terminated` (a KeyboardInterrupt) in the
    main thread; the previous handlers come back afterwards. Outside the main thread, nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.signal(number, _terminate) for number in _termination_numbers()}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (the console script exits with it)."""
    command = "floatalk"
    try:
        with termination_as_interrupt():
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
    except KeyboardInterrupt as exc:
        # Writers delete their temporary files as the interrupt unwinds them: nothing is left half-written.
        what = "terminated" if isinstance(exc, Terminated) else "interrupted"
        print(f"{command}: {what}; no half-written file was left.", file=sys.stderr)
        return interrupt_status(exc)
    except Exception as exc:  # noqa: BLE001 - anything else is our bug: show it in full
        # ... unless it is a write the system refused (disk full, read-only, ...) that no writer
        # reported itself: that is still one sentence naming the file.
        from floatalk.fileio import write_error

        filename = getattr(exc, "filename", None)
        error = write_error(exc, filename) if isinstance(exc, OSError) and filename else None
        if error is not None:
            print(f"{command}: error: {error}", file=sys.stderr)
            return 2
        traceback.print_exc()
        print(f"{command}: internal error (a bug in floatalk); please report the traceback above.", file=sys.stderr)
        return 1


def entry() -> None:
    """The console script: exit with `main`'s status (130 for a Ctrl-C pressed before `main` ran)."""
    try:
        code = main()
    except KeyboardInterrupt as exc:  # pressed before main's own handler was reached
        print("floatalk: interrupted; no half-written file was left.", file=sys.stderr)
        code = interrupt_status(exc)
    # The work is done and written. What is left in memory (torch's many objects above all) is the
    # OS's to free: frozen, it is skipped by the interpreter's last garbage collections, which took
    # about 0.7 s of every exit once torch was imported. Objects are still released by reference
    # counting as modules are torn down, and atexit handlers still run.
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    entry()
