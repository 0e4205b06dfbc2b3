"""FloatPipeline: one photo + one speech recording -> motion latents and video frames.

Stages: image -> (s_r, lambda, r_s, feature maps); audio -> wa (B, T, 512) and we (B, 1, 7);
windowed flow-matching sampling -> r_d (B, T, 512); decoding frame t with style s_r + r_d[t].

Letters: B batch (1 here), T frames, N samples, S image size, D latent size.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from floatalk.checkpoint import load_model, save_pretrained
from floatalk.config import EMOTIONS
from floatalk.models.audio_encoder import frame_count
from floatalk.models.emotion_encoder import emotion_index
from floatalk.models.float_model import FloatModel
from floatalk.sampling.sampler import SamplerSettings, iter_motion_windows

ImageInput = str | os.PathLike | np.ndarray
AudioInput = str | os.PathLike | np.ndarray
Progress = Callable[[str, int, int], None]
"""progress(stage, done, total): stage is 'audio', 'emotion', 'motion' or 'frames'."""


@dataclass
class PreparedImage:
    """A photo read from disk and cut to the model's square input (no model involved)."""

    pixels: np.ndarray  # (S, S, 3) uint8 RGB, what the model sees
    box: Any  # floatalk.io.face.CropBox: the square in original-photo pixels
    original: np.ndarray  # (H, W, 3) uint8 RGB, the whole photo


def prepare_image(image: ImageInput, size: int, crop: bool = True) -> PreparedImage:
    """Read a photo and cut the model input: the face crop (1.6x the largest detected face box,
    black padding outside the photo) or, with crop=False, the whole photo letterboxed to a
    square (black bars, never stretched; an S x S photo is used as is).

    Raises UserInputError for unreadable files and, when cropping, when no face is found.
    """
    from floatalk.io.face import crop_image, find_crop_box, letterbox_box
    from floatalk.io.image import load_image

    original = load_image(image)
    h, w = original.shape[:2]
    if crop:
        box = find_crop_box(original)
        return PreparedImage(crop_image(original, box, size), box, original)
    box = letterbox_box(h, w)
    pixels = original if (h, w) == (size, size) else crop_image(original, box, size)
    return PreparedImage(pixels, box, original)


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


@dataclass
class FloatOutput:
    """Result of a pipeline call."""

    motion: Tensor  # (T, D) float32 motion latents r_d
    frames: np.ndarray  # (T, S, S, 3) uint8 RGB
    emotion: Tensor  # (K,) the emotion vector used (probabilities or one-hot)
    audio: np.ndarray  # (N,) float32 16 kHz mono waveform that drove it (before normalisation)
    fps: int


def normalize_image(pixels: np.ndarray) -> Tensor:
    """(S, S, 3) uint8 RGB -> (1, 3, S, S) float32 in [-1, 1], bit-exact with the release.

    (float32(v) - 127.5) * float32(1 / 127.5); `v / 127.5 - 1` differs by up to 6e-8.
    """
    x = (pixels.astype(np.float32) - np.float32(127.5)) * np.float32(1.0 / 127.5)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]


