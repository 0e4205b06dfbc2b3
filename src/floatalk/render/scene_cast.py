"""A scene's cast resolved against its photo and its sound: which pixels each face is, what each
face hears and when it speaks (`resolve_cast`). Every mistake in what the user gave (a face that
does not exist, two voices on one face, a box outside the photo, a recording without sound, turns
past the recording's end) is one sentence here, before any model runs.

Letters: N samples at the model's rate.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from floatalk.errors import UserInputError
from floatalk.options import GenerateOptions
from floatalk.scene import OTHERS, Face, FaceBox, Speaker, Turns, face_label
from floatalk.units import MUX_SAMPLE_RATE, SAMPLE_RATE

__all__ = ["Cast", "CastFace", "PreparedScene", "gate", "prepare_scene", "resolve_cast", "scene_options"]

MIN_BOX_SIDE = 8
"""Smallest side of a face box given by hand, in pixels."""
SAME_FACE_IOU = 0.5
"""Two boxes overlapping by more than this (intersection over union) are one face."""
GATE_RAMP = 0.01
"""Seconds over which a speaker's share of a mixed recording fades in and out at its turns' edges."""

Box = tuple[int, int, int, int]


@dataclass
class CastFace:
    """One face of the scene as it will be rendered."""

    label: str  # 'face 2' or 'the face at x,y,w,h'
    number: int | None  # 1, 2, ... from the left among the faces found; None for a box given by hand
    box: Box  # the face box (x, y, w, h) in the photo's pixels
    role: str  # 'speaker' (named), 'idle' (nobody names it; it moves as a listener) or 'still'
    options: dict[str, Any] = field(default_factory=dict)  # the speaker's own settings
    track: np.ndarray | None = None  # (N,) what it hears at the model's rate; None: silence
    speaking: list[tuple[float, float]] = field(default_factory=list)  # (start, end) seconds it speaks
    voice: str = "silence"  # where its voice comes from: a file's name, 'the mixed recording', 'an array'


@dataclass
class Cast:
    """The scene's faces, its length and its soundtrack."""

    faces: list[CastFace]
    samples: int  # N, the scene's length at the model's rate
    sample_rate: int
    soundtrack: np.ndarray  # (N',) the mix the video carries, at `sound_rate`
    sound_rate: int
    found: int = 0  # faces the detector found
    detector: str | None = None  # the detector used

    @property
    def seconds(self) -> float:
        return self.samples / self.sample_rate


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    w = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def _upper(text: str) -> str:
    """`text` beginning with a capital, for a sentence that starts with it."""
    return text[:1].upper() + text[1:]


def _voice_name(audio: Any) -> str:
    return os.path.basename(os.fspath(audio)) if isinstance(audio, (str, os.PathLike)) else "an array"


