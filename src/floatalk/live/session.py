"""A live session: a talking portrait that follows audio as it arrives.

Audio is pushed in pieces of any size. A frame is ready once its own 40 ms of audio and
`lookahead_ms` after it have been heard; every `chunk_ms` of ready frames, one step runs the
engine's steps on them: the audio encoder over a rolling context (`AUDIO_CONTEXT` frames before
the window), the emotion (floatalk.live.emotion), one FMT window re-sampled from the last L'
committed latents (floatalk.live.motion) of which only the new frames are committed, the motion
controls (floatalk.live.controls) and the decoder. `close` commits the rest the way the offline
sampler does (whole windows of L frames). With `lookahead_ms=None` nothing is committed before
`close`, so one push and a close give the offline generation.

Letters: n frames, S image size, D latent size, L window, L' previous frames.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import Tensor

from floatalk.editing.controls import EffectEditor
from floatalk.engine import FloatEngine, SourceImage
from floatalk.errors import UserInputError
from floatalk.live.audio import AudioBuffer, check_pcm
from floatalk.live.controls import LiveControls, check_controls
from floatalk.live.emotion import EmotionTracker
from floatalk.live.motion import NoiseBank, context, pad_frames, sample_window, traced_fmt
from floatalk.options import GenerateOptions
from floatalk.sampling.sampler import SamplerSettings

__all__ = ["AUDIO_CONTEXT", "DEFAULT_CHUNK_MS", "DEFAULT_LOOKAHEAD_MS", "LiveOutput", "LiveSession"]

DEFAULT_CHUNK_MS = 120
DEFAULT_LOOKAHEAD_MS = 80
MAX_CHUNK_MS = 2000
MAX_LOOKAHEAD_MS = 2000

AUDIO_CONTEXT = 25
"""Frames of audio before a window's context that the audio encoder sees again at each step
(more than the bundled log-mel encoder's receptive field of 14 frames)."""


@dataclass
class LiveOutput:
    """What a push (or the close) made ready: n frames, in order."""

    frames: np.ndarray  # (n, S, S, 3) uint8 RGB
    index: np.ndarray  # (n,) int64 frame numbers: frame k shows the audio at k / fps s from the first sample
    audio: np.ndarray  # (<= n * sr / fps,) float32: the samples those frames show
    motion: Tensor  # (n, D) float32 latents shown (after the motion controls)
    compute_s: list[float] = field(default_factory=list)  # seconds each step took

    def __len__(self) -> int:
        return len(self.index)


EASE_FRAMES = 2
"""Frames at the start of each step blended toward the previous window's own sample of them."""


class LiveSession:
    """Frames from streamed audio: `push(pcm)`, `update(**controls)`, `close()`.

    >>> session = pipe.live("photo.png", chunk_ms=120, lookahead_ms=80)
    >>> out = session.push(samples)      # LiveOutput: the frames now ready (maybe none)
    >>> session.update(head_motion=0.0)  # from the next frames on
    >>> rest = session.close()
    """

    def __init__(
        self,
        engine: FloatEngine,
        source: SourceImage,
        options: GenerateOptions,
        chunk_ms: float = DEFAULT_CHUNK_MS,
        lookahead_ms: float | None = DEFAULT_LOOKAHEAD_MS,
        generator: torch.Generator | None = None,
        editor: EffectEditor | None = None,
    ) -> None:
        """engine: the loaded model; source: the encoded photo; options: checked (no timeline or
        pose video). chunk_ms: audio per step (rounded to whole frames, at least one);
        lookahead_ms: audio heard past a frame before it is made (None: wait for `close`).
        generator: CPU generator of the noise (default: seeded with options.seed); editor: the
        portrait's, for motion controls (None: controls other than emotion guidance do nothing)."""
        self.engine, self.source, self.options = engine, source, options
        self.fps, self.sr = engine.fps, engine.sample_rate
        self.spf = self.sr // self.fps  # samples per frame
        self.step_frames = max(1, round(chunk_ms * self.fps / 1000))
        self.lookahead = None if lookahead_ms is None else round(lookahead_ms * self.sr / 1000)
        fmt_cfg = engine.cfg.fmt
        self.L, self.Lp, self.dim = fmt_cfg.window, fmt_cfg.prev, fmt_cfg.dim_x
        self.margin = fmt_cfg.depth * fmt_cfg.attention_band  # frames past the committed ones a window holds
        gen = generator if generator is not None else torch.Generator().manual_seed(int(options.seed))
        self.noise = NoiseBank(gen, self.L, self.dim)
        self.buffer = AudioBuffer()
        self.emotion = EmotionTracker(engine, options.forced_emotion)
        self.controls = LiveControls(options, editor)
        self.committed = 0  # frames made so far
        self.latents: Tensor | None = None  # (1, <= L', D) the last committed latents, as shown
        self.ahead: Tensor | None = None  # (1, m, D) the last window's frames past those it committed, heard
        self.closed = False
        # live steps run the FMT traced (`TracedFMT`) where that pays: float32 on a CPU; the
        # windows of `close` run it as offline generation does
        self.eager = torch.device(engine.device).type != "cpu" or engine.dtype != torch.float32
        if self.lookahead is not None:
            self.warm_up()

    @property
    def chunk_ms(self) -> float:
        return self.step_frames * 1000 / self.fps

    @property
    def lookahead_ms(self) -> float | None:
        return None if self.lookahead is None else self.lookahead * 1000 / self.sr

    @property
    def algorithmic_latency_ms(self) -> float | None:
        """Lookahead + chunk: how long the audio of a frame waits, at most, before its step runs."""
        return None if self.lookahead is None else self.lookahead_ms + self.chunk_ms

    def push(self, pcm: np.ndarray) -> LiveOutput:
        """Add (N,) float32 16 kHz mono samples (any N); returns the frames now ready."""
        if self.closed:
            raise UserInputError("this live session is closed; open a new one to stream more audio.")
        self.buffer.append(check_pcm(pcm))
        if self.lookahead is None:
            return self._advance(0, final=False)
        ready = max(0, (self.buffer.heard - self.lookahead) // self.spf)
        due = self.committed + ((ready - self.committed) // self.step_frames) * self.step_frames
        return self._advance(due, final=False)

    def close(self) -> LiveOutput:
        """The frames of the rest of the audio heard (its last partial frame included); ends the session."""
        if self.closed:
            raise UserInputError("this live session is already closed.")
        self.closed = True
        return self._advance(math.ceil(self.buffer.heard / self.spf), final=True)

    def update(self, **controls: Any) -> None:
        """Change live controls from the next step on: emotion ('auto' or a name), e_cfg_scale,
        head_motion, mouth_scale, expression_scale, blink. A bad name or value is a one-sentence
        UserInputError and changes nothing."""
        if self.closed:
            raise UserInputError("this live session is closed; controls can no longer change.")
        checked = check_controls(controls)
        if "emotion" in checked:
            self.emotion.set(checked["emotion"])
        self.controls.set(checked)

    def warm_up(self) -> None:
        """Run a live step's shapes once before any audio (the FMT's trace for the steady window,
        the decoder's first call), so that the first frames do not wait for them; it changes no
        state of the session (`floatalk.live.threads` times it)."""
        engine, cfg, dtype = self.engine, self.engine.cfg.fmt, self.engine.dtype
        n = min(self.L, self.step_frames + self.margin)
        fmt = engine.model.fmt if self.eager else traced_fmt(engine.model.fmt)
        zeros = partial(torch.zeros, device=engine.device, dtype=dtype)
        settings = SamplerSettings(
            a_cfg_scale=self.options.a_cfg_scale, e_cfg_scale=self.controls.e_cfg_scale, nfe=2, method="euler"
        )
        we = zeros(1, 1, cfg.dim_e)
        sample_window(
            fmt,
            zeros(1, n, self.dim),
            zeros(1, n, cfg.dim_a),
            self.source.r_s.to(dtype),
            we,
            zeros(1, self.Lp, self.dim),
            zeros(1, self.Lp, cfg.dim_a),
            settings,
        )
        for _ in engine.decode(self.source, zeros(1, self.step_frames, self.dim), self.options.batch_size):
            pass

    # ------------------------------------------------------------------------------- stepping
    def _advance(self, target: int, final: bool) -> LiveOutput:
        """Commit frames up to `target`: steps of `step_frames` (or whole windows when final)."""
        outputs: list[LiveOutput] = []
        features: tuple[int, Tensor] | None = None
        while self.committed < target:
            start = time.perf_counter()
            n = min(self.L if final else self.step_frames, target - self.committed)
            if features is None:  # one encoder pass serves all the steps of this call
                features = self._features(final)
            outputs.append(self._step(n, final, features))
            outputs[-1].compute_s.append(time.perf_counter() - start)
        self._trim()
        return self.join(outputs)

    def _features(self, final: bool) -> tuple[int, Tensor]:
        """(first frame, wa (1, m, Da)): audio features from AUDIO_CONTEXT frames before the
        next window's context to the last sample heard (replicate-padded to a whole frame)."""
        first = max(0, self.committed - self.Lp - AUDIO_CONTEXT)
        wave = self.buffer.range(first * self.spf, self.buffer.heard)
        return first, self.engine.encode_audio(wave)

    def _step(self, n: int, final: bool, features: tuple[int, Tensor]) -> LiveOutput:
        """Sample one window at the first uncommitted frame C and commit its first n frames."""
        engine, C, dtype = self.engine, self.committed, self.engine.dtype
        first, wa_all = features
        n_window = self.L if final else min(self.L, n + self.margin)
        wa = pad_frames(wa_all[:, C - first :], n_window).to(dtype)  # (1, n_window, Da)
        prev_wa = context(wa_all[:, max(0, C - self.Lp - first) : C - first], self.Lp, wa.shape[2], wa)
        prev_x = context(self.latents, self.Lp, self.dim, wa)
        recent = self.buffer.range(self.buffer.heard - self.emotion.window, self.buffer.heard)
        we = self.emotion.vector(recent, self.buffer.heard).to(dtype)
        settings = SamplerSettings(
            a_cfg_scale=self.options.a_cfg_scale,
            e_cfg_scale=self.controls.e_cfg_scale,
            nfe=self.options.nfe,
            method=self.options.method,
        )
        x0 = self.noise.take(C, n_window).to(device=engine.device, dtype=dtype)
        fmt = engine.model.fmt if final or self.eager else traced_fmt(engine.model.fmt)
        x1 = sample_window(fmt, x0, wa, self.source.r_s.to(dtype), we, prev_x, prev_wa, settings)
        new = self._ease_in(x1[:, :n])  # (1, n, D): the frames committed now
        heard = self.buffer.heard // self.spf  # frames whose audio the window had
        self.ahead = x1[:, n : max(n, heard - C)]  # past the committed ones, only those it heard
        self.latents = torch.cat([prev_x, new], dim=1)[:, -self.Lp :]
        shown = self.controls.edit(new[0].float())
        frames = np.concatenate(list(engine.decode(self.source, shown[None], self.options.batch_size)))
        audio = self.buffer.range(C * self.spf, (C + n) * self.spf)
        self.committed += n
        return LiveOutput(frames, np.arange(C, C + n, dtype=np.int64), audio.copy(), shown.cpu())

    def _ease_in(self, new: Tensor) -> Tensor:
        """(1, n, D) newly sampled latents with their first EASE_FRAMES frames blended toward what
        the previous window sampled for them (jointly with the frame committed before) where that
        window had heard their audio, its share falling from 1 - 1 / (k + 1) to 1 / (k + 1): the
        seam between two steps' windows eases in instead of jumping. A window that follows none
        (the first, offline-sized ones, or one whose predecessor heard no audio past its frames,
        as with no lookahead) is kept."""
        ahead = self.ahead
        k = 0 if ahead is None else min(EASE_FRAMES, ahead.shape[1], new.shape[1])
        if k == 0:
            return new
        assert ahead is not None
        old_share = torch.arange(k, 0, -1, dtype=new.dtype, device=new.device)[None, :, None] / (k + 1)
        eased = new.clone()
        eased[:, :k] = old_share * ahead[:, :k] + (1 - old_share) * new[:, :k]
        return eased

    def _trim(self) -> None:
        """Drop the audio no later step needs (features' context, emotion window, output audio)."""
        features_from = max(0, self.committed - self.Lp - AUDIO_CONTEXT) * self.spf
        self.buffer.trim(min(features_from, self.buffer.heard - self.emotion.window))

    def join(self, outputs: list[LiveOutput]) -> LiveOutput:
        """Outputs of several steps as one, in order (an empty output for none)."""
        if not outputs:
            S = self.engine.image_size
            empty = np.zeros((0, S, S, 3), np.uint8)
            return LiveOutput(empty, np.zeros(0, np.int64), np.zeros(0, np.float32), torch.zeros(0, self.dim))
        return LiveOutput(
            np.concatenate([o.frames for o in outputs]),
            np.concatenate([o.index for o in outputs]),
            np.concatenate([o.audio for o in outputs]),
            torch.cat([o.motion for o in outputs]),
            [s for o in outputs for s in o.compute_s],
        )
