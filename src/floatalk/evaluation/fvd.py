"""FVD: Frechet distance between I3D features of generated and reference video clips.

The network is the Inception-v1 I3D of pytorch-i3d (Carreira and Zisserman's Kinetics-400
model ported to PyTorch), with its exact keys: `Conv3d_1a_7x7.conv3d.weight`, ...,
`Mixed_5c.b3b.bn.running_var`, `logits.conv3d.{weight,bias}` (files `i3d_pretrained_400.pt` or
`rgb_imagenet.pt`). Convolutions and pools pad as TensorFlow's "SAME". As in the FVD paper's
reference code, a clip is 16 frames at 224 x 224 in [-1, 1] and its feature is the 400-d logits
averaged over time; the distance is `floatalk.evaluation.fid.frechet_distance` of the two sets.

Letters: B clips, C channels, T frames, H, W pixels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["CLIP_FRAMES", "I3D"]

CLIP_FRAMES = 16
CLIP_SIZE = 224


def _same_pad(x: Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> Tensor:
    """Pad (B, C, T, H, W) as TensorFlow's 'SAME' does (the extra pixel goes after)."""
    pads = []
    for size, k, s in zip(reversed(x.shape[2:]), reversed(kernel), reversed(stride)):
        total = max(k - s, 0) if size % s == 0 else max(k - size % s, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


class Unit3D(nn.Module):
    """Conv3d ('SAME' padding) + BatchNorm3d (eps 0.001) + ReLU; keys `conv3d.*`, `bn.*`."""

    def __init__(
        self, cin: int, cout: int, kernel: tuple[int, int, int] = (1, 1, 1), stride=(1, 1, 1), logits: bool = False
    ) -> None:
        super().__init__()
        self.kernel, self.stride, self.logits = kernel, stride, logits
        self.conv3d = nn.Conv3d(cin, cout, kernel, stride=stride, bias=logits)
        if not logits:
            self.bn = nn.BatchNorm3d(cout, eps=0.001, momentum=0.01)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv3d(_same_pad(x, self.kernel, self.stride))
        return x if self.logits else F.relu(self.bn(x))


def _max_pool(x: Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> Tensor:
    return F.max_pool3d(_same_pad(x, kernel, stride), kernel, stride)


class InceptionModule(nn.Module):
    """Four branches: 1x1x1; 1x1x1 -> 3x3x3; 1x1x1 -> 3x3x3; 3x3x3 max pool -> 1x1x1."""

    def __init__(self, cin: int, c: tuple[int, int, int, int, int, int]) -> None:
        super().__init__()
        self.b0 = Unit3D(cin, c[0])
        self.b1a = Unit3D(cin, c[1])
        self.b1b = Unit3D(c[1], c[2], (3, 3, 3))
        self.b2a = Unit3D(cin, c[3])
        self.b2b = Unit3D(c[3], c[4], (3, 3, 3))
        self.b3b = Unit3D(cin, c[5])

    def forward(self, x: Tensor) -> Tensor:
        pooled = _max_pool(x, (3, 3, 3), (1, 1, 1))
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(pooled)], 1)


_MIXED = {
    "Mixed_3b": (192, (64, 96, 128, 16, 32, 32)),
    "Mixed_3c": (256, (128, 128, 192, 32, 96, 64)),
    "Mixed_4b": (480, (192, 96, 208, 16, 48, 64)),
    "Mixed_4c": (512, (160, 112, 224, 24, 64, 64)),
    "Mixed_4d": (512, (128, 128, 256, 24, 64, 64)),
    "Mixed_4e": (512, (112, 144, 288, 32, 64, 64)),
    "Mixed_4f": (528, (256, 160, 320, 32, 128, 128)),
    "Mixed_5b": (832, (256, 160, 320, 32, 128, 128)),
    "Mixed_5c": (832, (384, 192, 384, 48, 128, 128)),
}
# Max pools before these blocks: (kernel, stride).
_POOL_BEFORE = {"Mixed_3b": ((1, 3, 3), (1, 2, 2)), "Mixed_4b": ((3, 3, 3), (2, 2, 2)), "Mixed_5b": ((2, 2, 2),) * 2}


class I3D(nn.Module):
    """pytorch-i3d's InceptionI3d (400 classes); forward: (B, 3, T, 224, 224) in [-1, 1] -> (B, 400)
    logits averaged over time (the FVD feature)."""

    def __init__(self, classes: int = 400) -> None:
        super().__init__()
        self.Conv3d_1a_7x7 = Unit3D(3, 64, (7, 7, 7), (2, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, (3, 3, 3))
        for name, (cin, c) in _MIXED.items():
            self.add_module(name, InceptionModule(cin, c))
        self.logits = Unit3D(1024, classes, logits=True)

    def forward(self, clips: Tensor) -> Tensor:
        x = self.Conv3d_1a_7x7(clips)
        x = _max_pool(x, (1, 3, 3), (1, 2, 2))
        x = self.Conv3d_2c_3x3(self.Conv3d_2b_1x1(x))
        for name in _MIXED:
            if name in _POOL_BEFORE:
                x = _max_pool(x, *_POOL_BEFORE[name])
            x = getattr(self, name)(x)
        # (B, 1024, T', 7, 7): average pool over 2 x 7 x 7 (stride 1), as the model was trained
        t = x.shape[2]
        x = F.avg_pool3d(x, (min(2, t), min(7, x.shape[3]), min(7, x.shape[4])), stride=1)
        return self.logits(x).mean(dim=(2, 3, 4))  # (B, classes)


def clip_starts(n_frames: int, clips: int = 4) -> list[int]:
    """Start frames of up to `clips` non-overlapping 16-frame clips spread over a video of n_frames."""
    if n_frames < CLIP_FRAMES:
        return []
    count = min(clips, n_frames // CLIP_FRAMES)
    span = n_frames - CLIP_FRAMES
    return [int(math.floor(i * span / max(count - 1, 1))) for i in range(count)] if count > 1 else [0]
