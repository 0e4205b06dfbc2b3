"""Media input and output: portraits, speech audio, face crops and mp4 videos."""

from __future__ import annotations

from floatalk.io.audio import SAMPLE_RATE, load_audio
from floatalk.io.face import (
    CropBox,
    PasteBack,
    crop_image,
    detect_face,
    detect_faces,
    face_crop_box,
    find_crop_box,
    letterbox_box,
    locate_face,
    paste_back,
)
from floatalk.io.image import load_image
from floatalk.io.video import VideoWriter, probe_video, read_video_frames

__all__ = [
    "SAMPLE_RATE",
    "CropBox",
    "PasteBack",
    "VideoWriter",
    "crop_image",
    "detect_face",
    "detect_faces",
    "face_crop_box",
    "find_crop_box",
    "letterbox_box",
    "load_audio",
    "load_image",
    "locate_face",
    "paste_back",
    "probe_video",
    "read_video_frames",
]
