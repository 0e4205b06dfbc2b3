"""floatalk.io.voice: silence and speech spans from a recording's level."""

from __future__ import annotations

import numpy as np

from floatalk.io.voice import has_sound, speech_spans

SR = 16000


def _talk(spans: list[tuple[float, float]], seconds: float, noise: float = 0.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    wave = noise * np.random.default_rng(0).standard_normal(len(t))
    for a, b in spans:
        inside = (t >= a) & (t < b)
        wave[inside] += 0.3 * np.sin(2 * np.pi * 200 * t[inside]) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t[inside]))
    return wave.astype(np.float32)


def test_speech_spans_follow_the_voice_and_bridge_short_pauses():
    wave = _talk([(0.5, 1.2), (1.4, 2.0), (3.0, 3.6)], 4.0, noise=1e-4)
    spans = speech_spans(wave, SR)
    assert len(spans) == 2  # the 0.2 s pause is bridged, the 1 s one is not
    (a0, b0), (a1, b1) = spans
    assert abs(a0 - 0.5) <= 0.03 and abs(b0 - 2.0) <= 0.03 and abs(a1 - 3.0) <= 0.03 and abs(b1 - 3.6) <= 0.03


def test_silence_has_no_sound_and_no_spans():
    quiet = np.full(SR, 1e-4, np.float32)
    assert not has_sound(quiet) and speech_spans(quiet, SR) == []
    assert not has_sound(np.zeros(0, np.float32))
    assert has_sound(_talk([(0.1, 0.3)], 0.5))
