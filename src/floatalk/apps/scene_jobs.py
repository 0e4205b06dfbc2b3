"""A scene job as the apps see it: the speakers of a group photo, a mixed recording's turns and
what the faces nobody names do, read from a mapping (a batch line) in one place, and run through
`floatalk.render.render_scene` with cancellation.

The keys: `speakers`, a list of objects, each a `face` (a number from the left, or [x, y, w, h]),
its own `audio` (a file; left out with a mixed recording) and any of a speaker's own settings
(`floatalk.scene.SPEAKER_OPTIONS`, dashes or underscores); `turns`, who speaks when in the job's
mixed `audio` (a list of {start, end, face}, or a file's name where files may be named); `others`,
'still' or 'idle'. The generation options (every face's) are read by `floatalk.apps.jobs`.

Where recordings arrive as uploads (the API's file parts `voice1` ... `voice8`, the page's voice
boxes) a speaker's `audio` names its part. A checked scene is stored with its job
(`SceneJob.to_json`, read back by `SceneJob.from_json`) and rendered by `run_scene_job`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from floatalk.errors import UserInputError
from floatalk.scene import OTHERS, Face, FaceBox, Speaker, Turn, Turns, speaker_options

if TYPE_CHECKING:
    from floatalk.apps.jobs import JobOptions
    from floatalk.pipeline import FloatPipeline
    from floatalk.progress import Progress
    from floatalk.render import SceneReport

__all__ = [
    "MAX_VOICES",
    "SCENE_KEYS",
    "VOICE_PARTS",
    "SceneJob",
    "check_scene_job",
    "is_scene",
    "parse_scene",
    "run_scene_job",
]

SCENE_KEYS = ("speakers", "turns", "others")

MAX_VOICES = 8
"""The most recordings of their own a scene's speakers may send as uploads."""
VOICE_PARTS = tuple(f"voice{n}" for n in range(1, MAX_VOICES + 1))
"""The names of the uploads that carry the speakers' own recordings, in the order they are numbered."""


@dataclasses.dataclass(frozen=True)
class SceneJob:
    """A scene's part of a job, checked: its speakers (recordings as paths), the turns of a mixed
    recording (the job's `audio`) and what the other faces do."""

    speakers: tuple[Speaker, ...]
    turns: Turns | None = None
    others: str = "still"
    given: dict = dataclasses.field(default_factory=dict, compare=False)  # the scene's keys as the caller gave them

    @property
    def mixed(self) -> bool:
        """True when the voices come from one mixed recording and its turns."""
        return self.turns is not None and all(s.audio is None for s in self.speakers)

    def with_recordings(self, moved: Mapping[Path, Path]) -> SceneJob:
        """The same scene with the speakers' recordings at new paths (old path -> new path)."""
        speakers = tuple(
            dataclasses.replace(s, audio=moved.get(s.audio, s.audio)) if s.audio is not None else s
            for s in self.speakers
        )
        return dataclasses.replace(self, speakers=speakers)

    def to_json(self, audio_names: Mapping[int, str] | None = None) -> dict[str, Any]:
        """The checked scene as JSON values, for the job store (`from_json` reads it back).
        audio_names: speaker index -> the name its recording is stored under (none: no recordings)."""
        names = audio_names or {}
        speakers = [
            {"face": _face_json(s.face), "audio": names.get(i), "options": dict(s.options)}
            for i, s in enumerate(self.speakers)
        ]
        turns = None
        if self.turns is not None:
            turns = [{"start": t.start, "end": t.end, "face": _face_json(t.face)} for t in self.turns.turns]
        return {"speakers": speakers, "turns": turns, "others": self.others}

    @classmethod
    def from_json(cls, values: Mapping[str, Any], base_dir: str | Path) -> SceneJob:
        """A scene written by `to_json`, trusted as it is (it was checked before it was stored);
        the speakers' recordings are named inside `base_dir`, the job's folder."""
        speakers = tuple(
            Speaker(
                _face_from_json(s["face"]), None if s["audio"] is None else Path(base_dir) / s["audio"], s["options"]
            )
            for s in values["speakers"]
        )
        turns = values.get("turns")
        if turns is not None:
            turns = Turns(tuple(Turn(t["start"], t["end"], _face_from_json(t["face"])) for t in turns))
        return cls(speakers, turns, values["others"])


def _face_json(face: Face) -> int | list[float]:
    return face if isinstance(face, int) else list(face.box)


