"""Step three of the paper: motion latents sampled window by window by the flow-matching
transformer, conditioned on the source's r_s, the audio features wa and the emotion we, each
window continuing from the previous one's last latents.

`Conditions` is everything the sampler is conditioned on; `sample_motion` yields the motion of
each window as it is sampled, with the edit of the conditions (if any) applied to what is shown.

Letters: T frames, D latent size, K emotions, n frames of one window.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from floatalk.engine.source import SourceImage
from floatalk.models.fmt import FlowMatchingTransformer
from floatalk.options import GenerateOptions
from floatalk.progress import Progress, no_progress
from floatalk.sampling.sampler import SamplerSettings, iter_motion_windows

__all__ = ["Conditions", "FloatOutput", "WindowEdit", "sample_motion"]


class WindowEdit(Protocol):
    """A change of the generated motion before it is decoded (floatalk.editing.MotionEdit)."""

    def apply(self, motion: Tensor, start: int) -> Tensor:
        """(n, D) float32 latents of frames start..start+n -> the (n, D) latents to show."""
        ...


@dataclass
class Conditions:
    """What the motion sampler is conditioned on, computed once per (photo, recording)."""

    source: SourceImage
    wave: np.ndarray  # (N,) float32 16 kHz mono, before normalisation
    emotion: Tensor  # (1, 1, K) predicted probabilities or a one-hot; (1, T, K) per frame (a timeline)
    e_scales: Tensor | None = None  # (T,) per-frame emotion guidance (a timeline), else options' scale
    edit: WindowEdit | None = None  # applied to the motion before decoding, or None


@dataclass
class FloatOutput:
    """Result of a pipeline call."""

    motion: Tensor  # (T, D) float32 motion latents r_d
    frames: np.ndarray  # (T, S, S, 3) uint8 RGB
    emotion: Tensor  # (K,) the emotion vector used (probabilities or one-hot)
    audio: np.ndarray  # (N,) float32 16 kHz mono waveform that drove it (before normalisation)
    fps: int


@torch.inference_mode()
def sample_motion(
    fmt: FlowMatchingTransformer,
    features: Iterator[Tensor],
    T: int,
    conditions: Conditions,
    options: GenerateOptions,
    dtype: torch.dtype = torch.float32,
    generator: torch.Generator | None = None,
    progress: Progress | None = None,
) -> Iterator[tuple[int, Tensor]]:
    """Audio features chunk by chunk -> motion window by window: yields (start frame, the window's
    motion to show (1, n, D) in `dtype`), edited when the conditions carry an edit.

    fmt: the flow-matching transformer (in `dtype`); features: the clip's audio features wa
    chunk by chunk, (1, n, Da) each; T: the clip's frame count.

    Every chunk of audio features holds whole FMT windows, so sampling the chunks one after the
    other, from one generator, with the previous chunk's last latents and features as context
    gives exactly the motion of sampling all of wa at once. Noise comes from `generator`, or
    from a CPU generator seeded with `options.seed`. The caller may report progress between a
    window being yielded and the next one being asked for (frames decoded).
    """
    report = progress or no_progress
    settings = SamplerSettings(
        a_cfg_scale=options.a_cfg_scale, e_cfg_scale=options.e_cfg_scale, nfe=options.nfe, method=options.method
    )
    done = 0
    Lp = fmt.cfg.prev
    r_s, we = conditions.source.r_s.to(dtype), conditions.emotion.to(dtype)
    edit = conditions.edit
    if generator is None:
        generator = torch.Generator().manual_seed(int(options.seed))
    prev_x: Tensor | None = None
    prev_wa: Tensor | None = None
    while True:
        if done < T:
            report("audio", done, T)
        wa = next(features, None)
        if wa is None:
            return
        wa = wa.to(dtype)
        report("motion", done, T)
        windows = iter_motion_windows(
            fmt, wa, r_s, we, settings, generator, 0, prev_x, prev_wa, done, conditions.e_scales
        )
        for window in windows:
            # The sampler continues from the model's own motion; edits only change what is shown.
            shown = window if edit is None else edit.apply(window[0].float(), done)[None].to(window.dtype)
            yield done, shown
            done += window.shape[1]
            prev_x = window[:, -Lp:]  # the last window of a chunk that is not the clip's last is whole
            if done < T:
                report("motion", done, T)
        prev_wa = wa[:, -Lp:]
