"""The four networks of FLOAT in one module; attribute names follow the release checkpoint."""

from __future__ import annotations

from torch import nn

from floatalk.config import FloatConfig
from floatalk.models.fmt import FlowMatchingTransformer
from floatalk.models.logmel import build_audio_encoder, build_emotion_encoder
from floatalk.models.motion_ae import MotionAutoEncoder


class FloatModel(nn.Module):
    """motion_autoencoder + audio_encoder + emotion_encoder + fmt, built from one FloatConfig.

    The audio and emotion encoders are the release's wav2vec2 models or the weight-free log-mel ones.
    """

    def __init__(self, cfg: FloatConfig) -> None:
        super().__init__()
        if cfg.fmt.dim_x != cfg.motion_ae.style_dim or cfg.fmt.dim_a != cfg.audio.dim_out:
            raise ValueError("FMT sizes must match the motion latent and audio feature sizes")
        if cfg.fmt.dim_e != cfg.emotion.num_labels:
            raise ValueError("FMT emotion size must match the emotion classifier's number of labels")
        self.cfg = cfg
        self.motion_autoencoder = MotionAutoEncoder(cfg.motion_ae)
        self.audio_encoder = build_audio_encoder(cfg.audio)
        self.emotion_encoder = build_emotion_encoder(cfg.emotion, cfg.audio.sample_rate)
        self.fmt = FlowMatchingTransformer(cfg.fmt)
