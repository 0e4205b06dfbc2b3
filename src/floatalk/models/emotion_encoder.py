"""Speech-emotion encoder (paper section 3.2): a wav2vec2 classifier over 7 emotions.

Mean-pool the last hidden state over time, dense -> tanh -> out_proj, softmax. The result
`we` (B, 1, 7) conditions the FMT; a user-chosen emotion replaces it by a one-hot vector.
Class order: angry, disgust, fear, happy, neutral, sad, surprise.

Letters: B batch, N samples (16 kHz), H wav2vec2 width, K classes.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from floatalk.config import EMOTIONS, EmotionEncoderConfig
from floatalk.models.audio_encoder import build_wav2vec2

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


class EmotionEncoder(nn.Module):
    """Emotion probabilities `we` (B, 1, K) from speech, or a one-hot for a named emotion."""

    def __init__(self, cfg: EmotionEncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.wav2vec2_for_emotion = SpeechEmotionClassifier(cfg)

    def forward(self, audio: Tensor) -> Tensor:
        """Normalized, unpadded audio (B, N) -> softmax probabilities (B, 1, K)."""
        return torch.softmax(self.wav2vec2_for_emotion(audio), dim=-1).unsqueeze(1)

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
