"""Reading speech audio into (N,) float32 mono arrays at a fixed sample rate.

WAV, FLAC and AIFF files are read with soundfile, which gives int16 PCM as exactly
`int16 / 32768` (the way the reference implementation reads audio); every other container
(mp3, m4a/aac, ogg/vorbis, opus, the audio track of a video, ...) is decoded with PyAV.
"""

from __future__ import annotations

import math
import os

import numpy as np

from floatalk.errors import UserInputError
from floatalk.io.image import require_file
from floatalk.units import FPS, SAMPLE_RATE

__all__ = ["MIN_AUDIO_SECONDS", "SAMPLE_RATE", "load_audio", "write_wav"]

MIN_AUDIO_SECONDS = 1 / FPS
"""Shortest recording accepted: one video frame (40 ms, 640 samples at 16 kHz). Below it the
models cannot hear anything: predicting the emotion needs 201 samples with the bundled log-mel
encoder (its 400-sample STFT window, centred) and 400 with the release's wav2vec2 (its first
feature frame's receptive field), and a video needs one frame (docs/PERFORMANCE.md)."""


_SOUNDFILE_FORMATS = frozenset({"WAV", "WAVEX", "RF64", "W64", "FLAC", "AIFF"})
_SOXR_QUALITY = "HQ"
_MAX_ARRAY_CHANNELS = 8


def load_audio(source: str | os.PathLike | np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Load speech as an (N,) float32 mono array at `sample_rate` Hz, samples nominally in [-1, 1].

    Files of any sample rate and channel count are decoded, downmixed by averaging the channels and
    resampled with soxr ("HQ") when their rate differs from `sample_rate`. A 16-bit PCM WAV that is
    already mono at `sample_rate` comes back bit-exactly as `int16 / 32768`.

    Arrays are assumed to be at `sample_rate` already (nothing is resampled): (N,) mono or (N, C)
    with channels last (averaged), float or int16 (divided by 32768).

    Raises `UserInputError` for a missing, empty or undecodable file, a file without an audio
    stream, or audio shorter than MIN_AUDIO_SECONDS (no samples at all included). Silence is
    accepted.
    """
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise UserInputError(f"Audio sample rate must be a positive integer, got {sample_rate!r}.")
    sample_rate = int(sample_rate)
    if isinstance(source, np.ndarray):
        return _long_enough(_array_to_mono(source), sample_rate, "Audio array")
    if not isinstance(source, (str, os.PathLike)):
        raise UserInputError(f"Expected an audio path or a numpy array, got {type(source).__name__} instead.")
    path = require_file(source, "audio")
    decoded = _read_with_soundfile(path)
    if decoded is None:
        decoded = _read_with_av(path)
    mono, rate = decoded
    if mono.size == 0:
        raise UserInputError(f"Could not read audio '{path}': it contains no audio samples.")
    if rate != sample_rate:
        import soxr

        mono = soxr.resample(mono, rate, sample_rate, quality=_SOXR_QUALITY)
    return _long_enough(np.ascontiguousarray(mono, dtype=np.float32), sample_rate, f"Audio '{path}'")


def _long_enough(mono: np.ndarray, sample_rate: int, name: str) -> np.ndarray:
    """`mono` when it lasts at least MIN_AUDIO_SECONDS, else one sentence saying how long it is."""
    needed = math.ceil(MIN_AUDIO_SECONDS * sample_rate)
    if mono.size < needed:
        raise UserInputError(
            f"{name} lasts {1000 * mono.size / sample_rate:.1f} ms ({mono.size} sample{'s' * (mono.size != 1)} "
            f"at {sample_rate} Hz); "
            f"speech must last at least {1000 * MIN_AUDIO_SECONDS:.0f} ms (one video frame)."
        )
    return mono


def _array_to_mono(array: np.ndarray) -> np.ndarray:
    if array.ndim == 2 and 1 <= array.shape[1] <= _MAX_ARRAY_CHANNELS:
        pass
    elif array.ndim != 1:
        raise UserInputError(
            f"Audio array has shape {tuple(array.shape)}; expected (N,) mono or (N, C) with "
            f"at most {_MAX_ARRAY_CHANNELS} channels last."
        )
    if array.dtype == np.int16:
        data = array.astype(np.float32) / np.float32(32768.0)
    elif np.issubdtype(array.dtype, np.floating):
        data = array.astype(np.float32)
    else:
        raise UserInputError(f"Audio array has dtype {array.dtype}; expected float or int16 samples.")
    if data.ndim == 2:
        data = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    if data.size == 0:
        raise UserInputError("Audio array contains no samples.")
    if not np.all(np.isfinite(data)):
        raise UserInputError("Audio array contains NaN or infinite values.")
    return np.array(data, dtype=np.float32, copy=True)


def _downmix(samples: np.ndarray) -> np.ndarray:
    """(N, C) or (N,) float32 -> (N,) float32 by averaging the channels."""
    if samples.ndim == 1:
        return samples
    if samples.shape[1] == 1:
        return samples[:, 0]
    return samples.mean(axis=1, dtype=np.float32)


def _looks_like_pcm_container(path) -> bool:
    """True when the file starts like WAV (RIFF/RF64/BW64/W64), FLAC or AIFF."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(12)
    except OSError:
        return False
    if head[:4] in (b"RIFF", b"RIFX", b"RF64", b"BW64") and head[8:12] == b"WAVE":
        return True
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return True
    return head[:4] in (b"fLaC", b"riff")


def _read_with_soundfile(path) -> tuple[np.ndarray, int] | None:
    """Read WAV/FLAC/AIFF with soundfile; None when soundfile does not handle this file."""
    import soundfile

    if not _looks_like_pcm_container(path):
        return None
    try:
        with soundfile.SoundFile(path) as handle:
            if handle.format not in _SOUNDFILE_FORMATS:
                return None
            samples = handle.read(dtype="float32", always_2d=True)
            rate = int(handle.samplerate)
    except (RuntimeError, soundfile.LibsndfileError, TypeError, ValueError):
        return None
    return _downmix(samples), rate


_INT_SCALES = {"u8": 128.0, "s16": 32768.0, "s32": 2147483648.0, "s64": 9223372036854775808.0}


def _frame_to_mono(frame) -> np.ndarray:
    """One decoded PyAV audio frame -> (n,) float32 mono."""
    data = frame.to_ndarray()
    channels = max(1, len(frame.layout.channels))
    fmt = frame.format.name.rstrip("p")
    # planar: (channels, n); packed: (1, n * channels) interleaved
    data = data.reshape(channels, -1) if frame.format.is_planar else data.reshape(-1, channels).T
    if fmt == "u8":
        data = (data.astype(np.float32) - 128.0) / 128.0
    elif fmt in _INT_SCALES:
        data = (data.astype(np.float64) / _INT_SCALES[fmt]).astype(np.float32)
    else:
        data = data.astype(np.float32)
    return data[0] if channels == 1 else data.mean(axis=0, dtype=np.float32)


def _read_with_av(path) -> tuple[np.ndarray, int]:
    import av
    import soxr

    prefix = f"Could not read audio '{path}'"
    try:
        container = av.open(os.fspath(path), mode="r")
    except PermissionError as exc:
        raise UserInputError(f"{prefix}: permission denied.") from exc
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError) as exc:
        raise UserInputError(f"{prefix}: not an audio or video file FFmpeg can decode.") from exc
    chunks: list[np.ndarray] = []
    rate = 0
    bad_packets = 0
    try:
        with container:
            if not container.streams.audio:
                raise UserInputError(f"{prefix}: the file has no audio stream.")
            stream = container.streams.audio[0]
            declared = _declared_samples(stream)
            for packet in container.demux(stream):
                try:
                    frames = packet.decode()
                except (av.InvalidDataError, av.FFmpegError):
                    bad_packets += 1
                    continue
                for frame in frames:
                    if frame.samples == 0:
                        continue
                    mono = _frame_to_mono(frame)
                    frame_rate = int(frame.sample_rate)
                    if rate == 0:
                        rate = frame_rate
                    elif frame_rate != rate:
                        mono = soxr.resample(mono, frame_rate, rate, quality=_SOXR_QUALITY)
                    chunks.append(mono)
    except UserInputError:
        raise
    except (av.FFmpegError, OSError, ValueError, EOFError) as exc:
        raise UserInputError(f"{prefix}: the audio stream could not be decoded.") from exc
    if not chunks:
        if bad_packets:
            raise UserInputError(f"{prefix}: the audio stream could not be decoded.")
        raise UserInputError(f"{prefix}: it contains no audio samples.")
    mono = np.concatenate(chunks).astype(np.float32, copy=False)
    return _trim_end_padding(mono, rate, declared), rate


