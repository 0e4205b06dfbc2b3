"""FloatPipeline: one photo + one speech recording -> motion latents and video frames.

Stages: image -> (s_r, lambda, r_s, feature maps); audio -> wa (B, T, 512) and we (B, 1, 7);
windowed flow-matching sampling -> r_d (B, T, 512); decoding frame t with style s_r + r_d[t].

Speed and memory:

* Decoding: by default frames are decoded in batches with the non-fused modulated
  convolution (`MotionAutoEncoder.decode_fast`, channels-last); float32 stays within the
  release-parity contract. `decode="exact"` uses the release's per-sample-weight decoder.
  With dtype bfloat16 / float16 the decoder's convolutions at scales >= `float32_below`
  pixels run in that dtype (flows, warps and the RGB sum stay float32), and so does the FMT;
  the image encoder, audio and emotion encoders always run in float32.
* Long audio (`LongAudio`): clips up to 30 s are encoded in one pass, bit-exact with the
  release; longer clips are encoded in overlapping windows (audio features) and segments
  (emotion) in memory independent of their length, and `stream` computes audio features,
  motion and frames chunk by chunk, so only the waveform and per-frame latents grow with T.

Letters: B batch (1 here), T frames, N samples, S image size, D latent size.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from floatalk.checkpoint import load_model, save_pretrained
from floatalk.config import EMOTIONS
from floatalk.convert import to_pixels, to_tensor
from floatalk.errors import UserInputError
from floatalk.models.audio_encoder import AudioEncoder, conv_frame_count, frame_count
from floatalk.models.emotion_encoder import EmotionEncoder, emotion_index
from floatalk.models.float_model import FloatModel
from floatalk.models.motion_ae import channels_last_features
from floatalk.options import GenerateOptions
from floatalk.progress import Progress, no_progress
from floatalk.sampling.sampler import SamplerSettings, iter_motion_windows

ImageInput = str | os.PathLike | np.ndarray
AudioInput = str | os.PathLike | np.ndarray


@dataclass
class PreparedImage:
    """A photo read from disk and cut to the model's square input (no model involved)."""

    pixels: np.ndarray  # (S, S, 3) uint8 RGB, what the model sees
    box: Any  # floatalk.io.face.CropBox: the square in original-photo pixels
    original: np.ndarray  # (H, W, 3) uint8 RGB, the whole photo
    face: tuple[int, int, int, int] | None = None  # the detected face box (x, y, w, h); None without cropping
    choice: Any = None  # floatalk.io.face.FaceChoice: which face of how many, by which detector; None without cropping


def prepare_image(
    image: ImageInput,
    size: int,
    crop: bool = True,
    crop_scale: float = 1.6,
    detector: str = "auto",
    face: int | None = None,
) -> PreparedImage:
    """Read a photo and cut the model input: the face crop (a square of `crop_scale` times the
    face box, black padding outside the photo; the largest face, or face number `face` from the
    left, found by `detector`, see floatalk.io.face) or, with crop=False, the whole photo
    letterboxed to a square (black bars, never stretched; an S x S photo is used as is).

    Raises UserInputError for unreadable files and, when cropping, when no face is found.
    """
    from floatalk.io.face import crop_image, face_crop_box, letterbox_box, locate_face
    from floatalk.io.image import load_image

    original = load_image(image)
    h, w = original.shape[:2]
    if crop:
        choice = locate_face(original, detector, face)
        box = face_crop_box(choice.box, crop_scale)
        return PreparedImage(crop_image(original, box, size), box, original, choice.box, choice)
    box = letterbox_box(h, w)
    pixels = original if (h, w) == (size, size) else crop_image(original, box, size)
    return PreparedImage(pixels, box, original)


@dataclass(frozen=True)
class LongAudio:
    """When and how audio is encoded piecewise (see floatalk.models.audio_encoder / emotion_encoder).

    Clips of at most `max_whole_frames` video frames are encoded in one pass, exactly as the
    release does; longer ones in cores of `core` frames (a multiple of the FMT window) with
    `context` frames of audio on either side (`core` is rounded up to whole FMT windows), and
    emotion over segments of at most
    `emotion_segment` conv frames. The defaults are 30 s, 20 s, 5 s and 30 s.
    """

    max_whole_frames: int = 750
    core: int = 500
    context: int = 125
    emotion_segment: int = 1500

    def __post_init__(self) -> None:
        if min(self.max_whole_frames, self.core, self.emotion_segment) < 1 or self.context < 0:
            raise ValueError(f"invalid long-audio settings: {self}")


