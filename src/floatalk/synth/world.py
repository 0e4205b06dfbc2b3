"""Clips of the synthetic talking-portrait world: speech, motion, frames and ground truth.

`make_clip` builds one clip in memory (frames, 16 kHz audio and per-frame truth); `write_clip`
stores it as ``NAME.mp4`` (H.264 + AAC), ``NAME.wav`` (16 kHz mono PCM16) and ``NAME.json``;
`generate_world` writes a whole folder with ``manifest.json``, in parallel.

Randomness: clip ``i`` of a run with seed ``K`` draws everything from
``np.random.SeedSequence([K, i])``: its identity seed (appearance and voice pitch), its clip seed
(speech, head motion, blinks, expression strength) and, through the run seed, its emotion
(the 7 emotions in turn from a seed-dependent start). Same seed, same files, whatever the
number of worker processes.

``NAME.json`` (one object; per-frame lists have one entry per video frame at 25 fps):
identity, emotion, emotion_index, clip_seed, run_seed, index, fps, sample_rate, seconds,
n_frames, size; per frame ``mouth_open`` (0..1, the truth the lip-sync meter never reads),
``lip_round``, ``blink``, ``head_tx``/``head_ty`` (fractions of the frame side), ``head_rot``
(degrees), ``head_scale`` and ``face_box`` ([x, y, w, h] px, the fallback for a face detector;
it is where `floatalk preprocess` looks); ``expression`` (the emotion's face parameters),
``expression_frames`` (per frame, the face's departure from neutral in `EXPRESSION_KEYS` order:
what the expression's onset ramp and strength make of it), ``landmarks`` (per frame, where the
points named in ``landmark_names`` are drawn, in pixels), ``voice`` (pitch and prosody),
``syllables`` (consonant, onset, vowel start/end in s, vowel, stress) and ``units`` (a
description of each field).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from floatalk.config import EMOTIONS
from floatalk.errors import UserInputError
from floatalk.fileio import atomic_write, output_folder
from floatalk.jaw_law import frame_means, jaw_lag
from floatalk.progress import Progress, no_progress
from floatalk.synth.face import (
    LANDMARK_NAMES,
    FaceState,
    Identity,
    face_box,
    landmarks,
    render_background,
    render_frame,
    supersampling,
)
from floatalk.synth.speech import PROSODY, SAMPLE_RATE, Speech, SpeechPlan, plan_speech, synthesize
from floatalk.units import FPS

__all__ = [
    "EXPRESSIONS",
    "EXPRESSION_KEYS",
    "FPS",
    "MAX_EXPRESSION_SCALE",
    "Clip",
    "ClipSpec",
    "clip_specs",
    "generate_world",
    "make_clip",
    "write_clip",
]

"""Frame rate of the world's videos."""

FORMAT = "floatalk-synth-1"

# Facial expression per emotion (face units; see FaceState). `rest` is a resting jaw opening.
EXPRESSIONS: dict[str, dict[str, float]] = {
    "angry": {"brow_raise": -0.07, "brow_tilt": 0.08, "corner": -0.03, "eye_open": 0.85, "lip_raise": 0.0},
    "disgust": {"brow_raise": -0.04, "brow_tilt": 0.04, "corner": -0.05, "eye_open": 0.8, "lip_raise": 0.04},
    "fear": {"brow_raise": 0.09, "brow_tilt": -0.06, "corner": -0.04, "eye_open": 1.3, "lip_raise": 0.0},
    "happy": {"brow_raise": 0.02, "brow_tilt": 0.0, "corner": 0.09, "eye_open": 0.85, "lip_raise": 0.0},
    "neutral": {"brow_raise": 0.0, "brow_tilt": 0.0, "corner": 0.0, "eye_open": 1.0, "lip_raise": 0.0},
    "sad": {"brow_raise": 0.02, "brow_tilt": -0.08, "corner": -0.07, "eye_open": 0.8, "lip_raise": 0.0},
    "surprise": {"brow_raise": 0.14, "brow_tilt": 0.0, "corner": 0.0, "eye_open": 1.35, "lip_raise": 0.0},
}
EXPRESSION_KEYS = ("brow_raise", "brow_tilt", "corner", "eye_open", "lip_raise")
"""Order of the per-frame ``expression_frames`` in a clip's truth (departures from neutral)."""
_REST_OPENING = {"surprise": 0.12, "fear": 0.04}
EMOTION_RAMP = 0.5  # seconds over which an expression eases in after ClipSpec.onset
_BLINK = np.array([0.35, 0.85, 1.0, 0.6, 0.2])


