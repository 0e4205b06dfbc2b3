"""`evaluate`: score generated talking-head videos against reference videos and/or their speech.

Inputs: GENERATED, a video file or a folder of them; REFERENCE (optional), likewise, matched to
the generated videos by file name without extension; AUDIO (optional), a speech file or a folder
matched the same way. Each generated video's speech is AUDIO when given, else its own soundtrack,
else its reference's soundtrack.

Rules: frames are compared one to one from the start over the shorter of the two videos (the
report says how many, `frames_compared`); a reference of another frame size is resized to the
generated video's size (area averaging / bicubic) for PSNR and SSIM; both videos must have the
same frame rate. Problems with one video (no face, no soundtrack, no reference of that name,
unreadable) are one sentence in the report's "errors" and leave the other videos scored.

Metrics (`METRICS`; each gives the named numbers):

* needing no downloaded weights: `lipsync` (sync_r, sync_r_best, sync_offset, sync_confidence:
  the landmark meter, `face_track.score_lipsync_mesh`), `lmd` (lmd_mouth, lmd_face), `csim`
  (dlib embeddings, `identity`), `head_motion` (yaw_std, pitch_std, roll_std, motion_energy),
  `blink` (blinks_per_min), `psnr`, `ssim`;
* needing weight files in WEIGHTS (`weights.WEIGHT_FILES`): `fid` (set level), `fvd` (set
  level), `lse` (lse_c, lse_d, lse_offset), `csim_arcface`.

Numbers are rounded to 6 decimals; an infinite one (PSNR of identical frames) is null. Per-video
metrics are averaged over the videos that have them; FID and FVD are computed once over
all generated against all reference frames / clips.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from floatalk.errors import UserInputError
from floatalk.progress import Progress, no_progress
from floatalk.units import FPS, SAMPLE_RATE

__all__ = ["METRICS", "OFFLINE_METRICS", "WEIGHT_METRICS", "evaluate", "find_inputs"]

OFFLINE_METRICS = ("lipsync", "lmd", "csim", "head_motion", "blink", "psnr", "ssim")
WEIGHT_METRICS = ("fid", "fvd", "lse", "csim_arcface")
METRICS = OFFLINE_METRICS + WEIGHT_METRICS
NEEDS_REFERENCE = ("lmd", "csim", "psnr", "ssim", "fid", "fvd", "csim_arcface")
NEEDS_AUDIO = ("lipsync", "lse")
VIDEO_EXTS = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v")
AUDIO_EXTS = (".wav", ".mp3", ".m4a", ".aac", ".flac", ".ogg", ".opus") + VIDEO_EXTS
CSIM_FRAMES = 8  # frames of each generated video whose identity is compared with the reference's first frame
FID_FRAMES = 50  # frames per video (evenly spaced) that FID uses
FVD_CLIPS = 4  # 16-frame clips per video (spread over it) that FVD uses


def _listing(path: Path, exts: tuple[str, ...], what: str) -> dict[str, Path]:
    if path.is_file():
        return {path.stem: path}
    if not path.is_dir():
        raise UserInputError(f"The {what} '{path}' does not exist.")
    files = {p.stem: p for p in sorted(path.iterdir()) if p.is_file() and p.suffix.lower() in exts}
    if not files:
        raise UserInputError(f"The {what} folder '{path}' holds no files ending in {', '.join(exts)}.")
    return files


def find_inputs(
    generated: str | os.PathLike, reference: str | os.PathLike | None = None, audio: str | os.PathLike | None = None
) -> tuple[dict[str, Path], dict[str, Path], dict[str, Path]]:
    """{name: path} of the generated videos, the references and the speech files (see the module docstring)."""
    gen = _listing(Path(generated), VIDEO_EXTS, "generated video")
    ref = _listing(Path(reference), VIDEO_EXTS, "reference video") if reference is not None else {}
    if reference is not None and Path(reference).is_file() and len(gen) == 1:
        ref = {next(iter(gen)): Path(reference)}
    sound = _listing(Path(audio), AUDIO_EXTS, "audio") if audio is not None else {}
    if audio is not None and Path(audio).is_file():
        sound = dict.fromkeys(gen, Path(audio))
    return gen, ref, sound


@dataclass
class _Video:
    """One decoded video with its face track (made on first use)."""

    path: Path
    frames: np.ndarray
    fps: float
    has_audio: bool
    _track: Any = None

    @property
    def track(self):
        from floatalk.evaluation.face_track import track_faces

        if self._track is None:
            self._track = track_faces(self.frames)
            if not self._track.found.any():
                raise UserInputError(f"No face was found in any frame of '{self.path}'.")
        return self._track


def _read(path: Path) -> _Video:
    from floatalk.io.video import probe_video, read_video_frames

    info = probe_video(path)
    frames = read_video_frames(path)
    fps = float(info["fps"]) if info.get("fps") else float(FPS)
    return _Video(path, frames, fps, info.get("audio_codec") is not None)


def _resize_to(frames: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    import cv2

    if frames.shape[1:3] == shape:
        return frames
    h, w = shape
    flag = cv2.INTER_AREA if frames.shape[1] > h else cv2.INTER_CUBIC
    return np.stack([cv2.resize(f, (w, h), interpolation=flag) for f in frames])


@dataclass
class _Learned:
    """Networks loaded from the weights folder, once."""

    weights: str | None
    nets: dict[str, Any] = field(default_factory=dict)

    def get(self, metric: str):
        if metric not in self.nets:
            from floatalk.evaluation import arcface, fid, fvd, syncnet
            from floatalk.evaluation.weights import load_metric_weights

            nets = {"fid": fid.FIDInception, "fvd": fvd.I3D, "lse": syncnet.SyncNet, "csim_arcface": arcface.IResNet}
            net = nets[metric]()
            load_metric_weights(net, metric, self.weights)
            self.nets[metric] = net.eval()
        return self.nets[metric]


def _speech(name: str, gen: _Video, ref: _Video | None, sound: dict[str, Path]) -> np.ndarray:
    from floatalk.io.audio import load_audio

    if name in sound:
        return load_audio(sound[name], sample_rate=SAMPLE_RATE)
    if gen.has_audio:
        return load_audio(gen.path, sample_rate=SAMPLE_RATE)
    if ref is not None and ref.has_audio:
        return load_audio(ref.path, sample_rate=SAMPLE_RATE)
    raise UserInputError(f"'{gen.path.name}' has no soundtrack and no speech was given for it (--audio).")


def _video_metrics(
    name: str,
    gen: _Video,
    ref: _Video | None,
    sound: dict[str, Path],
    metrics: list[str],
    learned: _Learned,
    csim_frames: int = CSIM_FRAMES,
) -> dict[str, float]:
    """The per-video numbers of `metrics` for one generated video."""
    row: dict[str, float] = {"frames": len(gen.frames)}
    if ref is not None:
        row["frames_compared"] = _frames_compared(gen, ref)
    wave = _speech(name, gen, ref, sound) if any(m in metrics for m in NEEDS_AUDIO) else None
    if "lipsync" in metrics:
        row |= _lipsync(gen, wave)
    row |= _face_motion(gen, metrics)
    if ref is not None:
        row |= _against_reference(gen, ref, int(row["frames_compared"]), metrics, learned, csim_frames)
    if "lse" in metrics:
        row |= _lse(gen, wave, learned)
    return row


def _frames_compared(gen: _Video, ref: _Video) -> int:
    """Frames compared one to one from the start; UserInputError if the frame rates differ."""
    if abs(ref.fps - gen.fps) > 0.01:
        raise UserInputError(f"'{gen.path.name}' is at {gen.fps:g} fps but its reference at {ref.fps:g} fps.")
    return min(len(gen.frames), len(ref.frames))


def _spread(n_frames: int, count: int) -> np.ndarray:
    """Up to `count` frame indices spread evenly over n_frames, first and last included."""
    return np.unique(np.linspace(0, n_frames - 1, min(count, n_frames)).round().astype(int))


def _lipsync(gen: _Video, wave: np.ndarray) -> dict[str, float]:
    """The landmark meter's numbers for the video against its speech."""
    from floatalk.evaluation.face_track import score_lipsync_mesh

    sync = score_lipsync_mesh(gen.track, wave, fps=gen.fps)
    return {
        "sync_r": sync["correlation"],
        "sync_r_best": sync["correlation_best"],
        "sync_offset": sync["best_offset"],
        "sync_confidence": sync["confidence"],
    }


