"""Audio encoder (paper section 3.2): wav2vec2 features resampled to the video frame rate.

The wav2vec2 CNN gives ~50 feature frames per second; FLOAT linearly interpolates them to
exactly T = ceil(N * fps / sr) frames *before* the feature projection and the transformer,
concatenates the outputs of every transformer layer per frame and projects them:
Linear(L * H, D) -> LayerNorm -> SiLU.

Two evaluations:

* `forward`: the release's, the whole clip in one pass (attention is quadratic in T). Used
  for clips up to `AudioEncoder.max_whole_frames` frames (30 s), bit-exact with the release.
* `iter_windows`: the same features for audio of any length in flat memory. Output frames are
  produced in cores of `core` frames, each run through the transformer with `context` frames
  of audio on either side (clipped at the clip's ends). The CNN part is reproduced exactly:
  conv frames are computed from the samples they cover, the first conv layer's GroupNorm uses
  statistics of the whole padded clip (a cheap streaming pre-pass), and every output frame is
  interpolated from the same conv positions as the whole-clip mapping (align_corners=True over
  the whole clip). Only the transformer sees a window instead of the clip; see
  docs/PERFORMANCE.md for the measured difference.

Audio is read through a `SampleReader`: reader(start, stop) -> (1, stop - start) normalized
samples, replicate-padded past the clip's end, so no window needs the whole waveform.

Letters: B batch, N samples (16 kHz), T frames (25 fps), F conv frames (~50 Hz),
L layers, H wav2vec2 width, D output.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from floatalk.config import AudioEncoderConfig, Wav2Vec2Settings
from floatalk.units import FPS, SAMPLE_RATE

if TYPE_CHECKING:
    # transformers takes seconds to import: only a wav2vec2 model (the release's weights) needs it,
    # never the bundled model's log-mel encoders, so it is imported where a wav2vec2 is built.
    from transformers import Wav2Vec2Model

SampleReader = Callable[[int, int], Tensor]
"""reader(start, stop) -> (1, stop - start) float32 normalized samples; past the end of the
clip it repeats the last sample (the release's padding)."""


def build_wav2vec2(settings: Wav2Vec2Settings) -> Wav2Vec2Model:
    """A randomly initialised transformers Wav2Vec2Model for a stored config (eager attention)."""
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    cfg = Wav2Vec2Config(**settings.to_dict())
    # Eager attention is what the release ran (transformers 4.30); it also keeps CPU results stable.
    cfg._attn_implementation = "eager"
    model = Wav2Vec2Model(cfg)
    model.eval()
    return model


def frame_count(num_samples: int, sample_rate: int = SAMPLE_RATE, fps: int = FPS) -> int:
    """T = ceil(N * fps / sr): the number of video frames for N audio samples."""
    return math.ceil(num_samples * fps / sample_rate)


def pad_to_frames(audio: Tensor, num_frames: int, samples_per_frame: int) -> Tensor:
    """Extend (B, N) to exactly (B, T * samples_per_frame) by repeating the last sample."""
    target = num_frames * samples_per_frame
    n = audio.shape[-1]
    if n >= target:
        return audio[..., :target]
    return torch.cat([audio, audio[..., -1:].expand(*audio.shape[:-1], target - n)], dim=-1)


# ------------------------------------------------------------------------------- windowed CNN
def conv_geometry(w2v: Wav2Vec2Model) -> tuple[int, int]:
    """(hop, receptive field) of the conv feature extractor in samples: conv frame j covers
    samples [j * hop, j * hop + field)."""
    cfg = w2v.config
    hop, field = 1, 1
    for k, s in zip(cfg.conv_kernel, cfg.conv_stride, strict=True):
        field += (k - 1) * hop
        hop *= s
    return hop, field


def conv_frame_count(w2v: Wav2Vec2Model, num_samples: int) -> int:
    """Number of conv frames for num_samples (0 when the clip is shorter than one receptive field)."""
    hop, field = conv_geometry(w2v)
    return max(0, (num_samples - field) // hop + 1)


def first_layer_norm_stats(
    w2v: Wav2Vec2Model, reader: SampleReader, num_samples: int, chunk_frames: int = 8192
) -> tuple[Tensor, Tensor] | None:
    """Per-channel mean and variance (C,) of the first conv layer's output over the whole clip.

    For "group" feature extractors (wav2vec2-base) that layer's GroupNorm normalizes every
    channel over the entire clip; this computes the same statistics chunk by chunk (float64
    sums). None for "layer" extractors, which normalize each frame on its own.
    """
    if w2v.config.feat_extract_norm != "group":
        return None
    conv = w2v.feature_extractor.conv_layers[0].conv
    k, s = conv.kernel_size[0], conv.stride[0]
    total = max(0, (num_samples - k) // s + 1)
    acc = torch.zeros(2, conv.out_channels, dtype=torch.float64)
    for i0 in range(0, total, chunk_frames):
        i1 = min(total, i0 + chunk_frames)
        out = conv(reader(i0 * s, (i1 - 1) * s + k)[:, None])[0].double()  # (C, i1 - i0)
        acc[0] += out.sum(-1)
        acc[1] += out.pow(2).sum(-1)
    mean = acc[0] / total
    var = (acc[1] / total - mean.pow(2)).clamp_min(0.0)
    return mean.float(), var.float()


def conv_features(
    w2v: Wav2Vec2Model, reader: SampleReader, first: int, count: int, stats: tuple[Tensor, Tensor] | None
) -> Tensor:
    """Conv frames [first, first + count) of the whole clip: (1, C, count).

    stats: the first layer's whole-clip GroupNorm statistics (`first_layer_norm_stats`), or None
    for "layer" extractors. The frames equal the whole-clip ones up to rounding.
    """
    hop, field = conv_geometry(w2v)
    h = reader(first * hop, (first + count - 1) * hop + field)[:, None]  # (1, 1, n)
    layers = w2v.feature_extractor.conv_layers
    if stats is not None:
        first_layer = layers[0]
        gn = first_layer.layer_norm
        h = first_layer.conv(h)
        mean, var = stats
        h = (h - mean[:, None]) * torch.rsqrt(var[:, None] + gn.eps) * gn.weight[:, None] + gn.bias[:, None]
        h = first_layer.activation(h)
        layers = layers[1:]
    for layer in layers:
        h = layer(h)
    return h


def interpolation_positions(num_conv: int, num_frames: int, start: int, stop: int) -> tuple[Tensor, Tensor, Tensor]:
    """Linear interpolation (align_corners=True) of num_conv frames to num_frames, output frames [start, stop).

    Returns left index i0, right index i1 (long) and weight lam (float32) per output frame,
    computed as torch's CPU kernel does: scale = (F - 1) / (T - 1) in float32, source = scale * t.
    """
    t = torch.arange(start, stop)
    if num_frames == 1 or num_conv == 1:
        zero = torch.zeros(stop - start, dtype=torch.long)
        return zero, zero, torch.zeros(stop - start)
    scale = torch.tensor(num_conv - 1, dtype=torch.float32) / (num_frames - 1)
    src = scale * t.float()
    i0 = src.floor().long().clamp_max(num_conv - 1)
    lam = (src - i0.float()).clamp(0.0, 1.0)
    i1 = (i0 + 1).clamp_max(num_conv - 1)
    return i0, i1, lam


class AudioEncoder(nn.Module):
    """wav2vec2 (frozen) + projection; output `wa` (B, T, D)."""

    max_whole_frames = 750
    """Clips of at most this many frames (30 s at 25 fps) are encoded in one pass (`forward`)."""

    def __init__(self, cfg: AudioEncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.wav2vec2 = build_wav2vec2(cfg.wav2vec2)
        w2v = self.wav2vec2.config
        if w2v.do_stable_layer_norm:
            raise ValueError("the audio encoder expects a post-LN wav2vec2 (do_stable_layer_norm = false)")
        self.audio_projection = nn.Sequential(
            nn.Linear(w2v.num_hidden_layers * w2v.hidden_size, cfg.dim_out),
            nn.LayerNorm(cfg.dim_out),
            nn.SiLU(),
        )

    @property
    def samples_per_frame(self) -> int:
        return self.cfg.sample_rate // self.cfg.fps

    def transformer_features(self, conv: Tensor) -> Tensor:
        """Conv features at the frame rate (B, C, T) -> concatenated transformer-layer outputs (B, T, L * H)."""
        w2v = self.wav2vec2
        hidden, _ = w2v.feature_projection(conv.transpose(1, 2))  # (B, T, H)
        enc = w2v.encoder
        hidden = enc.layer_norm(hidden + enc.pos_conv_embed(hidden))
        hidden = enc.dropout(hidden)
        outputs = []
        for layer in enc.layers:
            hidden = layer(hidden, attention_mask=None)
            if isinstance(hidden, tuple):
                hidden = hidden[0]
            outputs.append(hidden)
        # Per frame, layer-major: [layer1 (H), layer2 (H), ...] as the release's stack + reshape.
        return torch.cat(outputs, dim=-1)

    def layer_features(self, audio: Tensor, num_frames: int) -> Tensor:
        """Normalized audio (B, N) -> concatenated transformer-layer outputs (B, T, L * H).

        The waveform is replicate-padded to T * samples_per_frame first (release behaviour).
        """
        audio = pad_to_frames(audio, num_frames, self.samples_per_frame)
        conv = self.wav2vec2.feature_extractor(audio)  # (B, C, ~2T)
        conv = F.interpolate(conv, size=num_frames, mode="linear", align_corners=True)  # (B, C, T)
        return self.transformer_features(conv)

    def forward(self, audio: Tensor, num_frames: int) -> Tensor:
        """Normalized audio (B, N) -> wa (B, T, D)."""
        return self.audio_projection(self.layer_features(audio, num_frames))

    def iter_windows(
        self, reader: SampleReader, num_frames: int, core: int = 500, context: int = 125
    ) -> Iterator[Tensor]:
        """wa for a clip of any length, core by core: yields (1, n, D), n = core except the last.

        reader: normalized samples of the clip (see `SampleReader`); num_frames: T. Each core of
        output frames goes through the transformer with up to `context` frames on either side.
        Memory depends on core + 2 * context, not on T.
        """
        if core < 1 or context < 0:
            raise ValueError(f"need core >= 1 and context >= 0 (got {core}, {context})")
        w2v = self.wav2vec2
        padded = num_frames * self.samples_per_frame
        num_conv = conv_frame_count(w2v, padded)
        if num_conv < 1:
            raise ValueError(f"{num_frames} frames of audio are shorter than one wav2vec2 receptive field")
        stats = first_layer_norm_stats(w2v, reader, padded)
        for t0 in range(0, num_frames, core):
            t1 = min(num_frames, t0 + core)
            a, b = max(0, t0 - context), min(num_frames, t1 + context)
            i0, i1, lam = interpolation_positions(num_conv, num_frames, a, b)
            lo, hi = int(i0[0]), int(i1[-1])
            conv = conv_features(w2v, reader, lo, hi - lo + 1, stats)  # (1, C, hi - lo + 1)
            left, right = conv[:, :, i0 - lo], conv[:, :, i1 - lo]
            w = lam.to(conv.dtype)
            conv = left * (1.0 - w) + right * w  # (1, C, b - a): the whole clip's time mapping
            yield self.audio_projection(self.transformer_features(conv)[:, t0 - a : t1 - a])