def normalize_audio(wave: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance over the whole clip in float32 numpy (wav2vec2 feature extractor rule)."""
    x = np.asarray(wave, dtype=np.float32)
    return (x - x.mean()) / np.sqrt(x.var() + 1e-7)


def to_uint8(images: Tensor) -> np.ndarray:
    """(B, 3, S, S) raw decoder output -> (B, S, S, 3) uint8: clamp, (x + 1) / 2 * 255, truncate."""
    x = images.float().clamp(-1.0, 1.0)
    x = (x + 1.0) / 2.0 * 255.0
    return x.to(torch.uint8).permute(0, 2, 3, 1).contiguous().cpu().numpy()


class FloatPipeline:
    """The FLOAT engine around a FloatModel.

    >>> pipe = FloatPipeline.from_pretrained("checkpoints/float")      # release or floatalk folder
    >>> out = pipe(image="photo.jpg", audio="speech.wav", emotion="happy")
    >>> out.frames.shape   # (T, 512, 512, 3)
    """

    def __init__(self, model: FloatModel, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32):
        self.model = model.eval().requires_grad_(False)
        self.device = torch.device(device)
        self.dtype = dtype
        self.model.to(self.device)
        if dtype != torch.float32:
            # Audio and emotion encoders stay in float32 (cheap, and their features feed everything);
            # the FMT and the image decoder run in the requested precision.
            self.model.motion_autoencoder.to(dtype)
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
        cls, path: str | os.PathLike, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
    ) -> FloatPipeline:
        """Load a release folder (float.pth + two HF folders) or a floatalk folder."""
        return cls(load_model(path), device=device, dtype=dtype)

    def save_pretrained(self, path: str | os.PathLike) -> Path:
        """Write the model in the floatalk format (safetensors + config JSON), in float32."""
        model = self.model
        if self.dtype != torch.float32:
            model = FloatModel(self.cfg)
            model.load_state_dict({k: v.float() for k, v in self.model.state_dict().items()})
        return save_pretrained(model, path)

    # ----------------------------------------------------------------------------------- stages
    @torch.inference_mode()
    def encode_image(self, image: ImageInput | PreparedImage, crop: bool = True) -> SourceImage:
        """Load and crop (or letterbox) a photo, then run the motion encoder once."""
        prepared = image if isinstance(image, PreparedImage) else prepare_image(image, self.image_size, crop)
        tensor = normalize_image(prepared.pixels).to(self.device, self.dtype)
        ae = self.model.motion_autoencoder
        s_r, lam, feats = ae.encode(tensor)
        r_s = ae.motion(lam)
        return SourceImage(prepared.pixels, tensor, s_r, lam, r_s, feats, prepared.box, prepared.original)

    def load_audio(self, audio: AudioInput) -> np.ndarray:
        """Any audio file PyAV decodes, or a 1-D float array at 16 kHz -> (N,) float32 mono 16 kHz."""
        from floatalk.io.audio import load_audio

        return load_audio(audio, sample_rate=self.sample_rate)

    @torch.inference_mode()
    def encode_audio(self, wave: np.ndarray) -> Tensor:
        """(N,) waveform -> wa (1, T, Da) with T = ceil(N * fps / sr)."""
        norm = torch.from_numpy(normalize_audio(wave))[None].to(self.device)
        T = frame_count(len(wave), self.sample_rate, self.fps)
        return self.model.audio_encoder(norm, T)

    @torch.inference_mode()
    def encode_emotion(self, wave: np.ndarray, emotion: str | None = None) -> Tensor:
        """Predicted emotion probabilities from the unpadded clip, or a one-hot: (1, 1, K).

        emotion: None or 'auto' to predict from speech, else one of EMOTIONS.
        """
        enc = self.model.emotion_encoder
        if emotion is not None and emotion.strip().lower() != "auto":
            emotion_index(emotion)  # validates the name
            return enc.one_hot(emotion).to(self.device)
        norm = torch.from_numpy(normalize_audio(wave))[None].to(self.device)
        return enc(norm)

    @torch.inference_mode()
    def iter_motion(
        self, wa: Tensor, r_s: Tensor, we: Tensor, settings: SamplerSettings, seed: int
    ) -> Iterator[Tensor]:
        """Motion latents window by window: (1, n_w, D) each. Noise from a CPU generator seeded with `seed`."""
        generator = torch.Generator().manual_seed(int(seed))
        yield from iter_motion_windows(
            self.model.fmt, wa.to(self.dtype), r_s.to(self.dtype), we.to(self.dtype), settings, generator
        )

    @torch.inference_mode()
    def decode(self, source: SourceImage, motion: Tensor, batch_size: int = 4) -> Iterator[np.ndarray]:
        """Render frames for motion (1, T, D): yields (n, S, S, 3) uint8 batches in order."""
        ae = self.model.motion_autoencoder
        styles = (source.s_r + motion[0].to(source.s_r.dtype)).to(self.dtype)  # (T, D): s_r + r_d[t]
        for start in range(0, styles.shape[0], batch_size):
            yield to_uint8(ae.decode(styles[start : start + batch_size], source.feats))

    # ------------------------------------------------------------------------------------ calls
    def _prepare(
        self, image: ImageInput | PreparedImage, audio: AudioInput, emotion: str | None, crop: bool, report: Progress
    ) -> tuple[SourceImage, np.ndarray, Tensor, Tensor]:
        src = self.encode_image(image, crop=crop)
        wave = self.load_audio(audio)
        report("audio", 0, 1)
        wa = self.encode_audio(wave)
        report("audio", 1, 1)
        report("emotion", 0, 1)
        we = self.encode_emotion(wave, emotion)
        report("emotion", 1, 1)
        return src, wave, wa, we

    def _windows(
        self,
        src: SourceImage,
        wa: Tensor,
        we: Tensor,
        settings: SamplerSettings,
        seed: int,
        batch_size: int,
        report: Progress,
    ) -> Iterator[tuple[Tensor, np.ndarray]]:
        T, done = wa.shape[1], 0
        report("motion", done, T)
        for window in self.iter_motion(wa, src.r_s, we, settings, seed):
            chunks = []
            for chunk in self.decode(src, window, batch_size):
                chunks.append(chunk)
                report("frames", done + sum(len(c) for c in chunks), T)
            done += window.shape[1]
            if done < T:
                report("motion", done, T)
            yield window[0].float().cpu(), np.concatenate(chunks)

    def stream(
        self,
        image: ImageInput | PreparedImage,
        audio: AudioInput,
        emotion: str | None = None,
        a_cfg_scale: float = 2.0,
        e_cfg_scale: float = 1.0,
        nfe: int = 10,
        seed: int = 15,
        crop: bool = True,
        method: str = "euler",
        batch_size: int = 4,
        progress: Progress | None = None,
    ) -> Iterator[tuple[Tensor, np.ndarray]]:
        """Generate window by window: yields (motion (n, D), frames (n, S, S, 3) uint8) as soon as
        each window of 50 frames is sampled and decoded. Arguments as in `__call__`."""
        settings = SamplerSettings(a_cfg_scale=a_cfg_scale, e_cfg_scale=e_cfg_scale, nfe=nfe, method=method)
        report = progress or _no_progress
        src, _, wa, we = self._prepare(image, audio, emotion, crop, report)
        yield from self._windows(src, wa, we, settings, seed, batch_size, report)

    def __call__(
        self,
        image: ImageInput | PreparedImage,
        audio: AudioInput,
        emotion: str | None = None,
        a_cfg_scale: float = 2.0,
        e_cfg_scale: float = 1.0,
        nfe: int = 10,
        seed: int = 15,
        crop: bool = True,
        method: str = "euler",
        batch_size: int = 4,
        progress: Progress | None = None,
    ) -> FloatOutput:
        """Animate `image` with `audio`.

        image: a path (any Pillow format) or an (H, W, 3) uint8 RGB array. audio: a path (any
        PyAV format, resampled to 16 kHz mono) or a 1-D float array already at 16 kHz.
        emotion: None / 'auto' (predicted from speech) or one of EMOTIONS (redirection).
        a_cfg_scale, e_cfg_scale: guidance scales. nfe: Euler grid points (nfe - 1 steps per
        window). seed: seeds the CPU generator of the initial noise. crop: detect the face and
        crop 1.6x its box; False letterboxes the whole photo (identity for an S x S photo).
        method: euler | midpoint | rk4. batch_size: frames decoded per decoder pass.
        """
        settings = SamplerSettings(a_cfg_scale=a_cfg_scale, e_cfg_scale=e_cfg_scale, nfe=nfe, method=method)
        report = progress or _no_progress
        src, wave, wa, we = self._prepare(image, audio, emotion, crop, report)
        motions, frames = [], []
        for m, f in self._windows(src, wa, we, settings, seed, batch_size, report):
            motions.append(m)
            frames.append(f)
        return FloatOutput(
            motion=torch.cat(motions),
            frames=np.concatenate(frames),
            emotion=we[0, 0].float().cpu(),
            audio=wave,
            fps=self.fps,
        )


def _no_progress(stage: str, done: int, total: int) -> None:
    return None


__all__ = ["EMOTIONS", "FloatOutput", "FloatPipeline", "PreparedImage", "SourceImage", "prepare_image"]
