"""Group scenes of the synthetic world: several drawn portraits in one photo taking turns to
speak, each with its own speech and the truth of its mouth, so scenes can be measured.

`make_group_scene(spec)` draws the portraits (identities, sizes, emotions and turns from the
spec's seed) side by side on a plain backdrop, each a world portrait (its face box 0.624 of its
square, as the world's clips frame it), at sizes from 0.75 to 1 of `size`, at different heights,
each covering the right edge of the one before by `overlap` of its side. Faces are numbered from
the left, as `--face` counts them. The faces speak in turns of 1.2 to 2.4 s with short pauses,
in a random order each round (a scene shorter than a round leaves some faces listening
throughout); a face's own track holds its speech inside its turns and silence elsewhere, and
`mouth` its true jaw opening per frame (0 while it listens).

`write_group_scene(scene, folder)` stores photo.png (marked as the world's,
floatalk.io.provenance), face_N.wav (each face's own voice), mix.wav, turns.json (the turns file
`floatalk scene --turns` reads) and truth.json.

Letters: T frames at the world's 25 fps, N samples at 16 kHz.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from floatalk.config import EMOTIONS
from floatalk.errors import UserInputError
from floatalk.fileio import atomic_write, output_folder
from floatalk.jaw_law import frame_means, jaw_lag
from floatalk.synth.face import FaceState, Identity, face_box, render_background, render_frame, supersampling
from floatalk.synth.speech import SAMPLE_RATE, plan_speech, synthesize
from floatalk.units import FPS

__all__ = ["GroupScene", "GroupSpec", "group_specs", "make_group_scene", "write_group_scene"]

BACKDROP = (196, 200, 204)
MARGIN = 0.2
"""Space around the portraits, in shares of the largest portrait's side."""
TURN_SECONDS = (1.2, 2.4)
PAUSE_SECONDS = (0.1, 0.4)
MAX_FACES = 8


@dataclass(frozen=True)
class GroupSpec:
    """What to draw: how many faces, how long they talk, the largest portrait's side, how much
    each portrait covers the one on its left (a share of its side) and the seed of everything."""

    name: str
    seed: int
    faces: int = 2
    seconds: float = 6.0
    size: int = 128
    overlap: float = 0.12


@dataclass
class GroupScene:
    """A drawn group photo, each face's voice and turns, and the truth of each mouth."""

    spec: GroupSpec
    photo: np.ndarray  # (H, W, 3) uint8
    boxes: list[tuple[float, float, float, float]]  # each face's box (x, y, w, h), from the left
    squares: list[tuple[int, int, int]]  # where each portrait was drawn: (x, y, side)
    identities: list[int]
    emotions: list[str]
    tracks: list[np.ndarray]  # (N,) float32 each face's own voice, silent outside its turns
    mix: np.ndarray  # (N,) float32 every voice together
    turns: list[dict]  # {"start", "end", "face"}: who speaks when (faces numbered from 1, the leftmost)
    mouth: list[np.ndarray]  # (T,) each face's true jaw opening 0..1

    @property
    def seconds(self) -> float:
        return len(self.mix) / SAMPLE_RATE


def group_specs(
    scenes: int, faces: int, seconds: float, size: int, seed: int, overlap: float = 0.12
) -> list[GroupSpec]:
    """Scene i of a run with seed K draws everything from SeedSequence([K, i])."""
    specs = []
    for i in range(scenes):
        scene_seed = int(np.random.SeedSequence([int(seed), i]).generate_state(1)[0]) & 0x7FFFFFFF
        specs.append(GroupSpec(f"scene_{i:03d}", scene_seed, faces, seconds, size, overlap))
    return specs


def _even(value: float) -> int:
    return int(round(float(value) / 2)) * 2


def _turns(rng: np.random.Generator, faces: int, seconds: float) -> list[dict]:
    """Turns of 1.2-2.4 s with 0.1-0.4 s pauses, every face once per round in a random order."""
    turns: list[dict] = []
    t = float(rng.uniform(*PAUSE_SECONDS))
    while True:
        for face in rng.permutation(faces):
            length = float(rng.uniform(*TURN_SECONDS))
            if t + length > seconds - 0.05:
                return turns
            turns.append({"start": round(t, 3), "end": round(t + length, 3), "face": int(face) + 1})
            t += length + float(rng.uniform(*PAUSE_SECONDS))


