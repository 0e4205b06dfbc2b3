"""The FLOAT engine: the model's steps as pieces a caller composes (floatalk.engine.core).

`source` reads and encodes the photo, `audio` prepares the waveform, `motion` samples motion
windows, `core.FloatEngine` holds the loaded model with one method per step. Nothing here knows
about motion editing, video files or apps: those live in the layers above.
"""

from floatalk.engine.audio import AudioInput, LongAudio, NormalizedWave, normalize_audio
from floatalk.engine.core import FloatEngine
from floatalk.engine.memory import reuse_freed_memory
from floatalk.engine.motion import Conditions, FloatOutput, WindowEdit, sample_motion
from floatalk.engine.source import ImageInput, PreparedImage, SourceImage, prepare_image

__all__ = [
    "AudioInput",
    "Conditions",
    "FloatEngine",
    "FloatOutput",
    "ImageInput",
    "LongAudio",
    "NormalizedWave",
    "PreparedImage",
    "SourceImage",
    "WindowEdit",
    "normalize_audio",
    "prepare_image",
    "reuse_freed_memory",
    "sample_motion",
]
