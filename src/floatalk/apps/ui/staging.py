"""The page's files: uploads copied into a staging folder before they are queued (the queue moves
what it is given; Gradio keeps its own), finished videos placed where the page serves them, and
the one-click example's files written in the background (`floatalk.apps.examples.example_files`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from floatalk.apps.examples import example_files
from floatalk.errors import UserInputError

__all__ = ["example_files", "publish_video", "stage_inputs", "stage_scene", "staging_folder"]


def _copy(kind: str, source: str | os.PathLike, folder: Path) -> Path:
    """Copy one uploaded file into `folder` as `kind` with its suffix (which tells readers the format)."""
    source = Path(source)
    if not source.is_file():
        raise UserInputError(f"The uploaded {kind} file is gone; please add it again.")
    target = folder / f"{kind}{source.suffix.lower()}"
    shutil.copyfile(source, target)
    return target


def stage_inputs(
    image: str | os.PathLike,
    audio: str | os.PathLike,
    folder: str | os.PathLike,
    pose_video: str | os.PathLike | None = None,
) -> tuple[Path, Path, Path | None]:
    """Copy the page's uploaded files into `folder` (queue.submit moves what it is given, and the
    uploads belong to Gradio's cache): the image, the audio and the head-motion video (None when
    there is none). Names keep their suffixes, which tell the readers the format."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    image_copy, audio_copy = _copy("image", image, folder), _copy("audio", audio, folder)
    return image_copy, audio_copy, None if pose_video is None else _copy("video", pose_video, folder)


def stage_scene(
    image: str | os.PathLike,
    audio: str | os.PathLike | None,
    voices: Mapping[str, str | os.PathLike],
    folder: str | os.PathLike,
) -> tuple[Path, Path | None, dict[str, Path]]:
    """Copy a scene's uploads into `folder` as `stage_inputs` does: the group photo, the mixed
    recording (None when there is none) and each voice by its part name (`voice1`, ...)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    mixed = None if audio is None else _copy("audio", audio, folder)
    return _copy("image", image, folder), mixed, {part: _copy(part, path, folder) for part, path in voices.items()}


@contextlib.contextmanager
def staging_folder() -> Iterator[Path]:
    """A new temporary folder for one submission's copies, removed afterwards with what is left in it."""
    folder = Path(tempfile.mkdtemp(prefix="floatalk-ui-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def publish_video(video: Path, folder: Path, job_id: str, keep_s: float = 86400.0) -> str:
    """Place the finished video where the page serves it from (a hard link when the file system
    allows, else a copy); links older than `keep_s` seconds are removed on the way."""
    folder.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in folder.iterdir():
        with contextlib.suppress(OSError):
            if now - old.stat().st_mtime > keep_s:
                old.unlink()
    target = folder / f"{job_id}{video.suffix}"
    target.unlink(missing_ok=True)
    try:
        os.link(video, target)
    except OSError:
        shutil.copyfile(video, target)
    return str(target)
