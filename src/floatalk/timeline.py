"""An emotion and motion timeline: settings that change over the clip, smoothly.

A timeline is a list of segments, each with a start and end in seconds and any of: emotion (a
name or "auto"), e_cfg_scale, head_motion, mouth_scale, expression_scale, blink (true/false).
Frames outside every segment, and settings a segment leaves out, take the command line's (or
the `GenerateOptions`') values. Every setting becomes one value per frame, and the per-frame
values are smoothed with a moving average of `transition` seconds (default 0.4), so conditions
ramp across a boundary instead of jumping, and the frames near a boundary are marked for the
face's speed limit there (`floatalk.editing.BoundaryEase`). Emotion is an FMT condition per
frame, not an edit after the fact: a named emotion is its one-hot vector, "auto" the emotion
predicted from the speech.

    {"transition": 0.4,
     "segments": [{"start": 0.0, "end": 1.5, "emotion": "neutral"},
                  {"start": 1.5, "end": 3.0, "emotion": "sad", "e_cfg_scale": 2},
                  {"start": 3.0, "end": 4.5, "emotion": "surprise", "head_motion": 0.5}]}

Files are JSON, or YAML (.yaml / .yml) when PyYAML is installed. Letters: T frames, K emotions.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from floatalk.config import EMOTIONS, emotion_choice
from floatalk.errors import UserInputError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["FrameSettings", "Segment", "Timeline", "read_document"]

SCALES = ("e_cfg_scale", "head_motion", "mouth_scale", "expression_scale")
MAX_SCALE = 10.0
BOUNDARY_MARGIN = 2
"""Frames beyond a boundary's ramp, either side, still counted as near it."""


@dataclass(frozen=True)
class Segment:
    """One stretch of the timeline; None leaves a setting to the defaults."""

    start: float
    end: float
    emotion: str | None = None
    e_cfg_scale: float | None = None
    head_motion: float | None = None
    mouth_scale: float | None = None
    expression_scale: float | None = None
    blink: bool | None = None


@dataclass(frozen=True)
class FrameSettings:
    """Per-frame settings after smoothing: each (T,), emotion (T, K) (None: the default emotion
    everywhere and no segment changes it); near_boundary (T,) bool: the frames whose settings
    ramp from one value to another, and BOUNDARY_MARGIN frames either side."""

    emotion: np.ndarray | None
    e_cfg_scale: np.ndarray
    head_motion: np.ndarray
    mouth_scale: np.ndarray
    expression_scale: np.ndarray
    blink: np.ndarray
    near_boundary: np.ndarray


def _number(value: Any, where: str, low: float = 0.0, high: float = MAX_SCALE) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserInputError(f"Timeline {where} must be a number, got {value!r}.")
    if not low <= value <= high:
        raise UserInputError(f"Timeline {where} must be between {low:g} and {high:g}, got {value:g}.")
    return float(value)


def _segment(item: Any, where: str) -> Segment:
    """One segment of a timeline object, checked; `where` names it in errors ('segments[2]')."""
    names = {f.name for f in fields(Segment)}
    if not isinstance(item, dict):
        raise UserInputError(f"Timeline {where} must be an object with 'start' and 'end'.")
    extra = sorted(set(item) - names)
    if extra:
        raise UserInputError(
            f"Timeline {where} has an unknown field '{extra[0]}'; fields are: {', '.join(sorted(names))}."
        )
    for key in ("start", "end"):
        if key not in item:
            raise UserInputError(f"Timeline {where} needs '{key}' (seconds).")
    start = _number(item["start"], f"{where}.start", 0.0, 1e6)
    end = _number(item["end"], f"{where}.end", 0.0, 1e6)
    if end <= start:
        raise UserInputError(f"Timeline {where} ends ({end:g} s) before it starts ({start:g} s).")
    emotion = item.get("emotion")
    if emotion is not None:
        name = emotion_choice(emotion)
        if name is None:
            raise UserInputError(
                f"Timeline {where}.emotion {emotion!r} is not 'auto' or one of: {', '.join(EMOTIONS)}."
            )
        emotion = name
    values = {key: _number(item[key], f"{where}.{key}") for key in SCALES if item.get(key) is not None}
    blink = item.get("blink")
    if blink is not None and not isinstance(blink, bool):
        raise UserInputError(f"Timeline {where}.blink must be true or false, got {blink!r}.")
    return Segment(start, end, emotion, blink=blink, **values)


