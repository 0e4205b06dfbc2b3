"""Model presets for training: `tiny` (tests, 64 px), `demo` (the bundled model, 128 px, CPU in
about an hour) and `base` (the release's sizes: 512 px, FMT 1024 x 8, wav2vec2 audio)."""

from __future__ import annotations

from dataclasses import replace

from floatalk.config import (
    AudioEncoderConfig,
    EmotionEncoderConfig,
    FloatConfig,
    FMTConfig,
    MotionAEConfig,
)

PRESETS = ("tiny", "demo", "base")


def preset(name: str) -> FloatConfig:
    """The full model config of a preset (audio/emotion: log-mel for tiny and demo, wav2vec2 for base)."""
    if name == "tiny":
        return FloatConfig(
            motion_ae=MotionAEConfig(size=64, style_dim=64, motion_dim=10, channel_base=1024, channel_max=64),
            audio=AudioEncoderConfig(kind="logmel", dim_out=64, n_mels=40, hidden=64),
            emotion=EmotionEncoderConfig(kind="logmel", n_mels=40, hidden=32),
            fmt=FMTConfig(dim_x=64, dim_a=64, hidden=64, depth=2, heads=4, window=20, prev=4, t_freq_dim=64),
        )
    if name == "demo":
        return FloatConfig(
            motion_ae=MotionAEConfig(size=128, style_dim=128, motion_dim=20, channel_base=2048, channel_max=128),
            audio=AudioEncoderConfig(kind="logmel", dim_out=128, n_mels=64, hidden=128),
            emotion=EmotionEncoderConfig(kind="logmel", n_mels=64, hidden=64),
            fmt=FMTConfig(dim_x=128, dim_a=128, hidden=128, depth=4, heads=4, window=50, prev=10, t_freq_dim=128),
        )
    if name == "base":
        from floatalk.config import Wav2Vec2Settings

        return replace(FloatConfig(), audio=AudioEncoderConfig(wav2vec2=Wav2Vec2Settings()))
    raise ValueError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
