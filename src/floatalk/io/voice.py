"""When a recording has a voice in it: silence checks and speech spans from the sound's level.

A scene with one recording per speaker (each person's own microphone) learns from each track
when its person speaks (`speech_spans`): frames of 20 ms whose RMS level reaches `RELATIVE_LEVEL`
of the track's loud level (its 95th percentile of frame levels) and an absolute floor, pauses
shorter than `BRIDGE` seconds bridged and blips shorter than `MIN_SPEECH` dropped. A level gate is
enough for separate microphones; a mixed recording of several voices needs turns (who speaks
when) from the user.

Letters: N samples, n frames of `FRAME` seconds.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SILENCE", "has_sound", "speech_spans"]

SILENCE = 1e-3
"""Peak amplitude below which a recording counts as silent (-60 dB of full scale)."""
FRAME = 0.02
RELATIVE_LEVEL = 0.05
"""A frame speaks when its RMS level reaches this share of the track's loud level (-26 dB)."""
BRIDGE = 0.4
MIN_SPEECH = 0.1


def has_sound(wave: np.ndarray) -> bool:
    """True when some sample of the (N,) recording reaches SILENCE."""
    return bool(len(wave)) and float(np.max(np.abs(wave))) >= SILENCE


def _frame_levels(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    """(n,) RMS level of each FRAME-long piece of the (N,) recording (the last one padded with zeros)."""
    hop = max(1, int(round(FRAME * sample_rate)))
    n = -(-len(wave) // hop)
    padded = np.zeros(n * hop, np.float64)
    padded[: len(wave)] = wave
    return np.sqrt(np.mean(np.square(padded.reshape(n, hop)), axis=1))


def speech_spans(wave: np.ndarray, sample_rate: int) -> list[tuple[float, float]]:
    """(start, end) seconds of each stretch of speech in the (N,) recording; none when it is silent."""
    if not has_sound(wave):
        return []
    levels = _frame_levels(np.asarray(wave, np.float64), sample_rate)
    loud = float(np.percentile(levels, 95))
    active = levels >= max(RELATIVE_LEVEL * loud, SILENCE / 4)
    spans: list[list[float]] = []
    for k in np.flatnonzero(active):
        start, end = k * FRAME, (k + 1) * FRAME
        if spans and start - spans[-1][1] < BRIDGE - 1e-9:
            spans[-1][1] = end
        else:
            spans.append([start, end])
    seconds = len(wave) / sample_rate
    return [(a, min(b, seconds)) for a, b in spans if b - a >= MIN_SPEECH - 1e-9]
