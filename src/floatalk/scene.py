"""A scene's cast: which faces of a group photo speak, with what voice and settings, and who
speaks when. Plain checked values, parsed once where they enter (the command line, a job, Python)
and trusted by `floatalk.render.render_scene`.

* A face is named by its number, 1, 2, ... from the left as `--face` counts the faces the detector
  finds, or by a box `x,y,w,h` in the photo's pixels (a face the detector misses): `parse_face`.
* A `Speaker` is a face, its own recording (or none, when a mixed recording and turns are given)
  and its own settings: any of `SPEAKER_OPTIONS`, fields of `GenerateOptions` checked against
  their ranges (`speaker_options`; `option_text` reads `1:emotion=happy` from the command line).
* `Turns` say who speaks when in a mixed recording: a JSON or YAML list of
  `{"start": 0.0, "end": 3.2, "face": 1}` (seconds; a face number or `[x, y, w, h]`), or an object
  with that list under "turns". Turns may not overlap nor pass the recording's end. Faces count
  from 1 as `--face` does, unless the file names a face 0: then it counts from 0, the leftmost
  being 0, and each of its numbers means the next face in `--face`'s counting.
* `listening_timeline` turns a face's speaking spans into the timeline that closes its mouth
  while it listens, easing in and out at the turns' edges, merged with any timeline of the user's.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from floatalk.errors import OptionError, UserInputError
from floatalk.options import GenerateOptions, check_value, field_kinds
from floatalk.timeline import Segment, Timeline, read_document

__all__ = [
    "LISTEN_EASE",
    "OTHERS",
    "SPEAKER_OPTIONS",
    "FaceBox",
    "Speaker",
    "Turn",
    "Turns",
    "face_label",
    "listening_timeline",
    "option_text",
    "parse_face",
    "speaker_options",
]

SPEAKER_OPTIONS = (
    "emotion",
    "a_cfg_scale",
    "e_cfg_scale",
    "nfe",
    "method",
    "seed",
    "crop_scale",
    "head_motion",
    "mouth_scale",
    "expression_scale",
    "blink",
)
"""The generation options a speaker may set for its own face (the others are the scene's)."""

OTHERS = ("still", "idle")
"""What the faces nobody names do: stay as the photo shows them, or move as listeners do."""

LISTEN_EASE = 0.2
"""Seconds over which a face's mouth closes after its turn and opens again before its next one."""

MAX_FACE = 1000


@dataclass(frozen=True)
class FaceBox:
    """A face given by its box in the photo's pixels: top-left corner (x, y), width and height."""

    x: float
    y: float
    w: float
    h: float

    def __str__(self) -> str:
        return ",".join(f"{v:g}" for v in (self.x, self.y, self.w, self.h))

    @property
    def box(self) -> tuple[float, float, float, float]:
        return (self.x, self.y, self.w, self.h)


Face = int | FaceBox


def _box_numbers(values: Sequence[Any], where: str, shown: str) -> FaceBox:
    if len(values) != 4:
        raise UserInputError(f"{where} '{shown}' must be a face number or a box x,y,w,h (four numbers).")
    numbers = []
    for v in values:
        if isinstance(v, str):
            try:
                v = float(v)
            except ValueError:
                raise UserInputError(f"{where} '{shown}' must be a face number or a box x,y,w,h of numbers.") from None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise UserInputError(f"{where} '{shown}' must be a face number or a box x,y,w,h of numbers.")
        numbers.append(float(v))
    x, y, w, h = numbers
    if w <= 0 or h <= 0:
        raise UserInputError(f"{where} box '{shown}' needs a positive width and height (x,y,w,h).")
    return FaceBox(x, y, w, h)


def parse_face(value: Any, where: str = "Face") -> Face:
    """A face number (1 = leftmost) or a FaceBox from an int, a text ('2' or 'x,y,w,h'), a list of
    four numbers or a FaceBox; anything else is one sentence beginning with `where`."""
    if isinstance(value, FaceBox):
        return value
    if isinstance(value, (list, tuple)):
        return _box_numbers(value, where, ",".join(map(str, value)))
    if isinstance(value, str):
        text = value.strip()
        if "," in text:
            return _box_numbers(text.split(","), where, text)
        try:
            value = int(text)
        except ValueError:
            raise UserInputError(f"{where} '{text}' must be a face number (1 = leftmost) or a box x,y,w,h.") from None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserInputError(f"{where} {value!r} must be a face number (1 = leftmost) or a box x,y,w,h.")
    if not 1 <= value <= MAX_FACE:
        raise UserInputError(f"{where} {value} is not a face number: faces are numbered from 1, the leftmost.")
    return value


def face_label(face: Face) -> str:
    """'face 2' or 'the face at 10,20,80,80', for sentences."""
    return f"face {face}" if isinstance(face, int) else f"the face at {face}"


def speaker_options(values: Mapping[str, Any] | None, face: Face | None = None) -> dict[str, Any]:
    """A speaker's own settings checked against their fields' ranges: a new dict of `SPEAKER_OPTIONS`
    names to values. An unknown name or a bad value is one sentence naming the face."""
    who = f" for {face_label(face)}" if face is not None else ""
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise UserInputError(f"The options{who} must be a mapping of option names to values.")
    checked = {}
    for name, value in values.items():
        if name not in SPEAKER_OPTIONS:
            raise UserInputError(
                f"'{name}' is not an option a speaker can set{who}; they are: {', '.join(SPEAKER_OPTIONS)}."
            )
        try:
            checked[name] = check_value(GenerateOptions, name, value)
        except OptionError as exc:
            raise UserInputError(exc.named(f"{name}{who}")) from None
    return checked


_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def option_text(text: str) -> tuple[Face, str, Any]:
    """'FACE:NAME=VALUE' from the command line (e.g. '2:emotion=happy', '10,20,80,80:mouth_scale=0.5')
    -> (face, name, value as the option's type); the value is checked by `speaker_options`."""
    head, colon, setting = text.rpartition(":")
    name, equals, raw = setting.partition("=")
    if not colon or not equals or not head.strip() or not name.strip():
        raise UserInputError(f"A speaker option must read FACE:NAME=VALUE (e.g. 1:emotion=happy), got '{text}'.")
    face = parse_face(head, "The speaker option's face")
    name, raw = name.strip().replace("-", "_"), raw.strip()
    if name not in SPEAKER_OPTIONS:
        raise UserInputError(
            f"'{name}' is not an option a speaker can set (in '{text}'); they are: {', '.join(SPEAKER_OPTIONS)}."
        )
    kind, _ = field_kinds(GenerateOptions)[name]
    value: Any = raw
    if kind is bool:
        if raw.lower() not in _TRUE + _FALSE:
            raise UserInputError(f"{name} for {face_label(face)} must be true or false (got '{raw}').")
        value = raw.lower() in _TRUE
    elif kind in (int, float):
        try:
            value = kind(raw)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise UserInputError(f"{name} for {face_label(face)} must be {what} (got '{raw}').") from None
    return face, name, value


@dataclass(frozen=True)
class Speaker:
    """A face that speaks: which face, its own recording (a path or a (N,) float array at 16 kHz;
    None when a mixed recording and turns are given) and its own settings (`SPEAKER_OPTIONS`)."""

    face: Face
    audio: Any = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def checked(self) -> Speaker:
        """The same speaker with its face parsed and its options checked (UserInputError)."""
        face = parse_face(self.face)
        return Speaker(face, self.audio, speaker_options(self.options, face))


@dataclass(frozen=True)
class Turn:
    """One face speaking from `start` to `end` seconds of a mixed recording."""

    start: float
    end: float
    face: Face


def _is_number(value: Any) -> bool:
    """True for a face number written as a number or as text ('2')."""
    if isinstance(value, str):
        return value.strip().lstrip("-").isdigit()
    return isinstance(value, (int, float)) and not isinstance(value, bool) and float(value).is_integer()


def _is_zero(value: Any) -> bool:
    return _is_number(value) and int(float(value)) == 0


def _seconds(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise UserInputError(f"{where} must be a number of seconds, at least 0 (got {value!r}).")
    return float(value)


@dataclass(frozen=True)
class Turns:
    """Who speaks when: turns in time order, none overlapping another."""

    turns: tuple[Turn, ...]

    @classmethod
    def from_data(cls, data: Any, source: str = "turns list") -> Turns:
        """Check a parsed turns object (a list, or an object with a 'turns' list); every problem is
        one sentence naming the turn."""
        if isinstance(data, dict):
            unknown = sorted(set(data) - {"turns"})
            if unknown:
                raise UserInputError(f"The {source} has an unknown field '{unknown[0]}' (expected 'turns').")
            data = data.get("turns")
        if not isinstance(data, list) or not data:
            raise UserInputError(f"The {source} must be a non-empty list of turns {{start, end, face}}.")
        turns = []
        names = {f.name for f in fields(Turn)}
        # Faces count from 1 as --face does; a file that names face 0 counts from 0 (as lists in
        # code do), so each of its numbers is one more in --face's counting.
        from_zero = any(isinstance(item, dict) and _is_zero(item.get("face")) for item in data)
        for i, item in enumerate(data):
            where = f"In the {source}, turn {i + 1}"
            if not isinstance(item, dict):
                raise UserInputError(f"{where} must be an object with 'start', 'end' and 'face'.")
            extra = sorted(set(item) - names)
            if extra:
                raise UserInputError(f"{where} has an unknown field '{extra[0]}'; fields are: end, face, start.")
            missing = [k for k in ("start", "end", "face") if k not in item]
            if missing:
                raise UserInputError(f"{where} needs '{missing[0]}'.")
            start = _seconds(item["start"], f"{where}'s start")
            end = _seconds(item["end"], f"{where}'s end")
            if end <= start:
                raise UserInputError(f"{where} ends ({end:g} s) before it starts ({start:g} s).")
            face = item["face"]
            if from_zero and _is_number(face):
                face = int(float(face)) + 1
            turns.append(Turn(start, end, parse_face(face, f"{where}'s face")))
        turns.sort(key=lambda t: t.start)
        for a, b in zip(turns, turns[1:]):
            if b.start < a.end - 1e-9:
                raise UserInputError(
                    f"Turns overlap: {face_label(a.face)} speaks until {a.end:g} s but {face_label(b.face)} "
                    f"starts at {b.start:g} s."
                )
        return cls(tuple(turns))

    @classmethod
    def load(cls, path: str | os.PathLike) -> Turns:
        """Read a JSON (or YAML) turns file; a parse error names its line."""
        path, data = read_document(path, "turns", "Turns file")
        return cls.from_data(data, source=f"turns file '{path}'")

    @classmethod
    def coerce(cls, value: Any) -> Turns:
        """A Turns, a parsed list or object, or a file's path -> Turns."""
        if isinstance(value, Turns):
            return value
        if isinstance(value, (list, dict)):
            return cls.from_data(value)
        if isinstance(value, (str, os.PathLike)):
            return cls.load(value)
        raise UserInputError(f"Turns must be a file, a list or a Turns, got {type(value).__name__}.")

    def faces(self) -> list[Face]:
        """Every face that speaks, in the order of its first turn."""
        seen: list[Face] = []
        for turn in self.turns:
            if turn.face not in seen:
                seen.append(turn.face)
        return seen

    def spans(self, face: Face) -> list[tuple[float, float]]:
        """(start, end) seconds of each turn of `face`."""
        return [(t.start, t.end) for t in self.turns if t.face == face]

    def check_duration(self, seconds: float, slack: float = 0.04) -> None:
        """Refuse a turn that ends past the recording's end (by more than `slack` seconds)."""
        for turn in self.turns:
            if turn.end > seconds + slack:
                raise UserInputError(
                    f"The turn of {face_label(turn.face)} from {turn.start:g} s to {turn.end:g} s passes the end "
                    f"of the {seconds:.2f} s recording."
                )


def _listening_spans(speaking: Sequence[tuple[float, float]], seconds: float, half: float) -> list[tuple[float, float]]:
    """(start, end) seconds in which a face that speaks in `speaking` listens, stopping `half` a
    transition short of its turns (not at the scene's own start and end)."""
    spans = sorted((max(0.0, a), min(seconds, b)) for a, b in speaking if b > 0 and a < seconds)
    listening = []
    cursor = 0.0
    for a, b in [*spans, (seconds, seconds)]:
        lo = cursor if cursor <= 0 else cursor + half
        hi = a if a >= seconds else a - half
        if hi > lo + 1e-9:
            listening.append((lo, hi))
        cursor = max(cursor, b)
    return listening


def listening_timeline(
    speaking: Sequence[tuple[float, float]],
    seconds: float,
    base: Timeline | None = None,
    ease: float = LISTEN_EASE,
) -> Timeline | None:
    """The timeline of a face that speaks in `speaking` (start, end) seconds of a `seconds`-long
    scene: mouth_scale 0 wherever it listens, on top of `base` (the user's timeline, whose settings
    hold elsewhere; its transition is used instead of `ease` when given).

    The mouth closes over the transition after a turn ends and opens over it before the next one
    starts (the listening segments stop half a transition short of the turns, and the timeline's
    moving average of one transition does the rest), so a speaker's whole turn has its mouth.
    None when the face never listens and there is no `base`."""
    transition = base.transition if base is not None else ease
    listening = _listening_spans(speaking, seconds, transition / 2)
    user = list(base.segments) if base is not None else []
    edges = [v for span in listening for v in span] + [v for s in user for v in (s.start, s.end)]
    cuts = sorted({0.0, seconds, *edges})
    segments = []
    for a, b in zip(cuts, cuts[1:]):
        mid = (a + b) / 2
        own = next((s for s in user if s.start <= mid < s.end), None)
        quiet = any(lo <= mid < hi for lo, hi in listening)
        if own is None and not quiet:
            continue
        values = {f.name: getattr(own, f.name) for f in fields(Segment)} if own is not None else {}
        values.update(start=a, end=b)
        if quiet:
            values["mouth_scale"] = 0.0
        segments.append(Segment(**values))
    if not segments:  # the face speaks throughout and the user set nothing
        return None
    return Timeline(tuple(segments), transition)
