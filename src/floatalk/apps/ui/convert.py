"""The page's values as the job's options, in plain functions that need no Gradio: the timeline
table becomes the `{"segments": [...]}` object of docs/MOTION.md, the controls become the
options mapping of the API (`floatalk.apps.jobs.parse_options` keys), an error sentence is put
in the page's words and a job's record in one line for the page.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from floatalk.apps.jobs import JobOptions, parse_options
from floatalk.config import EMOTIONS, emotion_choice
from floatalk.errors import UserInputError

if TYPE_CHECKING:
    from floatalk.apps.queue import JobRecord

__all__ = [
    "LABELS",
    "TIMELINE_COLUMNS",
    "blank_cell",
    "cell_number",
    "describe",
    "options_from_controls",
    "page_words",
    "table_rows",
    "timeline_from_rows",
]

TIMELINE_COLUMNS: tuple[str, ...] = (
    "start",
    "end",
    "emotion",
    "e_cfg_scale",
    "head_motion",
    "mouth_scale",
    "expression_scale",
    "blink",
)
"""The columns of the timeline table, in order: a segment's fields (docs/MOTION.md)."""

_NUMBER_COLUMNS = ("start", "end", "e_cfg_scale", "head_motion", "mouth_scale", "expression_scale")
_TRUE = ("yes", "true", "on", "1", "y")
_FALSE = ("no", "false", "off", "0", "n")


