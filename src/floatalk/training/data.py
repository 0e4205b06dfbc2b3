"""Training data: preprocessing talking-head videos into clips, and reading them back.

Layout written by `preprocess` (and read by both trainers)::

    DATA/manifest.json            size, fps, sample rate, clips [{name, identity, split, frames, emotion}], skipped
    DATA/clips/NAME/frames.npy    (T, S, S, 3) uint8 RGB face crops at 25 fps (memory-mapped when read)
    DATA/clips/NAME/audio.wav     16 kHz mono PCM16, T * 640 samples at most
    DATA/clips/NAME/meta.json     source video, identity, emotion, crop box
    DATA/clips/NAME/KIND.npy      per-frame annotations, one row per frame (`Clip.load_annotation`):
      expression.npy  (T, K) float32 expression truth, where the sidecar gives ``expression_frames``
      landmarks.npy   (T, L, 2) float32 landmarks in the crop's [-1, 1] coordinates (grid_sample's:
                      -1 and 1 are the outer edges of the first and last pixels): the sidecar's
                      ``landmarks`` where it gives them (the synthetic world does), else (or with
                      landmarks="mesh") the face mesh's 468 points
      mesh.npy        (T, 468, 2) float32 the face mesh in the same coordinates, every clip whose
                      face the mesh follows (floatalk.io.clip_faces)

Each video gets one crop box: the release's rule (a square of 1.6x the face box's larger side,
centred on it) applied to the face boxes found on frames sampled through the clip, smoothed by
taking their median, so the crop does not jitter. A `NAME.json` beside a video may give
`identity`, `emotion` and per-frame face boxes [x, y, w, h] as `face_box` or `frames.face_box`
(the synthetic world writes them);
its face boxes are used when the detector finds no face. Identity otherwise is the video's
sub-folder name, or its file name when videos sit directly in the folder. The train/val split
is by identity, so no person appears in both.
"""

from __future__ import annotations

import json
import math
import shutil
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from floatalk.config import EMOTIONS
from floatalk.errors import UserInputError
from floatalk.fileio import atomic_path, atomic_write
from floatalk.units import FPS, SAMPLE_RATE

if TYPE_CHECKING:
    from floatalk.io.clip_faces import ClipFaces
    from floatalk.io.face import CropBox

VIDEO_EXTS = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v")
MANIFEST = "manifest.json"


class ClipError(Exception):
    """This video cannot be used; the message says why (recorded in the manifest, not fatal)."""


@dataclass(frozen=True)
class Clip:
    """One preprocessed clip."""

    name: str
    identity: str
    split: str  # train | val
    frames: int
    emotion: str | None
    folder: Path

    def load_frames(self) -> np.ndarray:
        """(T, S, S, 3) uint8, memory-mapped."""
        return np.load(self.folder / "frames.npy", mmap_mode="r")

    def load_audio(self) -> np.ndarray:
        """(N,) float32 at 16 kHz."""
        import soundfile as sf

        audio, _ = sf.read(self.folder / "audio.wav", dtype="float32")
        return audio

    def load_annotation(self, kind: str) -> np.ndarray | None:
        """The clip's per-frame annotation KIND.npy (e.g. 'landmarks' (T, L, 2), 'expression' (T, K)),
        None when it has none; UserInputError if its rows are not the clip's T frames."""
        path = self.folder / f"{kind}.npy"
        if not path.is_file():
            return None
        rows = np.load(path)
        if rows.ndim == 0 or len(rows) != self.frames:
            raise UserInputError(f"'{path}' has shape {rows.shape}, not one row for each of the {self.frames} frames.")
        return rows


def read_manifest(data: str | Path) -> tuple[dict[str, Any], list[Clip]]:
    """(manifest dict, clips) of a preprocessed data folder; UserInputError if it is not one."""
    folder = Path(data)
    path = folder / MANIFEST
    if not path.is_file():
        raise UserInputError(
            f"'{folder}' is not a preprocessed data folder (no {MANIFEST}); run 'floatalk preprocess'."
        )
    try:
        meta = json.loads(path.read_text())
        clips = [
            Clip(c["name"], c["identity"], c["split"], int(c["frames"]), c.get("emotion"), folder / "clips" / c["name"])
            for c in meta["clips"]
        ]
    except (ValueError, KeyError, TypeError) as exc:  # e.g. synth-data's manifest: videos, not preprocessed clips
        raise UserInputError(
            f"'{path}' is not the manifest of a preprocessed data folder; run 'floatalk preprocess' on the videos."
        ) from exc
    if not clips:
        raise UserInputError(f"'{folder}' holds no usable clips (see 'skipped' in its {MANIFEST}).")
    return meta, clips


