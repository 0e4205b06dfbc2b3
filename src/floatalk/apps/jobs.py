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
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from floatalk.errors import OptionError, UserInputError
from floatalk.options import MAX_FPS, GenerateOptions, check_value, field_kinds, option, option_fields

if TYPE_CHECKING:
    from floatalk.pipeline import FloatPipeline
    from floatalk.progress import Progress
    from floatalk.render import RenderReport

__all__ = ["JOB_KEYS", "CancelledError", "JobOptions", "as_job", "option_field", "parse_options", "run_job"]


@dataclasses.dataclass(frozen=True)
class JobOptions:
    """Everything a job sets, checked: the generation options and the two render settings of
    `generate`, with the mapping the caller gave (`given`, what a job's record shows)."""

    generate: GenerateOptions = option(GenerateOptions(), "generation options", cli=False)
    paste_back: bool = option(False, "composite each generated square back into the full photo")
    fps: int = option(25, "output frame rate", low=1, high=MAX_FPS)
    given: dict = dataclasses.field(default_factory=dict, compare=False)

    def to_json(self) -> dict[str, Any]:
        """The checked options as JSON values, for the job store (`from_json` reads them back)."""
        return {"generate": self.generate.to_json(), "paste_back": self.paste_back, "fps": self.fps}

    @classmethod
    def from_json(cls, values: Mapping[str, Any], base_dir: str | Path | None = None) -> JobOptions:
        """Options written by `to_json`, trusted as they are (they were checked before they were
        stored); a pose video named inside the job's folder is taken from `base_dir`."""
        generate = dict(values["generate"])
        if generate.get("pose_video") is not None and base_dir is not None:
            generate["pose_video"] = str(Path(base_dir) / generate["pose_video"])
        return cls(GenerateOptions.from_json(generate), values["paste_back"], values["fps"])


_PATH_KEYS = ("timeline", "pose_video")
_RENDER_KEYS = ("paste_back", "fps")
JOB_KEYS: tuple[str, ...] = tuple(f.name for f in option_fields(GenerateOptions)) + _RENDER_KEYS
"""Every key a job's options may hold (underscored spelling)."""


def _owner(key: str) -> type:
    """The options dataclass a job key belongs to."""
    return JobOptions if key in _RENDER_KEYS else GenerateOptions


def _kind(key: str) -> type | None:
    """The type a job key's value takes, or None for a key that is no option."""
    return field_kinds(_owner(key))[key][0] if key in JOB_KEYS else None


def _option_key(raw_key: Any, value: Any) -> tuple[str, Any]:
    """(field name, value) of one given option: dashes and underscores alike, leading dashes
    dropped, `no_X` of an on/off option X read as X with the opposite JSON boolean."""
    key = str(raw_key).strip().lstrip("-").replace("-", "_")
    if key.startswith("no_") and _kind(key[3:]) is bool:
        key, value = key[3:], (not value) if isinstance(value, bool) else value
    return key, value


def option_field(raw_key: Any) -> tuple[str, type | None]:
    """(field name, the type its value takes) of an option named as `parse_options` reads names
    (`"no-blink"` -> ("blink", bool)); the type is None for a name that is no option."""
    key, _ = _option_key(raw_key, None)
    return key, _kind(key)


def parse_options(
    mapping: Mapping[str, Any] | None,
    *,
    base_dir: str | Path | None = None,
    allow_paths: bool = False,
    pose_video: bool = False,
) -> JobOptions:
    """A job's checked options from a mapping keyed by generate's flag names, before any model is
    loaded: the one place an app's options are read (UserInputError, one sentence naming the
    option as the caller named it: `Option 'nfe'`).

    allow_paths: whether `timeline` and `pose_video` may name files (relative ones are taken
    from `base_dir`, the batch command); without it a timeline must be an inline object and a
    pose video is refused (a server must never read paths its clients choose). pose_video: a
    client sends a pose video file beside the options, so `blink_from_video` may be set."""
    if mapping is None:
        mapping = {}
    if not isinstance(mapping, Mapping):
        kind = type(mapping).__name__
        raise UserInputError(f"The options must be an object of option names and values (got {kind}).")
    values: dict[str, Any] = {}
    for raw_key, raw_value in mapping.items():
        key, value = _option_key(raw_key, raw_value)
        if key not in JOB_KEYS:
            raise UserInputError(f"Unknown option '{raw_key}'; the options are: {', '.join(sorted(JOB_KEYS))}.")
        if key in values:
            raise UserInputError(f"Option '{key}' is given twice.")
        if key in _PATH_KEYS and value is not None:
            value = _path_value(key, value, base_dir, allow_paths)
        values[key] = value
    try:
        return _checked(values, allow_paths, pose_video, dict(mapping))
    except OptionError as exc:
        raise UserInputError(exc.named(f"Option '{exc.field}'", lambda name: f"'{name}'")) from None


def as_job(options: JobOptions | Mapping[str, Any] | None, *, pose_video: bool = False) -> JobOptions:
    """`options` as they are when already checked, else a client's mapping read once by
    `parse_options` (no paths; `pose_video`: a pose video file comes beside the options)."""
    return options if isinstance(options, JobOptions) else parse_options(options, pose_video=pose_video)


def _checked(values: dict[str, Any], allow_paths: bool, video_apart: bool, given: dict[str, Any]) -> JobOptions:
    """JobOptions from values keyed by field name, every one checked (OptionError).
    video_apart: a client sends the pose video as a file beside the options."""
    render = {k: check_value(JobOptions, k, values.pop(k)) for k in _RENDER_KEYS if k in values}
    if not allow_paths and not video_apart and values.get("blink_from_video") is True:
        raise OptionError("blink_from_video", "needs a pose video (the file part 'pose_video').")
    generate = GenerateOptions().replace(**values).validate(video_apart=video_apart and not allow_paths)
    return JobOptions(generate=generate, **render, given=given)


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