@dataclass(frozen=True)
class ClipSpec:
    """What to render: identity seed (look + voice), emotion, clip seed (speech and motion), size."""

    name: str
    identity: int
    emotion: str
    seed: int
    seconds: float = 4.0
    size: int = 128
    index: int = 0
    run_seed: int | None = None
    # Seconds of neutral face before the emotion's expression eases in (over EMOTION_RAMP s); 0 = the
    # expression holds from the first frame. The speech's prosody is emotional throughout either way.
    onset: float = 0.0
    # Factor on every expression's departure from the neutral face (1 = the EXPRESSIONS table).
    expression_scale: float = 1.0


MAX_EXPRESSION_SCALE = 1.6
"""Largest expression scale: beyond it raised brows run into the hair of some identities."""


@dataclass
class Clip:
    """A rendered clip: frames (T, S, S, 3) uint8 RGB, audio (N,) float32 at 16 kHz, truth (JSON dict)."""

    spec: ClipSpec
    frames: np.ndarray
    audio: np.ndarray
    truth: dict = field(default_factory=dict)


def clip_specs(
    n_clips: int, seconds: float, size: int, seed: int, onset: float = 0.0, expression_scale: float = 1.0
) -> list[ClipSpec]:
    """The specs of a run: clip i from SeedSequence([seed, i]); emotions cycle from a seeded start."""
    start = int(np.random.SeedSequence([int(seed)]).generate_state(1)[0]) % len(EMOTIONS)
    specs = []
    for i in range(n_clips):
        identity, clip_seed = (int(v) for v in np.random.SeedSequence([int(seed), i]).generate_state(2))
        specs.append(
            ClipSpec(
                name=f"clip_{i:05d}",
                identity=identity & 0x7FFFFFFF,
                emotion=EMOTIONS[(start + i) % len(EMOTIONS)],
                seed=clip_seed & 0x7FFFFFFF,
                seconds=float(seconds),
                size=int(size),
                index=i,
                run_seed=int(seed),
                onset=float(onset),
                expression_scale=float(expression_scale),
            )
        )
    return specs


def expression_weight(n_frames: int, onset: float) -> np.ndarray:
    """(T,) weight of the clip's expression per frame: 0 until `onset` s, then a smooth rise to 1."""
    if onset <= 0:
        return np.ones(n_frames)
    x = np.clip((np.arange(n_frames) / FPS - onset) / EMOTION_RAMP, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _smooth_wander(rng: np.random.Generator, t: np.ndarray, amplitude: float) -> np.ndarray:
    """Slow motion: three sinusoids of 0.05-0.5 Hz with random phases, peak about `amplitude`."""
    out = np.zeros_like(t)
    for _ in range(3):
        freq = rng.uniform(0.05, 0.5)
        out += rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi))
    return amplitude * out / 2.0


def _blend_neutral(expr: dict[str, float], w: float) -> dict[str, float]:
    """An expression at weight w (0 = neutral face, 1 = `expr`)."""
    neutral = EXPRESSIONS["neutral"]
    return {k: neutral[k] + w * (v - neutral[k]) for k, v in expr.items()}


def _blinks(rng: np.random.Generator, n_frames: int) -> np.ndarray:
    blink = np.zeros(n_frames)
    t = int(rng.integers(5, 60))
    while t < n_frames:
        for k, v in enumerate(_BLINK):
            if t + k < n_frames:
                blink[t + k] = max(blink[t + k], v)
        t += int(rng.integers(38, 125))  # every 1.5-5 s
    return blink


@dataclass(frozen=True)
class _FaceTrack:
    """A clip's face before drawing: per frame (T,) mouth, blink and head pose, and the expression
    it eases into (`weight`, 0 = neutral .. 1 = `expr`)."""

    opening: np.ndarray  # jaw opening 0..1, the emotion's resting opening included
    rounding: np.ndarray
    blink: np.ndarray
    tx: np.ndarray
    ty: np.ndarray
    rot: np.ndarray
    scale: np.ndarray
    weight: np.ndarray
    expr: dict[str, float]  # the emotion's expression at the clip's strength
    strength: float
    rest: float  # the emotion's resting jaw opening

    def state(self, k: int) -> FaceState:
        """The face of frame k."""
        w = float(self.weight[k])
        return FaceState(
            opening=float(self.opening[k]),
            rounding=float(self.rounding[k]),
            blink=float(self.blink[k]),
            tx=float(self.tx[k]),
            ty=float(self.ty[k]),
            rot=float(self.rot[k]),
            scale=float(self.scale[k]),
            **(self.expr if w == 1 else _blend_neutral(self.expr, w)),
        )


