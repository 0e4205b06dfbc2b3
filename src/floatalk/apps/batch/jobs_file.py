"""Reading a jobs file (JSON Lines or CSV, one job a line) into checked entries.

Each line names a photo (`image`), a recording (`audio`), optionally the output file (`name`)
and any options of `floatalk generate` by flag name (floatalk.apps.jobs.parse_options; paths are
taken relative to the jobs file). A line with `speakers` or `turns` is a scene of several faces
(floatalk.apps.scene_jobs.parse_scene): each speaker brings its own `audio`, or the line's `audio`
is the mixed recording its `turns` divide. Every line is checked before any model is loaded; a line that
cannot run becomes an entry with its reason, and the others go on.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from floatalk.apps.jobs import JobOptions, option_field, parse_options
from floatalk.apps.scene_jobs import SCENE_KEYS, SceneJob, is_scene, parse_scene
from floatalk.errors import UserInputError, one_line

__all__ = ["BatchEntry", "read_jobs"]

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
    scene: SceneJob | None = None  # a scene of several faces (audio: its mixed recording, or None)


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
        raise UserInputError(f"Could not read jobs file '{path}': {one_line(exc)}.") from exc
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
        raise UserInputError(f"Could not read jobs file '{path}': {one_line(exc)}.") from exc
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
            yield number, f"The line is not valid CSV ({one_line(exc)})."
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
    if (name == "timeline" and text.startswith("{")) or (name in SCENE_KEYS and text.startswith(("[", "{"))):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text
    return text


def _entry(line: int, row: dict[str, Any] | str, base: Path) -> BatchEntry:
    """A checked entry for one row (or the failed entry of a row that could not be read)."""
    from floatalk.io.image import require_file  # numpy: not needed to build the CLI's parser

    fallback = f"line-{line}.mp4"
    if isinstance(row, str):
        return BatchEntry(line, fallback, error=row)
    try:
        name = _output_name(row.get("name"), row.get("image"), line)
    except UserInputError as exc:
        return BatchEntry(line, fallback, error=str(exc))
    try:
        image = require_file(_input_path(row, "image", base), "image")
        scene = None
        if is_scene(row):
            mixed = row.get("audio") is not None
            audio = require_file(_input_path(row, "audio", base), "audio") if mixed else None
            scene = parse_scene(row, mixed_audio=mixed, base_dir=base, allow_paths=True)
        else:
            audio = require_file(_input_path(row, "audio", base), "audio")
        options = {k: v for k, v in row.items() if k not in _JOB_FIELDS + SCENE_KEYS}
        job = parse_options(options, base_dir=base, allow_paths=True)
    except UserInputError as exc:
        return BatchEntry(line, name, error=one_line(exc))
    return BatchEntry(line, name, image=image, audio=audio, job=job, scene=scene)


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
