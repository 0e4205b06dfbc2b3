"""One generation job as the apps see it: the options of `floatalk generate` given as a mapping
(a JSON object of the API, a line of a batch file, the web page's controls), checked in one
place, and run through the one render path with cancellation.

The keys are the flag names of `floatalk generate` without the leading dashes; dashes and
underscores are interchangeable (`"a-cfg-scale"` or `"a_cfg_scale"`), on/off flags take JSON
booleans (`"blink": false`, `"paste_back": true`). Besides the `GenerateOptions` fields, a job
takes `paste_back` and `fps`. A `timeline` is an inline object; where files may be named
(`allow_paths=True`, the batch command) a timeline or pose video may also be a path, taken
relative to `base_dir`.

This module imports nothing heavy at the top, so parsers and servers start fast.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from floatalk.errors import UserInputError
from floatalk.options import GenerateOptions, option_fields

if TYPE_CHECKING:
    from floatalk.pipeline import FloatPipeline
    from floatalk.progress import Progress
    from floatalk.render import RenderReport

__all__ = [
    "JOB_KEYS",
    "CancelledError",
    "JobOptions",
    "check_client_options",
    "option_field",
    "parse_options",
    "run_job",
]


@dataclasses.dataclass(frozen=True)
class JobOptions:
    """Everything a job sets: the generation options and the two render settings of `generate`."""

    generate: GenerateOptions = dataclasses.field(default_factory=GenerateOptions)
    paste_back: bool = False
    fps: int = 25


_PATH_KEYS = ("timeline", "pose_video")
_RENDER_KEYS = {"paste_back": bool, "fps": int}
JOB_KEYS: tuple[str, ...] = tuple(f.name for f in option_fields(GenerateOptions)) + tuple(_RENDER_KEYS)
"""Every key a job's options may hold (underscored spelling)."""


@functools.cache
def _kinds() -> dict[str, tuple[type, bool]]:
    """field name -> (its type without None, whether None is allowed)."""
    hints = typing.get_type_hints(GenerateOptions)
    kinds: dict[str, tuple[type, bool]] = {}
    for f in option_fields(GenerateOptions):
        hint = hints[f.name]
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        kinds[f.name] = (args[0] if args else hint, type(None) in typing.get_args(hint))
    for name, kind in _RENDER_KEYS.items():
        kinds[name] = (kind, False)
    return kinds


def _option_key(raw_key: Any, value: Any) -> tuple[str, Any]:
    """(field name, value) of one given option: dashes and underscores alike, leading dashes
    dropped, `no_X` of an on/off option X read as X with the opposite JSON boolean."""
    kinds = _kinds()
    key = str(raw_key).strip().lstrip("-").replace("-", "_")
    if key.startswith("no_") and key[3:] in kinds and kinds[key[3:]][0] is bool:
        key, value = key[3:], (not value) if isinstance(value, bool) else value
    return key, value


def option_field(raw_key: Any) -> tuple[str, type | None]:
    """(field name, the type its value takes) of an option named as `parse_options` reads names
    (`"no-blink"` -> ("blink", bool)); the type is None for a name that is no option."""
    key, _ = _option_key(raw_key, None)
    kind = _kinds().get(key)
    return key, kind[0] if kind else None


def _coerce(key: str, value: Any, kind: type, nullable: bool) -> Any:
    """A JSON value as the field's type, or a one-sentence UserInputError naming the option."""
    if value is None:
        if nullable:
            return None
        raise UserInputError(f"Option '{key}' cannot be null.")
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise UserInputError(f"Option '{key}' must be true or false (got {value!r}).")
    if kind is int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise UserInputError(f"Option '{key}' must be a whole number (got {value!r}).")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise UserInputError(f"Option '{key}' must be a finite number (got {value!r}).")
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise UserInputError(f"Option '{key}' must be text (got {value!r}).")
        return value
    return value