def make_clip(spec: ClipSpec, draw: int | None = None) -> Clip:
    """Render one clip in memory (deterministic in the spec).

    draw: how many of its frames to draw (default all): `frames` and the truth's per-frame
    drawings then hold only the first `draw`, the same as the whole clip's first ones; the audio
    and the rest of the truth are the whole clip's."""
    if spec.emotion not in PROSODY:
        raise UserInputError(f"Unknown emotion {spec.emotion!r}; choose one of {', '.join(EMOTIONS)}.")
    identity = Identity.sample(spec.identity)
    rng = np.random.default_rng(np.random.SeedSequence([spec.seed, 0x5EC]))
    n_frames = max(1, int(round(spec.seconds * FPS)))
    plan = plan_speech(rng, n_frames / FPS, spec.emotion, identity.f0)
    speech = synthesize(plan, rng)
    track = _face_track(spec, speech, n_frames)
    frames, drawn = _draw(identity, track, spec.size, n_frames if draw is None else max(1, min(draw, n_frames)))
    # The wav is PCM16: keep exactly the samples it will hold.
    pcm = np.clip(np.rint(speech.audio * 32767.0), -32768, 32767).astype(np.int16)
    audio = pcm.astype(np.float32) / np.float32(32768.0)
    return Clip(spec=spec, frames=frames, audio=audio, truth=_truth(spec, identity, plan, track, drawn))


def _face_track(spec: ClipSpec, speech: Speech, n_frames: int) -> _FaceTrack:
    """The mouth follows the speech's articulators; head wander, blinks and the expression's strength
    are drawn from the clip seed's motion stream."""
    weight = expression_weight(n_frames, spec.onset)
    rest = _REST_OPENING.get(spec.emotion, 0.0)
    opening = np.clip(frame_means(jaw_lag(speech.jaw_target), n_frames, FPS) + rest * weight, 0.0, 1.0)
    rounding = np.clip(frame_means(jaw_lag(speech.rounding), n_frames, FPS), 0.0, 1.0)

    motion = np.random.default_rng(np.random.SeedSequence([spec.seed, 0x40D]))
    t = np.arange(n_frames) / FPS
    tx = _smooth_wander(motion, t, 0.03)
    ty = _smooth_wander(motion, t, 0.025)
    rot = _smooth_wander(motion, t, 4.0)
    scale = 1.0 + _smooth_wander(motion, t, 0.03)
    blink = _blinks(motion, n_frames)
    strength = float(motion.uniform(0.75, 1.0)) if spec.emotion != "neutral" else 1.0
    strength *= spec.expression_scale
    expr = {
        k: (v - 1.0) * strength + 1.0 if k == "eye_open" else v * strength for k, v in EXPRESSIONS[spec.emotion].items()
    }
    return _FaceTrack(opening, rounding, blink, tx, ty, rot, scale, weight, expr, strength, rest)


def _draw(identity: Identity, track: _FaceTrack, size: int, n_frames: int) -> tuple[np.ndarray, dict[str, list]]:
    """The first n_frames frames (n, S, S, 3) uint8, and per frame the truth of what was drawn:
    `expression_frames`, `face_box` and `landmarks` (see the module docstring)."""
    background = render_background(identity, size * supersampling(size))
    frames = np.empty((n_frames, size, size, 3), dtype=np.uint8)
    boxes, departures, points = [], [], []
    neutral = EXPRESSIONS["neutral"]
    for k in range(n_frames):
        state = track.state(k)
        frames[k] = render_frame(identity, state, background, size)
        departures.append([round(getattr(state, key) - neutral[key], 5) for key in EXPRESSION_KEYS])
        boxes.append([round(v, 2) for v in face_box(state, size)])
        points.append(np.round(landmarks(identity, state, size), 3).tolist())
    return frames, {"expression_frames": departures, "face_box": boxes, "landmarks": points}