def make_group_scene(spec: GroupSpec) -> GroupScene:
    """Draw one group scene in memory (deterministic in the spec)."""
    if not 1 <= spec.faces <= MAX_FACES:
        raise UserInputError(f"A group scene has 1 to {MAX_FACES} faces (got {spec.faces}).")
    if not 0.0 <= spec.overlap <= 0.4:
        raise UserInputError(f"The portraits' overlap must be from 0 to 0.4 of their side (got {spec.overlap}).")
    if spec.seconds < TURN_SECONDS[1] + 2 * PAUSE_SECONDS[1]:
        raise UserInputError(
            f"A group scene lasts at least {TURN_SECONDS[1] + 2 * PAUSE_SECONDS[1]:g} s (got {spec.seconds:g})."
        )
    rng = np.random.default_rng(np.random.SeedSequence([spec.seed, 0x6A0]))
    identities = [int(v) & 0x7FFFFFFF for v in rng.integers(0, 2**31, spec.faces)]
    emotions = [EMOTIONS[int(k)] for k in rng.integers(0, len(EMOTIONS), spec.faces)]
    sides = [int(round(spec.size * rng.uniform(0.75, 1.0) / 2)) * 2 for _ in range(spec.faces)]
    # Every portrait's edges lie on even pixels, as the video's half-resolution colour planes
    # (4:2:0) are laid out: a colour edge inside a 2 x 2 block would blur into the backdrop.
    margin = _even(MARGIN * spec.size)
    lows = [_even(rng.integers(0, max(1, spec.size - side + 1))) for side in sides]
    xs = [margin]
    for side in sides[:-1]:
        xs.append(xs[-1] + _even(side * (1.0 - spec.overlap)))
    width = xs[-1] + sides[-1] + margin
    height = spec.size + 2 * margin
    photo = np.empty((height, width, 3), np.uint8)
    photo[:] = BACKDROP
    boxes, squares = [], []
    for identity, side, x, low in zip(identities, sides, xs, lows):
        person = Identity.sample(identity)
        state = FaceState()
        y = margin + low
        photo[y : y + side, x : x + side] = render_frame(
            person, state, render_background(person, side * supersampling(side)), side
        )
        fx, fy, fw, fh = face_box(state, side)
        boxes.append((x + fx, y + fy, fw, fh))
        squares.append((x, y, side))
    turns = _turns(rng, spec.faces, spec.seconds)
    n = int(round(spec.seconds * SAMPLE_RATE))
    frames = max(1, int(round(spec.seconds * FPS)))
    tracks = [np.zeros(n, np.float32) for _ in range(spec.faces)]
    jaws = [np.zeros(n) for _ in range(spec.faces)]
    for turn in turns:
        face = turn["face"] - 1
        person = Identity.sample(identities[face])
        plan = plan_speech(rng, turn["end"] - turn["start"], emotions[face], person.f0)
        speech = synthesize(plan, rng)
        a = int(round(turn["start"] * SAMPLE_RATE))
        b = min(n, a + len(speech.audio))
        tracks[face][a:b] = speech.audio[: b - a]
        jaws[face][a:b] = speech.jaw_target[: b - a]
    mix = np.sum(tracks, axis=0).astype(np.float32)
    mouth = [np.clip(frame_means(jaw_lag(jaw), frames, FPS), 0.0, 1.0) for jaw in jaws]
    return GroupScene(spec, photo, boxes, squares, identities, emotions, tracks, mix, turns, mouth)


def write_group_scene(scene: GroupScene, folder: str | os.PathLike) -> Path:
    """Write photo.png, face_N.wav, mix.wav, turns.json and truth.json into `folder`; returns it."""
    from PIL import Image

    from floatalk.io.audio import write_wav
    from floatalk.io.provenance import synthetic_png_info

    folder = output_folder(folder)

    def pcm(wave: np.ndarray) -> np.ndarray:
        return np.clip(np.rint(wave * 32768.0), -32768, 32767).astype(np.int16)

    atomic_write(
        folder / "photo.png", lambda p: Image.fromarray(scene.photo).save(p, format="PNG", pnginfo=synthetic_png_info())
    )
    for k, track in enumerate(scene.tracks):
        atomic_write(folder / f"face_{k + 1}.wav", lambda p, t=track: write_wav(p, pcm(t), SAMPLE_RATE))
    atomic_write(folder / "mix.wav", lambda p: write_wav(p, pcm(scene.mix), SAMPLE_RATE))
    turns = json.dumps(scene.turns, indent=1) + "\n"
    atomic_write(folder / "turns.json", lambda p: Path(p).write_text(turns, encoding="utf-8"))
    truth = {
        "spec": asdict(scene.spec),
        "fps": FPS,
        "sample_rate": SAMPLE_RATE,
        "seconds": scene.seconds,
        "boxes": [[round(v, 2) for v in box] for box in scene.boxes],
        "squares": [list(s) for s in scene.squares],
        "identities": scene.identities,
        "emotions": scene.emotions,
        "turns": scene.turns,
        "mouth_open": [[round(float(v), 5) for v in m] for m in scene.mouth],
    }
    text = json.dumps(truth, separators=(",", ":")) + "\n"
    atomic_write(folder / "truth.json", lambda p: Path(p).write_text(text, encoding="utf-8"))
    return folder
