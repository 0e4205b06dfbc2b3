"""Model folders without their weights: which layout a folder is, and its model config.

Torch-free, so that a command can check a `--checkpoint` and read the model's size before it
imports torch (`floatalk.checkpoint` loads and saves the weights; its docstring shows both
layouts).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from floatalk.config import FloatConfig, build_dataclass
from floatalk.errors import CheckpointError

RELEASE_WEIGHTS = "float.pth"
AUDIO_DIR = "wav2vec2-base-960h"
EMOTION_DIR = "wav2vec-english-speech-emotion-recognition"
CONFIG_FILE = "floatalk_config.json"
WEIGHTS_FILE = "model.safetensors"
FORMAT_VERSION = 1
MOTION_AE_PART = "motion_ae"  # the config JSON's "part" of a folder holding only the motion auto-encoder


def is_release_folder(path: Path) -> bool:
    return (path / RELEASE_WEIGHTS).is_file()


def is_floatalk_folder(path: Path) -> bool:
    return (path / CONFIG_FILE).is_file()


def resolve_folder(path: str | os.PathLike) -> tuple[Path, str]:
    """(folder, kind) with kind 'floatalk' or 'release'; CheckpointError if it is neither."""
    folder = Path(path)
    if folder.is_file() and folder.name == RELEASE_WEIGHTS:
        folder = folder.parent
    if not folder.exists():
        raise CheckpointError(f"Checkpoint folder '{folder}' does not exist.")
    if not folder.is_dir():
        raise CheckpointError(f"Checkpoint '{folder}' is not a folder.")
    if is_floatalk_folder(folder):
        return folder, "floatalk"
    if is_release_folder(folder):
        return folder, "release"
    raise CheckpointError(
        f"Checkpoint folder '{folder}' has neither {CONFIG_FILE} (floatalk format) "
        f"nor {RELEASE_WEIGHTS} (FLOAT release)."
    )


def read_config(path: str | os.PathLike) -> FloatConfig:
    """The model config of a checkpoint folder, without reading any weights."""
    folder, kind = resolve_folder(path)
    return floatalk_config(folder) if kind == "floatalk" else release_config(folder)


def release_config(folder: Path) -> FloatConfig:
    """FloatConfig of a release folder, from the configs of its two Hugging Face sub-folders."""
    for name in (AUDIO_DIR, EMOTION_DIR):
        if not (folder / name).is_dir():
            raise CheckpointError(f"Release folder '{folder}' is missing the sub-folder '{name}'.")
    return FloatConfig.release(
        read_json(folder / AUDIO_DIR / "config.json"), read_json(folder / EMOTION_DIR / "config.json")
    )


def folder_meta(folder: Path) -> dict[str, Any]:
    """The config JSON of a floatalk folder, after checking its format version."""
    meta = read_json(folder / CONFIG_FILE)
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"'{folder / CONFIG_FILE}' has format version {version!r}; this floatalk reads {FORMAT_VERSION}."
        )
    return meta


def folder_config(folder: Path, meta: dict[str, Any], cls: type) -> Any:
    try:
        return build_dataclass(cls, meta["config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"'{folder / CONFIG_FILE}' does not hold a valid floatalk config ({exc}).") from None


def floatalk_config(folder: Path) -> FloatConfig:
    """FloatConfig stored in a floatalk folder's config JSON (refused for a stage-1 export)."""
    meta = folder_meta(folder)
    if meta.get("part") == MOTION_AE_PART:
        raise CheckpointError(
            f"'{folder}' holds only a motion auto-encoder (a 'floatalk train motion-ae' export), not a whole "
            "model; train stage 2 on it with 'floatalk train fmt --motion-ae'."
        )
    return folder_config(folder, meta, FloatConfig)


def read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(f"Checkpoint file '{path}' is missing.")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"Checkpoint file '{path}' is not valid JSON ({exc}).") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"Checkpoint file '{path}' does not hold a JSON object.")
    return data