class NormalizedWave:
    """A clip's normalized samples, read range by range (a `SampleReader`), replicate-padded past its end.

    Normalization is the release's: (x - mean) / sqrt(var + 1e-7) in float32. Up to
    `exact_samples` samples the statistics are numpy's float32 ones (bit-exact with
    `normalize_audio`); longer clips use float64 sums over chunks, with no full-length temporary.
    """

    def __init__(self, wave: np.ndarray, device: torch.device, exact_samples: int, chunk: int = 1 << 20) -> None:
        self.wave = np.asarray(wave, dtype=np.float32)
        self.device = device
        n = len(self.wave)
        if n == 0:
            raise ValueError("empty audio")
        if n <= exact_samples:
            self.mean = self.wave.mean()
            self.scale = np.sqrt(self.wave.var() + 1e-7)
        else:
            total, total_sq = 0.0, 0.0
            for i in range(0, n, chunk):
                part = self.wave[i : i + chunk].astype(np.float64)
                total += float(part.sum())
                total_sq += float(np.square(part).sum())
            mean = total / n
            self.mean = np.float32(mean)
            self.scale = np.sqrt(np.float32(max(total_sq / n - mean * mean, 0.0)) + np.float32(1e-7))

    def __len__(self) -> int:
        return len(self.wave)

    def __call__(self, start: int, stop: int) -> Tensor:
        """Samples [start, stop) -> (1, stop - start) float32 on the pipeline's device."""
        n = len(self.wave)
        part = (self.wave[min(start, n - 1) : min(stop, n)] - self.mean) / self.scale
        if stop > n:
            # Release padding: repeat the last (normalized) sample.
            last = (self.wave[n - 1 :] - self.mean) / self.scale
            fill = np.broadcast_to(last, (stop - max(start, n),))
            part = np.concatenate([part[: max(0, n - start)], fill])
        return torch.from_numpy(np.ascontiguousarray(part, dtype=np.float32))[None].to(self.device)


@dataclass
class SourceImage:
    """The model-size source crop and the encoder outputs computed once per photo."""

    pixels: np.ndarray  # (S, S, 3) uint8 RGB, what the model sees
    tensor: Tensor  # (1, 3, S, S) in [-1, 1]
    s_r: Tensor  # (1, D) identity latent
    lam: Tensor  # (1, M) motion coefficients
    r_s: Tensor  # (1, D) reference motion Q lambda
    feats: list[Tensor]  # encoder feature maps, 8 px .. S px
    box: Any = None  # floatalk.io.face.CropBox in original-photo pixels (None when given a model-size array)
    original: np.ndarray | None = None  # (H, W, 3) uint8, the full photo
    fast_feats: list[Tensor] | None = None  # feats in float32 channels-last, for the batched decoder


@dataclass
class Conditions:
    """What the motion sampler is conditioned on, computed once per (photo, recording)."""

    source: SourceImage
    wave: np.ndarray  # (N,) float32 16 kHz mono, before normalisation
    emotion: Tensor  # (1, 1, K) predicted probabilities or a one-hot; (1, T, K) per frame (a timeline)
    e_scales: Tensor | None = None  # (T,) per-frame emotion guidance (a timeline), else options' scale
    edit: Any = None  # floatalk.editing.MotionEdit applied to the motion before decoding, or None


@dataclass
class FloatOutput:
    """Result of a pipeline call."""

    motion: Tensor  # (T, D) float32 motion latents r_d
    frames: np.ndarray  # (T, S, S, 3) uint8 RGB
    emotion: Tensor  # (K,) the emotion vector used (probabilities or one-hot)
    audio: np.ndarray  # (N,) float32 16 kHz mono waveform that drove it (before normalisation)
    fps: int


