"""Configuration of every model part, as frozen dataclasses.

Each module receives its own sub-config; `FloatConfig` groups them and travels inside every
checkpoint the project writes (as JSON). `FloatConfig.release()` is the public FLOAT release
layout; `FloatConfig.tiny()` is a small model for tests and quick experiments.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Any

from floatalk.units import FPS, SAMPLE_RATE

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")


def emotion_choice(value: object) -> str | None:
    """`value` as an emotion setting: 'auto' or one of EMOTIONS, any case and spacing, lower-cased;
    None when it is neither (the caller words the error its own way)."""
    if not isinstance(value, str):
        return None
    name = value.strip().lower()
    return name if name == "auto" or name in EMOTIONS else None


"""The 7 emotion classes, in the release classifier's output order."""

ODE_METHODS: tuple[str, ...] = ("euler", "midpoint", "rk4")
"""Fixed-grid ODE solvers of the motion sampler (floatalk.sampling.ode)."""


@dataclass(frozen=True)
class MotionAEConfig:
    """Motion auto-encoder (LIA-style encoder + flow-warping StyleGAN2 decoder)."""

    size: int = 512  # image side in pixels, a power of two >= 8
    style_dim: int = 512  # identity latent s_r and motion latent r (paper: 512)
    motion_dim: int = 20  # number of motion coefficients lambda / basis vectors
    channel_base: int = 16384  # channels at resolution r: min(channel_max, channel_base // r)
    channel_max: int = 512
    blur_kernel: tuple[int, ...] = (1, 3, 3, 1)

    def channels(self, res: int) -> int:
        """Feature channels at resolution `res` (release: 512 up to 32 px, then 256, 128, 64, 32)."""
        return min(self.channel_max, self.channel_base // res)


@dataclass(frozen=True)
class Wav2Vec2Settings:
    """A wav2vec2 backbone: the transformers config dict, kept as sorted JSON so the dataclass stays frozen."""

    config_json: str = "{}"

    @classmethod
    def from_dict(cls, cfg: dict[str, Any]) -> Wav2Vec2Settings:
        return cls(config_json=json.dumps(cfg, sort_keys=True))

    def to_dict(self) -> dict[str, Any]:
        return json.loads(self.config_json)


@dataclass(frozen=True)
class AudioEncoderConfig:
    """Audio features `wa` (B, T, dim_out) at the video frame rate.

    kind 'wav2vec2' is the release's encoder (needs wav2vec2 weights); 'logmel' is a small
    log-mel front end + temporal conv net that needs no pretrained weights.
    """

    wav2vec2: Wav2Vec2Settings = field(default_factory=Wav2Vec2Settings)
    dim_out: int = 512
    sample_rate: int = SAMPLE_RATE
    fps: int = FPS
    kind: str = "wav2vec2"  # wav2vec2 | logmel
    n_mels: int = 64  # logmel: mel bands
    hidden: int = 256  # logmel: width of the temporal conv net


@dataclass(frozen=True)
class EmotionEncoderConfig:
    """Speech-emotion classifier giving `we` (B, 1, num_labels)."""

    wav2vec2: Wav2Vec2Settings = field(default_factory=Wav2Vec2Settings)
    num_labels: int = 7
    pooling: str = "mean"  # how hidden states are pooled over time: mean | sum | max
    kind: str = "wav2vec2"  # wav2vec2 | logmel (a small classifier trained with the FMT, no pretrained weights)
    n_mels: int = 64  # logmel only
    hidden: int = 128  # logmel only


@dataclass(frozen=True)
class FMTConfig:
    """Flow matching transformer (vector-field predictor)."""

    dim_x: int = 512  # motion latent size (= MotionAEConfig.style_dim)
    dim_a: int = 512  # audio feature size (= AudioEncoderConfig.dim_out)
    dim_e: int = 7  # emotion vector size
    hidden: int = 1024
    depth: int = 8
    heads: int = 8
    mlp_ratio: float = 4.0
    window: int = 50  # L: frames generated per window
    prev: int = 10  # L': previous frames given as context
    attention_band: int = 2  # token i attends to j with |i - j| <= band
    t_freq_dim: int = 256  # sinusoidal flow-time embedding size


@dataclass(frozen=True)
class FloatConfig:
    """The whole model."""

    motion_ae: MotionAEConfig = field(default_factory=MotionAEConfig)
    audio: AudioEncoderConfig = field(default_factory=AudioEncoderConfig)
    emotion: EmotionEncoderConfig = field(default_factory=EmotionEncoderConfig)
    fmt: FMTConfig = field(default_factory=FMTConfig)

    @classmethod
    def release(cls, wav2vec2: dict[str, Any], emotion_wav2vec2: dict[str, Any]) -> FloatConfig:
        """The public release's layout, with the two wav2vec2 configs read from its folders."""
        num_labels = len(emotion_wav2vec2.get("id2label", {})) or 7
        return cls(
            audio=AudioEncoderConfig(wav2vec2=Wav2Vec2Settings.from_dict(wav2vec2)),
            emotion=EmotionEncoderConfig(
                wav2vec2=Wav2Vec2Settings.from_dict(emotion_wav2vec2),
                num_labels=num_labels,
                pooling=emotion_wav2vec2.get("pooling_mode", "mean"),
            ),
        )

    @classmethod
    def tiny(cls, size: int = 32) -> FloatConfig:
        """A few-hundred-kB model with the release's structure, for tests."""
        w2v = tiny_wav2vec2_config()
        return cls(
            motion_ae=MotionAEConfig(size=size, style_dim=32, motion_dim=4, channel_base=256, channel_max=32),
            audio=AudioEncoderConfig(wav2vec2=Wav2Vec2Settings.from_dict(w2v), dim_out=32),
            emotion=EmotionEncoderConfig(wav2vec2=Wav2Vec2Settings.from_dict(w2v)),
            fmt=FMTConfig(dim_x=32, dim_a=32, hidden=64, depth=2, heads=4, window=8, prev=2, t_freq_dim=32),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FloatConfig:
        return build_dataclass(cls, data)


def tiny_wav2vec2_config() -> dict[str, Any]:
    """A 2-layer, 32-wide wav2vec2 config with the release's conv strides (320 samples per frame)."""
    return {
        "model_type": "wav2vec2",
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "conv_dim": [16] * 7,
        "conv_kernel": [10, 3, 3, 3, 3, 2, 2],
        "conv_stride": [5, 2, 2, 2, 2, 2, 2],
        "conv_bias": False,
        "feat_extract_norm": "group",
        "do_stable_layer_norm": False,
        "num_conv_pos_embeddings": 16,
        "num_conv_pos_embedding_groups": 4,
        "layer_norm_eps": 1e-5,
        "vocab_size": 32,
        "id2label": {str(i): name for i, name in enumerate(EMOTIONS)},
        "label2id": {name: i for i, name in enumerate(EMOTIONS)},
    }


def build_dataclass(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a (nested) frozen dataclass from `asdict` output; unknown keys are an error."""
    known = {f.name: f for f in fields(cls)}
    unknown = set(data) - set(known)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields: {sorted(unknown)}")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        default = known[name].default_factory if callable(known[name].default_factory) else None
        proto = default() if default is not None else known[name].default
        if is_dataclass(proto) and isinstance(value, dict):
            kwargs[name] = build_dataclass(type(proto), value)
        elif isinstance(value, list):
            kwargs[name] = tuple(value)
        else:
            kwargs[name] = value
    return cls(**kwargs)
