"""Batch generation: a jobs file (JSONL or CSV, one job a line) rendered into one output folder.

Each line names a photo (`image`), a recording (`audio`), optionally the output file (`name`)
and any options of `floatalk generate` by flag name (floatalk.apps.jobs.parse_options; paths are
taken relative to the jobs file). Every line is checked before any model is loaded; a line that
cannot run becomes a failed entry with its reason, and the others go on.

A run is resumable: an output that exists is finished (videos are written atomically), so it is
skipped; rerunning the same command does only what is left. One run holds a lock on the output
folder; stale temporary files of a run that was killed are removed when the next one starts.
The outcome of every line is written to `batch_report.json` in the output folder.

Jobs run here (`run_local`, the model loaded once) or on a Ray cluster
(`floatalk.apps.ray_runner.run_on_ray`, the model loaded once per actor). This module imports
nothing heavy at the top.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import os
import re
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from floatalk.errors import UserInputError, WriteRefusedError

if TYPE_CHECKING:
    from floatalk.apps.jobs import JobOptions
    from floatalk.pipeline import FloatPipeline
    from floatalk.progress import Progress

__all__ = [
    "EXIT_SOME_FAILED",
    "REPORT_NAME",
    "BatchEntry",
    "BatchResult",
    "Outcome",
    "read_jobs",
    "remove_partials",
    "run_batch",
    "run_entry",
    "run_local",
]

REPORT_NAME = "batch_report.json"
"""The report's file name inside the output folder."""

EXIT_SOME_FAILED = 3
"""Exit status of `floatalk batch` when at least one line failed (0: every line done or skipped)."""

LOCK_NAME = ".floatalk-batch.lock"
_VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv")
_JOB_FIELDS = ("image", "audio", "name")
_MAX_NAME = 200
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


@dataclasses.dataclass(frozen=True)
class BatchEntry:
    """One line of a jobs file: a job ready to run, or the reason it cannot run (`error`)."""

    line: int  # line number in the jobs file, from 1
    name: str  # output file name inside the output folder
    image: Path | None = None
    audio: Path | None = None
    job: JobOptions | None = None
    error: str | None = None  # one sentence; None when the job can run


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What became of one line: 'done' (rendered now), 'skipped' (its output existed), 'failed'
    (with `reason`) or 'not run' (the batch was interrupted first)."""

    line: int
    name: str
    status: str
    reason: str | None = None
    seconds: float | None = None  # wall-clock time of the render
    detail: str | None = None  # the traceback of an internal error

    def to_json(self) -> dict[str, Any]:
        """The report's record of this line (keys without a value are left out)."""
        record = {"line": self.line, "output": self.name, "status": self.status}
        if self.reason is not None:
            record["reason"] = self.reason
        if self.seconds is not None:
            record["seconds"] = round(self.seconds, 2)
        if self.detail is not None:
            record["traceback"] = self.detail
        return record


# -- reading the jobs file ---------------------------------------------------------------------


def read_jobs(path: str | os.PathLike) -> list[BatchEntry]:
    """The jobs of a JSON Lines (.jsonl, .ndjson) or CSV (.csv) file, one per line, in order.

    A line that cannot run (bad JSON, a missing file, an unknown option, ...) becomes an entry
    with its `error`. Raises UserInputError (one sentence) when the file itself cannot be used:
    missing, of another kind, without jobs, or with two lines writing the same output."""
    path = Path(os.fspath(path)).absolute()
    if not path.is_file():
        raise UserInputError(f"Jobs file '{path}' does not exist (or is not a file).")
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".ndjson", ".csv"):
        raise UserInputError(f"Jobs file '{path}' must be JSON Lines (.jsonl) or CSV (.csv), one job per line.")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserInputError(f"Could not read jobs file '{path}': {_one_line(exc)}.") from exc
    rows = _csv_rows(text, path) if suffix == ".csv" else _jsonl_rows(text)
    base = path.parent
    entries = [_entry(line, row, base) for line, row in rows]
    if not entries:
        raise UserInputError(f"Jobs file '{path}' holds no jobs.")
    _check_unique(entries)
    return entries