def parse_options(
    mapping: Mapping[str, Any] | None,
    *,
    base_dir: str | Path | None = None,
    allow_paths: bool = False,
) -> JobOptions:
    """A job's options from a mapping keyed by generate's flag names; checked (UserInputError,
    one sentence naming the option) before any model is loaded.

    allow_paths: whether `timeline` and `pose_video` may name files (relative ones are taken
    from `base_dir`); without it a timeline must be an inline object and a pose video is refused
    (a server must never read paths its clients choose)."""
    from floatalk.timeline import Timeline

    if mapping is None:
        mapping = {}
    if not isinstance(mapping, Mapping):
        kind = type(mapping).__name__
        raise UserInputError(f"The options must be an object of option names and values (got {kind}).")
    kinds = _kinds()
    values: dict[str, Any] = {}
    for raw_key, raw_value in mapping.items():
        key, value = _option_key(raw_key, raw_value)
        if key not in kinds:
            raise UserInputError(f"Unknown option '{raw_key}'; the options are: {', '.join(sorted(kinds))}.")
        if key in values:
            raise UserInputError(f"Option '{key}' is given twice.")
        if key in _PATH_KEYS and value is not None:
            values[key] = _path_value(key, value, base_dir, allow_paths)
            continue
        kind, nullable = kinds[key]
        values[key] = _coerce(key, value, kind, nullable)
    render = {k: values.pop(k) for k in list(values) if k in _RENDER_KEYS}
    if isinstance(values.get("timeline"), (dict, str, Path)):
        values["timeline"] = Timeline.coerce(values["timeline"])
    generate = GenerateOptions(**values).validate()
    if "fps" in render:
        from floatalk.render import check_fps

        render["fps"] = check_fps(render["fps"])
    return JobOptions(generate=generate, **render)


def _path_value(key: str, value: Any, base_dir: str | Path | None, allow_paths: bool) -> Any:
    if key == "timeline" and isinstance(value, Mapping):
        return dict(value)
    if not allow_paths:
        if key == "timeline":
            raise UserInputError("Option 'timeline' must be an object with a 'segments' list, not a file path.")
        raise UserInputError(f"Option '{key}' names a file, and file paths are not accepted here.")
    if not isinstance(value, str) or not value.strip():
        raise UserInputError(f"Option '{key}' must be a file name (got {value!r}).")
    path = Path(value).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    return str(path)


def check_client_options(mapping: Mapping[str, Any] | None, *, pose_video: bool = False) -> None:
    """Check options sent by a client that may not name files (the API, the web page): as
    `parse_options` with `allow_paths=False`, except that `blink_from_video` is accepted when the
    client sends a pose video file beside the options (`pose_video=True`). UserInputError, one
    sentence, otherwise."""
    if not isinstance(mapping, Mapping):
        parse_options(mapping)  # its one sentence for what is not an object (None is no options)
        return
    blink = [k for k in mapping if _option_key(k, mapping[k])[0] == "blink_from_video"]
    value = _option_key(blink[0], mapping[blink[0]])[1] if len(blink) == 1 else False
    if not isinstance(value, bool):
        raise UserInputError(f"Option 'blink_from_video' must be true or false (got {value!r}).")
    # twice-given blink_from_video is left to parse_options, which says so
    parse_options({k: v for k, v in mapping.items() if len(blink) > 1 or k not in blink})
    if value and not pose_video:
        raise UserInputError("Option 'blink_from_video' needs a pose video (the file part 'pose_video').")


class CancelledError(Exception):
    """A job was cancelled while it ran (raised from its progress callback)."""


def run_job(
    pipe: FloatPipeline,
    image: str | Path,
    audio: str | Path,
    out: str | Path,
    job: JobOptions | None = None,
    *,
    progress: Progress | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> RenderReport:
    """Render one job to `out` with `floatalk.render.render_video`.

    progress: progress(stage, done, total) as the pipeline reports it (per window of motion, per
    batch of frames). cancelled: polled at every report; once it returns True the job stops by
    raising `CancelledError` (within one window) and nothing is left at `out`. Raises UserInputError
    for unusable inputs, as `floatalk generate` would report them."""
    from floatalk.render import render_video

    job = job or JobOptions()

    def report(stage: str, done: int, total: int) -> None:
        if cancelled is not None and cancelled():
            raise CancelledError("The job was cancelled.")
        if progress is not None:
            progress(stage, done, total)

    report("start", 0, 1)
    return render_video(pipe, image, audio, out, job.generate, paste_back=job.paste_back, fps=job.fps, progress=report)