def _face_motion(gen: _Video, metrics: list[str]) -> dict[str, float]:
    """Head motion and blink rate of the generated face alone."""
    from floatalk.evaluation import face_track as ft

    row: dict[str, float] = {}
    if "head_motion" in metrics:
        row |= ft.head_motion(gen.track.filled(), gen.fps)
    if "blink" in metrics:
        blinks = ft.count_blinks(ft.eye_openness(gen.track.filled()), gen.fps)
        row["blinks_per_min"] = blinks * 60.0 * gen.fps / len(gen.frames)
    return row


def _against_reference(
    gen: _Video, ref: _Video, n: int, metrics: list[str], learned: _Learned, csim_frames: int
) -> dict[str, float]:
    """The numbers of `metrics` that compare the first n frames with the reference's."""
    from floatalk.evaluation.face_track import landmark_distance

    row: dict[str, float] = {}
    if "lmd" in metrics:
        ours, theirs = gen.track.filled()[:n], ref.track.filled()[:n]
        row |= landmark_distance(ours, gen.frames.shape[1:3], theirs, ref.frames.shape[1:3])
    if "psnr" in metrics or "ssim" in metrics:
        row |= _pixel_quality(gen.frames[:n], _resize_to(ref.frames[:n], gen.frames.shape[1:3]), metrics)
    picks = _spread(n, csim_frames)
    if "csim" in metrics:
        row["csim"] = _csim(gen, ref, picks)
    if "csim_arcface" in metrics:
        row["csim_arcface"] = _csim_arcface(gen, ref, picks, learned.get("csim_arcface"))
    return row


