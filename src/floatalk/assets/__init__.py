"""Files shipped inside the package: the bundled demo model (trained here on the synthetic world)."""

from __future__ import annotations

import os
from pathlib import Path

DEMO_MODEL = Path(__file__).resolve().parent / "demo_model"
DEMO_SEED = 20261124
"""Seed of the demo's portrait and speech: a synthetic identity and clip never used in training."""
DEMO_ONSET = 1.0
"""Seconds of neutral face before the demo clip's own expression eases in: its first frame, the
demo's portrait, is neutral."""
DEMO_EXPRESSION_SCALE = 1.6
"""The synthetic world's expression scale the bundled model was trained with (synth-data
--expression-scale); the demo and the model-card benchmarks draw their clips with it."""


def demo_model_path() -> Path | None:
    """The bundled model folder, or None when this installation has none."""
    return DEMO_MODEL if (DEMO_MODEL / "floatalk_config.json").is_file() else None


BUNDLED = "bundled"
"""The name `FloatPipeline.from_pretrained` and `--checkpoint` take for the bundled demo model."""


def resolve_model(path: str | os.PathLike) -> Path:
    """A model folder given by the user, or the bundled model's folder for "bundled"."""
    if os.fspath(path) == BUNDLED:
        folder = demo_model_path()
        if folder is None:
            from floatalk.errors import UserInputError

            raise UserInputError(
                "This installation has no bundled demo model; pass --checkpoint DIR (a FLOAT release folder or a "
                "floatalk model folder) or reinstall floatalk from its repository."
            )
        return folder
    return Path(path)


BUNDLED_NOTE = (
    "note: the bundled demo model only knows floatalk's synthetic drawn faces, so on a real photo the lips "
    "will hardly move; for real photos pass --checkpoint with the FLOAT release weights (README: 'Real weights')."
)
"""What every command that renders prints when the bundled model is given a face that is not the
synthetic world's (floatalk.io.provenance), --quiet or not: `bundled_note`."""


def bundled_note(folder: str | os.PathLike, photos: list[str | os.PathLike]) -> str | None:
    """BUNDLED_NOTE when `folder` is the bundled model and any of `photos` is not one of the
    synthetic world's portraits, else None."""
    from floatalk.io.provenance import is_synthetic

    if is_bundled(folder) and not all(is_synthetic(photo) for photo in photos):
        return BUNDLED_NOTE
    return None


def is_bundled(folder: str | os.PathLike) -> bool:
    """True when `folder` is the bundled demo model's folder."""
    try:
        return Path(folder).resolve() == Path(DEMO_MODEL).resolve()
    except OSError:
        return False
