"""LSE-C / LSE-D: lip-sync confidence and distance from SyncNet v2, the Wav2Lip / LatentSync protocol.

The network is syncnet_python's `S` model (Chung and Zisserman, "Out of time", 2016) with the
keys of `syncnet_v2.model`: an audio branch `netcnnaud` + `netfcaud` over 13 MFCCs x 20 steps
(0.2 s) and a lip branch `netcnnlip` + `netfclip` over 5 colour frames of 224 x 224, each giving a
1024-d embedding. The protocol, as syncnet_python's `SyncNetInstance.evaluate` runs it:

* MFCCs as python_speech_features computes them (25 ms rectangular frames every 10 ms,
  pre-emphasis 0.97, 512-point FFT, 26 mel filters 0-8000 Hz, DCT-II, 13 coefficients, lifter
  22, c0 replaced by the log frame energy) on 16-bit-scaled samples at 16 kHz;
* frames: the face crop of syncnet_python's pipeline (a square of 1.4 face-box sides, centred
  0.2 box sides below the box centre), resized to 224, BGR, 0..255, no normalisation;
* for each start frame i, the lip embedding of frames i..i+4 and the audio embedding of MFCC
  steps 4i..4i+19; distances between video i and audio i+d for d in -15..15 (audio zero-padded);
  their mean over i gives a curve; LSE-D is its minimum, the offset is 15 - argmin (frames),
  LSE-C is its median minus its minimum.

Letters: B batch, T frames.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["SyncNet", "lse_from_embeddings", "mfcc", "syncnet_crop"]

VSHIFT = 15
_SR = 16000


def _conv_bn(conv: nn.Module, channels: int, bn: type[nn.Module]) -> list[nn.Module]:
    return [conv, bn(channels), nn.ReLU(inplace=True)]


class SyncNet(nn.Module):
    """syncnet_python's S model: `audio` (B, 1, 13, 20) MFCCs -> (B, 1024); `lips` (B, 3, 5, 224, 224) -> (B, 1024)."""

    def __init__(self, embedding: int = 1024) -> None:
        super().__init__()
        bn2, bn3 = nn.BatchNorm2d, nn.BatchNorm3d
        # Indices matter: they are the file's keys (netcnnaud.0.weight, netcnnaud.1.running_mean, ...).
        self.netcnnaud = nn.Sequential(
            *_conv_bn(nn.Conv2d(1, 64, 3, padding=1), 64, bn2),
            nn.MaxPool2d(1, 1),
            *_conv_bn(nn.Conv2d(64, 192, 3, padding=1), 192, bn2),
            nn.MaxPool2d(3, stride=(1, 2)),
            *_conv_bn(nn.Conv2d(192, 384, 3, padding=1), 384, bn2),
            *_conv_bn(nn.Conv2d(384, 256, 3, padding=1), 256, bn2),
            *_conv_bn(nn.Conv2d(256, 256, 3, padding=1), 256, bn2),
            nn.MaxPool2d(3, stride=2),
            *_conv_bn(nn.Conv2d(256, 512, (5, 4)), 512, bn2),
        )
        self.netfcaud = nn.Sequential(nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, embedding))
        self.netfclip = nn.Sequential(nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, embedding))
        self.netcnnlip = nn.Sequential(
            *_conv_bn(nn.Conv3d(3, 96, (5, 7, 7), stride=(1, 2, 2)), 96, bn3),
            nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2)),
            *_conv_bn(nn.Conv3d(96, 256, (1, 5, 5), stride=(1, 2, 2), padding=(0, 1, 1)), 256, bn3),
            nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
            *_conv_bn(nn.Conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)), 256, bn3),
            *_conv_bn(nn.Conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)), 256, bn3),
            *_conv_bn(nn.Conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)), 256, bn3),
            nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2)),
            *_conv_bn(nn.Conv3d(256, 512, (1, 6, 6)), 512, bn3),
        )

    def audio(self, mfccs: Tensor) -> Tensor:
        return self.netfcaud(self.netcnnaud(mfccs).flatten(1))  # (B, 512) -> (B, 1024)

    def lips(self, frames: Tensor) -> Tensor:
        return self.netfclip(self.netcnnlip(frames).flatten(1))


def _hz2mel(hz: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0)


def _mel2hz(mel: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(mel) / 2595.0) - 1.0)