def _pixel_quality(frames: np.ndarray, ref_frames: np.ndarray, metrics: list[str]) -> dict[str, float]:
    """PSNR and/or SSIM of (T, H, W, 3) frames against reference frames of the same size."""
    from floatalk.evaluation.quality import psnr, ssim

    row: dict[str, float] = {}
    if "psnr" in metrics:
        row["psnr"] = psnr(frames, ref_frames)
    if "ssim" in metrics:
        row["ssim"] = ssim(frames, ref_frames)
    return row


def _csim(gen: _Video, ref: _Video, picks: np.ndarray) -> float:
    """Mean dlib-embedding cosine similarity of the picked frames' faces to the reference's first face."""
    from floatalk.evaluation.identity import FaceEmbedder, csim

    embed = FaceEmbedder()
    target = embed.embed(ref.frames[0], _box(ref.track.filled()[0]))
    pts = gen.track.filled()
    return float(np.mean([csim(embed.embed(gen.frames[i], _box(pts[i])), target) for i in picks]))


def _csim_arcface(gen: _Video, ref: _Video, picks: np.ndarray, net) -> float:
    """As `_csim`, with ArcFace embeddings of aligned faces."""
    from floatalk.evaluation.arcface import align_arcface, embed_faces
    from floatalk.evaluation.identity import csim

    pts = gen.track.filled()
    faces = np.stack([align_arcface(gen.frames[i], pts[i]) for i in picks])
    target = embed_faces(net, align_arcface(ref.frames[0], ref.track.filled()[0])[None])[0]
    return float(np.mean([csim(e, target) for e in embed_faces(net, faces)]))


def _lse(gen: _Video, wave: np.ndarray, learned: _Learned) -> dict[str, float]:
    """SyncNet's LSE numbers on mouth crops of face boxes smoothed over 5 frames."""
    import torch
    from scipy.signal import medfilt

    from floatalk.evaluation.syncnet import lse_scores, syncnet_crop

    boxes = np.array([_box(p) for p in gen.track.filled()])
    boxes = np.stack([medfilt(boxes[:, k], 5) for k in range(4)], axis=1) if len(boxes) >= 5 else boxes
    crops = np.stack([syncnet_crop(f, tuple(b)) for f, b in zip(gen.frames, boxes)])
    try:
        with torch.inference_mode():
            return lse_scores(learned.get("lse"), crops, wave)
    except ValueError as exc:
        raise UserInputError(f"'{gen.path.name}': {exc}.") from None


def _box(points: np.ndarray) -> tuple[float, float, float, float]:
    from floatalk.io.mesh import mesh_face_box

    return mesh_face_box(points)


def _fid(learned: _Learned, gens: list[np.ndarray], refs: list[np.ndarray], per_video: int) -> float:
    import torch

    from floatalk.evaluation.fid import feature_statistics, frechet_distance

    net = learned.get("fid")

    def features(videos: list[np.ndarray]) -> np.ndarray:
        out = []
        for frames in videos:
            picks = _spread(len(frames), per_video)
            with torch.inference_mode():
                for start in range(0, len(picks), 16):
                    batch = torch.from_numpy(frames[picks[start : start + 16]]).float().permute(0, 3, 1, 2) / 255.0
                    out.append(net(batch).double().numpy())
        return np.concatenate(out)

    return frechet_distance(*feature_statistics(features(gens)), *feature_statistics(features(refs)))


