"""Speech-emotion encoder (paper section 3.2): a wav2vec2 classifier over 7 emotions.

Mean-pool the last hidden state over time, dense -> tanh -> out_proj, softmax. The result
`we` (B, 1, 7) conditions the FMT; a user-chosen emotion replaces it by a one-hot vector.
Class order: angry, disgust, fear, happy, neutral, sad, surprise.

Long clips (`EmotionEncoder.segmented`): the clip's conv frames are split into equal segments
of at most `max_whole_frames` (30 s); each segment runs through the transformer on its own and
the pooled hidden states are combined over segments (mean: frame-weighted mean of segment
means; sum: sum; max: max) before the head and the softmax. This equals the whole-clip result
when the transformer's output is local; the conv frames themselves are the whole clip's
(GroupNorm extractors use whole-clip statistics).

Letters: B batch, N samples (16 kHz), F conv frames (~50 Hz), H wav2vec2 width, K classes.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from floatalk.config import EMOTIONS, EmotionEncoderConfig
from floatalk.models.audio_encoder import (
    SampleReader,
    build_wav2vec2,
    conv_features,
    conv_frame_count,
    first_layer_norm_stats,
)

POOLING = {
    "mean": lambda h: h.mean(dim=1),
    "sum": lambda h: h.sum(dim=1),
    "max": lambda h: h.max(dim=1).values,
}
"""Pooling over time of the (B, frames, H) hidden states, as the classifier config names it."""


class ClassificationHead(nn.Module):
    """dense(H, H) -> tanh -> out_proj(H, K)."""

    def __init__(self, hidden: int, num_labels: int) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.out_proj = nn.Linear(hidden, num_labels)

    def forward(self, pooled: Tensor) -> Tensor:
        return self.out_proj(torch.tanh(self.dense(pooled)))


class SpeechEmotionClassifier(nn.Module):
    """wav2vec2 backbone + mean pooling + head; keys `wav2vec2.*`, `classifier.*` as released."""

    def __init__(self, cfg: EmotionEncoderConfig) -> None:
        super().__init__()
        if cfg.pooling not in POOLING:
            raise ValueError(f"unknown pooling {cfg.pooling!r}; choose one of: {', '.join(POOLING)}")
        self.pooling = cfg.pooling
        self.wav2vec2 = build_wav2vec2(cfg.wav2vec2)
        self.classifier = ClassificationHead(self.wav2vec2.config.hidden_size, cfg.num_labels)

    def forward(self, audio: Tensor) -> Tensor:
        """Normalized audio (B, N) -> logits (B, K)."""
        hidden = self.wav2vec2(audio).last_hidden_state  # (B, frames, H)
        return self.classifier(POOLING[self.pooling](hidden))

    def segmented(self, reader: SampleReader, num_samples: int, max_frames: int) -> Tensor:
        """Logits (1, K) for a clip of any length read through `reader` (unpadded, normalized).

        The F conv frames are split into ceil(F / max_frames) equal segments; pooled hidden
        states are combined over segments as the pooling rule dictates (see the module doc).
        """
        w2v = self.wav2vec2
        total = conv_frame_count(w2v, num_samples)
        if total < 1:
            raise ValueError(f"{num_samples} samples are shorter than one wav2vec2 receptive field")
        stats = first_layer_norm_stats(w2v, reader, num_samples)
        n_seg = -(-total // max_frames)
        bounds = [round(i * total / n_seg) for i in range(n_seg + 1)]
        pooled: Tensor | None = None
        for f0, f1 in zip(bounds[:-1], bounds[1:], strict=True):
            conv = conv_features(w2v, reader, f0, f1 - f0, stats)  # (1, C, f1 - f0)
            hidden, _ = w2v.feature_projection(conv.transpose(1, 2))
            hidden = w2v.encoder(hidden).last_hidden_state  # (1, f1 - f0, H)
            if self.pooling == "max":
                part = hidden.max(dim=1).values
                pooled = part if pooled is None else torch.maximum(pooled, part)
            else:
                # Sums first; the mean divides once by the total frame count at the end.
                part = hidden.sum(dim=1)
                pooled = part if pooled is None else pooled + part
        assert pooled is not None
        if self.pooling == "mean":
            pooled = pooled / total
        return self.classifier(pooled)


class EmotionEncoder(nn.Module):
    """Emotion probabilities `we` (B, 1, K) from speech, or a one-hot for a named emotion."""

    def __init__(self, cfg: EmotionEncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.wav2vec2_for_emotion = SpeechEmotionClassifier(cfg)

    max_whole_frames = 1500
    """Clips of at most this many conv frames (30 s at 50 Hz) are classified in one pass."""

    def forward(self, audio: Tensor) -> Tensor:
        """Normalized, unpadded audio (B, N) -> softmax probabilities (B, 1, K)."""
        return torch.softmax(self.wav2vec2_for_emotion(audio), dim=-1).unsqueeze(1)

    def segmented(self, reader: SampleReader, num_samples: int, max_frames: int | None = None) -> Tensor:
        """Softmax probabilities (1, 1, K) for a clip of any length in flat memory (module doc).

        reader: the clip's normalized, unpadded samples; max_frames: segment length in conv
        frames (default `max_whole_frames`).
        """
        logits = self.wav2vec2_for_emotion.segmented(reader, num_samples, max_frames or self.max_whole_frames)
        return torch.softmax(logits, dim=-1).unsqueeze(1)

    def one_hot(self, emotion: str, batch: int = 1, dtype: torch.dtype = torch.float32) -> Tensor:
        """Named emotion -> one-hot (B, 1, K)."""
        index = emotion_index(emotion)
        out = torch.zeros(batch, 1, self.cfg.num_labels, dtype=dtype)
        out[..., index] = 1.0
        return out


def emotion_index(name: str) -> int:
    """Index of an emotion name (case-insensitive) in EMOTIONS; ValueError names the choices."""
    key = name.strip().lower()
    if key not in EMOTIONS:
        raise ValueError(f"unknown emotion {name!r}; choose one of: {', '.join(EMOTIONS)}")
    return EMOTIONS.index(key)