def _jsonl_rows(text: str) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line number, the object or the reason it is not one); blank lines and '#' lines skipped."""
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            value = json.loads(stripped)
        except json.JSONDecodeError as exc:
            yield number, f"The line is not valid JSON ({exc.msg} at column {exc.colno})."
            continue
        if not isinstance(value, dict):
            yield number, f"The line must be a JSON object with 'image' and 'audio' (got {type(value).__name__})."
            continue
        yield number, value


def _csv_rows(text: str, path: Path) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line number, the row as an object or the reason it cannot be one); the first row names
    the columns; empty cells are absent; option cells become numbers or booleans by the option's type."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        return
    except csv.Error as exc:
        raise UserInputError(f"Could not read jobs file '{path}': {_one_line(exc)}.") from exc
    missing = [c for c in ("image", "audio") if c not in header]
    if missing:
        raise UserInputError(f"Jobs file '{path}' needs a first row naming the columns, with 'image' and 'audio'.")
    while True:
        number = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield number, f"The line is not valid CSV ({_one_line(exc)})."
            continue
        if not any(c.strip() for c in cells):
            continue
        if len(cells) > len(header):
            yield number, f"The line has {len(cells)} cells but the first row names {len(header)} columns."
            continue
        row: dict[str, Any] = {}
        for key, cell in zip(header, cells):
            if cell.strip():
                row[key] = cell.strip() if key in _JOB_FIELDS else _cell_value(key, cell.strip())
        yield number, row


def _cell_value(key: str, text: str) -> Any:
    """A CSV cell as the value its option takes; left as text when it does not convert, so that
    parse_options names the option and the expected kind."""
    from floatalk.apps.jobs import option_field

    name, kind = option_field(key)
    try:
        if kind is bool and text.lower() in _TRUE + _FALSE:
            return text.lower() in _TRUE
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
    except ValueError:
        return text
    if name == "timeline" and text.startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text
    return text


def _entry(line: int, row: dict[str, Any] | str, base: Path) -> BatchEntry:
    """A checked entry for one row (or the failed entry of a row that could not be read)."""
    from floatalk.apps.jobs import parse_options
    from floatalk.io.image import require_file

    fallback = f"line-{line}.mp4"
    if isinstance(row, str):
        return BatchEntry(line, fallback, error=row)
    try:
        name = _output_name(row.get("name"), row.get("image"), line)
    except UserInputError as exc:
        return BatchEntry(line, fallback, error=str(exc))
    try:
        image = require_file(_input_path(row, "image", base), "image")
        audio = require_file(_input_path(row, "audio", base), "audio")
        options = {k: v for k, v in row.items() if k not in _JOB_FIELDS}
        job = parse_options(options, base_dir=base, allow_paths=True)
    except UserInputError as exc:
        return BatchEntry(line, name, error=_one_line(exc))
    return BatchEntry(line, name, image=image, audio=audio, job=job)


def _input_path(row: dict[str, Any], key: str, base: Path) -> Path:
    value = row.get(key)
    if value is None:
        raise UserInputError(f"The job has no '{key}'.")
    if not isinstance(value, str) or not value.strip():
        raise UserInputError(f"'{key}' must be a file name (got {value!r}).")
    path = Path(value.strip()).expanduser()
    return path if path.is_absolute() else base / path


def _output_name(name: Any, image: Any, line: int) -> str:
    """The output file's name: the given `name` (.mp4 added unless it ends in .mp4, .mov or .mkv),
    or the image's stem and the line number; always a plain file name inside the output folder."""
    if name is None:
        stem = Path(image).stem if isinstance(image, str) else ""
        stem = re.sub(r"[^\w.-]+", "_", stem).strip("._-")[:_MAX_NAME] or "job"
        return f"{stem}-{line}.mp4"
    if not isinstance(name, str) or not name.strip():
        raise UserInputError(f"'name' must be a file name (got {name!r}).")
    name = name.strip()
    bad = "/" in name or "\\" in name or name.startswith(".") or any(ord(c) < 32 for c in name)
    if bad or len(name) > _MAX_NAME:
        raise UserInputError(
            f"'name' must be a plain file name, not starting with a dot, of at most {_MAX_NAME} characters "
            f"(got {name!r})."
        )
    if not name.lower().endswith(_VIDEO_SUFFIXES):
        name += ".mp4"
    return name