def _fvd(learned: _Learned, gens: list[np.ndarray], refs: list[np.ndarray], per_video: int) -> float:
    import torch

    from floatalk.evaluation.fid import feature_statistics, frechet_distance
    from floatalk.evaluation.fvd import CLIP_FRAMES, CLIP_SIZE, clip_starts

    net = learned.get("fvd")

    def features(videos: list[np.ndarray]) -> np.ndarray:
        out = []
        for frames in videos:
            for start in clip_starts(len(frames), per_video):
                clip = _resize_to(frames[start : start + CLIP_FRAMES], (CLIP_SIZE, CLIP_SIZE))
                x = torch.from_numpy(clip).float().permute(3, 0, 1, 2)[None] / 127.5 - 1.0  # (1, 3, T, H, W)
                with torch.inference_mode():
                    out.append(net(x).double().numpy())
        if len(out) < 2:
            raise UserInputError(f"FVD needs at least two {CLIP_FRAMES}-frame clips on each side.")
        return np.concatenate(out)

    return frechet_distance(*feature_statistics(features(gens)), *feature_statistics(features(refs)))


def choose_metrics(asked: list[str] | None, reference: bool, weights: str | None) -> list[str]:
    """The metrics to run: those asked for (checked), else every offline metric the inputs allow
    plus every weight metric whose file is in `weights`."""
    from floatalk.evaluation.weights import WEIGHT_FILES

    if asked:
        unknown = [m for m in asked if m not in METRICS]
        if unknown:
            raise UserInputError(f"Unknown metric '{unknown[0]}'; the metrics are: {', '.join(METRICS)}.")
        missing = [m for m in asked if m in NEEDS_REFERENCE and not reference]
        if missing:
            raise UserInputError(f"The metric {missing[0]} compares with reference videos; pass --reference.")
        return list(dict.fromkeys(asked))
    chosen = [m for m in OFFLINE_METRICS if reference or m not in NEEDS_REFERENCE]
    if weights is not None:
        present = [m for m in WEIGHT_METRICS if any((Path(weights) / f).is_file() for f in WEIGHT_FILES[m])]
        chosen += [m for m in present if reference or m not in NEEDS_REFERENCE]
    return chosen


@dataclass
class EvaluationPlan:
    """What `evaluate` will score, every input and weight file checked (`plan_evaluation`)."""

    generated: Path | str
    reference: Path | str | None
    audio: Path | str | None
    weights: str | None
    gen_files: dict[str, Path]  # name -> generated video
    ref_files: dict[str, Path]  # name -> reference video
    sound: dict[str, Path]  # name -> speech file
    chosen: list[str]  # the metrics
    learned: Any  # the learned metrics' networks, loaded


def plan_evaluation(
    generated: str | os.PathLike,
    reference: str | os.PathLike | None = None,
    audio: str | os.PathLike | None = None,
    weights: str | os.PathLike | None = None,
    metrics: list[str] | None = None,
) -> EvaluationPlan:
    """Check every input, choose the metrics and load their weight files: a mistake is one
    sentence (UserInputError) here, before any video is read."""
    weights = None if weights is None else os.fspath(weights)
    if weights is not None and not Path(weights).is_dir():
        raise UserInputError(f"The weights folder '{weights}' does not exist.")
    gen_files, ref_files, sound = find_inputs(generated, reference, audio)
    chosen = choose_metrics(metrics, reference is not None, weights)
    learned = _Learned(weights)
    wanted = [metric for metric in chosen if metric in WEIGHT_METRICS]
    if wanted:
        from floatalk.evaluation.weights import weight_file

        for metric in wanted:  # a missing weight file fails first, before torch is imported
            weight_file(metric, weights)
    for metric in wanted:  # a wrong weight file fails now, in one sentence, not after an hour
        learned.get(metric)
    return EvaluationPlan(generated, reference, audio, weights, gen_files, ref_files, sound, chosen, learned)


