"""Speed paths, long audio and streaming (issue #7), on tiny configs.

The batched decoder against the release's decoder, windowed audio features and segmented
emotion against the whole-clip evaluation, chunked streaming against one call, bfloat16.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from floatalk.errors import UserInputError
from floatalk.models import motion_ae
from floatalk.models.audio_encoder import conv_features, first_layer_norm_stats, interpolation_positions
from floatalk.models.layers import Blur
from floatalk.models.motion_ae import channels_last_features
from floatalk.pipeline import FloatPipeline, LongAudio, NormalizedWave, normalize_audio
from floatalk.sampling.sampler import SamplerSettings, sample_motion

SR = 16000


def speech_like(seconds: float, seed: int = 0) -> np.ndarray:
    """A syllable-rate modulated two-tone signal with a little noise: (N,) float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 3.1 * t)
    tone = np.sin(2 * np.pi * 180 * t) + 0.4 * np.sin(2 * np.pi * 1250 * t + np.sin(2 * np.pi * 0.7 * t))
    return (0.3 * env * tone + 0.02 * rng.standard_normal(len(t))).astype(np.float32)


@pytest.fixture()
def image() -> np.ndarray:
    return (np.random.default_rng(1).random((32, 32, 3)) * 255).astype(np.uint8)


# ------------------------------------------------------------------------------------ decoder
def test_fast_blur_equals_blur():
    x = torch.randn(2, 3, 9, 7)
    for blur in (Blur((1, 3, 3, 1), pad=(2, 1), up=2, gain=4.0), Blur((1, 3, 3, 1), pad=(1, 1), gain=4.0)):
        torch.testing.assert_close(blur.forward_fast(x), blur(x), atol=1e-6, rtol=0)
    odd = Blur((1, 3, 3, 1), pad=(2, 1))  # no fast form: falls back to forward, adds the bias
    torch.testing.assert_close(odd.forward_fast(x, torch.ones(3)), odd(x) + 1.0)


@pytest.mark.parametrize("batch", [1, 3])
def test_batched_decoder_matches_release_decoder(batch, tiny_model):
    ae = tiny_model.motion_autoencoder
    with torch.inference_mode():
        s_r, _, feats = ae.encode(torch.rand(1, 3, 32, 32) * 2 - 1)
        styles = s_r + torch.randn(batch, s_r.shape[1]) * 0.1
        exact = ae.decode(styles, feats)
        fast = ae.decode_fast(styles, channels_last_features(feats))
        plain_layout = ae.decode_fast(styles, feats)
    assert fast.dtype == torch.float32 and fast.shape == exact.shape
    torch.testing.assert_close(fast, exact, atol=1e-3, rtol=0)  # the warps amplify rounding
    torch.testing.assert_close(plain_layout, fast, atol=1e-5, rtol=0)


def test_bfloat16_decoder_is_close_and_float32_below_keeps_scales_exact(tiny_model):
    ae = tiny_model.motion_autoencoder
    with torch.inference_mode():
        s_r, _, feats = ae.encode(torch.rand(1, 3, 32, 32) * 2 - 1)
        feats = channels_last_features(feats)
        styles = s_r + torch.randn(2, s_r.shape[1]) * 0.1
        ref = ae.decode_fast(styles, feats)
        bf16 = ae.decode_fast(styles, feats, torch.bfloat16)
        mixed = ae.decode_fast(styles, feats, torch.bfloat16, float32_below=64)  # above 32 px: all float32
    assert bf16.dtype == torch.float32
    assert 0 < (bf16 - ref).abs().mean() < 0.05
    assert torch.equal(mixed, ref)


@pytest.mark.parametrize("rows", [None, slice(0, 2), slice(2, 5)])
def test_large_scales_in_small_groups_keep_every_bit(tiny_model, monkeypatch, rows):
    """The scales that hold most of a decoder pass's memory run a few frames at a time, unseen in the pixels."""
    ae = tiny_model.motion_autoencoder
    with torch.inference_mode():
        s_r, _, feats = ae.encode(torch.rand(1, 3, 32, 32) * 2 - 1)
        feats = channels_last_features(feats)
        styles = s_r + torch.randn(5, s_r.shape[1]) * 0.1
        monkeypatch.setattr(motion_ae, "SPLIT_FROM_PX", 10**6)  # never: the whole batch at every scale
        whole = ae.decode_fast(styles, feats, rows=rows)
        monkeypatch.setattr(motion_ae, "SPLIT_FROM_PX", 16)  # 16 and 32 px in groups of 2
        split = ae.decode_fast(styles, feats, rows=rows)
    assert split.shape == whole.shape == (5 if rows is None else rows.stop - rows.start, 3, 32, 32)
    assert torch.equal(split, whole)