def _declared_samples(stream) -> tuple[float, int] | None:
    """(duration in seconds, codec frame size) as the container declares them, if it does."""
    duration, time_base = stream.duration, stream.time_base
    if not duration or not time_base or duration <= 0:
        return None
    return float(duration * time_base), int(getattr(stream.codec_context, "frame_size", 0) or 0)


def _trim_end_padding(mono: np.ndarray, rate: int, declared: tuple[float, int] | None) -> np.ndarray:
    """Drop the encoder padding some decoders leave after the last real sample.

    AAC in mp4 marks its true length in the container (edit list) but the decoder still outputs
    whole 1024-sample frames; when the declared duration is at most two codec frames shorter
    than what was decoded, the surplus is padding and is cut off.
    """
    if declared is None:
        return mono
    seconds, frame_size = declared
    expected = round(seconds * rate)
    surplus = mono.size - expected
    if expected > 0 and 0 < surplus <= 2 * max(1152, frame_size):
        return mono[:expected]
    return mono


def write_wav(path: str | os.PathLike, pcm: np.ndarray, sample_rate: int) -> None:
    """Write (N,) int16 mono samples as a 16-bit PCM WAV (the same bytes libsndfile writes).

    Written with Python's own file I/O, so a refused write is an OSError with its errno (a full
    disk), which libsndfile reports only as 'System error'."""
    import wave

    with wave.open(os.fspath(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(int(sample_rate))
        out.writeframes(np.ascontiguousarray(pcm, dtype="<i2").tobytes())