def normalize_audio(wave: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance over the whole clip in float32 numpy (wav2vec2 feature extractor rule)."""
    x = np.asarray(wave, dtype=np.float32)
    return (x - x.mean()) / np.sqrt(x.var() + 1e-7)


class FloatPipeline:
    """The FLOAT engine around a FloatModel.

    >>> pipe = FloatPipeline.from_pretrained("checkpoints/float")      # release or floatalk folder
    >>> out = pipe(image="photo.jpg", audio="speech.wav", emotion="happy")
    >>> out.frames.shape   # (T, 512, 512, 3)
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
    ) -> FloatPipeline:
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
        if emotion is not None and emotion.strip().lower() != "auto":
            emotion_index(emotion)  # validates the name
            return enc.one_hot(emotion).to(self.device)
        segment = self.long_audio.emotion_segment
        if isinstance(enc, EmotionEncoder) and conv_frame_count(enc.wav2vec2_for_emotion.wav2vec2, len(wave)) > segment:
            return enc.segmented(self.reader(wave), len(wave), segment)
        norm = torch.from_numpy(normalize_audio(wave))[None].to(self.device)
        return enc(norm)

    @torch.inference_mode()
    def decode(self, source: SourceImage, motion: Tensor, batch_size: int = 8) -> Iterator[np.ndarray]:
        """Render frames for motion (1, T, D): yields (n, S, S, 3) uint8 batches in order."""
        ae = self.model.motion_autoencoder
        styles = source.s_r + motion[0].to(source.s_r.dtype)  # (T, D): s_r + r_d[t], float32
        if self.decode_mode == "exact":
            for start in range(0, styles.shape[0], batch_size):
                yield to_pixels(ae.decode(styles[start : start + batch_size], source.feats))
            return
        feats = source.fast_feats if source.fast_feats is not None else channels_last_features(source.feats)
        for start in range(0, styles.shape[0], batch_size):
            batch = styles[start : start + batch_size]
            yield to_pixels(ae.decode_fast(batch, feats, self.dtype, self.float32_below))

    # ------------------------------------------------------------------------------------ calls
    def options(self, options: GenerateOptions | None = None, **overrides: Any) -> GenerateOptions:
        """`options` (default GenerateOptions()) with `overrides` applied, validated (UserInputError).

        A timeline given as a file or a dict is parsed here, once, and kept as a Timeline."""
        opts = options if options is not None else GenerateOptions()
        if not isinstance(opts, GenerateOptions):
            raise UserInputError(f"options must be a GenerateOptions, got {type(opts).__name__}.")
        if overrides:
            opts = opts.replace(**overrides)
        if opts.timeline is not None:
            from floatalk.editing.timeline import Timeline

            opts = opts.replace(timeline=Timeline.coerce(opts.timeline))
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
        self.check_inputs(image, audio, opts, generator)
        conditions = self.prepare(image, audio, opts)
        report("emotion", 1, 1)
        return opts, conditions

    def check_inputs(
        self, image: Any, audio: Any, options: GenerateOptions, generator: torch.Generator | None = None
    ) -> None:
        """Reject what the pipeline cannot use before any work, in one sentence (UserInputError).

        Files are checked when read (missing, empty, undecodable); here: the kinds of `image`
        and `audio`, the options' values and the generator (a CPU one: noise is drawn on the CPU).
        """
        if not isinstance(image, (str, os.PathLike, np.ndarray, PreparedImage)):
            raise UserInputError(f"image must be a path or an (H, W, 3) uint8 array, got {type(image).__name__}.")
        if not isinstance(audio, (str, os.PathLike, np.ndarray)):
            raise UserInputError(f"audio must be a path or a 1-D float array at 16 kHz, got {type(audio).__name__}.")
        options.validate()
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
        from floatalk.editing import plan_conditions

        return plan_conditions(self, source, wave, options)

    @torch.inference_mode()
    def iter_windows(
        self,
        conditions: Conditions,
        options: GenerateOptions,
        generator: torch.Generator | None = None,
        progress: Progress | None = None,
    ) -> Iterator[tuple[Tensor, np.ndarray]]:
        """Audio features chunk by chunk -> motion window by window -> frames, each yielded when ready:
        (motion (n, D) float32, frames (n, S, S, 3) uint8).

        Every chunk of audio features holds whole FMT windows, so sampling the chunks one after
        the other, from one generator, with the previous chunk's last latents and features as
        context gives exactly the motion of sampling all of wa at once. Noise comes from
        `generator`, or from a CPU generator seeded with `options.seed`.
        """
        report = progress or no_progress
        settings = SamplerSettings(
            a_cfg_scale=options.a_cfg_scale, e_cfg_scale=options.e_cfg_scale, nfe=options.nfe, method=options.method
        )
        src, wave = conditions.source, conditions.wave
        T, done = frame_count(len(wave), self.sample_rate, self.fps), 0
        fmt = self.model.fmt
        Lp = fmt.cfg.prev
        r_s, we = src.r_s.to(self.dtype), conditions.emotion.to(self.dtype)
        edit = conditions.edit
        if generator is None:
            generator = torch.Generator().manual_seed(int(options.seed))
        prev_x: Tensor | None = None
        prev_wa: Tensor | None = None
        features = self.iter_audio_features(wave)
        while True:
            if done < T:
                report("audio", done, T)
            wa = next(features, None)
            if wa is None:
                return
            wa = wa.to(self.dtype)
            report("motion", done, T)
            windows = iter_motion_windows(
                fmt, wa, r_s, we, settings, generator, 0, prev_x, prev_wa, done, conditions.e_scales
            )
            for window in windows:
                # The sampler continues from the model's own motion; edits only change what is shown.
                shown = window if edit is None else edit.apply(window[0].float(), done)[None].to(window.dtype)
                chunks = []
                for chunk in self.decode(src, shown, options.batch_size):
                    chunks.append(chunk)
                    report("frames", done + sum(len(c) for c in chunks), T)
                done += window.shape[1]
                prev_x = window[:, -Lp:]  # the last window of a chunk that is not the clip's last is whole
                yield shown[0].float().cpu(), np.concatenate(chunks)
                if done < T:
                    report("motion", done, T)
            prev_wa = wa[:, -Lp:]

    def stream(
        self,
        image: ImageInput | PreparedImage,
        audio: AudioInput,
        options: GenerateOptions | None = None,
        *,
        generator: torch.Generator | None = None,
        progress: Progress | None = None,
        **overrides: Any,
    ) -> Iterator[tuple[Tensor, np.ndarray]]:
        """Generate window by window: yields (motion (n, D), frames (n, S, S, 3) uint8) as soon as
        each window of 50 frames is sampled and decoded. Arguments as in `__call__`."""
        report = progress or no_progress
        opts, conditions = self._begin(image, audio, options, generator, report, overrides)
        yield from self.iter_windows(conditions, opts, generator, report)

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
        for m, f in self.iter_windows(conditions, opts, generator, report):
            motions.append(m)
            frames.append(f)
        return FloatOutput(
            motion=torch.cat(motions),
            frames=np.concatenate(frames),
            emotion=conditions.emotion[0].float().mean(0).cpu(),
            audio=conditions.wave,
            fps=self.fps,
        )