# ---------------------------------------------------------------------------------- long audio
def test_reader_is_the_release_normalization_and_padding():
    wave = speech_like(0.5)
    reader = NormalizedWave(wave, torch.device("cpu"), exact_samples=len(wave))
    norm = torch.from_numpy(normalize_audio(wave))
    assert torch.equal(reader(0, len(wave))[0], norm)
    assert torch.equal(reader(100, len(wave) + 50)[0, -51:], norm[-1].expand(51))
    assert torch.equal(reader(len(wave) + 5, len(wave) + 9)[0], norm[-1].expand(4))
    chunked = NormalizedWave(wave, torch.device("cpu"), exact_samples=0, chunk=1000)  # float64 statistics
    torch.testing.assert_close(chunked(0, len(wave))[0], norm, atol=2e-6, rtol=0)


def test_windowed_conv_features_follow_the_whole_clip_time_mapping(tiny_model):
    """Group-norm statistics of the whole clip, conv frames by position, align_corners=True mapping."""
    enc = tiny_model.audio_encoder
    w2v = enc.wav2vec2
    wave = speech_like(2.0)
    T = 50
    reader = NormalizedWave(wave, torch.device("cpu"), exact_samples=len(wave))
    padded = reader(0, T * 640)
    with torch.inference_mode():
        whole = w2v.feature_extractor(padded)  # (1, C, F)
        stats = first_layer_norm_stats(w2v, reader, T * 640, chunk_frames=1000)
        part = conv_features(w2v, reader, 30, 17, stats)
        torch.testing.assert_close(part, whole[:, :, 30:47], atol=1e-5, rtol=1e-5)
        # A mapping that is not a plain decimation: F conv frames to T' = 37 output frames.
        F_ = whole.shape[-1]
        ref = torch.nn.functional.interpolate(whole, size=37, mode="linear", align_corners=True)
        i0, i1, lam = interpolation_positions(F_, 37, 5, 30)
        mine = whole[:, :, i0] * (1 - lam) + whole[:, :, i1] * lam
        torch.testing.assert_close(mine, ref[:, :, 5:30], atol=1e-6, rtol=0)


def test_windowed_audio_features_match_the_whole_clip(tiny_model):
    """Full context: equal to rounding. Limited context: within the bound documented for the tiny model."""
    wave = speech_like(2.5)

    def features(**long_audio) -> torch.Tensor:
        return FloatPipeline(tiny_model, long_audio=LongAudio(**long_audio)).encode_audio(wave)

    whole = features()  # 63 frames, one pass
    full = features(max_whole_frames=10, core=16, context=1000)
    torch.testing.assert_close(full, whole, atol=1e-5, rtol=0)
    near = features(max_whole_frames=10, core=16, context=16)
    diff = (near - whole).abs()
    assert near.shape == whole.shape
    assert diff.max() < 2e-2 and diff.mean() < 2e-3
    assert diff.max() > 0  # the windowed path really ran


def test_segmented_emotion_matches_the_whole_clip(tiny_model):
    wave = speech_like(2.0)
    whole = FloatPipeline(tiny_model).encode_emotion(wave)
    one = FloatPipeline(tiny_model, long_audio=LongAudio(emotion_segment=10_000)).encode_emotion(wave)
    assert torch.equal(one, whole)
    enc = tiny_model.emotion_encoder
    reader = NormalizedWave(wave, torch.device("cpu"), exact_samples=len(wave))
    with torch.inference_mode():
        single = enc.segmented(reader, len(wave), max_frames=10_000)
        parts = FloatPipeline(tiny_model, long_audio=LongAudio(emotion_segment=40)).encode_emotion(wave)
    torch.testing.assert_close(single, whole, atol=1e-5, rtol=0)
    torch.testing.assert_close(parts.sum(-1), torch.ones(1, 1))
    assert (parts - whole).abs().max() < 0.05


# ----------------------------------------------------------------------------------- streaming
def test_stream_yields_the_frames_of_one_call(tiny_model, image):
    pipe = FloatPipeline(tiny_model)
    wave = speech_like(0.9)
    full = pipe(image, wave, crop=False, seed=4, batch_size=3, nfe=3)
    window = tiny_model.cfg.fmt.window
    parts = list(pipe.stream(image, wave, crop=False, seed=4, batch_size=3, nfe=3, frames_per_step=window))
    assert [len(f) for _, f in parts[:-1]] == [window] * (len(parts) - 1)
    assert np.array_equal(np.concatenate([f for _, f in parts]), full.frames)
    assert torch.equal(torch.cat([m for m, _ in parts]), full.motion)


