"""Speech-like audio for the synthetic world, and the public law linking it to the jaw.

The voice is a source-filter synthesiser: a band-limited glottal harmonic series (pitch contour
from the emotion's prosody) through a cascade of formant resonators, one set per vowel, with
high-passed noise bursts for consonants and a faint room noise. Everything is planned first
(`plan_speech`), then rendered (`synthesize`), so the mouth opening is known exactly.

**The world's physics (public, used by the renderer and by the lip-sync meter):**

* A vowel's openness follows its first formant: ``openness(F1) = 0.25 + 0.75 (F1 - 280) / 470``
  clipped to [0.2, 1] (so /a/ = 1.0, /o/ 0.70, /e/ 0.65, /@/ 0.63, /u/ 0.31, /i/ 0.27).
* The jaw/lip target of a syllable is ``envelope(t) * stress * openness(vowel) * jaw_gain``.
* A vowel's loudness in the voice band (100-1000 Hz; consonant noise lies above 2 kHz) is made
  proportional to its jaw target: open vowels are intrinsically louder.
* The jaw's 20 ms lag, the voice band and the audio -> opening envelope are `floatalk.jaw_law`
  (shared with the meter, re-exported here).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from floatalk.jaw_law import JAW_TAU, VOICE_BAND, frame_means, jaw_lag, voice_band, voice_band_sos, voice_envelope
from floatalk.units import SAMPLE_RATE

__all__ = [
    "JAW_TAU",
    "PROSODY",
    "SAMPLE_RATE",
    "VOICE_BAND",
    "VOWELS",
    "Prosody",
    "Speech",
    "SpeechPlan",
    "Syllable",
    "frame_means",
    "jaw_lag",
    "openness",
    "plan_speech",
    "synthesize",
    "voice_band",
    "voice_envelope",
]

"""Sample rate (Hz) of the world's audio."""

# Vowel: (F1, F2, F3, F4) in Hz and the lip rounding (0 spread .. 1 round).
VOWELS: dict[str, tuple[tuple[float, float, float, float], float]] = {
    "a": ((750.0, 1150.0, 2500.0, 3500.0), 0.0),
    "o": ((560.0, 900.0, 2450.0, 3400.0), 0.7),
    "e": ((530.0, 1800.0, 2500.0, 3500.0), 0.0),
    "@": ((520.0, 1450.0, 2500.0, 3500.0), 0.2),
    "u": ((320.0, 850.0, 2250.0, 3300.0), 1.0),
    "i": ((290.0, 2250.0, 3000.0, 3700.0), 0.0),
}
_BANDWIDTHS = (80.0, 100.0, 150.0, 220.0)

# Consonant: (kind, low Hz, high Hz, duration range s, level relative to a vowel)
_CONSONANTS: dict[str, tuple[str, float, float, tuple[float, float], float]] = {
    "p": ("stop", 2000.0, 5000.0, (0.012, 0.022), 0.35),
    "t": ("stop", 3000.0, 7000.0, (0.015, 0.028), 0.35),
    "k": ("stop", 2000.0, 4200.0, (0.018, 0.030), 0.30),
    "s": ("fricative", 4000.0, 7800.0, (0.06, 0.12), 0.18),
    "f": ("fricative", 2500.0, 7800.0, (0.05, 0.10), 0.10),
    "sh": ("fricative", 2200.0, 5200.0, (0.06, 0.11), 0.18),
}


@dataclass(frozen=True)
class Prosody:
    """How an emotion sounds and how wide it opens the jaw.

    pitch: f0 multiplier; pitch_range: accent/declination depth multiplier; tempo: speaking-rate
    multiplier (>1 faster); loudness: level multiplier; jaw_gain: opening multiplier (<= 1);
    breath: share of aspiration noise in the voice.
    """

    pitch: float
    pitch_range: float
    tempo: float
    loudness: float
    jaw_gain: float
    breath: float


PROSODY: dict[str, Prosody] = {
    "angry": Prosody(pitch=1.08, pitch_range=1.3, tempo=1.15, loudness=1.45, jaw_gain=1.0, breath=0.02),
    "disgust": Prosody(pitch=0.94, pitch_range=0.8, tempo=0.88, loudness=0.95, jaw_gain=0.8, breath=0.05),
    "fear": Prosody(pitch=1.32, pitch_range=1.2, tempo=1.25, loudness=0.85, jaw_gain=0.85, breath=0.12),
    "happy": Prosody(pitch=1.18, pitch_range=1.5, tempo=1.08, loudness=1.15, jaw_gain=0.95, breath=0.03),
    "neutral": Prosody(pitch=1.0, pitch_range=1.0, tempo=1.0, loudness=1.0, jaw_gain=0.9, breath=0.03),
    "sad": Prosody(pitch=0.9, pitch_range=0.5, tempo=0.8, loudness=0.7, jaw_gain=0.75, breath=0.10),
    "surprise": Prosody(pitch=1.25, pitch_range=1.8, tempo=1.0, loudness=1.15, jaw_gain=1.0, breath=0.04),
}