def _face_from_json(value: int | list[float]) -> Face:
    return value if isinstance(value, int) else FaceBox(*value)


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


def _voice(value: Any, where: str, voices: Mapping[str, Path]) -> Path:
    """The uploaded recording a speaker's `audio` names by its part."""
    name = value.strip() if isinstance(value, str) else value
    if name not in VOICE_PARTS:
        first, last = VOICE_PARTS[0], VOICE_PARTS[-1]
        raise UserInputError(f"{where}'s audio must name its recording's part, '{first}' to '{last}' (got {value!r}).")
    if name not in voices:
        raise UserInputError(f"{where}'s audio names the part '{name}', which was not sent.")
    return voices[name]


def _speaker(
    item: Any, i: int, base_dir: str | Path | None, allow_paths: bool, voices: Mapping[str, Path] | None
) -> Speaker:
    from floatalk.io.image import require_file
    from floatalk.scene import parse_face

    where = f"Speaker {i + 1}"
    if not isinstance(item, Mapping) or "face" not in item:
        raise UserInputError(f"{where} must be an object with a 'face' (and its 'audio', and options).")
    face = parse_face(item["face"], f"{where}'s face")
    audio = None
    if item.get("audio") is not None and voices is not None:
        audio = _voice(item["audio"], where, voices)
    elif item.get("audio") is not None:
        audio = require_file(_file(item["audio"], f"{where}'s audio", base_dir, allow_paths), "audio")
    options = {str(k).replace("-", "_"): v for k, v in item.items() if k not in ("face", "audio")}
    return Speaker(face, audio, speaker_options(options, face))


def _check_voices_named(items: list[Any], speakers: tuple[Speaker, ...], voices: Mapping[str, Path] | None) -> None:
    """Every uploaded recording belongs to exactly one speaker (None: the recordings are not uploads)."""
    if voices is None:
        return
    owners: dict[Path, int] = {}
    for i, speaker in enumerate(speakers):
        if speaker.audio is None:
            continue
        if speaker.audio in owners:
            part = str(items[i]["audio"]).strip()
            raise UserInputError(
                f"Speakers {owners[speaker.audio] + 1} and {i + 1} both name the part '{part}'; each speaker sends "
                "its own recording."
            )
        owners[speaker.audio] = i
    unused = [name for name, path in voices.items() if path not in owners]
    if unused:
        raise UserInputError(f"The part '{sorted(unused)[0]}' was sent, but no speaker names it as its 'audio'.")


def _turns(raw: Any, base_dir: str | Path | None, allow_paths: bool) -> Turns | None:
    """A job's `turns`: an inline list (or object), or a file's name where files may be named."""
    from floatalk.io.image import require_file

    if raw is None:
        return None
    if isinstance(raw, (list, dict)):
        return Turns.from_data(raw)
    return Turns.load(require_file(_file(raw, "'turns'", base_dir, allow_paths), "turns"))


def parse_scene(
    mapping: Mapping[str, Any],
    *,
    mixed_audio: bool,
    base_dir: str | Path | None = None,
    allow_paths: bool = False,
    voices: Mapping[str, Path] | None = None,
) -> SceneJob:
    """A checked SceneJob from a job's `speakers`, `turns` and `others` (UserInputError, one
    sentence). mixed_audio: the job gives one recording of every voice (its `audio`), which then
    needs turns; without it every speaker brings its own recording. allow_paths: recordings and
    a turns file may be named (relative to `base_dir`), as in a batch file. voices: the
    recordings that arrived as uploads, by part name (`VOICE_PARTS`): a speaker's `audio` then
    names its part, and every part must be named by one speaker."""
    items = mapping.get("speakers", [])
    if not isinstance(items, list):
        raise UserInputError("'speakers' must be a list of objects, each with a 'face'.")
    speakers = tuple(_speaker(item, i, base_dir, allow_paths, voices) for i, item in enumerate(items))
    _check_voices_named(items, speakers, voices)
    turns = _turns(mapping.get("turns"), base_dir, allow_paths)
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
    return SceneJob(speakers, turns, others, {k: mapping[k] for k in SCENE_KEYS if k in mapping})


def check_scene_job(job: JobOptions) -> None:
    """Refuse (one sentence) the job options a scene cannot take: `paste_back` (its faces are
    always pasted back). The scene's other rules on options are `floatalk.render`'s."""
    if job.paste_back:
        raise UserInputError("Option 'paste_back' does not apply to a scene: its faces are always pasted back.")


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

    check_scene_job(job)

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
