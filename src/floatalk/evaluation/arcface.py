"""CSIM with ArcFace: cosine similarity of IResNet-100 embeddings (insightface's arcface_torch).

The network is arcface_torch's `iresnet100` with its exact keys (`conv1.weight`, `bn1.*`,
`prelu.weight`, `layer1.0.bn1.*`, ..., `bn2.*`, `fc.*`, `features.*`), the backbone file that
project publishes (e.g. ms1mv3_arcface_r100_fp16's `backbone.pth`). Faces are aligned to the
usual 112 x 112 ArcFace template by a similarity transform from five mesh points (eye centres,
nose tip, mouth corners) and scaled to [-1, 1]; the embedding is the 512-d output.

Letters: B faces.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["ARCFACE_TEMPLATE", "IResNet", "align_arcface"]

ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]]
)
"""Where the five points (subject's right eye, left eye, nose tip, right and left mouth corners) go in 112 x 112."""

# Mesh points for the template's five: eye centres as the mean of each eye's corners.
_FIVE = ((33, 133), (263, 362), (1,), (61,), (291,))


class IBasicBlock(nn.Module):
    """bn1 -> conv1 3x3 -> bn2 -> prelu -> conv2 3x3 (stride) -> bn3, plus the (downsampled) input."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin, eps=1e-5)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout, eps=1e-5)
        self.prelu = nn.PReLU(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride=stride, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout, eps=1e-5)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        return out + (x if self.downsample is None else self.downsample(x))


class IResNet(nn.Module):
    """arcface_torch's IResNet; `layers` (3, 13, 30, 3) is iresnet100. (B, 3, 112, 112) in [-1, 1] -> (B, 512)."""

    def __init__(self, layers: tuple[int, int, int, int] = (3, 13, 30, 3), embedding: int = 512) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, eps=1e-5)
        self.prelu = nn.PReLU(64)
        channels = (64, 128, 256, 512)
        cin = 64
        for i, (count, cout) in enumerate(zip(layers, channels)):
            blocks = [IBasicBlock(cin, cout, 2)] + [IBasicBlock(cout, cout, 1) for _ in range(count - 1)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
            cin = cout
        self.bn2 = nn.BatchNorm2d(512, eps=1e-5)
        self.fc = nn.Linear(512 * 7 * 7, embedding)
        self.features = nn.BatchNorm1d(embedding, eps=1e-5)

    def forward(self, faces: Tensor) -> Tensor:
        x = self.prelu(self.bn1(self.conv1(faces)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.bn2(x).flatten(1)  # (B, 512 * 7 * 7)
        return self.features(self.fc(x))


def align_arcface(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(112, 112, 3) uint8 RGB face aligned to `ARCFACE_TEMPLATE` from (P, 2+) mesh points of an (H, W, 3) image."""
    import cv2

    xy = np.asarray(points, dtype=np.float64)[:, :2]
    src = np.array([xy[list(idx)].mean(axis=0) for idx in _FIVE])
    matrix, _ = cv2.estimateAffinePartial2D(src, ARCFACE_TEMPLATE, method=cv2.LMEDS)
    if matrix is None:
        raise ValueError("could not align the face")
    return cv2.warpAffine(np.ascontiguousarray(image), matrix, (112, 112), borderValue=(0, 0, 0))


@torch.inference_mode()
def embed_faces(net: IResNet, faces: np.ndarray) -> np.ndarray:
    """(B, 112, 112, 3) uint8 RGB aligned faces -> (B, 512) float64 embeddings."""
    x = torch.from_numpy(np.ascontiguousarray(faces)).float().permute(0, 3, 1, 2) / 127.5 - 1.0
    return net(x).double().numpy()
