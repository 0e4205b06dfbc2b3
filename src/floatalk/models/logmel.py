"""Weight-free audio front ends: log-mel features + small temporal conv nets.

For users without wav2vec2 weights and for the offline demo model. The audio encoder keeps the
wav2vec2 encoder's interface: `layer_features(audio, T)` is the frozen front end (here the
log-mel spectrogram resampled to 4 mel frames per video frame, stacked: (B, T, 4 * n_mels)),
`audio_projection(features)` the trainable part giving wa (B, T, D). The emotion classifier
pools a conv net over time into 7 logits.

Letters: B batch, N samples (16 kHz), T video frames, F mel frames (100 Hz), M mel bands, D output.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from floatalk.config import AudioEncoderConfig, EmotionEncoderConfig
from floatalk.models.audio_encoder import pad_to_frames
from floatalk.models.emotion_encoder import emotion_index
from floatalk.units import SAMPLE_RATE

WIN, HOP = 400, 160  # 25 ms window, 10 ms hop at 16 kHz
MELS_PER_FRAME = 4  # 100 Hz mel frames / 25 fps video


def mel_filterbank(n_mels: int, n_fft: int, sample_rate: int, fmin: float = 60.0, fmax: float = 7600.0) -> Tensor:
    """Triangular HTK-mel filters: (n_mels, n_fft // 2 + 1) float32."""

    def hz_to_mel(f: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def mel_to_hz(m: np.ndarray) -> np.ndarray:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

    freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(np.array(fmin)), hz_to_mel(np.array(fmax)), n_mels + 2))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rise = (freqs[None] - lower) / (centre - lower)
    fall = (upper - freqs[None]) / (upper - centre)
    return torch.from_numpy(np.clip(np.minimum(rise, fall), 0.0, None).astype(np.float32))


class LogMel(nn.Module):
    """Waveform (B, N) -> log-mel (B, M, F), F = N // HOP + 1."""

    def __init__(self, n_mels: int, sample_rate: int) -> None:
        super().__init__()
        self.register_buffer("window", torch.hann_window(WIN), persistent=False)
        self.register_buffer("filters", mel_filterbank(n_mels, WIN, sample_rate), persistent=False)

    def forward(self, audio: Tensor) -> Tensor:
        spec = torch.stft(audio.float(), WIN, HOP, window=self.window, center=True, return_complex=True)
        power = spec.real**2 + spec.imag**2  # (B, WIN // 2 + 1, F)
        return torch.log(self.filters @ power + 1e-5)


def frame_stack(mel: Tensor, num_frames: int) -> Tensor:
    """(B, M, F) at 100 Hz -> (B, T, 4 * M): mel frames resampled to 4 per video frame and stacked."""
    B, M, _ = mel.shape
    mel = F.interpolate(mel, size=num_frames * MELS_PER_FRAME, mode="linear", align_corners=False)
    return mel.view(B, M, num_frames, MELS_PER_FRAME).permute(0, 2, 3, 1).reshape(B, num_frames, -1)