_UNITS = {
    "mouth_open": "jaw/lip opening, 0 closed .. 1 widest (the mean over the frame's 40 ms)",
    "lip_round": "lip rounding 0..1",
    "blink": "0 eyes open .. 1 closed",
    "head_tx": "head translation right, fraction of the frame side",
    "head_ty": "head translation down, fraction of the frame side",
    "head_rot": "head roll in degrees, counter-clockwise on screen",
    "head_scale": "head scale, 1 = face box 0.624 of the frame side",
    "face_box": "[x, y, w, h] in pixels of this frame size",
    "expression": "face units (face half-width = 1): brows up, inner brow ends down, mouth corners up, "
    "eye-height multiplier, upper-lip raise",
    "expression_frames": "per frame, [brow_raise, brow_tilt, corner, eye_open, lip_raise] minus neutral",
    "landmarks": "per frame, [x, y] pixels of each point in landmark_names (pixel i spans [i, i + 1])",
}
"""What each field of a clip's truth means (its ``units``)."""


def _rounded(values: np.ndarray, digits: int = 5) -> list[float]:
    return [round(float(v), digits) for v in values]


def _truth(spec: ClipSpec, identity: Identity, plan: SpeechPlan, track: _FaceTrack, drawn: dict[str, list]) -> dict:
    """The clip's NAME.json (see the module docstring)."""
    n_frames = len(track.opening)
    return {
        "format": FORMAT,
        "name": spec.name,
        "index": spec.index,
        "run_seed": spec.run_seed,
        "identity": spec.identity,
        "clip_seed": spec.seed,
        "emotion": spec.emotion,
        "emotion_index": EMOTIONS.index(spec.emotion),
        "emotion_onset": spec.onset,
        "expression_scale": spec.expression_scale,
        "fps": FPS,
        "sample_rate": SAMPLE_RATE,
        "seconds": n_frames / FPS,
        "n_frames": n_frames,
        "size": spec.size,
        "units": dict(_UNITS),
        "expression": {k: round(v, 5) for k, v in track.expr.items()}
        | {"strength": round(track.strength, 5), "rest_opening": track.rest},
        "voice": {"f0": round(identity.f0, 3), **asdict(PROSODY[spec.emotion])},
        "expression_frames": drawn["expression_frames"],
        "mouth_open": _rounded(track.opening),
        "lip_round": _rounded(track.rounding),
        "blink": _rounded(track.blink),
        "head_tx": _rounded(track.tx),
        "head_ty": _rounded(track.ty),
        "head_rot": _rounded(track.rot, 4),
        "head_scale": _rounded(track.scale),
        "face_box": drawn["face_box"],
        "landmark_names": list(LANDMARK_NAMES),
        "landmarks": drawn["landmarks"],
        "syllables": [
            {
                "consonant": s.consonant,
                "onset": round(s.consonant_start, 5),
                "start": round(s.start, 5),
                "end": round(s.end, 5),
                "vowel": s.vowel,
                "stress": round(s.stress, 5),
            }
            for s in plan.syllables
        ],
    }


def write_clip(clip: Clip, folder: str | os.PathLike, crf: int = 18) -> dict:
    """Write NAME.mp4, NAME.wav and NAME.json into `folder`; return the clip's manifest entry."""

    from floatalk.io.audio import write_wav
    from floatalk.io.provenance import synthetic_video_metadata
    from floatalk.io.video import VideoWriter

    folder = Path(folder)
    name = clip.spec.name
    pcm = np.clip(np.rint(clip.audio * 32768.0), -32768, 32767).astype(np.int16)
    text = json.dumps(clip.truth, separators=(",", ":")) + "\n"
    try:
        atomic_write(folder / f"{name}.wav", lambda p: write_wav(p, pcm, SAMPLE_RATE))
        atomic_write(folder / f"{name}.json", lambda p: Path(p).write_text(text, encoding="utf-8"))
        mark = synthetic_video_metadata()
        with VideoWriter(folder / f"{name}.mp4", FPS, clip.audio, SAMPLE_RATE, crf, metadata=mark) as w:
            w.write(clip.frames)
    except BaseException:
        for suffix in (".wav", ".json"):  # a clip is its three files or none
            (folder / f"{name}{suffix}").unlink(missing_ok=True)
        raise
    return {
        "name": name,
        "identity": clip.spec.identity,
        "emotion": clip.spec.emotion,
        "seconds": clip.truth["seconds"],
        "size": clip.spec.size,
        "n_frames": clip.truth["n_frames"],
        "video": f"{name}.mp4",
        "audio": f"{name}.wav",
        "truth": f"{name}.json",
    }