def split_of(identity: str, identities: list[str], val_fraction: float) -> str:
    """Deterministic split by identity: a stable hash picks ~val_fraction of identities for val."""
    if val_fraction <= 0 or len(identities) < 2:
        return "train"
    ranked = sorted(identities, key=lambda i: zlib.crc32(i.encode()))
    n_val = max(1, round(val_fraction * len(identities)))
    return "val" if identity in ranked[:n_val] else "train"


def _sidecar(video: Path) -> dict[str, Any]:
    side = video.with_suffix(".json")
    if side.is_file():
        try:
            data = json.loads(side.read_text())
            return data if isinstance(data, dict) else {}
        except json.JSONDecodeError:
            return {}
    return {}


def _decode_rgb(video: Path) -> tuple[list[np.ndarray], list[float]]:
    """All frames (H, W, 3) uint8 with their times in seconds."""
    import av

    frames, times = [], []
    try:
        with av.open(str(video)) as box:
            if not box.streams.video:
                raise ClipError("no video stream")
            stream = box.streams.video[0]
            for frame in box.decode(stream):
                frames.append(frame.to_ndarray(format="rgb24"))
                times.append(float(frame.time) if frame.time is not None else len(times) / FPS)
    except av.FFmpegError as exc:
        raise ClipError(f"cannot decode video ({exc})") from None
    if not frames:
        raise ClipError("no video frames")
    return frames, times


def _sidecar_face_boxes(side: dict[str, Any]) -> Any:
    """The sidecar's per-frame face boxes, at the top level or under "frames" (unchecked)."""
    return side.get("face_box") or (side.get("frames") or {}).get("face_box")