def openness(f1: float) -> float:
    """Jaw openness (0.2..1) of a vowel with first formant `f1` (Hz): the world's vowel law."""
    return float(np.clip(0.25 + 0.75 * (f1 - 280.0) / 470.0, 0.2, 1.0))


@dataclass(frozen=True)
class Syllable:
    """One syllable: optional consonant onset then a vowel nucleus (times in seconds)."""

    consonant: str | None
    consonant_start: float
    start: float  # vowel start
    end: float  # vowel end
    vowel: str
    stress: float  # 0.55..1, scales loudness and opening
    accent: float  # pitch accent height (fraction of f0)


@dataclass
class SpeechPlan:
    """Everything needed to render one clip's speech; `syllables` are in time order."""

    seconds: float
    emotion: str
    f0: float  # the speaker's base pitch (Hz), before the emotion's multiplier
    syllables: list[Syllable] = field(default_factory=list)
    phrase_starts: list[float] = field(default_factory=list)
    phrase_ends: list[float] = field(default_factory=list)


def plan_speech(rng: np.random.Generator, seconds: float, emotion: str, f0: float) -> SpeechPlan:
    """Draw phrases of 3-9 syllables with pauses, filling `seconds` (the last 0.1 s stays silent)."""
    prosody = PROSODY[emotion]
    tempo = prosody.tempo
    plan = SpeechPlan(seconds=float(seconds), emotion=emotion, f0=float(f0))
    vowels = list(VOWELS)
    vowel_p = np.array([0.26, 0.16, 0.16, 0.12, 0.14, 0.16])
    consonants = list(_CONSONANTS)
    t = float(rng.uniform(0.05, 0.3))
    limit = seconds - 0.1
    while t < limit - 0.15:
        n_syll = int(rng.integers(3, 10))
        phrase_start = t
        for k in range(n_syll):
            consonant = consonants[int(rng.integers(len(consonants)))] if rng.random() < 0.8 else None
            c_start = t
            if consonant is not None:
                kind, _, _, (lo, hi), _ = _CONSONANTS[consonant]
                closure = float(rng.uniform(0.02, 0.05)) if kind == "stop" else 0.0
                t += (closure + float(rng.uniform(lo, hi))) / tempo
            duration = float(rng.uniform(0.08, 0.22)) / tempo
            if t + duration > limit:
                break
            vowel = vowels[int(rng.choice(len(vowels), p=vowel_p))]
            stress = float(rng.uniform(0.55, 1.0)) if k else float(rng.uniform(0.8, 1.0))
            accent = float(rng.uniform(0.0, 0.25))
            plan.syllables.append(Syllable(consonant, c_start, t, t + duration, vowel, stress, accent))
            t += duration
            t += float(rng.uniform(0.05, 0.14) if rng.random() < 0.3 else rng.uniform(0.0, 0.04)) / tempo
        if plan.syllables and plan.syllables[-1].start >= phrase_start:
            plan.phrase_starts.append(phrase_start)
            plan.phrase_ends.append(plan.syllables[-1].end)
        t += float(rng.uniform(0.15, 0.45)) / tempo
    return plan