_writing = False  # in a pool worker: True while it renders and writes a clip


def _render_and_write(job: tuple[ClipSpec, str]) -> dict:
    global _writing
    spec, folder = job
    _writing = True
    try:
        return write_clip(make_clip(spec), folder)
    finally:
        _writing = False


def _worker_init() -> None:
    import signal

    import cv2

    cv2.setNumThreads(1)
    # Ctrl-C is the parent's to handle (one line, exit 130); a worker would print its own traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The parent ends its pool with SIGTERM (on an error, Ctrl-C or its own SIGTERM): leave quietly,
    # through the writers' clean-up, so no half-written clip stays behind.
    signal.signal(signal.SIGTERM, _worker_exit)


def _worker_exit(signum: int, frame: object) -> None:
    import signal

    if not _writing:  # idle, or already leaving (its exit handlers must not be cut into): nothing is open
        os._exit(128 + signum)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the clean-up below runs to its end
    raise SystemExit(128 + signum)


def generate_world(
    out: str | os.PathLike,
    clips: int,
    seconds: float = 4.0,
    size: int = 128,
    seed: int = 0,
    workers: int = 1,
    progress: Progress | None = None,
    onset: float = 0.0,
    expression_scale: float = 1.0,
) -> Path:
    """Render `clips` clips into folder `out` (created if missing) and write out/manifest.json.

    Returns the manifest's path. `workers` > 1 renders clips in that many processes; the files
    do not depend on it. `progress('clips', done, total)` is told of each finished clip.
    `onset` > 0 keeps each face neutral for that many seconds before its emotion eases in;
    `expression_scale` multiplies every expression's departure from neutral (0..MAX_EXPRESSION_SCALE).
    """
    if clips < 1:
        raise UserInputError(f"--clips must be at least 1 (got {clips}).")
    if not 0.2 <= seconds <= 600:
        raise UserInputError(f"--seconds must be between 0.2 and 600 (got {seconds}).")
    if not 32 <= size <= 1024:
        raise UserInputError(f"--size must be between 32 and 1024 pixels (got {size}).")
    folder = output_folder(out)
    if not 0 <= onset < seconds:
        raise UserInputError(f"--emotion-onset must be at least 0 and shorter than a clip (got {onset}).")
    if not 0 <= expression_scale <= MAX_EXPRESSION_SCALE:
        raise UserInputError(
            f"--expression-scale must be between 0 and {MAX_EXPRESSION_SCALE} (got {expression_scale})."
        )
    specs = clip_specs(clips, seconds, size, seed, onset, expression_scale)
    jobs = [(spec, str(folder)) for spec in specs]
    report = progress or no_progress
    entries: list[dict] = []
    report("clips", 0, len(jobs))
    if workers > 1 and len(jobs) > 1:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        pool = ctx.Pool(min(workers, len(jobs)), initializer=_worker_init)
        try:
            for entry in pool.imap(_render_and_write, jobs):
                entries.append(entry)
                report("clips", len(entries), len(jobs))
            # Done: the workers leave on the queue's end marker. Ending them with SIGTERM instead (as
            # the pool's `with` does) can hang the join: a worker killed while holding the task
            # queue's lock leaves the other waiting for it for ever.
            pool.close()
        except BaseException:
            pool.terminate()  # an error, Ctrl-C or SIGTERM: no clip is waited for
            raise
        finally:
            pool.join()
    else:
        for job in jobs:
            entries.append(_render_and_write(job))
            report("clips", len(entries), len(jobs))
    manifest = {
        "format": FORMAT,
        "seed": int(seed),
        "fps": FPS,
        "sample_rate": SAMPLE_RATE,
        "size": int(size),
        "seconds": entries[0]["seconds"],
        "emotions": list(EMOTIONS),
        "clips": entries,
    }
    path = folder / "manifest.json"
    text = json.dumps(manifest, indent=1) + "\n"
    atomic_write(path, lambda p: Path(p).write_text(text, encoding="utf-8"))
    return path
