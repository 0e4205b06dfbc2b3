"""A scene's uploads checked before its job is queued, as the API and the web page both do: the
options mapping read once (the generation options by `floatalk.apps.jobs.parse_options`, the
scene's keys by `floatalk.apps.scene_jobs.parse_scene`), each file checked as a single job's are
(`floatalk.apps.uploads`: the photo within the pixel limit, every recording decoded within the
duration limit), then the scene itself resolved against its photo and its sound by the library
(`floatalk.render.prepare_scene`, as `floatalk scene` does before it loads a model): a face
number the photo lacks, two voices on one face, a recording without sound, turns that pass the
recording's end. Every refusal is an `UploadError` (400) of one sentence naming the uploads by
their parts, never by a path on the server.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from floatalk.apps.jobs import JobOptions, parse_options
from floatalk.apps.scene_jobs import SCENE_KEYS, SceneJob, check_scene_job, parse_scene
from floatalk.apps.uploads import Limits, UploadError, check_audio, read_image
from floatalk.errors import UserInputError, one_line

__all__ = ["check_scene_uploads", "read_scene"]

_BOTH = "Send one mixed 'audio' with 'turns' or a voice part per speaker ('voice1', ...), not both."
_POSE = "A scene takes no 'pose_video': one video would give every head the same motion."


def read_scene(
    mapping: Mapping[str, Any], audio: Path | None, voices: Mapping[str, Path], pose_video: bool = False
) -> tuple[JobOptions, SceneJob]:
    """A scene job's options and its scene from the request's options `mapping` (generate's
    options for every face beside `speakers`, `turns` and `others`), its mixed recording `audio`
    (or None) and its `voices` (part name -> file); UserInputError in one sentence."""
    if pose_video:
        raise UserInputError(_POSE)
    if audio is not None and voices:
        raise UserInputError(_BOTH)
    job = parse_options({k: v for k, v in mapping.items() if k not in SCENE_KEYS})
    check_scene_job(job)
    scene = parse_scene(mapping, mixed_audio=audio is not None, voices=voices)
    return job, scene


def check_scene_uploads(
    image: Path,
    audio: Path | None,
    voices: Mapping[str, Path],
    limits: Limits,
    job: JobOptions,
    scene: SceneJob,
) -> dict[str, str]:
    """Check a scene's files (from `read_scene`) before it is queued: the photo, the mixed
    recording with the job's timeline against its length, each voice, then the scene as
    `floatalk.render.prepare_scene` resolves it (faces found with the job's detector). Returns
    each file's suffix for storage by part name ("image", "audio" when mixed, "voice1", ...)."""
    from floatalk.render import prepare_scene

    image_suffix, pixels = read_image(image, limits)
    suffixes = {"image": image_suffix}
    if audio is not None:
        suffixes["audio"] = check_audio(audio, limits, job.generate.timeline)
    for part, path in voices.items():
        suffixes[part] = check_audio(path, limits, part=part)
    try:
        prepare_scene(pixels, scene.speakers, job.generate, audio=audio, turns=scene.turns, others=scene.others)
    except UserInputError as exc:
        raise UploadError(400, _by_part(one_line(exc), audio, voices)) from None
    return suffixes


def _by_part(message: str, audio: Path | None, voices: Mapping[str, Path]) -> str:
    """A sentence of the library's, with the uploads' temporary file names as their parts' names."""
    for part, path in [("audio", audio), *voices.items()]:
        if path is not None:
            message = message.replace(Path(path).name, part)
    return message
