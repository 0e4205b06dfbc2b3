"""Step two of the paper, its inputs: the speech waveform, normalised as the release does, and
the settings for clips too long to encode in one pass.

Letters: N samples.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

__all__ = ["AudioInput", "LongAudio", "NormalizedWave", "normalize_audio"]

AudioInput = str | os.PathLike | np.ndarray


@dataclass(frozen=True)
class LongAudio:
    """When and how audio is encoded piecewise (see floatalk.models.audio_encoder / emotion_encoder).

    Clips of at most `max_whole_frames` video frames are encoded in one pass, exactly as the
    release does; longer ones in cores of `core` frames (a multiple of the FMT window) with
    `context` frames of audio on either side (`core` is rounded up to whole FMT windows), and
    emotion over segments of at most
    `emotion_segment` conv frames. The defaults are 30 s, 20 s, 5 s and 30 s.
    """

    max_whole_frames: int = 750
    core: int = 500
    context: int = 125
    emotion_segment: int = 1500

    def __post_init__(self) -> None:
        if min(self.max_whole_frames, self.core, self.emotion_segment) < 1 or self.context < 0:
            raise ValueError(f"invalid long-audio settings: {self}")


class NormalizedWave:
    """A clip's normalized samples, read range by range (a `SampleReader`), replicate-padded past its end.

    Normalization is the release's: (x - mean) / sqrt(var + 1e-7) in float32. Up to
    `exact_samples` samples the statistics are numpy's float32 ones (bit-exact with
    `normalize_audio`); longer clips use float64 sums over chunks, with no full-length temporary.
    """

    def __init__(self, wave: np.ndarray, device: torch.device, exact_samples: int, chunk: int = 1 << 20) -> None:
        self.wave = np.asarray(wave, dtype=np.float32)
        self.device = device
        n = len(self.wave)
        if n == 0:
            raise ValueError("empty audio")
        if n <= exact_samples:
            self.mean = self.wave.mean()
            self.scale = np.sqrt(self.wave.var() + 1e-7)
        else:
            total, total_sq = 0.0, 0.0
            for i in range(0, n, chunk):
                part = self.wave[i : i + chunk].astype(np.float64)
                total += float(part.sum())
                total_sq += float(np.square(part).sum())
            mean = total / n
            self.mean = np.float32(mean)
            self.scale = np.sqrt(np.float32(max(total_sq / n - mean * mean, 0.0)) + np.float32(1e-7))

    def __len__(self) -> int:
        return len(self.wave)

    def __call__(self, start: int, stop: int) -> Tensor:
        """Samples [start, stop) -> (1, stop - start) float32 on the pipeline's device."""
        n = len(self.wave)
        part = (self.wave[min(start, n - 1) : min(stop, n)] - self.mean) / self.scale
        if stop > n:
            # Release padding: repeat the last (normalized) sample.
            last = (self.wave[n - 1 :] - self.mean) / self.scale
            fill = np.broadcast_to(last, (stop - max(start, n),))
            part = np.concatenate([part[: max(0, n - start)], fill])
        return torch.from_numpy(np.ascontiguousarray(part, dtype=np.float32))[None].to(self.device)


def normalize_audio(wave: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance over the whole clip in float32 numpy (wav2vec2 feature extractor rule)."""
    x = np.asarray(wave, dtype=np.float32)
    return (x - x.mean()) / np.sqrt(x.var() + 1e-7)
