"""Options as frozen dataclasses whose fields carry their own help: one source for the
library's defaults, the command line's flags and the docs.

A field made with `option(default, "help", ...)` becomes the flag `--field-name` (underscores
become dashes). The type comes from the annotation: `bool` fields are on/off flags
(`--name` / `--no-name`), `int | None` style fields accept a number and default to None.
A field whose default is itself an options dataclass (`option(LoopSettings(lr=2e-3), "training
loop")`) adds that class's flags as an argument group, with the defaults of that instance; its
help is the group's title. This module imports nothing heavy, so building a parser stays fast
(`floatalk --help`).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import types
import typing
from collections.abc import Sequence
from typing import Any

from floatalk.config import EMOTIONS, ODE_METHODS

__all__ = ["GenerateOptions", "add_flags", "flag_name", "from_args", "option", "option_fields"]


def option(
    default: Any,
    help: str,
    *,
    metavar: str | None = None,
    choices: Sequence[Any] | None = None,
    flag: str | None = None,
    cli: bool = True,
    lower: bool = False,
    required: bool = False,
) -> Any:
    """A dataclass field with the metadata `add_flags` turns into a command-line flag.

    help: one phrase for `--help` (the default is appended); metavar, choices: as in argparse;
    flag: the flag's name when it is not `--field-name`; cli=False keeps the field off the
    command line (set from Python only); lower: lower-case the given text (names of choices);
    required: the command line must give the flag (its `default` then serves Python callers only).
    """
    meta = {"help": help, "metavar": metavar, "choices": choices, "flag": flag, "cli": cli, "lower": lower}
    meta["required"] = required
    return dataclasses.field(default=default, metadata={"floatalk": meta})


def option_fields(cls: type) -> list[dataclasses.Field]:
    """The fields of dataclass `cls` that are command-line flags."""
    return [f for f in dataclasses.fields(cls) if f.metadata.get("floatalk", {}).get("cli", False)]


def flag_name(f: dataclasses.Field) -> str:
    """'--a-cfg-scale' for field a_cfg_scale (or the field's own `flag`)."""
    return f.metadata["floatalk"]["flag"] or "--" + f.name.replace("_", "-")


def _base_type(cls: type, f: dataclasses.Field) -> tuple[type, bool]:
    """(the annotation's type without None, whether None is allowed)."""
    hints = typing.get_type_hints(cls)
    hint = hints[f.name]
    args = typing.get_args(hint)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0], True
    return hint, False