def reuse_freed_memory() -> bool:
    """Make glibc keep freed memory for reuse instead of returning it to the OS. Process-wide.

    A decoder pass allocates and frees many blocks of tens of MB (activations at 256 and 512 px).
    glibc serves blocks that large with mmap and unmaps them on free, so each new one is
    page-faulted in and zeroed by the kernel again: about a third of CPU decoding time on 2
    cores. Disabling mmap for the heap (M_MMAP_MAX = 0) and heap trimming (M_TRIM_THRESHOLD)
    keeps them in the heap. The peak RSS is the same; RSS just does not drop after a peak.
    Never called at import: `floatalk generate` calls it for CPU runs. Returns False where
    there is no glibc (nothing changed).
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name or sys.platform != "linux":
        return False
    try:
        libc = ctypes.CDLL(name)
        m_trim_threshold, m_mmap_max = -1, -4  # mallopt parameter numbers from glibc's malloc.h
        return bool(libc.mallopt(m_mmap_max, 0)) and bool(libc.mallopt(m_trim_threshold, 2**31 - 1))
    except (OSError, AttributeError):
        return False


__all__ = [
    "EMOTIONS",
    "Conditions",
    "FloatOutput",
    "FloatPipeline",
    "LongAudio",
    "NormalizedWave",
    "PreparedImage",
    "SourceImage",
    "prepare_image",
    "reuse_freed_memory",
]
