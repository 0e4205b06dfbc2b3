"""Image-fidelity measures."""

from __future__ import annotations

import math

import numpy as np

from floatalk.errors import UserInputError

__all__ = ["psnr"]


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB between two images or videos of the same shape.

    `a`, `b`: arrays of any equal shape, e.g. (H, W, 3) or (T, H, W, 3), uint8 or float on the
    same scale as `peak` (255 for uint8). The mean squared error is taken over all elements;
    identical inputs give `inf`.
    """
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise UserInputError(f"PSNR needs two arrays of the same shape, got {x.shape} and {y.shape}.")
    if x.size == 0:
        raise UserInputError("PSNR needs non-empty arrays.")
    mse = float(np.mean((x - y) ** 2))
    return math.inf if mse == 0.0 else 10.0 * math.log10(peak * peak / mse)
