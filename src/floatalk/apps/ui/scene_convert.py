"""The Scene tab's values as a scene job, in plain functions that need no Gradio: the voice rows
(a recording, its face, its emotion) and the turns table become the options mapping of the API
(`speakers`, `turns`, `others` beside generate's options, docs/SCENES.md) with the recordings
by part name (`voice1`, ...), so the page's scene is checked and queued exactly as a request's
(`floatalk.apps.scene_uploads`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from floatalk.apps.scene_jobs import VOICE_PARTS
from floatalk.apps.ui.convert import blank_cell, cell_number, table_rows
from floatalk.errors import UserInputError

__all__ = ["PAGE_VOICES", "TURN_COLUMNS", "face_value", "scene_from_controls", "turns_from_rows"]

PAGE_VOICES = 6
"""How many voice rows the Scene tab shows (the API takes up to len(VOICE_PARTS))."""

TURN_COLUMNS: tuple[str, ...] = ("start", "end", "face")
"""The columns of the turns table: a turn's fields, seconds and the face's number (or x,y,w,h)."""


def face_value(value: Any, where: str) -> int | list[float] | str:
    """A face as the page's field gives it (a number, '2' or 'x,y,w,h') as the API writes it: a
    number, or a box [x, y, w, h]; text that is neither is left for `floatalk.scene.parse_face` to
    refuse in one sentence. An empty field is a UserInputError beginning with `where`."""
    if blank_cell(value):
        raise UserInputError(f"{where} needs a face number (1 = leftmost, as the preview numbers them).")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.isdigit():
        return int(text)
    if "," in text:
        try:
            return [float(part) for part in text.split(",")]
        except ValueError:
            return text
    return text


def turns_from_rows(table: Any) -> list[dict[str, Any]] | None:
    """The turns list `[{start, end, face}, ...]` of the table's filled rows (`TURN_COLUMNS`), or
    None when every row is empty; a row missing a cell, or with a word where a number belongs, is
    one sentence naming the row (counted from 1). Overlaps and the rest are `Turns`' to refuse."""
    turns = []
    for number, cells in enumerate(table_rows(table, "turns table"), start=1):
        values = dict(zip(TURN_COLUMNS, cells))
        if all(blank_cell(v) for v in values.values()):
            continue
        for column in TURN_COLUMNS:
            if blank_cell(values.get(column)):
                raise UserInputError(f"Turns row {number} needs its {column}.")
        start = cell_number(values["start"], number, "start", "Turns")
        end = cell_number(values["end"], number, "end", "Turns")
        turns.append({"start": start, "end": end, "face": face_value(values["face"], f"Turns row {number}")})
    return turns or None


def _speakers(
    voices: Sequence[tuple[str | os.PathLike | None, Any, str | None]], mixed: bool
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """(the speakers as the API writes them, their recordings by part name) of the voice rows."""
    speakers: list[dict[str, Any]] = []
    files: dict[str, str] = {}
    for row, (audio, face, emotion) in enumerate(voices, start=1):
        chosen = (emotion or "auto").strip().lower()
        if not audio and (not mixed or chosen == "auto"):
            continue
        speaker: dict[str, Any] = {"face": face_value(face, f"Voice {row}")}
        if audio:
            part = VOICE_PARTS[row - 1]  # the row's own number, so that a sentence about 'voice3' means row 3
            files[part] = os.fspath(audio)
            speaker["audio"] = part
        if chosen != "auto":
            speaker["emotion"] = chosen
        speakers.append(speaker)
    return speakers, files


def scene_from_controls(
    voices: Sequence[tuple[str | os.PathLike | None, Any, str | None]],
    *,
    mixed: str | os.PathLike | None = None,
    turns: Any = None,
    others: str = "still",
    detector: str = "auto",
    seed: float | int | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """(the scene job's options mapping, its recordings by part name) from the tab's controls.

    voices: a row per speaker, (its recording or None, its face, its emotion or None/'auto'); a
    row with a recording is a speaker with its row's voice part (row 3: 'voice3'); with a `mixed` recording a row
    without one sets its face's emotion. turns: the turns table (`turns_from_rows`); others:
    'still' or 'idle'; detector: how the photo's faces are found; seed: None keeps the default."""
    speakers, files = _speakers(voices, mixed is not None)
    options: dict[str, Any] = {"others": others, "detector": detector}
    if speakers:
        options["speakers"] = speakers
    rows = turns_from_rows(turns)
    if rows is not None:
        options["turns"] = rows
    if seed is not None and not blank_cell(seed):
        options["seed"] = int(seed) if isinstance(seed, float) and seed.is_integer() else seed
    if not files and mixed is None:
        raise UserInputError("Add a recording to a voice row (and its face), or a mixed recording with its turns.")
    return options, files
