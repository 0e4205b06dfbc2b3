"""Precisions of a generation (floatalk.engine.precision): float32, bfloat16, float16 and the fast
path, chosen per call by `GenerateOptions.precision`; the fast path's frames stay within their
documented PSNR of float32's (docs/PERFORMANCE.md) on the parity inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import floatalk.engine.core as core
from floatalk.engine.precision import quantize_linears
from floatalk.errors import UserInputError
from floatalk.evaluation import psnr
from floatalk.pipeline import FloatPipeline

FAST_PSNR_DB = 40.3  # docs/PERFORMANCE.md: the bfloat16 decoder, what fast runs where bfloat16 is native
MARGIN_DB = 3.0  # the figure is one clip's; another machine's kernels round a little differently


def speech(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * 16000)) / 16000
    return (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)


@pytest.fixture
def image() -> np.ndarray:
    return (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)


def test_default_precision_is_the_loaded_one(tiny_model, image):
    pipe = FloatPipeline(tiny_model)
    assert pipe.loaded_precision == "float32" and pipe.precision().fmt is tiny_model.fmt
    out = pipe(image, speech(0.5), crop=False, nfe=3)
    again = pipe(image, speech(0.5), crop=False, nfe=3, precision="float32")
    assert np.array_equal(out.frames, again.frames) and torch.equal(out.motion, again.motion)


def test_another_plain_precision_runs_a_copy_and_leaves_the_model(tiny_model, image):
    pipe = FloatPipeline(tiny_model)
    run = pipe.precision("bfloat16")
    assert run.fmt is not tiny_model.fmt and next(run.fmt.parameters()).dtype == torch.bfloat16
    assert next(tiny_model.fmt.parameters()).dtype == torch.float32 and pipe.precision("bfloat16") is run
    out = pipe(image, speech(0.5), crop=False, nfe=3, precision="bfloat16")
    assert out.frames.dtype == np.uint8 and torch.isfinite(out.motion).all()


@pytest.mark.parametrize("native", [False, True])
def test_fast_uses_the_bfloat16_decoder_only_where_it_is_native(tiny_model, image, monkeypatch, native):
    monkeypatch.setattr(core, "native_bfloat16", lambda: native)
    pipe = FloatPipeline(tiny_model, float32_below=0)  # the tiny model's scales are all under 256 px
    run = pipe.precision("fast")
    assert run.decode_dtype == (torch.bfloat16 if native else torch.float32) and run.fmt is tiny_model.fmt
    out = pipe(image, speech(0.5), crop=False, nfe=3, precision="fast")
    ref = pipe(image, speech(0.5), crop=False, nfe=3)
    assert torch.equal(out.motion, ref.motion)  # the sampler is float32's
    assert np.array_equal(out.frames, ref.frames) != native


def test_a_bad_precision_is_one_sentence(tiny_model, image):
    with pytest.raises(UserInputError, match="precision"):
        FloatPipeline(tiny_model)(image, speech(0.5), crop=False, precision="int4")


def test_quantize_linears_keeps_what_it_is_told_and_the_original(tiny_model):
    fmt = tiny_model.fmt
    q = quantize_linears(fmt, keep=("t_embedder",))
    assert isinstance(q.t_embedder.mlp[0], torch.nn.Linear) and q.t_embedder.mlp[0].weight.dtype == torch.float32
    assert type(q.blocks[0].mlp.fc1).__module__.startswith("torch.ao.nn.quantized")
    assert type(fmt.blocks[0].mlp.fc1) is torch.nn.Linear


@pytest.mark.slow
@pytest.mark.parametrize("native", [False, True])
def test_fast_frames_stay_within_their_documented_psnr_on_the_parity_inputs(
    release_pipe, parity_dir, monkeypatch, native
):
    """The parity clip's first second through the release-size stand-in: fast against float32. With
    native bfloat16 (forced here where the CPU has none) fast decodes in bfloat16; without, it is float32."""
    from floatalk.io.audio import load_audio

    monkeypatch.setattr(core, "native_bfloat16", lambda: native)
    monkeypatch.setattr(release_pipe, "_precisions", {})
    wave = load_audio(parity_dir / "inputs_a" / "audio.wav", sample_rate=16000)[:16000]
    image = parity_dir / "inputs_a" / "image.png"
    ref = release_pipe(image, wave, crop=False, seed=15)
    fast = release_pipe(image, wave, crop=False, seed=15, precision="fast")
    assert torch.equal(fast.motion, ref.motion)
    assert psnr(fast.frames, ref.frames) >= FAST_PSNR_DB - MARGIN_DB
