"""The render path of a scene: a group photo, a voice per face, one video of everyone talking.

`render_scene` composes the engine's steps for several faces at once. Each face is cut from the
photo and encoded once; each face hears its own voice (its own recording, or its turns of a mixed
recording) and silence otherwise, and its mouth is closed while it listens (a timeline planned by
floatalk.editing, eased at the turns' edges: silence alone leaves the bundled model's mouth
moving). The audio and emotion encoders run once per track, faces nobody names share one track
of silence. Motion is sampled window by window for every face in step; the decoder renders all
faces of a frame in one batch; each frame's squares are blended into the photo at once
(`floatalk.io.composite.SceneComposite`) and written as they come, so memory does not grow with
the scene's length. The video has the photo's size (at most `MAX_SCENE_SIDE` on its longer side,
even sides) and the mix of the voices (or the mixed recording) as its sound.

Letters: F animated faces, T model frames, N samples, S model image size, D latent size.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from floatalk.errors import UserInputError
from floatalk.options import GenerateOptions
from floatalk.progress import Progress, no_progress
from floatalk.render.report import SceneFaceReport, SceneReport
from floatalk.render.scene_cast import CastFace, PreparedScene, prepare_scene
from floatalk.render.writer import check_fps, frame_picks, write_video
from floatalk.scene import Speaker, listening_timeline
from floatalk.timeline import Timeline
from floatalk.units import MAX_SCENE_SIDE

if TYPE_CHECKING:
    import torch

    from floatalk.engine import AudioInput, Conditions, FloatEngine, ImageInput, SourceImage

__all__ = ["MAX_SCENE_SIDE", "PreparedScene", "prepare_scene", "render_scene"]


def _face_options(opts: GenerateOptions, face: CastFace, index: int, seconds: float) -> GenerateOptions:
    """Face `index`'s options: the scene's, its speaker's own on top, a seed of its own (the
    scene's seed + index unless the speaker set one) and the timeline that closes its mouth while
    it listens (merged with the scene's timeline)."""
    values = dict(face.options)
    values.setdefault("seed", min(opts.seed + index, 2**32 - 1))
    if not face.speaking and opts.forced_emotion is None:
        values.setdefault("emotion", "neutral")  # a face that only listens has no speech to read an emotion from
    base = opts.timeline if isinstance(opts.timeline, Timeline) else None
    values["timeline"] = listening_timeline(face.speaking, seconds, base)
    return opts.replace(**values).validate()


def _prepare(pipe: FloatEngine, photo: np.ndarray, face: CastFace, opts: GenerateOptions) -> SourceImage:
    """Cut face's square (crop_scale x its box) from the photo and encode it."""
    from floatalk.engine import PreparedImage
    from floatalk.io.face import crop_image, face_crop_box

    box = face_crop_box(face.box, opts.crop_scale)
    return pipe.encode_image(PreparedImage(crop_image(photo, box, pipe.image_size), box, photo, face.box))


def _conditions(pipe: FloatEngine, source: SourceImage, wave: np.ndarray, opts: GenerateOptions) -> Conditions:
    """What the sampler is conditioned on for one face, its motion controls planned by editing."""
    from floatalk.editing import plan_conditions
    from floatalk.engine import Conditions

    if not opts.edits_motion:
        return Conditions(source, wave, pipe.encode_emotion(wave, opts.forced_emotion))
    return plan_conditions(pipe, source, wave, opts)


def _scene_frames(
    pipe: FloatEngine,
    sources: list[SourceImage],
    conditions: list[Conditions],
    options: list[GenerateOptions],
    T: int,
    batch_size: int,
    generator: torch.Generator | None,
    report: Progress,
) -> Iterator[np.ndarray]:
    """Every face's motion sampled window by window in step, each window decoded for all faces
    together: yields (n, F, S, S, 3) uint8 batches in frame order."""
    import torch

    from floatalk.engine import sample_motion

    silent = [i for i, c in enumerate(conditions) if not np.any(c.wave)]
    shared = iter(itertools.tee(pipe.iter_audio_features(conditions[silent[0]].wave), len(silent))) if silent else None
    streams = []
    for i, (cond, opts) in enumerate(zip(conditions, options)):
        features = next(shared) if shared is not None and i in silent else pipe.iter_audio_features(cond.wave)
        noise = torch.Generator().manual_seed(int(opts.seed)) if generator is None else generator
        streams.append(sample_motion(pipe.model.fmt, features, T, cond, opts, pipe.dtype, noise))
    done = 0
    report("motion", 0, T)
    for windows in zip(*streams):
        motion = torch.cat([shown.float() for _, shown in windows])  # (F, n, D)
        for frames in pipe.decode_faces(sources, motion, batch_size):
            done += len(frames)
            report("frames", done, T)
            yield frames


def _face_reports(cast: Any, face_opts: list[GenerateOptions]) -> tuple[SceneFaceReport, ...]:
    """What each face of the cast did; `face_opts` are the moving faces' options, in cast order."""
    emotions = iter(fo.emotion or "auto" for fo in face_opts)
    return tuple(
        SceneFaceReport(
            label=f.label,
            box=f.box,
            role=f.role,
            voice=f.voice,
            speaking=sum(b - a for a, b in f.speaking),
            emotion="none" if f.role == "still" else next(emotions),
        )
        for f in cast.faces
    )


def _check_generator(generator: Any) -> None:
    import torch

    if generator is not None and (not isinstance(generator, torch.Generator) or generator.device.type != "cpu"):
        raise UserInputError(f"generator must be a CPU torch.Generator, got {generator!r}.")


def render_scene(
    pipe: FloatEngine,
    image: ImageInput | PreparedScene,
    out: str | os.PathLike,
    speakers: Sequence[Speaker] = (),
    options: GenerateOptions | None = None,
    *,
    audio: AudioInput | None = None,
    turns: Any = None,
    others: str = "still",
    fps: int | None = None,
    max_side: int = MAX_SCENE_SIDE,
    generator: torch.Generator | None = None,
    progress: Progress | None = None,
    metadata: dict[str, str] | None = None,
    **overrides: Any,
) -> SceneReport:
    """Animate every face of a group photo with its own voice and write an H.264 + AAC video.

    image: a path or an (H, W, 3) uint8 RGB array. speakers: `floatalk.scene.Speaker`s, each a
    face (number from the left, or a FaceBox), its own recording (a path, or a (N,) float array
    at 16 kHz) and its own settings (emotion, head_motion, mouth_scale, ...). audio, turns: one
    mixed recording and who speaks when (a `Turns`, its list, or a JSON / YAML file); the
    speakers then carry no recording (they only set options), and each face hears its turns of
    the mix. With separate recordings, turns (optional) say who speaks when instead of each
    recording's level. others: what faces nobody names do: 'still' (the photo's pixels) or 'idle'
    (they move as listeners do, mouth closed). options, **overrides: the scene's GenerateOptions
    (a speaker's own settings go on top; each face gets seed + its index unless its speaker sets
    one). fps: output frame rate (default the model's). max_side: the video's longest side; a
    bigger photo is scaled down. generator: a CPU torch.Generator drawing every face's noise in
    turn, instead of the seeds. progress: progress(stage, done, total) in model frames.
    metadata: container tags. `image` may also be a `PreparedScene` (`prepare_scene`: every input
    checked, faces found and recordings read before a model is loaded), which holds the speakers,
    recordings, turns, options and what the other faces do.

    Nothing appears at `out` unless the whole video was written. Raises UserInputError (one
    sentence) for unusable inputs, before any model runs.
    """
    from floatalk.io.composite import SceneComposite
    from floatalk.io.face import face_crop_box
    from floatalk.io.video import check_output_path
    from floatalk.models.audio_encoder import frame_count

    started = time.perf_counter()
    _check_generator(generator)
    given = bool(speakers) or audio is not None or turns is not None or options is not None or others != "still"
    if isinstance(image, PreparedScene):
        if given or overrides:
            raise UserInputError("A prepared scene already holds its speakers, recordings, turns and options.")
        scene = image
    else:
        scene = prepare_scene(
            image, speakers, options, audio=audio, turns=turns, others=others, sample_rate=pipe.sample_rate, **overrides
        )
    if scene.cast.sample_rate != pipe.sample_rate:
        raise ValueError(f"the scene was prepared at {scene.cast.sample_rate} Hz, the model runs at {pipe.sample_rate}")
    out_fps = check_fps(pipe.fps if fps is None else fps)
    out = check_output_path(out)
    report = progress or no_progress
    opts, cast, photo = scene.options, scene.cast, scene.photo
    T = frame_count(cast.samples, pipe.sample_rate, pipe.fps)
    moving = [face for face in cast.faces if face.role != "still"]
    still = [face for face in cast.faces if face.role == "still"]
    silence = np.zeros(cast.samples, np.float32)
    face_opts, sources, conditions = [], [], []
    for i, face in enumerate(moving):
        fo = _face_options(opts, face, i, cast.seconds)
        source = _prepare(pipe, photo, face, fo)
        face_opts.append(fo)
        sources.append(source)
        conditions.append(_conditions(pipe, source, silence if face.track is None else face.track, fo))
    report("emotion", 1, 1)
    composite = SceneComposite(
        photo,
        [face_crop_box(f.box, fo.crop_scale) for f, fo in zip(moving, face_opts)],
        [f.box for f in moving],
        pipe.image_size,
        kept_clear=[f.box for f in still],
        max_side=max_side,
    )
    picks = frame_picks(T, pipe.fps, out_fps, cast.samples, pipe.sample_rate)
    batches = _scene_frames(pipe, sources, conditions, face_opts, T, opts.batch_size, generator, report)
    written = write_video(out, batches, picks, out_fps, cast.soundtrack, cast.sound_rate, composite, metadata)
    height, width = composite.size
    return SceneReport(
        out=out,
        frames=written,
        fps=out_fps,
        width=width,
        height=height,
        seconds=cast.seconds,
        elapsed=time.perf_counter() - started,
        photo_size=(photo.shape[1], photo.shape[0]),
        faces=_face_reports(cast, face_opts),
        found=cast.found,
        detector=cast.detector,
    )