def mfcc(wave: np.ndarray, sample_rate: int = _SR) -> np.ndarray:
    """(N,) samples on the 16-bit scale (-32768..32767) -> (steps, 13) MFCCs, python_speech_features' recipe."""
    from scipy.fft import dct

    signal = np.asarray(wave, dtype=np.float64)
    signal = np.append(signal[:1], signal[1:] - 0.97 * signal[:-1])
    frame, step, nfft, nfilt = round(0.025 * sample_rate), round(0.01 * sample_rate), 512, 26
    n = 1 if len(signal) <= frame else 1 + math.ceil((len(signal) - frame) / step)
    padded = np.concatenate([signal, np.zeros((n - 1) * step + frame - len(signal))])
    index = np.arange(frame)[None, :] + step * np.arange(n)[:, None]
    power = np.abs(np.fft.rfft(padded[index], nfft)) ** 2 / nfft  # (n, 257)
    energy = power.sum(axis=1)
    energy = np.where(energy == 0, np.finfo(float).eps, energy)
    points = _mel2hz(np.linspace(_hz2mel(0.0), _hz2mel(sample_rate / 2), nfilt + 2))
    bins = np.floor((nfft + 1) * points / sample_rate).astype(int)
    bank = np.zeros((nfilt, nfft // 2 + 1))
    for j in range(nfilt):
        for i in range(bins[j], bins[j + 1]):
            bank[j, i] = (i - bins[j]) / (bins[j + 1] - bins[j])
        for i in range(bins[j + 1], bins[j + 2]):
            bank[j, i] = (bins[j + 2] - i) / (bins[j + 2] - bins[j + 1])
    feat = power @ bank.T
    feat = np.log(np.where(feat == 0, np.finfo(float).eps, feat))
    feat = dct(feat, type=2, axis=1, norm="ortho")[:, :13]
    feat *= 1 + 11.0 * np.sin(np.pi * np.arange(13) / 22)  # lifter L = 22: 1 + (L / 2) sin(pi n / L)
    feat[:, 0] = np.log(energy)
    return feat


def syncnet_crop(frame: np.ndarray, box: tuple[float, float, float, float], size: int = 224) -> np.ndarray:
    """syncnet_python's face crop of an (H, W, 3) RGB frame around face box (x, y, w, h) -> (size, size, 3) BGR."""
    from floatalk.io.face import CropBox, crop_image

    x, y, w, h = box
    half = max(w, h) / 2  # syncnet_python's bs
    cx, cy = x + w / 2, y + h / 2 + 0.4 * half  # rows cy - bs .. cy + 1.8 bs, columns cx +- 1.4 bs
    side = 2.8 * half
    return crop_image(np.ascontiguousarray(frame), CropBox(cx - side / 2, cy - side / 2, side), size)[..., ::-1]


def lse_from_embeddings(video: Tensor, audio: Tensor, vshift: int = VSHIFT) -> dict[str, float]:
    """LSE-D, LSE-C and offset from (N, D) lip and (N, D) audio embeddings (see the module docstring)."""
    padded = F.pad(audio, (0, 0, vshift, vshift))
    window = 2 * vshift + 1
    dists = torch.stack(
        [F.pairwise_distance(video[i : i + 1].expand(window, -1), padded[i : i + window]) for i in range(len(video))],
        dim=1,
    )  # (window, N)
    mean = dists.mean(dim=1)
    best = int(torch.argmin(mean))
    minimum = float(mean[best])
    return {"lse_d": minimum, "lse_c": float(torch.median(mean)) - minimum, "lse_offset": vshift - best}


@torch.inference_mode()
def lse_scores(net: SyncNet, crops: np.ndarray, wave: np.ndarray, batch: int = 20) -> dict[str, float]:
    """SyncNet's scores for (T, 224, 224, 3) BGR uint8 face crops at 25 fps and (N,) float speech in
    [-1, 1] at 16 kHz; needs at least 6 frames of both."""
    feats = mfcc(np.asarray(wave, dtype=np.float64) * 32768.0).T  # (13, steps)
    frames = min(len(crops), len(wave) // 640)
    last = frames - 5
    if last < 1:
        raise ValueError("SyncNet needs at least 6 frames of video and audio")
    video = torch.from_numpy(np.ascontiguousarray(crops[:frames])).float().permute(3, 0, 1, 2)  # (3, T, 224, 224)
    sound = torch.from_numpy(feats).float()[None, None]  # (1, 1, 13, steps)
    lips, auds = [], []
    for start in range(0, last, batch):
        idx = range(start, min(last, start + batch))
        lips.append(net.lips(torch.stack([video[:, i : i + 5] for i in idx])))
        auds.append(net.audio(torch.cat([sound[:, :, :, 4 * i : 4 * i + 20] for i in idx])))
    return lse_from_embeddings(torch.cat(lips), torch.cat(auds))