def _check_unique(entries: Sequence[BatchEntry]) -> None:
    """Refuse (one sentence) two runnable lines that would write the same output file (compared
    without case, as a case-insensitive file system would)."""
    seen: dict[str, int] = {}
    for entry in entries:
        if entry.error is not None:  # it writes nothing
            continue
        key = entry.name.casefold()
        if key in seen:
            raise UserInputError(
                f"Lines {seen[key]} and {entry.line} would both write '{entry.name}'; give each job its own 'name'."
            )
        seen[key] = entry.line


def _one_line(exc: BaseException) -> str:
    """An exception's message on one line: a UserInputError's sentence whole, any other message
    without its final full stop (the caller wraps it in a sentence of its own)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if isinstance(exc, UserInputError) else text.rstrip(".")


# -- running -----------------------------------------------------------------------------------


def run_entry(
    pipe: FloatPipeline, entry: BatchEntry, out_dir: str | os.PathLike, progress: Progress | None = None
) -> Outcome:
    """Render one runnable entry into `out_dir`; a user error or a bug becomes a failed Outcome
    (KeyboardInterrupt and a write the system refused go through, leaving no file behind)."""
    from floatalk.apps.jobs import run_job

    started = time.perf_counter()
    try:
        run_job(pipe, entry.image, entry.audio, Path(out_dir) / entry.name, entry.job, progress=progress)
    except WriteRefusedError:
        raise  # the output folder's problem (a full disk, ...): every next line would fail the same way
    except UserInputError as exc:
        return Outcome(entry.line, entry.name, "failed", _one_line(exc))
    except Exception as exc:  # noqa: BLE001 - one job's bug must not stop the batch; the report keeps its traceback
        reason = f"Internal error ({type(exc).__name__}: {_one_line(exc)}); please report it."
        return Outcome(entry.line, entry.name, "failed", reason, detail=traceback.format_exc())
    return Outcome(entry.line, entry.name, "done", seconds=time.perf_counter() - started)


Runner = Callable[[list[BatchEntry], Path, Callable[[Outcome], None]], None]
"""runner(entries, out_dir, finished): run every entry, calling finished(outcome) as each ends."""


def run_local(checkpoint: str = "bundled", device: str = "cpu", progress: Progress | None = None) -> Runner:
    """A runner that renders the entries one after another in this process, the model loaded
    once (only when there is something to render). progress: the current job's stages."""
    from floatalk.assets import resolve_model

    folder = resolve_model(checkpoint)

    def runner(entries: list[BatchEntry], out_dir: Path, finished: Callable[[Outcome], None]) -> None:
        if not entries:
            return
        import torch

        from floatalk.pipeline import FloatPipeline, reuse_freed_memory

        if device == "cuda" and not torch.cuda.is_available():
            raise UserInputError("--device cuda was asked for, but no CUDA GPU is available here; use --device cpu.")
        if device == "cpu":
            reuse_freed_memory()
        if progress is not None:
            progress("loading model", 0, 0)
        pipe = FloatPipeline.from_pretrained(folder, device=device)
        for entry in entries:
            finished(run_entry(pipe, entry, out_dir, progress))

    return runner


