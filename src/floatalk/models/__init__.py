"""The FLOAT networks: motion auto-encoder, audio and emotion encoders, flow matching transformer."""

from floatalk.models.audio_encoder import AudioEncoder
from floatalk.models.emotion_encoder import EmotionEncoder
from floatalk.models.float_model import FloatModel
from floatalk.models.fmt import FlowMatchingTransformer
from floatalk.models.motion_ae import MotionAutoEncoder

__all__ = ["AudioEncoder", "EmotionEncoder", "FloatModel", "FlowMatchingTransformer", "MotionAutoEncoder"]