@pytest.mark.parametrize("batch_size", [3, 5, 8])
def test_streaming_granularity_changes_no_frame(tiny_model, image, batch_size):
    """Frames handed on per decoder batch (the first two alone), in pieces of any size or by
    windows: every frame and latent is the same, bit for bit, as decoding whole batches per window."""
    from floatalk.engine.core import FIRST_FRAMES

    pipe = FloatPipeline(tiny_model)
    wave = speech_like(1.3)  # 33 frames: windows of 8 and a short last one
    kw = {"crop": False, "seed": 6, "batch_size": batch_size, "nfe": 3}
    window = tiny_model.cfg.fmt.window
    opts = pipe.options(**kw)
    conditions = pipe.prepare(image, wave, opts)
    with torch.inference_mode():
        reference = [  # the decoder's batches of each window, whole: how frames were made before
            frames
            for _, shown in pipe.sample_motion(conditions, opts)
            for frames in pipe.decode(conditions.source, shown, batch_size)
        ]
    reference = np.concatenate(reference)
    default = list(pipe.stream(image, wave, **kw))
    sizes = [len(f) for _, f in default]
    assert sizes[0] == min(FIRST_FRAMES, batch_size) and max(sizes) <= batch_size
    assert np.array_equal(np.concatenate([f for _, f in default]), reference)
    motion = torch.cat([m for m, _ in default])
    for step in (1, 2, 7, window, 1000):
        pieces = list(pipe.stream(image, wave, frames_per_step=step, **kw))
        assert [len(f) for _, f in pieces[:-1]] == [step] * (len(pieces) - 1) and 1 <= len(pieces[-1][1]) <= step
        assert np.array_equal(np.concatenate([f for _, f in pieces]), reference)
        assert torch.equal(torch.cat([m for m, _ in pieces]), motion)
    assert np.array_equal(pipe(image, wave, **kw).frames, reference)


@pytest.mark.parametrize("step", [0, -1, 2.5, True, "8"])
def test_stream_refuses_a_bad_granularity(tiny_model, image, step):
    with pytest.raises(UserInputError, match="frames_per_step"):
        next(FloatPipeline(tiny_model).stream(image, speech_like(0.5), crop=False, nfe=3, frames_per_step=step))


def test_long_audio_streams_chunk_by_chunk_with_the_motion_of_one_pass(tiny_model, image):
    """Chunks of audio features are sampled one after the other: same motion as sampling all of wa at once,
    and the first frames arrive after one chunk of audio work."""
    pipe = FloatPipeline(tiny_model, long_audio=LongAudio(max_whole_frames=10, core=16, context=8))
    wave = speech_like(2.0)  # 50 frames: chunks of 16 (two 8-frame windows each)
    enc = tiny_model.audio_encoder
    calls = []
    original = enc.iter_windows

    def counting(*args, **kwargs):
        for chunk in original(*args, **kwargs):
            calls.append(chunk.shape[1])
            yield chunk

    enc.iter_windows = counting
    try:
        stream = pipe.stream(image, wave, crop=False, seed=2, batch_size=5, nfe=3)
        first = next(stream)
        assert calls == [16] and len(first[1]) == 2  # the first two frames come alone
        parts = [first, *stream]
    finally:
        del enc.iter_windows
    assert calls == [16, 16, 16, 2]
    motion = torch.cat([m for m, _ in parts])
    with torch.inference_mode():
        wa = pipe.encode_audio(wave)
        src = pipe.encode_image(image, crop=False)
        we = pipe.encode_emotion(wave)
        sampler = SamplerSettings(nfe=3)
        ref = sample_motion(tiny_model.fmt, wa, src.r_s, we, sampler, torch.Generator().manual_seed(2))
    assert torch.equal(motion, ref[0])
    full = pipe(image, wave, crop=False, seed=2, batch_size=5, nfe=3)
    assert np.array_equal(np.concatenate([f for _, f in parts]), full.frames)


@pytest.mark.parametrize("decode", ["batched", "exact"])
def test_decode_modes_agree(tiny_model, image, decode):
    wave = speech_like(0.5)
    ref = FloatPipeline(tiny_model, decode="exact")(image, wave, crop=False, nfe=3)
    out = FloatPipeline(tiny_model, decode=decode)(image, wave, crop=False, nfe=3)
    assert torch.equal(out.motion, ref.motion)
    assert np.abs(out.frames.astype(int) - ref.frames).max() <= 2


def test_bfloat16_pipeline_runs(tiny_model, image):
    wave = speech_like(0.5)
    ref = FloatPipeline(tiny_model)(image, wave, crop=False, nfe=3)
    pipe = FloatPipeline(tiny_model, dtype=torch.bfloat16, float32_below=0)
    out = pipe(image, wave, crop=False, nfe=3)
    assert out.frames.shape == ref.frames.shape and out.frames.dtype == np.uint8
    assert out.motion.dtype == torch.float32 and torch.isfinite(out.motion).all()
    assert pipe.model.motion_autoencoder.dec.input.input.dtype == torch.float32  # decoder weights stay float32
    with pytest.raises(ValueError, match="decode mode"):
        FloatPipeline(tiny_model, decode="fastest")