def gate(wave: np.ndarray, spans: Sequence[tuple[float, float]], sample_rate: int) -> np.ndarray:
    """(N,) recording -> the same with silence outside the (start, end) second spans, faded in and
    out over GATE_RAMP at each span's edges (no clicks)."""
    merged: list[list[float]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1] + 1e-9:  # a face's turns that touch are one stretch
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    gain = np.zeros(len(wave), np.float32)
    ramp = max(1, int(round(GATE_RAMP * sample_rate)))
    for start, end in merged:
        i0, i1 = max(0, int(round(start * sample_rate))), min(len(wave), int(round(end * sample_rate)))
        if i1 <= i0:
            continue
        gain[i0:i1] = 1.0
        k = min(ramp, (i1 - i0) // 2)
        if k:
            up = (np.arange(k, dtype=np.float32) + 0.5) / k
            gain[i0 : i0 + k] = up
            gain[i1 - k : i1] = up[::-1]
    return np.asarray(wave, np.float32) * gain


def _check_box(face: FaceBox, width: int, height: int) -> Box:
    x, y, w, h = face.box
    if x >= width or y >= height or x + w <= 0 or y + h <= 0:
        raise UserInputError(f"The face box {face} lies outside the {width}x{height} photo.")
    if min(w, h) < MIN_BOX_SIDE:
        raise UserInputError(f"The face box {face} is smaller than {MIN_BOX_SIDE} pixels; give the face's whole box.")
    return (int(round(x)), int(round(y)), max(1, int(round(w))), max(1, int(round(h))))


def _named_faces(speakers: list[Speaker], turns: Turns | None) -> list[tuple[Face, Speaker]]:
    """Every face named by a speaker or a turn, once, with its speaker (options, recording)."""
    named: list[tuple[Face, Speaker]] = []
    for speaker in speakers:
        if any(face == speaker.face for face, _ in named):
            raise UserInputError(f"Two speakers were given for {face_label(speaker.face)}; each face takes one voice.")
        named.append((speaker.face, speaker))
    for face in turns.faces() if turns is not None else []:
        if not any(face == f for f, _ in named):
            named.append((face, Speaker(face)))
    return named


def _locate(
    photo: np.ndarray, named: list[tuple[Face, Speaker]], others: str, detector: str
) -> tuple[list[Box], list[Box], list[Box], str | None]:
    """(the named faces' boxes, the boxes of the faces nobody names, every face found from the left,
    the detector used)."""
    from floatalk.io.face import detect_faces, from_the_left, resolve_detector

    height, width = photo.shape[:2]
    numbered = [face for face, _ in named if isinstance(face, int)]
    # The faces are found even when every speaker is a box: the ones nobody names are kept clear
    # of the speakers' squares (still) or animated (idle).
    used = resolve_detector(detector)
    found: list[Box] = from_the_left(detect_faces(photo, used))
    if numbered and not found:
        raise UserInputError("No face was found in the photo; name the faces by their boxes x,y,w,h instead.")
    boxes = []
    for face, _ in named:
        if isinstance(face, int):
            if face > len(found):
                count = f"{len(found)} face{'s' * (len(found) != 1)}"
                raise UserInputError(f"The photo has {count} (numbered from the left); there is no face {face}.")
            boxes.append(found[face - 1])
        else:
            boxes.append(_check_box(face, width, height))
    for i, (a, (fa, _)) in enumerate(zip(boxes, named)):
        for b, (fb, _) in zip(boxes[i + 1 :], named[i + 1 :]):
            if _iou(a, b) > SAME_FACE_IOU:
                raise UserInputError(
                    f"{_upper(face_label(fa))} and {face_label(fb)} are the same face; each face takes one voice."
                )
    rest = [b for b in found if all(_iou(b, n) <= SAME_FACE_IOU for n in boxes)]
    return boxes, rest, found, used


def _separate_tracks(
    speakers: list[Speaker], sample_rate: int, mux_rate: int
) -> tuple[list[np.ndarray], np.ndarray, int]:
    """(each speaker's recording at the model's rate, padded to the longest; their mix; its rate)."""
    from floatalk.io.audio import load_audio
    from floatalk.io.voice import has_sound

    waves = []
    for speaker in speakers:
        wave = load_audio(speaker.audio, sample_rate)
        if not has_sound(wave):
            raise UserInputError(
                f"The recording of {face_label(speaker.face)} ({_voice_name(speaker.audio)}) has no sound."
            )
        waves.append(wave)
    files = all(isinstance(s.audio, (str, os.PathLike)) for s in speakers)
    loud = [load_audio(s.audio, mux_rate) for s in speakers] if files else waves
    n = max(len(w) for w in waves)
    tracks = [np.pad(w, (0, n - len(w))) for w in waves]
    mix = np.zeros(max(len(w) for w in loud), np.float32)
    for wave in loud:
        mix[: len(wave)] += wave
    peak = float(np.max(np.abs(mix)))
    if peak > 0.99:  # voices that add up past full scale are turned down together, not clipped
        mix *= np.float32(0.99 / peak)
    return tracks, mix, mux_rate if files else sample_rate


def resolve_cast(
    photo: np.ndarray,
    speakers: Sequence[Speaker],
    *,
    audio: Any = None,
    turns: Any = None,
    others: str = "still",
    detector: str = "auto",
    sample_rate: int = SAMPLE_RATE,
    mux_rate: int = MUX_SAMPLE_RATE,
) -> Cast:
    """The scene's faces with what each hears and when it speaks.

    photo: (H, W, 3) uint8. speakers: each with its own recording, or (with a mixed recording
    `audio` and `turns`) none. turns: a Turns, a parsed list, or a file; with separate recordings
    they say who speaks when instead of each recording's level. others: 'still' or 'idle'.
    sample_rate: the model's; mux_rate: the soundtrack's when the recordings are files."""
    if others not in OTHERS:
        raise UserInputError(f"The faces nobody names must be 'still' or 'idle' (got {others!r}).")
    speakers = [s.checked() if isinstance(s, Speaker) else _not_speaker(s) for s in speakers]
    turns = Turns.coerce(turns) if turns is not None else None
    _check_voices(speakers, audio, turns)
    named = _named_faces(speakers, turns)
    boxes, rest, found, used = _locate(photo, named, others, detector)
    if audio is None:
        n, tracks, spans, voices, soundtrack, sound_rate = _own_voices(speakers, turns, sample_rate, mux_rate)
    else:
        n, tracks, spans, voices, soundtrack, sound_rate = _mixed_voices(audio, turns, named, sample_rate, mux_rate)

    faces = []
    for (face, speaker), box, track, said, voice in zip(named, boxes, tracks, spans, voices):
        number = face if isinstance(face, int) else None
        faces.append(CastFace(face_label(face), number, box, "speaker", dict(speaker.options), track, said, voice))
    for box in rest:
        number = found.index(box) + 1
        faces.append(CastFace(f"face {number}", number, box, others))
    return Cast(faces, n, sample_rate, soundtrack, sound_rate, len(found), used)


def _check_voices(speakers: list[Speaker], audio: Any, turns: Turns | None) -> None:
    """Each speaker has its own recording (turns, if any, name only them), or there is one mixed
    recording with turns and no speaker has a recording of its own."""
    if audio is not None:
        if turns is None:
            raise UserInputError("A mixed recording needs turns that say who speaks when.")
        if any(s.audio is not None for s in speakers):
            raise UserInputError("Give one recording per speaker or one mixed recording with turns, not both.")
        return
    if not speakers:
        raise UserInputError("A scene needs at least one speaker: a face and its recording.")
    silent = next((s for s in speakers if s.audio is None), None)
    if silent is not None:
        raise UserInputError(
            f"{_upper(face_label(silent.face))} has no recording; give each speaker its own, "
            "or one mixed recording with turns."
        )
    if turns is not None:
        stranger = next((f for f in turns.faces() if all(f != s.face for s in speakers)), None)
        if stranger is not None:
            raise UserInputError(f"The turns name {face_label(stranger)}, which has no recording.")


def _own_voices(
    speakers: list[Speaker], turns: Turns | None, sample_rate: int, mux_rate: int
) -> tuple[int, list[np.ndarray], list[list[tuple[float, float]]], list[str], np.ndarray, int]:
    """One recording per speaker: (samples, (N,) tracks, speaking spans per speaker (from the
    turns, else from each recording's level), voice names, the soundtrack and its rate)."""
    from floatalk.io.voice import speech_spans

    tracks, soundtrack, sound_rate = _separate_tracks(speakers, sample_rate, mux_rate)
    n = len(tracks[0])
    if turns is not None:
        turns.check_duration(n / sample_rate)
        spans = [turns.spans(s.face) for s in speakers]
    else:
        spans = [speech_spans(t, sample_rate) for t in tracks]
    return n, tracks, spans, [_voice_name(s.audio) for s in speakers], soundtrack, sound_rate


def _mixed_voices(
    audio: Any, turns: Turns, named: list, sample_rate: int, mux_rate: int
) -> tuple[int, list[np.ndarray], list[list[tuple[float, float]]], list[str], np.ndarray, int]:
    """One mixed recording with turns: each named face hears the mix during its own turns only."""
    from floatalk.io.audio import load_audio
    from floatalk.io.voice import has_sound

    mix = load_audio(audio, sample_rate)
    if not has_sound(mix):
        raise UserInputError(f"The mixed recording ({_voice_name(audio)}) has no sound.")
    n = len(mix)
    turns.check_duration(n / sample_rate)
    spans = [turns.spans(face) for face, _ in named]
    tracks = [gate(mix, s, sample_rate) for s in spans]
    files = isinstance(audio, (str, os.PathLike))
    soundtrack, sound_rate = (load_audio(audio, mux_rate), mux_rate) if files else (mix, sample_rate)
    return n, tracks, spans, ["the mixed recording"] * len(named), soundtrack, sound_rate


def _not_speaker(value: Any) -> Speaker:
    raise UserInputError(f"Each speaker must be a floatalk.scene.Speaker, got {type(value).__name__}.")


def scene_options(options: GenerateOptions | None, overrides: dict[str, Any]) -> GenerateOptions:
    """The scene's own options, checked: `options` (default GenerateOptions()) with `overrides`;
    cropping must stay on and no single face is chosen (the speakers name them)."""
    opts = options if options is not None else GenerateOptions()
    if not isinstance(opts, GenerateOptions):
        raise UserInputError(f"options must be a GenerateOptions, got {type(opts).__name__}.")
    opts = (opts.replace(**overrides) if overrides else opts).validate()
    if not opts.crop:
        raise UserInputError("A scene animates each face in a square of its own, so it always crops (crop on).")
    if opts.face is not None:
        raise UserInputError("A scene names its faces through its speakers; the face option does not apply.")
    return opts


@dataclass
class PreparedScene:
    """A scene checked and read, before any model runs: the photo, its cast and the options."""

    photo: np.ndarray  # (H, W, 3) uint8
    cast: Cast
    options: GenerateOptions  # the scene's, checked (each speaker's own are in its CastFace)


def prepare_scene(
    image: Any,
    speakers: Sequence[Speaker] = (),
    options: GenerateOptions | None = None,
    *,
    audio: Any = None,
    turns: Any = None,
    others: str = "still",
    sample_rate: int = SAMPLE_RATE,
    **overrides: Any,
) -> PreparedScene:
    """Check a scene's inputs, read the photo and the recordings and find the faces (arguments as
    in `floatalk.render.render_scene`; sample_rate: the model's). Raises UserInputError (one
    sentence) for anything unusable."""
    from floatalk.io.image import load_image

    opts = scene_options(options, overrides)
    photo = load_image(image)
    cast = resolve_cast(
        photo,
        speakers,
        audio=audio,
        turns=turns,
        others=others,
        detector=opts.detector,
        sample_rate=sample_rate,
        mux_rate=MUX_SAMPLE_RATE,
    )
    return PreparedScene(photo, cast, opts)