class ConvBlock(nn.Module):
    """Residual temporal conv: x + conv(gelu(norm(x))), (B, T, C) -> (B, T, C)."""

    def __init__(self, channels: int, kernel: int = 5, dilation: int = 1) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels)
        self.conv = nn.Conv1d(channels, channels, kernel, padding=dilation * (kernel // 2), dilation=dilation)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(F.gelu(self.norm(x)).transpose(1, 2)).transpose(1, 2)


class LogMelProjection(nn.Module):
    """Stacked log-mel (B, T, 4M) -> wa (B, T, D): input norm, linear, 3 dilated conv blocks, LayerNorm, SiLU."""

    def __init__(self, n_in: int, hidden: int, dim_out: int) -> None:
        super().__init__()
        self.input_norm = nn.LayerNorm(n_in)
        self.inp = nn.Linear(n_in, hidden)
        self.blocks = nn.Sequential(*(ConvBlock(hidden, 5, d) for d in (1, 2, 4)))
        self.out = nn.Sequential(nn.Linear(hidden, dim_out), nn.LayerNorm(dim_out), nn.SiLU())

    def forward(self, features: Tensor) -> Tensor:
        return self.out(self.blocks(self.inp(self.input_norm(features))))


class LogMelAudioEncoder(nn.Module):
    """Weight-free audio encoder with the AudioEncoder interface: forward(audio (B, N), T) -> (B, T, D)."""

    def __init__(self, cfg: AudioEncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.logmel = LogMel(cfg.n_mels, cfg.sample_rate)
        self.audio_projection = LogMelProjection(MELS_PER_FRAME * cfg.n_mels, cfg.hidden, cfg.dim_out)

    @property
    def samples_per_frame(self) -> int:
        return self.cfg.sample_rate // self.cfg.fps

    def layer_features(self, audio: Tensor, num_frames: int) -> Tensor:
        """The fixed front end: normalized audio (B, N) -> stacked log-mel (B, T, 4M)."""
        audio = pad_to_frames(audio, num_frames, self.samples_per_frame)
        return frame_stack(self.logmel(audio), num_frames)

    def forward(self, audio: Tensor, num_frames: int) -> Tensor:
        return self.audio_projection(self.layer_features(audio, num_frames))


class LogMelEmotionEncoder(nn.Module):
    """Weight-free speech-emotion classifier with the EmotionEncoder interface: audio (B, N) -> (B, 1, K)."""

    def __init__(self, cfg: EmotionEncoderConfig, sample_rate: int = SAMPLE_RATE) -> None:
        super().__init__()
        self.cfg = cfg
        self.logmel = LogMel(cfg.n_mels, sample_rate)
        self.net = nn.Sequential(
            nn.Conv1d(cfg.n_mels, cfg.hidden, 5, padding=2),
            nn.GELU(),
            nn.Conv1d(cfg.hidden, cfg.hidden, 5, padding=4, dilation=2),
            nn.GELU(),
        )
        self.head = nn.Linear(2 * cfg.hidden, cfg.num_labels)

    def logits(self, audio: Tensor) -> Tensor:
        """Normalized audio (B, N) -> (B, K): mean and std of conv features over time, then linear."""
        mel = self.logmel(audio)
        mel = (mel - mel.mean(dim=(1, 2), keepdim=True)) / (mel.std(dim=(1, 2), keepdim=True) + 1e-5)
        h = self.net(mel)
        return self.head(torch.cat([h.mean(-1), h.std(-1)], dim=-1))

    def forward(self, audio: Tensor) -> Tensor:
        return torch.softmax(self.logits(audio), dim=-1).unsqueeze(1)

    def one_hot(self, emotion: str, batch: int = 1, dtype: torch.dtype = torch.float32) -> Tensor:
        out = torch.zeros(batch, 1, self.cfg.num_labels, dtype=dtype)
        out[..., emotion_index(emotion)] = 1.0
        return out


def build_audio_encoder(cfg: AudioEncoderConfig) -> nn.Module:
    from floatalk.models.audio_encoder import AudioEncoder

    if cfg.kind == "wav2vec2":
        return AudioEncoder(cfg)
    if cfg.kind == "logmel":
        return LogMelAudioEncoder(cfg)
    raise ValueError(f"unknown audio encoder kind {cfg.kind!r}; choose wav2vec2 or logmel")


def build_emotion_encoder(cfg: EmotionEncoderConfig, sample_rate: int) -> nn.Module:
    from floatalk.models.emotion_encoder import EmotionEncoder

    if cfg.kind == "wav2vec2":
        return EmotionEncoder(cfg)
    if cfg.kind == "logmel":
        return LogMelEmotionEncoder(cfg, sample_rate)
    raise ValueError(f"unknown emotion encoder kind {cfg.kind!r}; choose wav2vec2 or logmel")


__all__ = ["LogMelAudioEncoder", "LogMelEmotionEncoder", "build_audio_encoder", "build_emotion_encoder"]
