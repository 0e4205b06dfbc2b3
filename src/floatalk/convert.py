"""The one conversion between uint8 RGB pixels and the networks' [-1, 1] tensors.

Both directions follow the FLOAT release bit for bit: pixels in are
`(float32(v) - 127.5) * float32(1 / 127.5)` (`v / 127.5 - 1` differs by up to 6e-8), and
images out are clamped to [-1, 1], mapped by `(x + 1) / 2 * 255` and truncated to uint8.
Letters: B batch, H, W height and width.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["to_pixels", "to_tensor"]


def to_tensor(pixels: np.ndarray) -> Tensor:
    """(H, W, 3) or (B, H, W, 3) uint8 RGB -> (1, 3, H, W) or (B, 3, H, W) float32 in [-1, 1]."""
    array = np.asarray(pixels)
    if array.ndim == 3:
        array = array[None]
    x = (array.astype(np.float32) - np.float32(127.5)) * np.float32(1.0 / 127.5)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def to_pixels(images: Tensor) -> np.ndarray:
    """(B, 3, H, W) or (3, H, W) network images -> (B, H, W, 3) or (H, W, 3) uint8 RGB on the CPU."""
    x = images.detach().float().clamp(-1.0, 1.0)
    x = (x + 1.0) / 2.0 * 255.0
    x = x.to(torch.uint8)
    order = (0, 2, 3, 1) if x.ndim == 4 else (1, 2, 0)
    return x.permute(*order).contiguous().cpu().numpy()
