"""A live session's audio: PCM checked where it enters, and the samples heard so far kept in a
rolling buffer (only what the features, the emotion estimate and the output still need).

Letters: N samples (16 kHz mono float32).
"""

from __future__ import annotations

import numpy as np

from floatalk.errors import UserInputError

__all__ = ["AudioBuffer", "check_pcm", "pcm_from_s16le"]


def pcm_from_s16le(data: bytes | bytearray | memoryview) -> np.ndarray:
    """Signed 16-bit little-endian mono PCM bytes -> (N,) float32 in [-1, 1)."""
    raw = bytes(data)
    if len(raw) % 2:
        raise UserInputError(f"s16le audio must hold whole 2-byte samples (got {len(raw)} bytes).")
    return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0


def check_pcm(pcm: object) -> np.ndarray:
    """A pushed chunk as (N,) float32: a 1-D float array of finite samples (UserInputError otherwise)."""
    if isinstance(pcm, (bytes, bytearray, memoryview)):
        raise UserInputError("push takes a float32 array of samples; convert s16le bytes with pcm_from_s16le first.")
    if not isinstance(pcm, np.ndarray):
        raise UserInputError(f"push takes a 1-D float32 array of 16 kHz samples, got {type(pcm).__name__}.")
    if pcm.ndim != 1:
        raise UserInputError(f"push takes mono audio as a 1-D array, got shape {pcm.shape}.")
    if not np.issubdtype(pcm.dtype, np.floating):
        raise UserInputError(f"push takes float samples in [-1, 1], got dtype {pcm.dtype}.")
    wave = pcm.astype(np.float32, copy=False)
    if not np.all(np.isfinite(wave)):
        raise UserInputError("pushed audio holds NaN or infinite samples.")
    return wave


class AudioBuffer:
    """Samples heard so far; those before `start` (a sample index) have been dropped."""

    def __init__(self) -> None:
        self.samples = np.zeros(0, np.float32)  # (N_kept,) samples start .. heard - 1
        self.start = 0
        self.heard = 0

    def append(self, wave: np.ndarray) -> None:
        """Add (n,) float32 samples at the end."""
        self.samples = np.concatenate([self.samples, wave])
        self.heard += len(wave)

    def range(self, a: int, b: int) -> np.ndarray:
        """Samples [a, b) of the stream, clipped to those kept and heard: (<= b - a,) float32."""
        a = max(a, self.start)
        b = min(b, self.heard)
        return self.samples[a - self.start : max(a, b) - self.start]

    def trim(self, keep_from: int) -> None:
        """Drop the samples before `keep_from` (never those not heard yet)."""
        keep_from = min(max(keep_from, self.start), self.heard)
        self.samples = self.samples[keep_from - self.start :].copy()
        self.start = keep_from
