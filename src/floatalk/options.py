"""Options as frozen dataclasses whose fields carry their own help and range: one source for the
library's defaults, the command line's flags, the checks and the docs.

A field made with `option(default, "help", low=..., high=...)` becomes the flag `--field-name`
(underscores become dashes). The type comes from the annotation: `bool` fields are on/off flags
(`--name` / `--no-name`), `int | None` style fields accept a number and default to None.
A field whose default is itself an options dataclass (`option(LoopSettings(lr=2e-3), "training
loop")`) adds that class's flags as an argument group, with the defaults of that instance; its
help is the group's title. `check_value` checks one value against its field (type, choices,
range), so checking a whole options object is a loop (`GenerateOptions.validate`). This module
imports nothing heavy, so building a parser stays fast (`floatalk --help`).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from floatalk.config import EMOTIONS, ODE_METHODS
from floatalk.errors import OptionError, UserInputError
from floatalk.timeline import MAX_SCALE, Timeline

__all__ = [
    "GenerateOptions",
    "add_flags",
    "check_value",
    "field_kinds",
    "flag_name",
    "from_args",
    "option",
    "option_fields",
]


def option(
    default: Any,
    help: str,
    *,
    low: float | None = None,
    high: float | None = None,
    metavar: str | None = None,
    choices: Sequence[Any] | None = None,
    flag: str | None = None,
    cli: bool = True,
    lower: bool = False,
    required: bool = False,
    parse: Callable[[Any], Any] | None = None,
) -> Any:
    """A dataclass field with the metadata `add_flags` turns into a command-line flag and
    `check_value` checks values against.

    help: one phrase for `--help` (the range and default are appended); low, high: the range of
    a number (inclusive); metavar, choices: as in argparse; flag: the flag's name when it is not
    `--field-name`; cli=False keeps the field off the command line (set from Python only); lower:
    lower-case the given text (names of choices); required: the command line must give the flag
    (its `default` then serves Python callers only); parse: turns a given value into the field's
    type (a timeline file into a Timeline), raising UserInputError.
    """
    meta = {"help": help, "metavar": metavar, "choices": choices, "flag": flag, "cli": cli, "lower": lower}
    meta.update(required=required, low=low, high=high, parse=parse)
    return dataclasses.field(default=default, metadata={"floatalk": meta})


def option_fields(cls: type) -> list[dataclasses.Field]:
    """The fields of dataclass `cls` that are command-line flags."""
    return [f for f in dataclasses.fields(cls) if f.metadata.get("floatalk", {}).get("cli", False)]


def flag_name(f: dataclasses.Field) -> str:
    """'--a-cfg-scale' for field a_cfg_scale (or the field's own `flag`)."""
    return f.metadata["floatalk"]["flag"] or "--" + f.name.replace("_", "-")


@functools.cache
def field_kinds(cls: type) -> dict[str, tuple[type, bool]]:
    """field name -> (the annotation's type without None, whether None is allowed), for every
    option field of dataclass `cls` (the one reading of the type rules)."""
    hints = typing.get_type_hints(cls)
    kinds = {}
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        args = typing.get_args(hint)
        if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
            kinds[f.name] = ([a for a in args if a is not type(None)][0], True)
        else:
            kinds[f.name] = (hint, False)
    return kinds


def _show(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def range_text(f: dataclasses.Field) -> str:
    """'from 2 to 200', 'at least 1' or '' for a field's range."""
    low, high = f.metadata["floatalk"]["low"], f.metadata["floatalk"]["high"]
    if low is not None and high is not None:
        return f"from {_show(low)} to {_show(high)}"
    if low is not None:
        return f"at least {_show(low)}"
    return f"at most {_show(high)}" if high is not None else ""


def _check_type(kind: type, value: Any) -> tuple[Any, str]:
    """(value as `kind`, '') or (None, what it must be)."""
    if kind is bool:
        return (value, "") if isinstance(value, bool) else (None, "must be true or false")
    if kind is int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        ok = isinstance(value, int) and not isinstance(value, bool)
        return (value, "") if ok else (None, "must be a whole number")
    if kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        return (float(value), "") if ok else (None, "must be a finite number")
    if kind is str:
        return (value, "") if isinstance(value, str) else (None, "must be text")
    return value, ""


def check_value(cls: type, name: str, value: Any) -> Any:
    """`value` checked against field `name` of options dataclass `cls` and returned as its type:
    None where allowed, the field's `parse`, its type, its choices (lower-cased where the field
    says so) and its range. Raises OptionError (one sentence naming the field)."""
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    meta = f.metadata["floatalk"]
    kind, nullable = field_kinds(cls)[name]
    if value is None:
        if nullable:
            return None
        raise OptionError(name, "cannot be null.")
    if meta["parse"] is not None:
        return meta["parse"](value)
    checked, problem = _check_type(kind, value)
    low, high = meta["low"], meta["high"]
    if problem:
        span = range_text(f)
        raise OptionError(name, f"{problem}{' ' + span if span else ''} (got {value!r}).")
    if meta["lower"]:
        checked = checked.strip().lower()
    if meta["choices"] is not None and checked not in meta["choices"]:
        raise OptionError(name, f"must be one of {', '.join(map(str, meta['choices']))} (got {value!r}).")
    if (low is not None and checked < low) or (high is not None and checked > high):
        raise OptionError(
            name, f"must be {'a whole number' if kind is int else 'a number'} {range_text(f)} (got {value!r})."
        )
    return checked


def _is_group(value: Any) -> bool:
    """Whether a field's default is an options dataclass instance (its fields become a flag group)."""
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


def _help(f: dataclasses.Field, default: Any) -> str:
    """A flag's help: the field's phrase, its range and its default."""
    meta = f.metadata["floatalk"]
    notes = [range_text(f)] if range_text(f) else []
    if default is not None and default != "" and not meta["required"] and "(default" not in meta["help"]:
        notes.append(f"default {_show(default)}")
    return meta["help"] + (f" ({'; '.join(notes)})" if notes else "")


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
        kind, _ = field_kinds(cls)[f.name]
        name = flag_name(f)
        if kind is bool:
            parser.add_argument(
                name, dest=f.name, action=argparse.BooleanOptionalAction, default=default, help=meta["help"]
            )
            continue
        convert = str.lower if meta["lower"] else (str if meta["parse"] is not None else kind)
        parser.add_argument(
            name,
            dest=f.name,
            type=convert,
            default=default,
            required=meta["required"],
            metavar=meta["metavar"] or (None if meta["choices"] else f.name.upper()),
            choices=meta["choices"],
            help=_help(f, default),
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

MAX_MOTION_SCALE = MAX_SCALE
MAX_NFE = 200
MAX_SEED = 2**32 - 1
MAX_CFG_SCALE = 20.0
MAX_FPS = 120
"""The highest output frame rate (`floatalk generate --fps`, a job's `fps`)."""


def _pose_video(value: Any) -> str:
    """A pose video's path, which must be a readable file (UserInputError)."""
    from floatalk.io.image import require_file

    if not isinstance(value, (str, bytes)) and not hasattr(value, "__fspath__"):
        raise OptionError("pose_video", f"must be a video file's path (got {value!r}).")
    require_file(value, "video")
    return str(value)


@dataclasses.dataclass(frozen=True)
class GenerateOptions:
    """How a video is generated from one photo and one recording: the settings shared by
    `FloatPipeline.__call__`, `FloatPipeline.stream`, `floatalk.render_video`, the apps and the
    flags of `floatalk generate` (each field is the flag of the same name).

    Values are checked once, where they enter (`validate`, `from_mapping`); a checked instance
    is trusted everywhere inside (`checked`), and one read back from a job store with
    `from_json` is too."""

    emotion: str | None = option(
        "auto",
        "emotion of the face: 'auto' predicts it from the speech; a name redirects it",
        choices=("auto", *EMOTIONS),
        lower=True,
    )
    a_cfg_scale: float = option(
        2.0, "audio guidance: higher follows the speech more strongly", low=0.0, high=MAX_CFG_SCALE, metavar="S"
    )
    e_cfg_scale: float = option(
        1.0,
        "emotion guidance on top of audio: higher exaggerates the emotion",
        low=0.0,
        high=MAX_CFG_SCALE,
        metavar="S",
    )
    nfe: int = option(
        10, "ODE budget per 2 s window: Euler runs N-1 steps, as in the release", low=2, high=MAX_NFE, metavar="N"
    )
    method: str = option("euler", "ODE solver; midpoint and rk4 spend the same N-1 evaluations", choices=ODE_METHODS)
    seed: int = option(15, "seed of the initial noise: same seed, same video", low=0, high=MAX_SEED, metavar="N")
    crop: bool = option(
        True,
        "crop a square of 1.6x the largest face found (default); --no-crop animates the whole photo, "
        "letterboxed to a square with black bars (never stretched)",
    )
    crop_scale: float = option(
        1.6, "side of the face crop in face-box sides (the release's framing)", low=0.5, high=4.0, metavar="S"
    )
    face: int | None = option(
        None,
        "which face to animate when the photo holds several, numbered 1, 2, ... from the left (1 is the leftmost; "
        "default: the largest)",
        low=1,
        high=1000,
        metavar="N",
    )
    detector: str = option(
        "auto",
        "face detector: mesh (MediaPipe's face mesh), haar (OpenCV's cascade, frontal faces only) or auto (the mesh)",
        choices=("auto", "mesh", "haar"),
        lower=True,
    )
    batch_size: int = option(
        8, "frames decoded per decoder pass; larger is faster and uses more memory", low=1, high=256, metavar="N"
    )
    precision: str | None = option(
        None,
        "arithmetic of the motion sampler and the image decoder: float32 (the reference), bfloat16, float16, "
        "or fast, which keeps only what holds frames at least 33 dB PSNR from float32's and lip sync at least "
        "0.95 of float32's: the decoder in bfloat16 (40 dB) on CPUs with native bfloat16 (AVX-512 BF16, AMX), "
        "elsewhere the same as float32; bfloat16 on a GPU (docs/PERFORMANCE.md); default: the precision the "
        "model was loaded in (float32)",
        choices=("float32", "bfloat16", "float16", "fast"),
        lower=True,
    )
    head_motion: float = option(
        1.0,
        "head motion: 0 holds the photo's pose while the lips still move, 1 as generated, above 1 amplified",
        low=0.0,
        high=MAX_MOTION_SCALE,
        metavar="S",
    )
    mouth_scale: float = option(
        1.0,
        "lip motion amplitude: 0 closes the mouth, above 1 exaggerates",
        low=0.0,
        high=MAX_MOTION_SCALE,
        metavar="S",
    )
    expression_scale: float = option(
        1.0, "amplitude of brows and eyes: 0 holds the photo's expression", low=0.0, high=MAX_MOTION_SCALE, metavar="S"
    )
    blink: bool = option(True, "blink as generated (default); --no-blink holds the eyes' openness")
    timeline: Timeline | None = option(
        None,
        "JSON (or YAML) file of segments that change emotion, guidance and motion over time "
        "(docs/MOTION.md); in Python also a dict or a floatalk.timeline.Timeline",
        metavar="FILE",
        parse=Timeline.coerce,
    )
    pose_video: str | None = option(
        None,
        "take the head's motion from this video of any person; lips and expression follow the audio",
        metavar="VIDEO",
        parse=_pose_video,
    )
    blink_from_video: bool = option(False, "with --pose-video, take the blinks from the video too")

    @property
    def checked(self) -> bool:
        """True for options that were validated (or read back from a store that keeps only checked ones)."""
        return self.__dict__.get("_checked", False)

    def _mark_checked(self) -> GenerateOptions:
        object.__setattr__(self, "_checked", True)
        return self

    def validate(self, as_flags: bool = False, video_apart: bool = False) -> GenerateOptions:
        """A checked copy (names of choices lower-cased, a timeline file or object parsed into a
        Timeline), or a one-sentence OptionError naming the option: every field checked against
        its own type, choices and range (`check_value`), then the rules that tie two fields.

        as_flags: name the options as command-line flags (`--nfe`) instead of fields (`nfe`);
        video_apart: the pose video comes apart from the options (a file beside them in an upload,
        whose path is set before the job runs), so blink_from_video needs no pose_video here."""
        if self.checked:
            return self
        try:
            values = {
                f.name: check_value(GenerateOptions, f.name, getattr(self, f.name))
                for f in option_fields(GenerateOptions)
            }
            if values["blink_from_video"] and values["pose_video"] is None and not video_apart:
                raise OptionError("blink_from_video", "needs {pose_video}.", ("pose_video",))
        except OptionError as exc:
            if as_flags:
                raise exc.as_flags() from None
            raise
        return GenerateOptions(**values)._mark_checked()

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> GenerateOptions:
        """Checked options from a mapping of field names to values (unknown names refused)."""
        return GenerateOptions().replace(**values).validate()

    def to_json(self) -> dict[str, Any]:
        """The fields as JSON values (a timeline as its object), for a job store."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        if isinstance(self.timeline, Timeline):
            values["timeline"] = self.timeline.to_dict()
        return values

    @classmethod
    def from_json(cls, values: Mapping[str, Any]) -> GenerateOptions:
        """Options written by `to_json` of checked options, trusted as they are (not checked again)."""
        fields = dict(values)
        if fields.get("timeline") is not None:
            fields["timeline"] = Timeline.from_json(fields["timeline"])
        return cls(**fields)._mark_checked()

    def image_settings(self) -> dict[str, Any]:
        """The keyword arguments of `floatalk.engine.prepare_image` these options set."""
        return {"crop": self.crop, "crop_scale": self.crop_scale, "detector": self.detector, "face": self.face}

    @property
    def edits_motion(self) -> bool:
        """True when any motion control departs from the generated motion."""
        scales = (self.head_motion, self.mouth_scale, self.expression_scale)
        return any(v != 1.0 for v in scales) or not self.blink or self.pose_video is not None or bool(self.timeline)

    @property
    def forced_emotion(self) -> str | None:
        """The emotion name to force, or None to predict it from the speech (checked options)."""
        return None if self.emotion in (None, "auto") else self.emotion

    def replace(self, **changes: Any) -> GenerateOptions:
        """A copy with some fields changed (not checked); an unknown name is a one-sentence UserInputError."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise UserInputError(
                f"Unknown generation option '{unknown[0]}'; the options are: {', '.join(sorted(known))}."
            )
        return dataclasses.replace(self, **changes)
