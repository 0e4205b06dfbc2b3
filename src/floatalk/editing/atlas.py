"""A per-checkpoint atlas of what each motion direction does to a face.

FLOAT's motion latent is r = Q lambda with Q an orthonormal basis (D x M) learned by the motion
auto-encoder; nothing labels which coefficient moves the head, the mouth or the brows, and in
practice most move several things. The atlas measures it. For a portrait, the decoder renders
lambda_src - step e_k and lambda_src + step e_k for each coordinate k, and the change between
the two frames is measured the way a video's motion is (`floatalk.face_motion`): dense
optical flow over the face crop, whose best similarity transform gives the head's effects
(translation x / y, scale, roll) and whose remainder, averaged over regions of the crop, gives
the local ones (mouth opening and width, each brow's height, each eye's opening).

The result is the response matrix A (E effects x M coefficients): to first order, moving the
coefficients by d changes the effects by A d. It needs no training data and works for any
checkpoint (the release's weights included). Its assumption is the release's framing: a face
crop of 1.6x the face box, centred, so the regions below sit on the mouth, brows and eyes of
a roughly frontal face (they were placed from the synthetic world's landmarks, which follow
that framing). `floatalk.editing.controls` uses A to edit generated motion. The atlas is measured on the portrait
being animated (about a second at 128 px, 2 M decodes) and cached.

Coordinates: the crop spans [-1, 1] in x (left to right) and y (top to bottom).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from floatalk.errors import UserInputError
from floatalk.face_motion import EFFECTS, face_effects
from floatalk.fileio import atomic_write

if TYPE_CHECKING:
    from floatalk.engine import FloatEngine, SourceImage

__all__ = ["EFFECTS", "GROUPS", "MotionAtlas", "atlas_for", "cache_dir", "measure_atlas"]

FORMAT_VERSION = 1

GROUPS: dict[str, tuple[str, ...]] = {
    "head": EFFECTS[0:4],
    "mouth": EFFECTS[4:6],
    "expression": EFFECTS[6:10],  # brows and eyes
    "blink": EFFECTS[8:10],  # the eyes' opening
}
"""Which effects each control acts on (expression and blink share the eyes)."""


@dataclass(frozen=True)
class MotionAtlas:
    """The response of each effect to each motion coefficient, measured on one portrait.

    response: (E, M) list of lists, d effect / d lambda_k; effects: the row names (EFFECTS);
    step: the finite-difference step in lambda units; portrait: how the portrait was chosen;
    checkpoint: a digest of the motion auto-encoder's weights it was measured with.
    """

    response: list[list[float]]
    effects: tuple[str, ...]
    step: float
    portrait: str
    checkpoint: str
    format_version: int = FORMAT_VERSION

    @property
    def matrix(self) -> np.ndarray:
        """(E, M) float64 response matrix."""
        return np.asarray(self.response, dtype=np.float64)

    def rows(self, names: tuple[str, ...]) -> list[int]:
        """Row indices of the named effects."""
        return [self.effects.index(n) for n in names]

    def save(self, path: str | os.PathLike) -> Path:
        """Write the atlas as JSON (atomically)."""
        path = Path(path)
        text = json.dumps(asdict(self), indent=1)
        atomic_write(path, lambda p: p.write_text(text))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> MotionAtlas:
        """Read an atlas written by `save`; a damaged or foreign file is a one-sentence UserInputError."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
            atlas = cls(**{**data, "effects": tuple(data["effects"])})
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise UserInputError(f"Could not read the motion atlas '{path}': {exc}.") from exc
        if atlas.format_version != FORMAT_VERSION or atlas.effects != EFFECTS:
            raise UserInputError(f"The motion atlas '{path}' was written by another floatalk version; delete it.")
        return atlas


def weights_digest(pipe: FloatEngine) -> str:
    """A short digest of the motion auto-encoder's weights (the atlas depends on nothing else)."""
    h = hashlib.sha256()
    for name, tensor in sorted(pipe.model.motion_autoencoder.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def measure_atlas(pipe: FloatEngine, source: SourceImage, step: float = 1.0, portrait: str = "") -> MotionAtlas:
    """Measure the atlas on an encoded portrait: for each coefficient k, decode lambda_src -+ step e_k
    and measure the second frame's effects against the first (2 M decodes)."""
    import torch

    from floatalk.convert import to_pixels

    ae = pipe.model.motion_autoencoder
    lam = source.lam.float()
    columns = []
    with torch.inference_mode():
        for k in range(lam.shape[1]):
            bump = torch.zeros_like(lam)
            bump[0, k] = step
            styles = torch.cat([source.s_r + ae.motion(lam - bump), source.s_r + ae.motion(lam + bump)])
            minus, plus = to_pixels(ae.decode(styles, source.feats))
            columns.append(face_effects(plus[None], reference=minus)[0] / (2 * step))
    return MotionAtlas(
        response=np.stack(columns, axis=1).round(9).tolist(),
        effects=EFFECTS,
        step=float(step),
        portrait=portrait,
        checkpoint=weights_digest(pipe),
    )


def cache_dir() -> Path:
    """Where measured atlases are kept: $FLOATALK_CACHE/atlas, else ~/.cache/floatalk/atlas."""
    root = os.environ.get("FLOATALK_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "floatalk"
    )
    return Path(root) / "atlas"


def atlas_for(pipe: FloatEngine, source: SourceImage) -> MotionAtlas:
    """The atlas of this checkpoint measured on this portrait, from the cache or measured now
    (2 M decodes) and cached, keyed by digests of the motion auto-encoder's weights and of the
    portrait's pixels. Measuring on the portrait being animated matters: on the bundled model,
    an atlas of another portrait left 13-22 % of the head motion at --head-motion 0, the
    portrait's own 9-13 % (docs/MOTION.md)."""
    digest = getattr(pipe, "_atlas_weights_digest", None)
    if digest is None:
        digest = weights_digest(pipe)
        pipe._atlas_weights_digest = digest
    portrait = hashlib.sha256(np.ascontiguousarray(source.pixels).tobytes()).hexdigest()[:16]
    path = cache_dir() / digest / f"{portrait}.json"
    if path.is_file():
        try:
            return MotionAtlas.load(path)
        except UserInputError:
            pass  # a damaged cache entry is measured again
    atlas = measure_atlas(pipe, source, portrait=portrait)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atlas.save(path)
    except OSError:
        pass  # an unwritable cache only costs the measurement next time
    return atlas
