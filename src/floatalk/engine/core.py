"""The FLOAT engine: a loaded model and the paper's steps as methods (encode source, encode
audio and emotion, sample motion windows, decode frames), with no knowledge of motion editing,
video files or apps.

Speed and memory:

* Decoding: by default frames are decoded in batches with the non-fused modulated
  convolution (`MotionAutoEncoder.decode_fast`, channels-last); float32 stays within the
  release-parity contract. `decode="exact"` uses the release's per-sample-weight decoder.
  With dtype bfloat16 / float16 the decoder's convolutions at scales >= `float32_below`
  pixels run in that dtype (flows, warps and the RGB sum stay float32), and so does the FMT;
  the image encoder, audio and emotion encoders always run in float32.
* Long audio (`LongAudio`): clips up to 30 s are encoded in one pass, bit-exact with the
  release; longer clips are encoded in overlapping windows (audio features) and segments
  (emotion) in memory independent of their length, and `iter_windows` computes audio features,
  motion and frames chunk by chunk, so only the waveform and per-frame latents grow with T.

Letters: B batch (1 here), T frames, N samples, S image size, D latent size.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from floatalk.checkpoint import load_model, save_pretrained
from floatalk.config import emotion_choice
from floatalk.convert import to_pixels, to_tensor
from floatalk.engine.audio import AudioInput, LongAudio, NormalizedWave, normalize_audio
from floatalk.engine.motion import Conditions, sample_motion
from floatalk.engine.source import ImageInput, PreparedImage, SourceImage, prepare_image
from floatalk.models.audio_encoder import AudioEncoder, conv_frame_count, frame_count
from floatalk.models.emotion_encoder import EmotionEncoder
from floatalk.models.float_model import FloatModel
from floatalk.models.motion_ae import channels_last_features
from floatalk.options import GenerateOptions
from floatalk.progress import Progress, no_progress

__all__ = ["FIRST_FRAMES", "FloatEngine"]

FIRST_FRAMES = 2
"""The clip's first decoder batch hands on its first this many frames alone (a sooner first
frame). Two, not one: for a batch of one, oneDNN picks other convolution kernels on small maps,
whose sums round differently, while two frames get the same pixels as in the whole batch."""


class FloatEngine:
    """The FLOAT model's steps, each callable on its own: encode the source image, encode the
    audio and the emotion, sample motion windows, decode frames. `floatalk.pipeline.FloatPipeline`
    composes them into a call; a streaming or scene renderer may compose them otherwise.

    >>> engine = FloatEngine.from_pretrained("bundled")
    >>> source = engine.encode_image("photo.png")        # SourceImage
    >>> wa = engine.encode_audio(engine.load_audio("speech.wav"))   # (1, T, Da)
    """

    def __init__(
        self,
        model: FloatModel,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        decode: str = "batched",
        float32_below: int | None = None,
        long_audio: LongAudio | None = None,
    ):
        """model: the networks; device: where they run; dtype: precision of the FMT and the
        decoder's convolutions (float32, bfloat16, float16). decode: "batched" (default, the
        non-fused batched decoder) or "exact" (the release's decoder, float32). float32_below:
        decoder scales smaller than this many pixels stay float32 when dtype is not float32
        (default 0 on GPUs, 256 on CPU, where bfloat16 errors at low resolutions are amplified by
        the warps; see docs/PERFORMANCE.md). long_audio: piecewise audio settings.
        """
        if decode not in ("batched", "exact"):
            raise ValueError(f"unknown decode mode {decode!r}; choose 'batched' or 'exact'")
        if dtype not in (torch.float32, torch.bfloat16, torch.float16):
            raise ValueError(f"unsupported dtype {dtype}; choose float32, bfloat16 or float16")
        self.model = model.eval().requires_grad_(False)
        self.device = torch.device(device)
        self.dtype = dtype
        self.decode_mode = decode
        if float32_below is None:
            float32_below = 256 if self.device.type == "cpu" else 0
        self.float32_below = float32_below
        self.long_audio = long_audio or LongAudio()
        self.source: Path | None = None  # the folder the model was loaded from (from_pretrained)
        self.model.to(self.device)
        if dtype != torch.float32:
            # Only the FMT is converted. The motion auto-encoder keeps float32 weights: the image
            # encoder runs once per photo, and the batched decoder casts its convolutions itself.
            self.model.fmt.to(dtype)

    @property
    def cfg(self):
        return self.model.cfg

    @property
    def image_size(self) -> int:
        return self.cfg.motion_ae.size

    @property
    def fps(self) -> int:
        return self.cfg.audio.fps

    @property
    def sample_rate(self) -> int:
        return self.cfg.audio.sample_rate

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        **options: Any,
    ) -> FloatEngine:
        """Load a release folder (float.pth + two HF folders), a floatalk folder, or "bundled":
        the demo model shipped inside the package (it only knows the synthetic world's faces).

        options: decode, float32_below, long_audio, as in the constructor.
        """
        from floatalk.assets import resolve_model

        folder = resolve_model(path)
        pipe = cls(load_model(folder), device=device, dtype=dtype, **options)
        pipe.source = folder
        return pipe

    @property
    def is_bundled(self) -> bool:
        """True when this pipeline runs the demo model shipped inside the package."""
        from floatalk.assets import is_bundled

        return self.source is not None and is_bundled(self.source)

    def save_pretrained(self, path: str | os.PathLike) -> Path:
        """Write the model in the floatalk format (safetensors + config JSON), in float32."""
        model = self.model
        if self.dtype != torch.float32:
            model = FloatModel(self.cfg)
            model.load_state_dict({k: v.float() for k, v in self.model.state_dict().items()})
        return save_pretrained(model, path)

    def reader(self, wave: np.ndarray) -> NormalizedWave:
        """The clip's normalized samples, read range by range (for the piecewise encoders)."""
        exact = self.long_audio.max_whole_frames * (self.sample_rate // self.fps)
        return NormalizedWave(wave, self.device, exact_samples=exact)

    def is_long(self, wave: np.ndarray) -> bool:
        """True when the clip is longer than `long_audio.max_whole_frames` frames (piecewise encoding)."""
        return frame_count(len(wave), self.sample_rate, self.fps) > self.long_audio.max_whole_frames

    # ----------------------------------------------------------------------------------- stages
    @torch.inference_mode()
    def encode_image(self, image: ImageInput | PreparedImage, crop: bool = True, **face: Any) -> SourceImage:
        """Load and crop (or letterbox) a photo, then run the motion encoder once.

        `face`: prepare_image's crop_scale, detector and face (which face of several)."""
        prepared = image if isinstance(image, PreparedImage) else prepare_image(image, self.image_size, crop, **face)
        tensor = to_tensor(prepared.pixels).to(self.device)
        ae = self.model.motion_autoencoder
        s_r, lam, feats = ae.encode(tensor)
        r_s = ae.motion(lam)
        fast = channels_last_features(feats) if self.decode_mode == "batched" else None
        return SourceImage(prepared.pixels, tensor, s_r, lam, r_s, feats, prepared.box, prepared.original, fast)

    def load_audio(self, audio: AudioInput) -> np.ndarray:
        """Any audio file PyAV decodes, or a 1-D float array at 16 kHz -> (N,) float32 mono 16 kHz."""
        from floatalk.io.audio import load_audio

        return load_audio(audio, sample_rate=self.sample_rate)

    @torch.inference_mode()
    def encode_audio(self, wave: np.ndarray) -> Tensor:
        """(N,) waveform -> wa (1, T, Da) with T = ceil(N * fps / sr).

        Clips longer than `long_audio.max_whole_frames` frames are encoded in windows
        (`iter_audio_features`); shorter ones in one pass, as the release does.
        """
        return torch.cat(list(self.iter_audio_features(wave)), dim=1)

    @torch.inference_mode()
    def iter_audio_features(self, wave: np.ndarray) -> Iterator[Tensor]:
        """wa chunk by chunk: (1, n, Da), n = long_audio.core rounded up to whole FMT windows (except the
        last chunk), or the whole clip in one chunk when it is short."""
        T = frame_count(len(wave), self.sample_rate, self.fps)
        enc = self.model.audio_encoder
        # The log-mel encoder has no attention over the clip (memory linear and small): one pass.
        if not self.is_long(wave) or not isinstance(enc, AudioEncoder):
            norm = torch.from_numpy(normalize_audio(wave))[None].to(self.device)
            yield enc(norm, T)
            return
        la = self.long_audio
        L = self.cfg.fmt.window
        core = -(-la.core // L) * L  # whole FMT windows per chunk, so chunks can be sampled one by one
        yield from enc.iter_windows(self.reader(wave), T, core=core, context=la.context)

    @torch.inference_mode()
    def encode_emotion(self, wave: np.ndarray, emotion: str | None = None) -> Tensor:
        """Predicted emotion probabilities from the unpadded clip, or a one-hot: (1, 1, K).

        emotion: None or 'auto' to predict from speech, else one of EMOTIONS.
        """
        enc = self.model.emotion_encoder
        if emotion is not None and emotion_choice(emotion) != "auto":
            return enc.one_hot(emotion).to(self.device)  # one_hot checks the name (emotion_index)
        segment = self.long_audio.emotion_segment
        if isinstance(enc, EmotionEncoder) and conv_frame_count(enc.wav2vec2_for_emotion.wav2vec2, len(wave)) > segment:
            return enc.segmented(self.reader(wave), len(wave), segment)
        norm = torch.from_numpy(normalize_audio(wave))[None].to(self.device)
        return enc(norm)

    @torch.inference_mode()
    def decode(self, source: SourceImage, motion: Tensor, batch_size: int = 8, first: int = 0) -> Iterator[np.ndarray]:
        """Render frames for motion (1, T, D): yields (n, S, S, 3) uint8 batches in order.

        first: when more than 0 and fewer than the first batch's frames (batched decoder only),
        that batch is handed on in two parts, its first `first` frames alone: a sooner first
        frame, with the same pixels as decoding the batch whole (`decode_fast`'s rows)."""
        ae = self.model.motion_autoencoder
        styles = source.s_r + motion[0].to(source.s_r.dtype)  # (T, D): s_r + r_d[t], float32
        if self.decode_mode == "exact":
            for start in range(0, styles.shape[0], batch_size):
                yield to_pixels(ae.decode(styles[start : start + batch_size], source.feats))
            return
        feats = source.fast_feats if source.fast_feats is not None else channels_last_features(source.feats)
        for start in range(0, styles.shape[0], batch_size):
            batch = styles[start : start + batch_size]
            if start == 0 and 0 < first < len(batch):
                for rows in (slice(0, first), slice(first, len(batch))):
                    yield to_pixels(ae.decode_fast(batch, feats, self.dtype, self.float32_below, rows))
                continue
            yield to_pixels(ae.decode_fast(batch, feats, self.dtype, self.float32_below))

    @torch.inference_mode()
    def decode_faces(self, sources: list[SourceImage], motion: Tensor, batch_size: int = 8) -> Iterator[np.ndarray]:
        """Render several portraits together: motion (F, T, D), row f for `sources[f]` -> yields
        (n, F, S, S, 3) uint8 batches in order. Every decoder pass holds all F faces of n frames,
        n = max(1, batch_size // F), so a frame's faces are rendered in one batch."""
        ae = self.model.motion_autoencoder
        F, T, D = motion.shape
        s_r = torch.cat([s.s_r for s in sources])  # (F, D)
        styles = s_r[:, None] + motion.to(s_r.dtype)  # (F, T, D): s_r + r_d[t] per face
        exact = self.decode_mode == "exact"
        per_face = [s.feats if exact else (s.fast_feats or channels_last_features(s.feats)) for s in sources]
        stacked = [torch.cat(scale) for scale in zip(*per_face)]  # per scale (F, C, H, W)
        step = max(1, batch_size // F)
        for start in range(0, T, step):
            n = min(step, T - start)
            batch = styles[:, start : start + n].transpose(0, 1).reshape(n * F, D)  # (n F, D), frame-major
            feats = stacked if n == 1 else [f.repeat(n, 1, 1, 1) for f in stacked]  # (n F, C, H, W)
            if exact:
                images = ae.decode(batch, feats)
            else:
                feats = [f.contiguous(memory_format=torch.channels_last) for f in feats]
                images = ae.decode_fast(batch, feats, self.dtype, self.float32_below)
            yield to_pixels(images).reshape(n, F, *images.shape[2:], 3)

    # ----------------------------------------------------------------------------------- motion
    def sample_motion(
        self,
        conditions: Conditions,
        options: GenerateOptions,
        generator: torch.Generator | None = None,
        progress: Progress | None = None,
    ) -> Iterator[tuple[int, Tensor]]:
        """Motion window by window: yields (start frame, motion (1, n, D) to show); see
        `floatalk.engine.motion.sample_motion`."""
        T = frame_count(len(conditions.wave), self.sample_rate, self.fps)
        features = self.iter_audio_features(conditions.wave)
        return sample_motion(self.model.fmt, features, T, conditions, options, self.dtype, generator, progress)

    @torch.inference_mode()
    def iter_frames(
        self,
        conditions: Conditions,
        options: GenerateOptions,
        generator: torch.Generator | None = None,
        progress: Progress | None = None,
    ) -> Iterator[tuple[Tensor, np.ndarray]]:
        """Frames as soon as each decoder batch is done: yields (motion (n, D) float32, frames
        (n, S, S, 3) uint8), n at most `options.batch_size`, in order. Each motion window is
        sampled, then decoded batch by batch; the clip's first batch is handed on in two parts,
        its first FIRST_FRAMES frames alone, so the first frame waits for one window's motion and
        that many frames of decoding. The pixels are those of decoding whole batches.
        Progress: audio, motion and frames (in model frames)."""
        report = progress or no_progress
        T = frame_count(len(conditions.wave), self.sample_rate, self.fps)
        for start, shown in self.sample_motion(conditions, options, generator, report):
            motion = shown[0].float().cpu()
            done = 0
            first = FIRST_FRAMES if start == 0 else 0
            for frames in self.decode(conditions.source, shown, options.batch_size, first):
                n = len(frames)
                report("frames", start + done + n, T)
                yield motion[done : done + n], frames
                done += n

    def iter_windows(
        self,
        conditions: Conditions,
        options: GenerateOptions,
        generator: torch.Generator | None = None,
        progress: Progress | None = None,
    ) -> Iterator[tuple[Tensor, np.ndarray]]:
        """Motion window by window, each decoded as soon as it is sampled: yields (motion (n, D)
        float32, frames (n, S, S, 3) uint8), n the window's frames (50 but the last). Progress as
        in `iter_frames`, which hands frames on sooner."""
        motions: list[Tensor] = []
        frames: list[np.ndarray] = []
        window = self.cfg.fmt.window
        done = 0
        for motion, part in self.iter_frames(conditions, options, generator, progress):
            motions.append(motion)
            frames.append(part)
            done += len(part)
            if done % window == 0:
                yield torch.cat(motions), np.concatenate(frames)
                motions, frames = [], []
        if frames:
            yield torch.cat(motions), np.concatenate(frames)