def _show_default(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _is_group(value: Any) -> bool:
    """Whether a field's default is an options dataclass instance (its fields become a flag group)."""
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


def add_flags(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    exclude: Sequence[str] = (),
    defaults: Any = None,
) -> None:
    """Add one flag per option field of dataclass `cls` (except those named in `exclude`); a field
    whose default is an options dataclass adds that class's flags as a group. `defaults`: an
    instance of `cls` whose values are the flags' defaults (default: the fields' own)."""
    for f in option_fields(cls):
        if f.name in exclude:
            continue
        meta = f.metadata["floatalk"]
        default = f.default if defaults is None else getattr(defaults, f.name)
        if _is_group(default):
            group = parser.add_argument_group(meta["help"]) if isinstance(parser, argparse.ArgumentParser) else parser
            add_flags(group, type(default), exclude, default)
            continue
        kind, _ = _base_type(cls, f)
        name = flag_name(f)
        helptext = meta["help"]
        if kind is bool:
            parser.add_argument(
                name, dest=f.name, action=argparse.BooleanOptionalAction, default=default, help=helptext
            )
            continue
        required = meta["required"]
        if default is not None and default != "" and not required and "(default" not in helptext:
            helptext = f"{helptext} (default {_show_default(default)})"
        convert = str.lower if meta["lower"] else kind
        parser.add_argument(
            name,
            dest=f.name,
            type=convert,
            default=default,
            required=required,
            metavar=meta["metavar"] or (None if meta["choices"] else f.name.upper()),
            choices=meta["choices"],
            help=helptext,
        )


def _values(cls: type, args: argparse.Namespace, defaults: Any = None) -> dict[str, Any]:
    """The values of `cls`'s option fields that the parsed flags give (a group: a copy of its
    default instance with its flags' values)."""
    values = {}
    for f in option_fields(cls):
        default = f.default if defaults is None else getattr(defaults, f.name)
        if _is_group(default):
            values[f.name] = dataclasses.replace(default, **_values(type(default), args, default))
        elif hasattr(args, f.name):
            values[f.name] = getattr(args, f.name)
    return values


def from_args(cls: type, args: argparse.Namespace, **overrides: Any) -> Any:
    """Build `cls` from the parsed flags (fields not on the command line keep their defaults;
    a group field is its default instance with the flags' values)."""
    values = _values(cls, args)
    values.update(overrides)
    return cls(**values)


# ----------------------------------------------------------------------------------------------
# generation

MAX_MOTION_SCALE = 10.0


@dataclasses.dataclass(frozen=True)
class GenerateOptions:
    """How a video is generated from one photo and one recording: the settings shared by
    `FloatPipeline.__call__`, `FloatPipeline.stream`, `floatalk.render_video` and the flags of
    `floatalk generate` (each field is the flag of the same name)."""

    emotion: str | None = option(
        "auto",
        "emotion of the face: 'auto' predicts it from the speech; a name redirects it",
        choices=("auto", *EMOTIONS),
        lower=True,
    )
    a_cfg_scale: float = option(2.0, "audio guidance: higher follows the speech more strongly", metavar="S")
    e_cfg_scale: float = option(1.0, "emotion guidance on top of audio: higher exaggerates the emotion", metavar="S")
    nfe: int = option(10, "ODE budget per 2 s window: Euler runs N-1 steps, as in the release", metavar="N")
    method: str = option("euler", "ODE solver; midpoint and rk4 spend the same N-1 evaluations", choices=ODE_METHODS)
    seed: int = option(15, "seed of the initial noise: same seed, same video", metavar="N")
    crop: bool = option(
        True,
        "crop a square of 1.6x the largest face found (default); --no-crop animates the whole photo, "
        "letterboxed to a square with black bars (never stretched)",
    )
    crop_scale: float = option(1.6, "side of the face crop in face-box sides (the release's framing)", metavar="S")
    face: int | None = option(
        None,
        "which face to animate when the photo holds several, numbered 1, 2, ... from the left (1 is the leftmost; "
        "default: the largest)",
        metavar="N",
    )
    detector: str = option(
        "auto",
        "face detector: mesh (MediaPipe's face mesh), haar (OpenCV's cascade, frontal faces only) or auto (the mesh)",
        choices=("auto", "mesh", "haar"),
        lower=True,
    )
    batch_size: int = option(8, "frames decoded per decoder pass; larger is faster and uses more memory", metavar="N")
    head_motion: float = option(
        1.0,
        "head motion: 0 holds the photo's pose while the lips still move, 1 as generated, above 1 amplified",
        metavar="S",
    )
    mouth_scale: float = option(1.0, "lip motion amplitude: 0 closes the mouth, above 1 exaggerates", metavar="S")
    expression_scale: float = option(1.0, "amplitude of brows and eyes: 0 holds the photo's expression", metavar="S")
    blink: bool = option(True, "blink as generated (default); --no-blink holds the eyes' openness")
    timeline: str | None = option(
        None,
        "JSON (or YAML) file of segments that change emotion, guidance and motion over time "
        "(docs/MOTION.md); in Python also a dict or a floatalk.editing.Timeline",
        metavar="FILE",
    )
    pose_video: str | None = option(
        None,
        "take the head's motion from this video of any person; lips and expression follow the audio",
        metavar="VIDEO",
    )
    blink_from_video: bool = option(False, "with --pose-video, take the blinks from the video too")

    def validate(self, as_flags: bool = False) -> GenerateOptions:
        """Raise UserInputError (one sentence) for a value the pipeline cannot use; returns self.

        as_flags: name the options as command-line flags (`--nfe`) instead of fields (`nfe`)."""
        from floatalk.errors import UserInputError

        def name(field: str) -> str:
            return "--" + field.replace("_", "-") if as_flags else field

        emotion = self.emotion.strip().lower() if isinstance(self.emotion, str) else self.emotion
        if emotion is not None and emotion not in ("auto", *EMOTIONS):
            raise UserInputError(
                f"{name('emotion')} must be 'auto' or one of {', '.join(EMOTIONS)} (got {self.emotion!r})."
            )
        for field in ("a_cfg_scale", "e_cfg_scale"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise UserInputError(f"{name(field)} must be a finite number (got {value!r}).")
        for field, low in (("nfe", 2), ("batch_size", 1)):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise UserInputError(f"{name(field)} must be an integer of at least {low} (got {value!r}).")
        if self.method not in ODE_METHODS:
            raise UserInputError(f"{name('method')} must be one of {', '.join(ODE_METHODS)} (got {self.method!r}).")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise UserInputError(f"{name('seed')} must be an integer (got {self.seed!r}).")
        scale = self.crop_scale
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0.5 <= scale <= 4:
            raise UserInputError(f"{name('crop_scale')} must be a number from 0.5 to 4 (got {scale!r}).")
        if self.face is not None and (isinstance(self.face, bool) or not isinstance(self.face, int) or self.face < 1):
            raise UserInputError(f"{name('face')} must be a face number of at least 1 (got {self.face!r}).")
        if self.detector not in ("auto", "mesh", "haar"):
            raise UserInputError(f"{name('detector')} must be auto, mesh or haar (got {self.detector!r}).")
        for field in ("head_motion", "mouth_scale", "expression_scale"):
            value = getattr(self, field)
            ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
            if not ok or not 0 <= value <= MAX_MOTION_SCALE:
                raise UserInputError(f"{name(field)} must be a number from 0 to {MAX_MOTION_SCALE:g} (got {value!r}).")
        if self.blink_from_video and self.pose_video is None:
            raise UserInputError(f"{name('blink_from_video')} needs {name('pose_video')}.")
        if self.timeline is not None:
            from floatalk.editing.timeline import Timeline

            Timeline.coerce(self.timeline)  # a bad file or object fails here, in one sentence
        if self.pose_video is not None:
            from floatalk.io.image import require_file

            require_file(self.pose_video, "video")
        return self

    def image_settings(self) -> dict[str, Any]:
        """The keyword arguments of `floatalk.pipeline.prepare_image` these options set."""
        return {"crop": self.crop, "crop_scale": self.crop_scale, "detector": self.detector, "face": self.face}

    @property
    def edits_motion(self) -> bool:
        """True when any motion control departs from the generated motion."""
        scales = (self.head_motion, self.mouth_scale, self.expression_scale)
        return any(v != 1.0 for v in scales) or not self.blink or self.pose_video is not None or bool(self.timeline)

    @property
    def forced_emotion(self) -> str | None:
        """The emotion name to force, or None to predict it from the speech."""
        emotion = "auto" if self.emotion is None else self.emotion.strip().lower()
        return None if emotion == "auto" else emotion

    def replace(self, **changes: Any) -> GenerateOptions:
        """A copy with some fields changed; an unknown name is a one-sentence UserInputError."""
        from floatalk.errors import UserInputError

        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise UserInputError(
                f"Unknown generation option '{unknown[0]}'; the options are: {', '.join(sorted(known))}."
            )
        return dataclasses.replace(self, **changes)
