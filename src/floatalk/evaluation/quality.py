"""Image-fidelity measures: PSNR and SSIM."""

from __future__ import annotations

import math

import numpy as np

from floatalk.errors import UserInputError

__all__ = ["psnr", "ssim"]


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


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Structural similarity (Wang et al. 2004) of two uint8 RGB images or videos of one shape, on luma.

    `a`, `b`: (H, W, 3) or (T, H, W, 3) uint8. Gaussian window sigma 1.5 (truncated at 3.5 sigma,
    as scikit-image's gaussian_weights=True), K1 = 0.01, K2 = 0.03, data range 255, population
    statistics; the mean SSIM map over the valid interior, averaged over frames.
    """
    import cv2

    x = np.asarray(a)
    y = np.asarray(b)
    if x.shape != y.shape or x.dtype != np.uint8 or y.dtype != np.uint8 or x.shape[-1] != 3 or x.ndim not in (3, 4):
        raise UserInputError(f"SSIM needs two uint8 RGB images or videos of one shape, got {x.shape} and {y.shape}.")
    x, y = x.reshape(-1, *x.shape[-3:]), y.reshape(-1, *y.shape[-3:])
    weights = np.array([0.299, 0.587, 0.114])
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    radius = int(3.5 * 1.5 + 0.5)
    scores = []
    for fx, fy in zip(x, y):
        lx, ly = fx.astype(np.float64) @ weights, fy.astype(np.float64) @ weights

        def blur(img: np.ndarray) -> np.ndarray:
            return cv2.GaussianBlur(img, (2 * radius + 1, 2 * radius + 1), 1.5, borderType=cv2.BORDER_REFLECT)

        mx, my = blur(lx), blur(ly)
        vx, vy, cov = blur(lx * lx) - mx * mx, blur(ly * ly) - my * my, blur(lx * ly) - mx * my
        smap = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
        inner = smap[radius:-radius, radius:-radius] if min(smap.shape) > 2 * radius else smap
        scores.append(float(inner.mean()))
    return float(np.mean(scores))