def stable_crop_box(frames: list[np.ndarray], side: dict[str, Any], scale: float = 1.6):
    """One CropBox for the clip: median of per-frame 1.6x Haar face crops (about 5 detections per second)."""
    from floatalk.io.face import CropBox, detect_face, face_crop_box

    step = max(1, len(frames) // max(1, math.ceil(len(frames) / 5)))
    given = _sidecar_face_boxes(side)  # the truth, where the detector finds no face
    given = given if isinstance(given, list) else []
    boxes = []
    for i in range(0, len(frames), step):
        face = detect_face(frames[i], detector="haar")
        if face is None and i < len(given):
            face = tuple(given[i])
        if face is not None:
            boxes.append(face_crop_box(face, scale))
    if len(boxes) < max(1, len(range(0, len(frames), step)) // 2):
        raise ClipError(f"a face was found in only {len(boxes)} of {len(range(0, len(frames), step))} sampled frames")
    cx = float(np.median([b.x0 + b.size / 2 for b in boxes]))
    cy = float(np.median([b.y0 + b.size / 2 for b in boxes]))
    size = float(np.median([b.size for b in boxes]))
    return CropBox(cx - size / 2, cy - size / 2, size)


def preprocess_video(
    video: Path, clip_dir: Path, size: int, identity: str, detector: str = "auto", landmarks: str = "auto"
) -> dict[str, Any]:
    """Write one clip folder (frames.npy, audio.wav, annotations, meta.json last), each file
    atomically; ClipError if unusable.

    detector: "mesh" crops around the tracked face mesh (floatalk.io.clip_faces), "haar" uses
    `stable_crop_box`; "auto" is the mesh, except for clips whose sidecar gives per-frame face boxes
    (the synthetic world, whose drawn faces get a 17 % smaller mesh box than the framing they were
    drawn for; docs/FACES.md). landmarks: "auto" writes the sidecar's landmarks when given, else the
    mesh; "mesh" always the mesh."""
    import soundfile as sf

    from floatalk.io.clip_faces import clip_faces

    side = _sidecar(video)
    audio = _load_audio(video)
    frames, times = _decode_rgb(video)
    picks = _resample(times, len(audio) / SAMPLE_RATE)
    faces = clip_faces([frames[j] for j in picks]) if detector != "haar" or landmarks == "mesh" else None
    box = _crop_box(frames, side, faces, detector)
    # meta.json is written last: a clip folder without it is unfinished and is made again.
    shutil.rmtree(clip_dir, ignore_errors=True)
    clip_dir.mkdir(parents=True)
    _write_crops(clip_dir / "frames.npy", frames, picks, box, size)
    clip_audio = audio[: len(picks) * (SAMPLE_RATE // FPS)]
    atomic_write(clip_dir / "audio.wav", lambda p: sf.write(p, clip_audio, SAMPLE_RATE, subtype="PCM_16"), ".wav")
    _write_expression(clip_dir, side, picks, len(frames))
    _write_face_points(clip_dir, side, picks, len(frames), faces, box, landmarks)
    emotion = side.get("emotion")
    meta = {
        "name": clip_dir.name,
        "identity": identity,
        "emotion": emotion if emotion in EMOTIONS else None,
        "frames": len(picks),
        "source": str(video),
        "crop_box": [box.x0, box.y0, box.size],
        "mesh_found": None if faces is None else round(float(faces.found.mean()), 4),
    }
    atomic_write(clip_dir / "meta.json", lambda p: p.write_text(json.dumps(meta, indent=2)))
    return meta


def _load_audio(video: Path) -> np.ndarray:
    """(N,) float32 speech of the video at 16 kHz; ClipError if it has none."""
    from floatalk.io.audio import load_audio

    try:
        return load_audio(video, SAMPLE_RATE)
    except UserInputError as exc:
        raise ClipError(str(exc).rstrip(".")) from None


def _resample(times: list[float], audio_seconds: float) -> np.ndarray:
    """(T,) source frame index of each 25 fps output frame over the span that both the frames
    (times in s) and the audio cover: the latest source frame shown at that time."""
    duration = min(times[-1] + (times[-1] - times[0]) / max(1, len(times) - 1), audio_seconds)
    T = int(math.floor(duration * FPS + 1e-6))
    if T < 2:
        raise ClipError("shorter than two frames")
    times_arr = np.asarray(times)
    return np.clip(np.searchsorted(times_arr, np.arange(T) / FPS + 1e-6, side="right") - 1, 0, len(times) - 1)


def _crop_box(frames: list[np.ndarray], side: dict[str, Any], faces: ClipFaces | None, detector: str) -> CropBox:
    """The clip's CropBox by the rule of `detector` (see `preprocess_video`); faces: the clip's
    face mesh track, or None when it was not tracked."""
    use_mesh = detector == "mesh" or (detector == "auto" and not _sidecar_face_boxes(side))
    return faces.box if use_mesh and faces is not None and faces.box is not None else stable_crop_box(frames, side)


def _write_crops(path: Path, frames: list[np.ndarray], picks: np.ndarray, box: CropBox, size: int) -> None:
    """frames.npy: (T, size, size, 3) uint8 crops of the picked frames, written frame by frame:
    streamed, not memory-mapped, because a full disk under a memory map kills the process (SIGBUS)."""
    from floatalk.io.face import crop_image

    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False}
    with atomic_path(path, ".npy") as tmp, open(tmp, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, {**header, "shape": (len(picks), size, size, 3)})
        for j in picks:
            handle.write(np.ascontiguousarray(crop_image(frames[j], box, size)).tobytes())


def _write_expression(clip_dir: Path, side: dict[str, Any], picks: np.ndarray, n_source: int) -> None:
    """expression.npy (T, K), where the sidecar gives one row per each of the n_source frames."""
    expression = side.get("expression_frames")
    if isinstance(expression, list) and len(expression) == n_source:
        rows = np.asarray(expression, dtype=np.float32)
        rows = rows[picks] if rows.ndim == 2 else rows[picks, None]
        atomic_write(clip_dir / "expression.npy", lambda p: np.save(p, rows), ".npy")


def _write_face_points(
    clip_dir: Path,
    side: dict[str, Any],
    picks: np.ndarray,
    n_source: int,
    faces: ClipFaces | None,
    box: CropBox,
    landmarks: str,
) -> None:
    """mesh.npy where the mesh was found, and landmarks.npy: the sidecar's landmarks (one row per
    each of the n_source frames) unless landmarks="mesh" or there are none, else the mesh."""
    from floatalk.io.clip_faces import to_crop_coordinates

    mesh = None
    if faces is not None and faces.box is not None:
        mesh = to_crop_coordinates(faces.points, box).astype(np.float32)
        atomic_write(clip_dir / "mesh.npy", lambda p: np.save(p, mesh), ".npy")
    points = side.get("landmarks")
    given = isinstance(points, list) and len(points) == n_source
    if mesh is not None and (landmarks == "mesh" or not given):
        atomic_write(clip_dir / "landmarks.npy", lambda p: np.save(p, mesh), ".npy")
    elif given:
        # Frame pixels (pixel i spans [i, i + 1]) -> the crop's [-1, 1] (crop_image maps the box edges
        # to the crop's edges).
        marks = (np.asarray(points, dtype=np.float64) - (box.x0, box.y0)) / box.size * 2.0 - 1.0
        atomic_write(clip_dir / "landmarks.npy", lambda p: np.save(p, marks[picks].astype(np.float32)), ".npy")


def find_videos(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in VIDEO_EXTS and p.is_file())


def preprocess(
    videos: str | Path,
    out: str | Path,
    size: int = 512,
    val_fraction: float = 0.1,
    on_clip: Callable[[str, str | None], None] | None = None,
    detector: str = "auto",
    landmarks: str = "auto",
) -> dict[str, Any]:
    """Preprocess every video under `videos` into `out`; resumable (finished clips are skipped).

    detector, landmarks: as `preprocess_video`.

    on_clip(name, error_or_None) is called after each video. Returns the manifest dict.
    """
    src, dst = Path(videos), Path(out)
    if not src.is_dir():
        raise UserInputError(f"Video folder '{src}' does not exist.")
    files = find_videos(src)
    if not files:
        raise UserInputError(f"No videos ({', '.join(VIDEO_EXTS)}) found under '{src}'.")
    (dst / "clips").mkdir(parents=True, exist_ok=True)
    existing = json.loads((dst / MANIFEST).read_text()) if (dst / MANIFEST).is_file() else {}
    if existing and existing.get("size") != size:
        raise UserInputError(f"'{dst}' was preprocessed at {existing.get('size')} px; use another --out for {size} px.")

    def clip_name(video: Path) -> str:
        rel = video.relative_to(src).with_suffix("")
        return "__".join(rel.parts)

    def identity_of(video: Path) -> str:
        side = _sidecar(video)
        if "identity" in side:
            return str(side["identity"])
        rel = video.relative_to(src)
        return rel.parts[0] if len(rel.parts) > 1 else rel.stem

    metas, skipped = [], []
    for video in files:
        name = clip_name(video)
        clip_dir = dst / "clips" / name
        if (clip_dir / "meta.json").is_file():
            metas.append(json.loads((clip_dir / "meta.json").read_text()))
            if on_clip:
                on_clip(name, None)
            continue
        try:
            metas.append(preprocess_video(video, clip_dir, size, identity_of(video), detector, landmarks))
            error = None
        except ClipError as exc:
            error = str(exc)
            skipped.append({"video": str(video), "reason": error})
        except BaseException:
            shutil.rmtree(clip_dir, ignore_errors=True)  # a failed or interrupted clip leaves no folder
            raise
        if on_clip:
            on_clip(name, error)
    identities = sorted({m["identity"] for m in metas})
    clips = [
        {k: m[k] for k in ("name", "identity", "frames", "emotion")}
        | {"split": split_of(m["identity"], identities, val_fraction)}
        for m in metas
    ]
    manifest = {"version": 1, "size": size, "fps": FPS, "sample_rate": SAMPLE_RATE, "clips": clips, "skipped": skipped}
    atomic_write(dst / MANIFEST, lambda p: p.write_text(json.dumps(manifest, indent=2)))
    return manifest
