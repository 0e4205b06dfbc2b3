"""FloatPipeline: one photo + one speech recording -> motion latents and video frames.

The engine's steps (floatalk.engine: encode the photo, encode audio and emotion, sample motion
windows, decode frames) composed into one call, with the options checked once where they enter
(`FloatPipeline.options`) and the motion controls planned by floatalk.editing.

Letters: T frames, N samples, S image size, D latent size.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor

from floatalk.config import EMOTIONS
from floatalk.editing.controls import EffectEditor
from floatalk.editing.plan import plan_conditions
from floatalk.engine import (
    AudioInput,
    Conditions,
    FloatEngine,
    FloatOutput,
    ImageInput,
    LongAudio,
    NormalizedWave,
    PreparedImage,
    SourceImage,
    normalize_audio,
    prepare_image,
    reuse_freed_memory,
)
from floatalk.errors import UserInputError
from floatalk.live import DEFAULT_CHUNK_MS, DEFAULT_LOOKAHEAD_MS, LiveSession
from floatalk.options import GenerateOptions
from floatalk.progress import Progress, no_progress

__all__ = [
    "EMOTIONS",
    "AudioInput",
    "Conditions",
    "FloatOutput",
    "FloatPipeline",
    "ImageInput",
    "LongAudio",
    "NormalizedWave",
    "PreparedImage",
    "SourceImage",
    "normalize_audio",
    "prepare_image",
    "reuse_freed_memory",
]


class FloatPipeline(FloatEngine):
    """The FLOAT engine composed into one call, with options and motion controls.

    >>> pipe = FloatPipeline.from_pretrained("checkpoints/float")      # release or floatalk folder
    >>> out = pipe(image="photo.jpg", audio="speech.wav", emotion="happy")
    >>> out.frames.shape   # (T, 512, 512, 3)
    """

    # ------------------------------------------------------------------------------------ calls
    def options(self, options: GenerateOptions | None = None, **overrides: Any) -> GenerateOptions:
        """`options` (default GenerateOptions()) with `overrides` applied, checked once
        (UserInputError): options already checked where they entered (the CLI, a job) are trusted.

        A timeline given as a file or a dict is parsed here, once, and kept as a Timeline."""
        opts = options if options is not None else GenerateOptions()
        if not isinstance(opts, GenerateOptions):
            raise UserInputError(f"options must be a GenerateOptions, got {type(opts).__name__}.")
        if overrides:
            opts = opts.replace(**overrides)
        return opts.validate()

    def _begin(
        self,
        image: ImageInput | PreparedImage,
        audio: AudioInput,
        options: GenerateOptions | None,
        generator: torch.Generator | None,
        report: Progress,
        overrides: dict[str, Any],
    ) -> tuple[GenerateOptions, Conditions]:
        """Options resolved and checked, and the conditions prepared: what `stream` and `__call__` share."""
        opts = self.options(options, **overrides)
        self.check_inputs(image, audio, generator)
        conditions = self.prepare(image, audio, opts)
        report("emotion", 1, 1)
        return opts, conditions

    def check_inputs(self, image: Any, audio: Any, generator: torch.Generator | None = None) -> None:
        """Reject what the pipeline cannot use before any work, in one sentence (UserInputError).

        Files are checked when read (missing, empty, undecodable), options by `options`; here:
        the kinds of `image` and `audio` and the generator (a CPU one: noise is drawn on the CPU).
        """
        if not isinstance(image, (str, os.PathLike, np.ndarray, PreparedImage)):
            raise UserInputError(f"image must be a path or an (H, W, 3) uint8 array, got {type(image).__name__}.")
        if not isinstance(audio, (str, os.PathLike, np.ndarray)):
            raise UserInputError(f"audio must be a path or a 1-D float array at 16 kHz, got {type(audio).__name__}.")
        if generator is not None:
            if not isinstance(generator, torch.Generator):
                raise UserInputError(f"generator must be a torch.Generator, got {type(generator).__name__}.")
            if generator.device.type != "cpu":
                raise UserInputError(
                    f"generator must be a CPU torch.Generator (noise is drawn on the CPU), not one on "
                    f"{generator.device}."
                )

    def prepare(self, image: ImageInput | PreparedImage, audio: AudioInput, options: GenerateOptions) -> Conditions:
        """Everything the sampler is conditioned on: the encoded photo, the waveform, the emotion
        (per frame with a timeline) and the motion edit the options ask for (floatalk.editing)."""
        source = self.encode_image(image, **options.image_settings())
        wave = self.load_audio(audio)
        if not options.edits_motion:
            return Conditions(source, wave, self.encode_emotion(wave, options.forced_emotion))
        return plan_conditions(self, source, wave, options)

    def stream(
        self,
        image: ImageInput | PreparedImage,
        audio: AudioInput,
        options: GenerateOptions | None = None,
        *,
        generator: torch.Generator | None = None,
        progress: Progress | None = None,
        frames_per_step: int | None = None,
        **overrides: Any,
    ) -> Iterator[tuple[Tensor, np.ndarray]]:
        """Generate piece by piece: yields (motion (n, D) float32, frames (n, S, S, 3) uint8), in
        order, each as soon as its frames are decoded. Arguments as in `__call__`.

        frames_per_step: None (default) hands on each decoder batch as it is done (at most
        `batch_size` frames; the clip's first two frames come alone, after one window of motion);
        N gives pieces of exactly N frames (the last may be shorter), each handed on as soon as
        its last frame is decoded; 50, the motion window, gives a piece per window. The frames are
        the same whatever the granularity."""
        if frames_per_step is not None and (
            isinstance(frames_per_step, bool) or not isinstance(frames_per_step, int) or frames_per_step < 1
        ):
            raise UserInputError(
                f"frames_per_step must be a whole number of at least 1, or None (got {frames_per_step!r})."
            )
        report = progress or no_progress
        opts, conditions = self._begin(image, audio, options, generator, report, overrides)
        pieces = self.iter_frames(conditions, opts, generator, report)
        yield from pieces if frames_per_step is None else regroup(pieces, frames_per_step)

    def __call__(
        self,
        image: ImageInput | PreparedImage,
        audio: AudioInput,
        options: GenerateOptions | None = None,
        *,
        generator: torch.Generator | None = None,
        progress: Progress | None = None,
        **overrides: Any,
    ) -> FloatOutput:
        """Animate `image` with `audio`.

        image: a path (any Pillow format) or an (H, W, 3) uint8 RGB array. audio: a path (any
        PyAV format, resampled to 16 kHz mono) or a 1-D float array already at 16 kHz.
        options: a GenerateOptions (emotion, a_cfg_scale, e_cfg_scale, nfe, method, seed, crop,
        batch_size); any of its fields may also be given as a keyword (`emotion="happy"`), which
        overrides `options`. generator: a CPU torch.Generator for the initial noise instead of
        one seeded with `seed`. progress: progress(stage, done, total), see floatalk.progress.
        Raises UserInputError (one sentence) for unusable inputs.
        """
        report = progress or no_progress
        opts, conditions = self._begin(image, audio, options, generator, report, overrides)
        motions, frames = [], []
        for m, f in self.iter_frames(conditions, opts, generator, report):
            motions.append(m)
            frames.append(f)
        return FloatOutput(
            motion=torch.cat(motions),
            frames=np.concatenate(frames),
            emotion=conditions.emotion[0].float().mean(0).cpu(),
            audio=conditions.wave,
            fps=self.fps,
        )

    def live(
        self,
        image: ImageInput | PreparedImage,
        options: GenerateOptions | None = None,
        *,
        chunk_ms: float = DEFAULT_CHUNK_MS,
        lookahead_ms: float | None = DEFAULT_LOOKAHEAD_MS,
        generator: torch.Generator | None = None,
        **overrides: Any,
    ) -> LiveSession:
        """Open a live session on `image` (floatalk.live): push audio as it arrives, get frames.

        options / overrides as in `__call__` (a timeline or a pose video cannot be used live).
        chunk_ms: audio per step, 1 to 2000 (rounded to whole frames, at least one); lookahead_ms:
        audio heard past a frame before it is made, 0 to 2000, or None to make every frame at
        `close` (the offline result). The photo is encoded and its motion atlas measured (or read
        from the cache) here, before any audio."""
        opts = self.options(options, **overrides)
        self.check_inputs(image, np.zeros(1, np.float32), generator)
        if opts.timeline is not None or opts.pose_video is not None:
            raise UserInputError("a live session takes no timeline or pose video; change its controls with update().")
        if opts.precision not in (None, self.loaded_precision):
            raise UserInputError(
                f"a live session runs in the precision the model was loaded in ({self.loaded_precision}), "
                f"not {opts.precision}."
            )
        if not (isinstance(chunk_ms, (int, float)) and 1 <= chunk_ms <= 2000):
            raise UserInputError(f"chunk_ms must be a number from 1 to 2000 (got {chunk_ms!r}).")
        if lookahead_ms is not None and not (isinstance(lookahead_ms, (int, float)) and 0 <= lookahead_ms <= 2000):
            raise UserInputError(f"lookahead_ms must be a number from 0 to 2000, or None (got {lookahead_ms!r}).")
        source = self.encode_image(image, **opts.image_settings())
        editor = EffectEditor.for_portrait(self, source)
        return LiveSession(self, source, opts, chunk_ms, lookahead_ms, generator, editor)


def regroup(pieces: Iterator[tuple[Tensor, np.ndarray]], size: int) -> Iterator[tuple[Tensor, np.ndarray]]:
    """(motion (n, D), frames (n, S, S, 3)) pieces of any lengths -> pieces of exactly `size` frames
    (the last may be shorter), each yielded as soon as its last frame has arrived."""
    motions: list[Tensor] = []
    frames: list[np.ndarray] = []
    held = 0
    for motion, part in pieces:
        motions.append(motion)
        frames.append(part)
        held += len(part)
        if held < size:
            continue
        motion_all, frames_all = torch.cat(motions), np.concatenate(frames)
        cut = held - held % size
        for start in range(0, cut, size):
            yield motion_all[start : start + size], frames_all[start : start + size]
        motions, frames = [motion_all[cut:]], [frames_all[cut:]]
        held -= cut
    if held:
        yield torch.cat(motions), np.concatenate(frames)