def _envelope(n: int, rate: int) -> np.ndarray:
    """Raised-cosine attack (<= 40 ms), plateau and release (<= 60 ms) over n samples, peak 1."""
    env = np.ones(n, dtype=np.float64)
    attack = min(int(0.04 * rate), n // 3)
    release = min(int(0.06 * rate), n // 2)
    if attack:
        env[:attack] = 0.5 - 0.5 * np.cos(np.pi * (np.arange(attack) + 0.5) / attack)
    if release:
        env[n - release :] = 0.5 + 0.5 * np.cos(np.pi * (np.arange(release) + 0.5) / release)
    return env


def _resonator_sos(formants: tuple[float, ...], rate: int) -> np.ndarray:
    """Cascade of Klatt resonators (unit gain at 0 Hz) as second-order sections."""
    rows = []
    for freq, bw in zip(formants, _BANDWIDTHS):
        c = -math.exp(-2.0 * math.pi * bw / rate)
        b = 2.0 * math.exp(-math.pi * bw / rate) * math.cos(2.0 * math.pi * freq / rate)
        a = 1.0 - b - c
        rows.append([a, 0.0, 0.0, 1.0, -b, -c])
    return np.asarray(rows, dtype=np.float64)


def _pitch_track(plan: SpeechPlan, n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    prosody = PROSODY[plan.emotion]
    t = np.arange(n) / rate
    base = plan.f0 * prosody.pitch
    contour = np.zeros(n)
    for start, end in zip(plan.phrase_starts, plan.phrase_ends):
        inside = (t >= start) & (t < end + 0.1)
        progress = np.clip((t - start) / max(end - start, 1e-3), 0.0, 1.0)
        contour[inside] -= 0.10 * prosody.pitch_range * progress[inside]  # declination
    for syl in plan.syllables:
        a, b = int(syl.start * rate), int(syl.end * rate)
        if b > a:
            bump = np.sin(np.pi * (np.arange(b - a) + 0.5) / (b - a))
            contour[a:b] += syl.accent * prosody.pitch_range * bump
    # slow jitter (about 1 %), drawn at 50 Hz and interpolated
    knots = rng.standard_normal(int(plan.seconds * 50) + 2) * 0.01
    contour += np.interp(t, np.arange(len(knots)) / 50.0, knots)
    return base * np.exp(contour)


def _glottal_source(f0: np.ndarray, rate: int) -> np.ndarray:
    """Band-limited harmonic series with a -6 dB/octave tilt, harmonics faded out near 5 kHz."""
    phase = 2.0 * np.pi * np.cumsum(f0) / rate
    source = np.zeros_like(phase)
    n_max = int(5500.0 / max(float(f0.min()), 40.0)) + 1
    for k in range(1, n_max + 1):
        weight = np.clip((5500.0 - k * f0) / 500.0, 0.0, 1.0)
        if not weight.any():
            break
        source += weight * np.sin(k * phase) / k
    return source


@dataclass
class Speech:
    """A rendered plan: per-sample arrays of length N = round(seconds * rate).

    audio: (N,) float32 in [-1, 1]; jaw_target: (N,) float64 in [0, 1], the sum over syllables of
    envelope * stress * openness(vowel) * jaw_gain before the jaw's lag (apply `jaw_lag` for the
    jaw position); rounding: (N,) float64 in [0, 1], lip rounding target (envelope * vowel rounding).
    """

    audio: np.ndarray
    jaw_target: np.ndarray
    rounding: np.ndarray


def synthesize(plan: SpeechPlan, rng: np.random.Generator, rate: int = SAMPLE_RATE) -> Speech:
    """Render a plan into audio plus the jaw and lip-rounding targets that go with it."""
    from scipy.signal import sosfilt, sosfiltfilt

    prosody = PROSODY[plan.emotion]
    n = int(round(plan.seconds * rate))
    f0 = _pitch_track(plan, n, rate, rng)
    source = _glottal_source(f0, rate)
    breath = rng.standard_normal(n)
    source = source / np.sqrt(np.mean(source**2) + 1e-12) + prosody.breath * 3.0 * breath
    audio = np.zeros(n)
    target = np.zeros(n)
    rounding = np.zeros(n)
    band = voice_band_sos(rate)
    pad_before, pad_after = int(0.01 * rate), int(0.03 * rate)
    for syl in plan.syllables:
        a, b = int(round(syl.start * rate)), int(round(syl.end * rate))
        b = min(b, n)
        if b - a < 16:
            continue
        formants, round_lips = VOWELS[syl.vowel]
        lo, hi = max(0, a - pad_before), min(n, b + pad_after)
        voiced = sosfilt(_resonator_sos(formants, rate), source[lo:hi])
        inner = voiced[a - lo : b - lo]
        rms = math.sqrt(float(np.mean(sosfiltfilt(band, voiced)[a - lo : b - lo] ** 2)) + 1e-12)
        level = syl.stress * openness(formants[0]) * prosody.jaw_gain
        env = _envelope(b - a, rate)
        audio[a:b] += inner / rms * env * level * prosody.loudness
        target[a:b] += env * level
        rounding[a:b] += env * round_lips
        if syl.consonant is not None:
            kind, f_lo, f_hi, _, rel = _CONSONANTS[syl.consonant]
            ca = int(round(syl.consonant_start * rate))
            if kind == "stop":  # closure (silence), then a short burst right before the vowel
                ca = max(ca, a - int(0.028 * rate))
            cb = a
            if cb - ca >= 16:
                from scipy.signal import butter

                sos = butter(4, (f_lo, min(f_hi, 0.49 * rate)), btype="bandpass", fs=rate, output="sos")
                noise = sosfilt(sos, rng.standard_normal(cb - ca + 256))[256:]
                noise /= math.sqrt(float(np.mean(noise**2)) + 1e-12)
                shape = (
                    _envelope(cb - ca, rate) if kind == "fricative" else np.exp(-np.arange(cb - ca) / (0.008 * rate))
                )
                audio[ca:cb] += noise * shape * rel * syl.stress * prosody.loudness
    audio += 10 ** (-58 / 20) * rng.standard_normal(n)  # room noise
    audio *= 0.07
    peak = float(np.max(np.abs(audio))) if n else 0.0
    if peak > 0.97:
        audio *= 0.97 / peak
    return Speech(audio.astype(np.float32), np.clip(target, 0.0, 1.0), np.clip(rounding, 0.0, 1.0))
