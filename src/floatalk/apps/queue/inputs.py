"""A job's input files as the store keeps them: their names inside the job's folder (the image,
the audio, a pose video, a scene's speakers' own recordings) and the options stored with them,
those names in place of the caller's paths."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from floatalk.apps.jobs import JobOptions
from floatalk.apps.scene_jobs import SceneJob
from floatalk.errors import UserInputError

__all__ = ["POSE_VIDEO", "SPEAKER", "recordings", "stored_options", "suffix"]

POSE_VIDEO = "pose_video"
"""Stem of a job's pose video in its folder."""
SPEAKER = "speaker"
"""Stem of a scene's speaker's own recording in its folder, numbered from 1 in the speakers' order."""


def suffix(path: Path) -> str:
    """The file's suffix if it is a plain short one (lower case), else none."""
    suffix = path.suffix.lower()
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,8}", suffix) else ""


def recordings(scene: SceneJob | None) -> dict[int, tuple[Path, str]]:
    """A scene's speakers' own recordings: speaker index -> (file, its name in the job's folder)."""
    if scene is None:
        return {}
    return {
        i: (Path(s.audio), f"{SPEAKER}{i + 1}{suffix(Path(s.audio))}")
        for i, s in enumerate(scene.speakers)
        if s.audio is not None
    }


def stored_options(
    job: JobOptions, pose_video: str | None, scene: SceneJob | None, recordings: dict[int, tuple[Path, str]]
) -> tuple[str, dict[str, Any]]:
    """(what the caller gave as JSON text, the checked options and scene as JSON values) as the
    store keeps them, the pose video and the speakers' recordings named inside the job's folder."""
    given, checked = dict(job.given), job.to_json()
    if pose_video is not None:
        given["pose_video"] = checked["generate"]["pose_video"] = pose_video
    if scene is not None:
        given.update(scene.given)
        checked["scene"] = scene.to_json({i: name for i, (_, name) in recordings.items()})
    try:
        return json.dumps(given), checked
    except (TypeError, ValueError) as exc:
        raise UserInputError(f"The options must be plain JSON values ({exc}).") from None
