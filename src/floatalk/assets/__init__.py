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


def is_bundled(folder: str | os.PathLike) -> bool:
    """True when `folder` is the bundled demo model's folder."""
    try:
        return Path(folder).resolve() == Path(DEMO_MODEL).resolve()
    except OSError:
        return False
