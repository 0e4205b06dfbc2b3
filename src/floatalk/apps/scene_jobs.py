"""A scene job as the apps see it: the speakers of a group photo, a mixed recording's turns and
what the faces nobody names do, read from a mapping (a batch line) in one place, and run through
`floatalk.render.render_scene` with cancellation.

The keys: `speakers`, a list of objects, each a `face` (a number from the left, or [x, y, w, h]),
its own `audio` (a file; left out with a mixed recording) and any of a speaker's own settings
(`floatalk.scene.SPEAKER_OPTIONS`, dashes or underscores); `turns`, who speaks when in the job's
mixed `audio` (a list of {start, end, face}, or a file's name where files may be named); `others`,
'still' or 'idle'. The generation options (every face's) are read by `floatalk.apps.jobs`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from floatalk.errors import UserInputError
from floatalk.scene import OTHERS, Speaker, Turns, speaker_options

if TYPE_CHECKING:
    from floatalk.apps.jobs import JobOptions
    from floatalk.pipeline import FloatPipeline
    from floatalk.progress import Progress
    from floatalk.render import SceneReport

__all__ = ["SCENE_KEYS", "SceneJob", "is_scene", "parse_scene", "run_scene_job"]

SCENE_KEYS = ("speakers", "turns", "others")


@dataclasses.dataclass(frozen=True)
class SceneJob:
    """A scene's part of a job, checked: its speakers (recordings as paths), the turns of a mixed
    recording (the job's `audio`) and what the other faces do."""

    speakers: tuple[Speaker, ...]
    turns: Turns | None = None
    others: str = "still"

    @property
    def mixed(self) -> bool:
        """True when the voices come from one mixed recording and its turns."""
        return self.turns is not None and all(s.audio is None for s in self.speakers)


def is_scene(mapping: Mapping[str, Any]) -> bool:
    """True for a job that names speakers or turns: a scene, not a single face."""
    return any(key in mapping for key in ("speakers", "turns"))


def _file(value: Any, what: str, base_dir: str | Path | None, allow_paths: bool) -> Path:
    if not allow_paths:
        raise UserInputError(f"{what} names a file, and file paths are not accepted here.")
    if not isinstance(value, str) or not value.strip():
        raise UserInputError(f"{what} must be a file name (got {value!r}).")
    path = Path(value.strip()).expanduser()
    return path if path.is_absolute() or base_dir is None else Path(base_dir) / path


def _speaker(item: Any, i: int, base_dir: str | Path | None, allow_paths: bool) -> Speaker:
    from floatalk.io.image import require_file
    from floatalk.scene import parse_face

    where = f"Speaker {i + 1}"
    if not isinstance(item, Mapping) or "face" not in item:
        raise UserInputError(f"{where} must be an object with a 'face' (and its 'audio', and options).")
    face = parse_face(item["face"], f"{where}'s face")
    audio = None
    if item.get("audio") is not None:
        audio = require_file(_file(item["audio"], f"{where}'s audio", base_dir, allow_paths), "audio")
    options = {str(k).replace("-", "_"): v for k, v in item.items() if k not in ("face", "audio")}
    return Speaker(face, audio, speaker_options(options, face))


def parse_scene(
    mapping: Mapping[str, Any], *, mixed_audio: bool, base_dir: str | Path | None = None, allow_paths: bool = False
) -> SceneJob:
    """A checked SceneJob from a job's `speakers`, `turns` and `others` (UserInputError, one
    sentence). mixed_audio: the job gives one recording of every voice (its `audio`), which then
    needs turns; without it every speaker brings its own recording. allow_paths: recordings and
    a turns file may be named (relative to `base_dir`), as in a batch file."""
    from floatalk.io.image import require_file

    items = mapping.get("speakers", [])
    if not isinstance(items, list):
        raise UserInputError("'speakers' must be a list of objects, each with a 'face'.")
    speakers = tuple(_speaker(item, i, base_dir, allow_paths) for i, item in enumerate(items))
    raw = mapping.get("turns")
    turns = None
    if raw is not None:
        if isinstance(raw, (list, dict)):
            turns = Turns.from_data(raw)
        else:
            turns = Turns.load(require_file(_file(raw, "'turns'", base_dir, allow_paths), "turns"))
    others = mapping.get("others", "still")
    if others not in OTHERS:
        raise UserInputError(f"'others' must be 'still' or 'idle' (got {others!r}).")
    if mixed_audio:
        if turns is None:
            raise UserInputError("A scene with one mixed 'audio' needs 'turns': who speaks when.")
        if any(s.audio is not None for s in speakers):
            raise UserInputError("Give each speaker its own 'audio' or one mixed 'audio' with 'turns', not both.")
    elif not speakers or any(s.audio is None for s in speakers):
        raise UserInputError("Each speaker needs its own 'audio', or the job one mixed 'audio' with 'turns'.")
    return SceneJob(speakers, turns, others)


def run_scene_job(
    pipe: FloatPipeline,
    image: str | Path,
    audio: str | Path | None,
    out: str | Path,
    job: JobOptions,
    scene: SceneJob,
    *,
    progress: Progress | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> SceneReport:
    """Render one scene job to `out` with `floatalk.render.render_scene` (audio: the mixed
    recording, or None); progress and cancellation as in `floatalk.apps.jobs.run_job`."""
    from floatalk.apps.jobs import CancelledError
    from floatalk.render import render_scene

    if job.paste_back:
        raise UserInputError("Option 'paste_back' does not apply to a scene: its faces are always pasted back.")

    def report(stage: str, done: int, total: int) -> None:
        if cancelled is not None and cancelled():
            raise CancelledError("The job was cancelled.")
        if progress is not None:
            progress(stage, done, total)

    report("start", 0, 1)
    return render_scene(
        pipe,
        image,
        out,
        scene.speakers,
        job.generate,
        audio=audio if scene.mixed else None,
        turns=scene.turns,
        others=scene.others,
        fps=job.fps,
        progress=report,
    )
