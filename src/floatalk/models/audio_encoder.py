"""Audio encoder (paper section 3.2): wav2vec2 features resampled to the video frame rate.

The wav2vec2 CNN gives ~50 feature frames per second; FLOAT linearly interpolates them to
exactly T = ceil(N * fps / sr) frames *before* the feature projection and the transformer,
concatenates the outputs of every transformer layer per frame and projects them:
Linear(L * H, D) -> LayerNorm -> SiLU.

Letters: B batch, N samples (16 kHz), T frames (25 fps), L layers, H wav2vec2 width, D output.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import Wav2Vec2Config, Wav2Vec2Model

from floatalk.config import AudioEncoderConfig, Wav2Vec2Settings


def build_wav2vec2(settings: Wav2Vec2Settings) -> Wav2Vec2Model:
    """A randomly initialised transformers Wav2Vec2Model for a stored config (eager attention)."""
    cfg = Wav2Vec2Config(**settings.to_dict())
    # Eager attention is what the release ran (transformers 4.30); it also keeps CPU results stable.
    cfg._attn_implementation = "eager"
    model = Wav2Vec2Model(cfg)
    model.eval()
    return model


def frame_count(num_samples: int, sample_rate: int = 16000, fps: int = 25) -> int:
    """T = ceil(N * fps / sr): the number of video frames for N audio samples."""
    return math.ceil(num_samples * fps / sample_rate)


def pad_to_frames(audio: Tensor, num_frames: int, samples_per_frame: int) -> Tensor:
    """Extend (B, N) to exactly (B, T * samples_per_frame) by repeating the last sample."""
    target = num_frames * samples_per_frame
    n = audio.shape[-1]
    if n >= target:
        return audio[..., :target]
    return torch.cat([audio, audio[..., -1:].expand(*audio.shape[:-1], target - n)], dim=-1)


class AudioEncoder(nn.Module):
    """wav2vec2 (frozen) + projection; output `wa` (B, T, D)."""

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

    def layer_features(self, audio: Tensor, num_frames: int) -> Tensor:
        """Normalized audio (B, N) -> concatenated transformer-layer outputs (B, T, L * H).

        The waveform is replicate-padded to T * samples_per_frame first (release behaviour).
        """
        w2v = self.wav2vec2
        audio = pad_to_frames(audio, num_frames, self.samples_per_frame)
        conv = w2v.feature_extractor(audio)  # (B, C, ~2T)
        conv = F.interpolate(conv, size=num_frames, mode="linear", align_corners=True)  # (B, C, T)
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

    def forward(self, audio: Tensor, num_frames: int) -> Tensor:
        """Normalized audio (B, N) -> wa (B, T, D)."""
        return self.audio_projection(self.layer_features(audio, num_frames))