def blank_cell(value: Any) -> bool:
    """An empty table cell: None, blank text or NaN (how Gradio and pandas leave an empty cell)."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    return isinstance(value, float) and math.isnan(value)


def cell_number(value: Any, row: int, column: str, table: str = "Timeline") -> float:
    """A table cell as a finite number; else one sentence naming the `table`, its row and column."""
    wrong = f"{table} row {row}: {column} must be a number (got {value!r})."
    if isinstance(value, bool):
        raise UserInputError(wrong)
    try:
        number = float(value.strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise UserInputError(wrong) from None
    if not math.isfinite(number):
        raise UserInputError(f"{table} row {row}: {column} must be a finite number (got {value!r}).")
    return number


def _cell_bool(value: Any, row: int) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise UserInputError(f"Timeline row {row}: blink must be yes or no, or left empty (got {value!r}).")


def table_rows(table: Any, name: str = "timeline") -> list[list[Any]]:
    """The table's rows as lists, from a list of lists, a pandas DataFrame or Gradio's value dict
    (name: the table's name in the sentence refusing anything else)."""
    if table is None:
        return []
    if hasattr(table, "values") and hasattr(table, "columns"):  # a pandas DataFrame
        return [list(row) for row in table.values.tolist()]
    if isinstance(table, Mapping) and "data" in table:
        table = table["data"]
    if not isinstance(table, Sequence) or isinstance(table, str):
        raise UserInputError(f"The {name} must be a table of rows.")
    rows = []
    for row in table:
        if not isinstance(row, Sequence) or isinstance(row, str):
            raise UserInputError(f"The {name} must be a table of rows.")
        rows.append(list(row))
    return rows


def timeline_from_rows(table: Any, transition: float | None = None) -> dict[str, Any] | None:
    """The timeline object `{"segments": [...]}` of the table's filled rows, or None when every row
    is empty. Columns are `TIMELINE_COLUMNS`; an empty cell leaves that setting to the controls;
    transition: the ramp between segments in seconds (None: the timeline's default).

    A row that cannot be a segment is a UserInputError naming its row (counted from 1), e.g. a
    missing start, a word where a number belongs, an unknown emotion, segments that overlap."""
    from floatalk.timeline import Timeline

    segments: list[dict[str, Any]] = []
    row_numbers: list[int] = []
    for number, cells in enumerate(table_rows(table), start=1):
        if len(cells) > len(TIMELINE_COLUMNS):
            extra = cells[len(TIMELINE_COLUMNS) :]
            if not all(blank_cell(c) for c in extra):
                raise UserInputError(
                    f"Timeline row {number} has {len(cells)} cells; the columns are: {', '.join(TIMELINE_COLUMNS)}."
                )
        values = dict(zip(TIMELINE_COLUMNS, cells))
        if all(blank_cell(v) for v in values.values()):
            continue
        segment: dict[str, Any] = {}
        for column in ("start", "end"):
            if blank_cell(values.get(column)):
                raise UserInputError(f"Timeline row {number} needs a {column} time in seconds.")
        for column, value in values.items():
            if blank_cell(value):
                continue
            if column in _NUMBER_COLUMNS:
                segment[column] = cell_number(value, number, column)
            elif column == "blink":
                segment[column] = _cell_bool(value, number)
            else:
                emotion = emotion_choice(str(value))
                if emotion is None:
                    raise UserInputError(
                        f"Timeline row {number}: emotion must be 'auto' or one of {', '.join(EMOTIONS)} "
                        f"(got {value!r})."
                    )
                segment[column] = emotion
        segments.append(segment)
        row_numbers.append(number)
    if not segments:
        return None
    timeline: dict[str, Any] = {"segments": segments}
    if transition is not None:
        timeline["transition"] = transition  # Timeline checks it: a number of seconds from 0 to 10
    try:
        Timeline.from_dict(timeline)
    except UserInputError as exc:  # name the table's rows, not the object's list indices
        message = re.sub(r"segments\[(\d+)\]", lambda m: f"row {row_numbers[int(m.group(1))]}", str(exc))
        raise UserInputError(message) from None
    return timeline


def options_from_controls(
    *,
    emotion: str = "auto",
    head_motion: float = 1.0,
    mouth_scale: float = 1.0,
    expression_scale: float = 1.0,
    blink: bool = True,
    a_cfg_scale: float = 2.0,
    e_cfg_scale: float = 1.0,
    seed: float | int | None = None,
    crop: bool = True,
    timeline: Any = None,
    transition: float | None = None,
    blink_from_video: bool = False,
    pose_video: bool = False,
) -> JobOptions:
    """The job options that the page's controls set, read once (`floatalk.apps.jobs.parse_options`,
    the API's keys, kept as `given`), so a bad value is one UserInputError in the page's words
    before anything is queued.

    seed: None (an empty box) keeps generate's default; timeline: the table's rows; transition:
    the timeline's ramp between segments in seconds (None: the timeline's default, 0.4);
    blink_from_video: blinks from the head-motion video too; pose_video: whether the page has
    such a video (the file itself goes beside the options, `submit_files`)."""
    options: dict[str, Any] = {
        "emotion": (emotion or "auto").strip().lower(),
        "head_motion": head_motion,
        "mouth_scale": mouth_scale,
        "expression_scale": expression_scale,
        "blink": bool(blink),
        "a_cfg_scale": a_cfg_scale,
        "e_cfg_scale": e_cfg_scale,
        "crop": bool(crop),
    }
    if seed is not None and not blank_cell(seed):
        options["seed"] = seed
    segments = timeline_from_rows(timeline, None if blank_cell(transition) else transition)
    if segments is not None:
        options["timeline"] = segments
    if blink_from_video:
        options["blink_from_video"] = True
    try:
        return parse_options(options, pose_video=pose_video)
    except UserInputError as exc:
        raise UserInputError(page_words(str(exc))) from None


_STAGE_LABELS = {
    "start": "starting",
    "emotion": "reading the emotion",
    "audio": "audio features",
    "motion": "sampling motion",
    "frames": "decoding frames",
}


def describe(record: JobRecord) -> str:
    """One line for the page about where a job stands."""
    if record.state == "queued":
        return f"Job {record.id}: waiting in the queue."
    if record.state == "running" and getattr(record, "cancel_requested", False):
        return f"Job {record.id}: cancelling (it stops within a window of motion)."
    if record.state == "running":
        stage = _STAGE_LABELS.get(record.stage or "", record.stage or "running")
        return f"Job {record.id}: {stage}."  # the progress bar shows how far
    if record.state == "done":
        elapsed = ""
        if record.started is not None and record.finished is not None:
            elapsed = f" in {record.finished - record.started:.1f} s"
        return f"Job {record.id}: done{elapsed}."
    if record.state == "cancelled":
        return f"Job {record.id}: cancelled."
    return f"Job {record.id}: failed: {record.error or 'no reason was given'}"


_FLAG_WORDS = (
    ("pass --no-crop", "turn off 'Crop to the face'"),
    ("The 'pose_video' upload", "The head-motion video"),
    (
        "Option 'blink_from_video' needs a pose video (the file part 'pose_video').",
        "Blinks from the video need a head-motion video: add one, or untick 'Blinks from the video'.",
    ),
)
"""How an error names a command-line flag or an API field, and what the page calls it instead."""


LABELS = {
    "emotion": "Emotion",
    "crop": "Crop to the face",
    "head_motion": "Head motion",
    "mouth_scale": "Mouth",
    "expression_scale": "Expression",
    "blink": "Blink",
    "pose_video": "Head-motion video",
    "blink_from_video": "Blinks from the video",
    "a_cfg_scale": "Audio guidance",
    "e_cfg_scale": "Emotion guidance",
    "seed": "Seed",
    "timeline": "Timeline",
}
"""The page's label of each option it sets (the layout's controls are made with these)."""


def page_words(message: str) -> str:
    """An error sentence in the page's words: a control's label where it names a flag or an
    option (`Option 'head_motion'` -> `'Head motion'`)."""
    for flag, words in _FLAG_WORDS:
        message = message.replace(flag, words)
    return re.sub(r"Option '(\w+)'", lambda m: f"'{LABELS.get(m.group(1), m.group(1))}'", message)