def read_document(path: str | os.PathLike, kind: str, title: str) -> tuple[Path, Any]:
    """(path, the parsed object) of a JSON file, or a YAML one (.yaml / .yml) when PyYAML is
    installed; a parse error is one sentence naming its line. kind: the file's kind for a missing
    file ('timeline'); title: how a sentence begins naming it ('Timeline', 'Turns file')."""
    from floatalk.io.image import require_file

    path = require_file(path, kind)
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise UserInputError(f"Reading '{path}' needs PyYAML (pip install pyyaml), or write it as JSON.") from None
        try:
            return path, yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f" at line {mark.line + 1}" if mark is not None else ""
            raise UserInputError(f"{title} '{path}' is not valid YAML{line}.") from None
    try:
        return path, json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserInputError(f"{title} '{path}' is not valid JSON: {exc.msg} at line {exc.lineno}.") from None


@dataclass(frozen=True)
class Timeline:
    """Segments in time order that do not overlap, and the transition length in seconds."""

    segments: tuple[Segment, ...]
    transition: float = 0.4

    @classmethod
    def from_dict(cls, data: Any, source: str = "timeline") -> Timeline:
        """Validate a parsed timeline object; every problem is one sentence naming the field."""
        if not isinstance(data, dict):
            raise UserInputError(f"The {source} must be an object with a 'segments' list.")
        unknown = sorted(set(data) - {"segments", "transition"})
        if unknown:
            raise UserInputError(
                f"The {source} has an unknown field '{unknown[0]}' (expected 'segments', 'transition')."
            )
        items = data.get("segments")
        if not isinstance(items, list) or not items:
            raise UserInputError(f"The {source} needs a non-empty 'segments' list.")
        transition = _number(data.get("transition", 0.4), "'transition'", 0.0, 10.0)
        segments = sorted((_segment(item, f"segments[{i}]") for i, item in enumerate(items)), key=lambda s: s.start)
        for a, b in zip(segments, segments[1:]):
            if b.start < a.end - 1e-9:
                raise UserInputError(
                    f"Timeline segments overlap: one ends at {a.end:g} s after the next starts at {b.start:g} s."
                )
        return cls(tuple(segments), transition)

    def to_dict(self) -> dict[str, Any]:
        """The timeline as the object `from_dict` reads (settings a segment leaves out omitted)."""
        segments = [{k: v for k, v in asdict(seg).items() if v is not None} for seg in self.segments]
        return {"transition": self.transition, "segments": segments}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Timeline:
        """A timeline written by `to_dict` of a checked one, rebuilt as it is (not checked again)."""
        return cls(tuple(Segment(**seg) for seg in data["segments"]), data["transition"])

    @classmethod
    def load(cls, path: str | os.PathLike) -> Timeline:
        """Read a JSON (or YAML) timeline file; a parse error names its line."""
        path, data = read_document(path, "timeline", "Timeline")
        return cls.from_dict(data, source=f"timeline '{path}'")

    @classmethod
    def coerce(cls, value: Any) -> Timeline | None:
        """None, a Timeline, a dict (the file's object) or a path -> a Timeline (or None)."""
        if value is None or isinstance(value, Timeline):
            return value
        if isinstance(value, dict):
            return cls.from_dict(value)
        if isinstance(value, (str, os.PathLike)):
            return cls.load(Path(value))
        raise UserInputError(f"A timeline must be a file, an object or a Timeline, got {type(value).__name__}.")

    def check_duration(self, seconds: float) -> None:
        """Refuse segments that start after the audio ends (a last segment may run past it)."""
        for i, seg in enumerate(self.segments):
            if seg.start >= seconds:
                raise UserInputError(
                    f"Timeline segments[{i}] starts at {seg.start:g} s, past the end of the {seconds:.2f} s audio."
                )

    def uses(self, key: str) -> bool:
        """True when some segment sets `key`."""
        return any(getattr(s, key) is not None for s in self.segments)

    def frames(self, T: int, fps: float, defaults: dict[str, Any], auto: np.ndarray) -> FrameSettings:
        """Per-frame settings for T frames at `fps`.

        defaults: the values outside segments (emotion name or 'auto', e_cfg_scale, head_motion,
        mouth_scale, expression_scale, blink); auto: (K,) the emotion predicted from the speech.
        """
        import numpy as np  # here, not at the top: parsing options stays light (`floatalk ui --help`)

        times = (np.arange(T) + 0.5) / fps
        which = np.full(T, -1)
        for i, seg in enumerate(self.segments):
            which[(times >= seg.start) & (times < seg.end)] = i

        def track(key: str) -> np.ndarray:
            values = np.full(T, float(defaults[key]))
            for i, seg in enumerate(self.segments):
                if getattr(seg, key) is not None:
                    values[which == i] = float(getattr(seg, key))
            return values

        def vector(name: str | None) -> np.ndarray:
            if name is None or name == "auto":
                return np.asarray(auto, dtype=np.float64)
            return np.eye(len(EMOTIONS))[EMOTIONS.index(name)]

        raw = {key: track(key) for key in (*SCALES, "blink")}
        emotion = None
        if self.uses("emotion"):
            emotion = np.tile(vector(defaults["emotion"]), (T, 1))
            for i, seg in enumerate(self.segments):
                if seg.emotion is not None:
                    emotion[which == i] = vector(seg.emotion)
        changes = np.zeros(T, bool)  # changes[t]: some setting differs between frames t - 1 and t
        for values in (*raw.values(), *([] if emotion is None else [emotion])):
            step = np.diff(values, axis=0) != 0
            changes[1:] |= step if step.ndim == 1 else step.any(axis=1)
        smooth = {key: self._smooth(values, fps) for key, values in raw.items()}
        if emotion is not None:
            emotion = self._smooth(emotion, fps)
        return FrameSettings(emotion=emotion, near_boundary=self._near(changes, fps), **smooth)

    def _near(self, changes: np.ndarray, fps: float) -> np.ndarray:
        """(T,) bool: the frames a change between frames b - 1 and b reaches through the moving
        average (b - (w - w // 2) .. b + w // 2 for a width of w frames), widened by BOUNDARY_MARGIN."""
        import numpy as np  # here, not at the top: parsing options stays light (`floatalk ui --help`)

        width = max(1, int(round(self.transition * fps)))
        before, after = width - width // 2 + BOUNDARY_MARGIN, width // 2 + BOUNDARY_MARGIN
        near = np.zeros(len(changes), bool)
        for b in np.flatnonzero(changes):
            near[max(0, b - before) : b + after + 1] = True
        return near

    def _smooth(self, values: np.ndarray, fps: float) -> np.ndarray:
        """Moving average over `transition` seconds (edges held), along the first axis."""
        import numpy as np  # here, not at the top: parsing options stays light (`floatalk ui --help`)

        width = int(round(self.transition * fps))
        if width < 2 or np.all(values == values[:1]):
            return values  # a constant stays exactly constant (1.0 must stay 1.0: no edit)
        kernel = np.ones(width) / width
        pad = (width // 2, width - 1 - width // 2)
        padded = np.pad(values, (pad, *([(0, 0)] * (values.ndim - 1))), mode="edge")
        if values.ndim == 1:
            return np.convolve(padded, kernel, mode="valid")
        return np.stack([np.convolve(padded[:, k], kernel, mode="valid") for k in range(values.shape[1])], axis=1)
