"""Weight files the user supplies for the learned metrics (FID, FVD, LSE, ArcFace CSIM).

floatalk downloads nothing: `floatalk evaluate --weights DIR` names a folder holding the public
files under their usual names (docs/EVALUATE.md says where each comes from). Loading is strict:
a missing file, a missing or unexpected key or a wrong shape stops with one sentence naming the
file and the key. BatchNorm's `num_batches_tracked` counters may be absent (files saved by old
PyTorch versions lack them; they do not change the outputs).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

from floatalk.errors import UserInputError

__all__ = ["WEIGHT_FILES", "load_metric_weights", "weight_file"]

WEIGHT_FILES: dict[str, tuple[str, ...]] = {
    "fid": ("pt_inception-2015-12-05-6726825d.pth",),
    "fvd": ("i3d_pretrained_400.pt", "rgb_imagenet.pt"),
    "lse": ("syncnet_v2.model",),
    "csim_arcface": ("arcface_r100.pth", "backbone.pth"),
}
"""Metric -> accepted file names in the weights folder (the first one present is used)."""

_WHAT = {
    "fid": "pytorch-fid's InceptionV3 weights",
    "fvd": "the I3D (Kinetics-400) weights of pytorch-i3d",
    "lse": "SyncNet v2 (syncnet_python)",
    "csim_arcface": "an ArcFace IResNet-100 backbone (insightface arcface_torch)",
}


def weight_file(metric: str, folder: str | os.PathLike | None) -> Path:
    """The weight file of `metric` in `folder`; UserInputError naming the file when it is missing."""
    names = WEIGHT_FILES[metric]
    wanted = " or ".join(f"'{n}'" for n in names)
    if folder is None:
        raise UserInputError(f"The metric {metric} needs {_WHAT[metric]} ({wanted}); pass --weights DIR.")
    for name in names:
        path = Path(folder) / name
        if path.is_file():
            return path
    raise UserInputError(f"The metric {metric} needs {_WHAT[metric]}: no {wanted} in '{folder}'.")


def load_metric_weights(module: nn.Module, metric: str, folder: str | os.PathLike | None) -> Path:
    """Load `metric`'s weight file from `folder` into `module` strictly; returns the file's path."""
    from floatalk.checkpoint import load_strict, read_weights

    path = weight_file(metric, folder)
    state = read_weights(path)
    expected = {k: v for k, v in module.state_dict().items() if not k.endswith("num_batches_tracked") or k in state}
    load_strict(module, state, expected, path)
    return path