def evaluate(
    generated: str | os.PathLike | EvaluationPlan,
    reference: str | os.PathLike | None = None,
    audio: str | os.PathLike | None = None,
    weights: str | os.PathLike | None = None,
    metrics: list[str] | None = None,
    progress: Progress = no_progress,
    fid_frames: int = FID_FRAMES,
    fvd_clips: int = FVD_CLIPS,
    csim_frames: int = CSIM_FRAMES,
) -> dict[str, Any]:
    """Score videos (see the module docstring); FID uses `fid_frames` evenly spaced frames of each
    video, FVD up to `fvd_clips` 16-frame clips of each, CSIM `csim_frames` frames of each. Returns the report:
    {"metrics": [...], "videos": {name: {number name: value}}, "mean": {number name: value},
    "errors": {name: sentence}, "inputs": {...}}. Reports progress('videos', i, n). `generated`
    may be a plan of `plan_evaluation` (then reference, audio, weights and metrics are its own)."""
    plan = generated
    if not isinstance(plan, EvaluationPlan):
        plan = plan_evaluation(generated, reference, audio, weights, metrics)
    chosen, learned = plan.chosen, plan.learned
    refs = None if plan.reference is None else plan.ref_files
    scores = _score_videos(plan.gen_files, refs, plan.sound, chosen, learned, csim_frames, progress)
    numbers, set_errors = _set_metrics(learned, chosen, scores, fid_frames, fvd_clips)
    return {
        "metrics": chosen,
        "videos": scores.rows,
        "mean": scores.mean() | numbers,
        "errors": scores.errors | set_errors,
        "inputs": {
            "generated": os.fspath(plan.generated),
            "reference": None if plan.reference is None else os.fspath(plan.reference),
            "audio": None if plan.audio is None else os.fspath(plan.audio),
            "weights": plan.weights,
        },
    }


@dataclass
class _Scores:
    """What the pass over the videos collects: each video's rounded numbers or its error, and the
    frames (cut to the frames compared, the reference resized) that FID and FVD compare as sets."""

    rows: dict[str, dict[str, float | None]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    set_gen: list[np.ndarray] = field(default_factory=list)
    set_ref: list[np.ndarray] = field(default_factory=list)

    def mean(self) -> dict[str, float | None]:
        """Each number's mean over the videos that have it, in the order the numbers first appear."""
        keys = list(dict.fromkeys(k for row in self.rows.values() for k in row))
        return {k: _mean([r[k] for r in self.rows.values() if k in r]) for k in keys}


def _score_videos(
    gen_files: dict[str, Path],
    ref_files: dict[str, Path] | None,
    sound: dict[str, Path],
    metrics: list[str],
    learned: _Learned,
    csim_frames: int,
    progress: Progress,
) -> _Scores:
    """Score each generated video against its reference (none when ref_files is None); a
    UserInputError becomes that video's error and the others are still scored."""
    scores = _Scores()
    keep_frames = ref_files is not None and ("fid" in metrics or "fvd" in metrics)
    progress("videos", 0, len(gen_files))
    for i, (name, path) in enumerate(gen_files.items()):
        try:
            gen = _read(path)
            ref = None if ref_files is None else _read(_reference_path(name, path, ref_files))
            row = _video_metrics(name, gen, ref, sound, metrics, learned, csim_frames)
            scores.rows[name] = {k: _round(v) for k, v in row.items()}
            if keep_frames:
                n = int(row["frames_compared"])
                scores.set_gen.append(gen.frames[:n])
                scores.set_ref.append(_resize_to(ref.frames[:n], gen.frames.shape[1:3]))
        except UserInputError as exc:
            scores.errors[name] = str(exc)
        progress("videos", i + 1, len(gen_files))
    return scores


def _reference_path(name: str, path: Path, ref_files: dict[str, Path]) -> Path:
    if name not in ref_files:
        raise UserInputError(f"No reference video named '{name}' (any extension) for '{path.name}'.")
    return ref_files[name]


def _set_metrics(
    learned: _Learned, metrics: list[str], scores: _Scores, fid_frames: int, fvd_clips: int
) -> tuple[dict[str, float | None], dict[str, str]]:
    """({"fid": .., "fvd": ..}, {metric: error sentence}) over all the kept frames, for those asked."""
    numbers: dict[str, float | None] = {}
    errors: dict[str, str] = {}
    for metric, fn, count in (("fid", _fid, fid_frames), ("fvd", _fvd, fvd_clips)):
        if metric in metrics and scores.set_gen:
            try:
                numbers[metric] = _round(fn(learned, scores.set_gen, scores.set_ref, count))
            except UserInputError as exc:
                errors[metric] = str(exc)
    return numbers, errors


def _round(value: float) -> float | None:
    """Six decimals; None (JSON null) for an infinite or undefined value (PSNR of identical videos)."""
    value = float(value)
    return round(value, 6) if math.isfinite(value) else None


def _mean(values: list[float | None]) -> float | None:
    finite = [v for v in values if v is not None]
    return _round(float(np.mean(finite))) if finite else None
