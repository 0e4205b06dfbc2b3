"""The synthetic world's public law from speech to jaw opening, in one place.

The world's renderer (`floatalk.synth`) moves the jaw by it and the lip-sync meter
(`floatalk.evaluation.lipsync`) reads it backwards from the sound; both import it from here, so
the meter does not depend on the world's code.

* The jaw follows its target through a first-order lag of ``JAW_TAU`` = 20 ms (half a frame at
  25 fps), so it never trails the sound by more than about one frame (`jaw_lag`).
* A vowel's loudness in the voice band ``VOICE_BAND`` (100-1000 Hz, where the first formants
  and the pitch harmonics live) is proportional to its jaw target, so the voice-band amplitude
  envelope passed through the same lag is the jaw opening up to one gain per clip
  (`voice_envelope`).
* Per-sample curves become per-frame values by averaging over each frame's span (`frame_means`).

Letters: N samples.
"""

from __future__ import annotations

import math

import numpy as np

from floatalk.units import FPS, SAMPLE_RATE

__all__ = ["JAW_TAU", "VOICE_BAND", "frame_means", "jaw_lag", "voice_band", "voice_band_sos", "voice_envelope"]

VOICE_BAND = (100.0, 1000.0)
"""Pass band (Hz) whose amplitude envelope is the audio-implied jaw opening."""

JAW_TAU = 0.02
"""Time constant (s) of the jaw's first-order lag behind its target."""


def _one_pole(x: np.ndarray, tau: float, rate: int) -> np.ndarray:
    from scipy.signal import lfilter

    alpha = 1.0 - math.exp(-1.0 / (tau * rate))
    return lfilter([alpha], [1.0, alpha - 1.0], x)


def jaw_lag(target: np.ndarray, rate: int = SAMPLE_RATE) -> np.ndarray:
    """The jaw's first-order lag (time constant `JAW_TAU`) applied to a per-sample signal (N,)."""
    return _one_pole(np.asarray(target, dtype=np.float64), JAW_TAU, rate)


def frame_means(signal: np.ndarray, n_frames: int, fps: float = FPS, rate: int = SAMPLE_RATE) -> np.ndarray:
    """Mean of a per-sample signal (N,) over each video frame's time span -> (n_frames,) float64.

    Frame k covers samples [k * rate / fps, (k + 1) * rate / fps); missing samples count as 0.
    """
    edges = np.round(np.arange(n_frames + 1) * rate / fps).astype(np.int64)
    padded = np.zeros(int(edges[-1]) + 1, dtype=np.float64)
    m = min(len(signal), int(edges[-1]))
    padded[1 : m + 1] = np.asarray(signal[:m], dtype=np.float64)
    csum = np.cumsum(padded)
    counts = np.maximum(np.diff(edges), 1)
    return (csum[edges[1:]] - csum[edges[:-1]]) / counts


def voice_band_sos(rate: int = SAMPLE_RATE) -> np.ndarray:
    """4th-order Butterworth band-pass to `VOICE_BAND` at `rate` Hz, as second-order sections."""
    from scipy.signal import butter

    return butter(4, VOICE_BAND, btype="bandpass", fs=rate, output="sos")


def voice_band(audio: np.ndarray, rate: int = SAMPLE_RATE) -> np.ndarray:
    """Zero-phase 4th-order Butterworth band-pass of `audio` (N,) to `VOICE_BAND` -> (N,) float64."""
    from scipy.signal import sosfiltfilt

    x = np.asarray(audio, dtype=np.float64)
    if len(x) < 64:
        return np.zeros_like(x)
    return sosfiltfilt(voice_band_sos(rate), x)


def voice_envelope(audio: np.ndarray, rate: int = SAMPLE_RATE) -> np.ndarray:
    """Audio-implied jaw opening per sample (N,): sqrt of the jaw-lagged voice-band power.

    This is the world's public audio -> opening law (up to one gain per clip): band-pass to
    `VOICE_BAND`, square, first-order lag with `JAW_TAU`, square root.
    """
    band = voice_band(audio, rate)
    return np.sqrt(np.maximum(_one_pole(band * band, JAW_TAU, rate), 0.0))