@dataclasses.dataclass
class BatchResult:
    """The outcome of every line of a batch, in the jobs file's order."""

    jobs_file: Path
    out_dir: Path
    outcomes: list[Outcome]
    complete: bool  # False when the run was interrupted
    elapsed: float

    def count(self, status: str) -> int:
        """How many lines ended with `status`."""
        return sum(o.status == status for o in self.outcomes)

    @property
    def failed(self) -> list[Outcome]:
        """The failed lines."""
        return [o for o in self.outcomes if o.status == "failed"]

    @property
    def exit_status(self) -> int:
        """0 when every line is done or skipped, EXIT_SOME_FAILED otherwise."""
        return EXIT_SOME_FAILED if self.failed else 0

    def to_json(self) -> dict[str, Any]:
        """The report: counts and every line's outcome."""
        statuses = ("done", "skipped", "failed", "not run")
        return {
            "jobs_file": str(self.jobs_file),
            "out": str(self.out_dir),
            "complete": self.complete,
            "elapsed_seconds": round(self.elapsed, 2),
            "counts": {s: self.count(s) for s in statuses if s != "not run" or self.count(s)},
            "jobs": [o.to_json() for o in self.outcomes],
        }

    def summary(self) -> list[str]:
        """Lines for the terminal: the counts with their line numbers, then each failure's reason."""
        lines = [f"{len(self.outcomes)} jobs in {self.elapsed:.1f} s:"]
        for status in ("done", "skipped", "not run"):
            numbers = [o.line for o in self.outcomes if o.status == status]
            if numbers:
                lines.append(f"  {status:8} {len(numbers):4}  ({_ranges(numbers)})")
        failed = self.failed
        if failed:
            lines.append(f"  {'failed':8} {len(failed):4}:")
            lines += [f"    line {o.line} ({o.name}): {o.reason}" for o in failed]
        lines.append(f"report: {self.out_dir / REPORT_NAME}")
        return lines


def _ranges(numbers: list[int]) -> str:
    """'lines 1-3, 7' for [1, 2, 3, 7]."""
    parts: list[str] = []
    start = prev = numbers[0]
    for n in [*numbers[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    return ("line " if len(numbers) == 1 else "lines ") + ", ".join(parts)


def run_batch(
    jobs_file: str | os.PathLike,
    out_dir: str | os.PathLike,
    runner: Runner,
    *,
    progress: Progress | None = None,
    entries: list[BatchEntry] | None = None,
) -> BatchResult:
    """Run the jobs of `jobs_file` into `out_dir` (made if missing) with `runner`, skipping the
    outputs that exist, and write the report there atomically. progress('jobs', done, total)
    counts the lines as they end. On KeyboardInterrupt the report (with the lines not run) is
    written and the interrupt goes on; finished videos are kept, nothing is half-written."""
    from floatalk.fileio import atomic_write, output_folder

    started = time.perf_counter()
    jobs_file = Path(os.fspath(jobs_file)).absolute()
    entries = read_jobs(jobs_file) if entries is None else entries
    out = output_folder(Path(os.fspath(out_dir)).absolute())
    outcomes: dict[int, Outcome] = {}
    complete = False

    def finished(outcome: Outcome) -> None:
        outcomes[outcome.line] = outcome
        if progress is not None:
            progress("jobs", len(outcomes), len(entries))

    with _lock(out):
        remove_partials(out, {e.name for e in entries})
        pending: list[BatchEntry] = []
        for entry in entries:
            if entry.error is not None:
                finished(Outcome(entry.line, entry.name, "failed", entry.error))
            elif (out / entry.name).exists():
                finished(Outcome(entry.line, entry.name, "skipped"))
            else:
                pending.append(entry)
        try:
            runner(pending, out, finished)
            complete = True
        finally:
            rows = [outcomes.get(e.line) or Outcome(e.line, e.name, "not run") for e in entries]
            result = BatchResult(jobs_file, out, rows, complete, time.perf_counter() - started)
            text = json.dumps(result.to_json(), indent=2) + "\n"
            atomic_write(out / REPORT_NAME, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return result


@contextlib.contextmanager
def _lock(out: Path) -> Iterator[None]:
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
