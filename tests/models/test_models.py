"""Fast tests of every model part on tiny configs."""

from __future__ import annotations

import math

import pytest
import torch

from floatalk.config import EMOTIONS, FloatConfig, MotionAEConfig
from floatalk.models.audio_encoder import frame_count, pad_to_frames
from floatalk.models.emotion_encoder import emotion_index
from floatalk.models.fmt import band_mask, sinusoid_table
from floatalk.models.layers import Blur, ModulatedConv2d
from floatalk.models.motion_ae import MotionAutoEncoder, identity_grid


def test_release_channel_layout():
    cfg = MotionAEConfig()
    assert [cfg.channels(2**i) for i in range(2, 10)] == [512, 512, 512, 512, 256, 128, 64, 32]


def test_motion_autoencoder_shapes():
    cfg = FloatConfig.tiny(size=32).motion_ae
    ae = MotionAutoEncoder(cfg).eval()
    img = torch.rand(2, 3, 32, 32) * 2 - 1
    s_r, lam, feats = ae.encode(img)
    assert s_r.shape == (2, cfg.style_dim) and lam.shape == (2, cfg.motion_dim)
    assert [f.shape[-1] for f in feats] == [8, 16, 32]
    assert [f.shape[1] for f in feats] == [cfg.channels(r) for r in (8, 16, 32)]
    out = ae.decode(s_r + ae.motion(lam), feats)
    assert out.shape == (2, 3, 32, 32) and torch.isfinite(out).all()
    assert ae(img, img.flip(0)).shape == (2, 3, 32, 32)


def test_decoder_batch_matches_single_frames_with_shared_features():
    ae = MotionAutoEncoder(FloatConfig.tiny(size=32).motion_ae).eval()
    s_r, _, feats = ae.encode(torch.rand(1, 3, 32, 32) * 2 - 1)
    styles = s_r + torch.randn(3, s_r.shape[1]) * 0.1
    batched = ae.decode(styles, feats)
    single = torch.cat([ae.decode(s[None], feats) for s in styles])
    torch.testing.assert_close(batched, single, atol=1e-3, rtol=0)  # warping amplifies rounding
    assert not torch.allclose(batched[0], batched[1])


def test_motion_basis_is_orthonormal_and_linear():
    ae = MotionAutoEncoder(MotionAEConfig(size=8, style_dim=64, motion_dim=20, channel_base=64, channel_max=8))
    q = ae.dec.direction.basis()
    assert q.shape == (64, 20)
    torch.testing.assert_close(q.T @ q, torch.eye(20), atol=1e-5, rtol=0)
    lam = torch.randn(5, 20)
    torch.testing.assert_close(ae.motion(lam), lam @ q.T, atol=1e-5, rtol=1e-5)
    # Coefficients are recovered by projecting on the basis.
    torch.testing.assert_close(ae.motion(lam) @ q, lam, atol=1e-5, rtol=1e-5)


def test_identity_grid_spans_minus_one_to_one():
    g = identity_grid(4, 6, torch.device("cpu"))
    assert g.shape == (1, 4, 6, 2)
    assert g[0, 0, 0].tolist() == [-1.0, -1.0] and g[0, -1, -1].tolist() == [1.0, 1.0]
    assert g[0, 0, 1, 0] > g[0, 0, 0, 0] and g[0, 1, 0, 1] > g[0, 0, 0, 1]  # x along width, y along height


def test_blur_preserves_a_constant_and_upsamples():
    x = torch.full((1, 2, 8, 8), 3.0)
    down = Blur((1, 3, 3, 1), pad=(2, 1))(x)
    assert down.shape == (1, 2, 8, 8)
    assert torch.allclose(down[..., 2:-2, 2:-2], x[..., 2:-2, 2:-2])
    up = Blur((1, 3, 3, 1), pad=(2, 1), up=2, gain=4.0)(x)
    assert up.shape == (1, 2, 16, 16)
    assert torch.allclose(up[..., 3:-3, 3:-3], torch.full_like(up[..., 3:-3, 3:-3], 3.0))


def test_modulated_conv_demodulation_normalises_weights():
    conv = ModulatedConv2d(4, 6, 3, style_dim=8, upsample=True)
    out = conv(torch.randn(2, 4, 5, 5), torch.randn(2, 8))
    assert out.shape == (2, 6, 10, 10)
    # With demodulation, scaling the style does not change the output.
    conv2 = ModulatedConv2d(4, 6, 3, style_dim=8)
    x, s = torch.randn(1, 4, 5, 5), torch.randn(1, 8)
    with torch.no_grad():
        conv2.modulation.bias.zero_()
    torch.testing.assert_close(conv2(x, s), conv2(x, 3 * s), atol=1e-5, rtol=1e-4)


def test_band_mask_and_position_table():
    m = band_mask(6, 2)
    assert m[0].tolist() == [True, True, True, False, False, False]
    assert m[3].tolist() == [False, True, True, True, True, True]
    table = sinusoid_table(60, 1024)
    assert table.shape == (60, 1024)
    p, j = 7, 10
    angle = p / 10000 ** (2 * (j // 2) / 1024)
    assert math.isclose(table[p, j].item(), math.sin(angle), abs_tol=1e-6)
    assert math.isclose(table[p, j + 1].item(), math.cos(angle), abs_tol=1e-6)


def test_fmt_attention_is_banded(tiny_model):
    """Changing a far-away token leaves a token's output unchanged after one block, not after two."""
    fmt = tiny_model.fmt
    cfg = fmt.cfg
    B, L, Lp = 1, cfg.window, cfg.prev
    x = torch.randn(B, L, cfg.dim_x)
    args = dict(
        wa=torch.randn(B, L, cfg.dim_a),
        wr=torch.randn(B, cfg.dim_x),
        we=torch.softmax(torch.randn(B, 1, cfg.dim_e), -1),
        prev_x=torch.randn(B, Lp, cfg.dim_x),
        prev_wa=torch.randn(B, Lp, cfg.dim_a),
    )
    t = torch.tensor([0.3])
    out = fmt(t, x, **args)
    assert out.shape == (B, Lp + L, cfg.dim_x)
    x2 = x.clone()
    x2[:, -1] += 5.0  # last token
    out2 = fmt(t, x2, **args)
    changed = (out2 - out).abs().amax(-1)[0] > 1e-6
    n = Lp + L
    reach = cfg.depth * cfg.attention_band  # receptive field after `depth` banded blocks
    assert not changed[: n - 1 - reach].any()
    assert changed[n - 1 - reach :].all()


def test_fmt_is_pure(tiny_model):
    fmt = tiny_model.fmt
    cfg = fmt.cfg
    x = torch.randn(2, cfg.window, cfg.dim_x)
    wa = torch.randn(2, cfg.window, cfg.dim_a)
    copies = x.clone(), wa.clone()
    fmt.train()
    fmt(
        torch.rand(2),
        x,
        wa,
        torch.randn(2, cfg.dim_x),
        torch.zeros(2, 1, 7),
        torch.zeros(2, cfg.prev, 32),
        torch.zeros(2, cfg.prev, 32),
    )
    assert torch.equal(x, copies[0]) and torch.equal(wa, copies[1])


def test_audio_encoder_shapes_and_padding(tiny_model):
    enc = tiny_model.audio_encoder
    for n in (640 * 7, 640 * 7 + 1, 4000):
        T = frame_count(n)
        wa = enc(torch.randn(2, n), T)
        assert wa.shape == (2, T, 32)
    a = torch.arange(5.0)[None]
    assert pad_to_frames(a, 2, 4).tolist() == [[0, 1, 2, 3, 4, 4, 4, 4]]
    assert frame_count(51123) == 80 and frame_count(640) == 1 and frame_count(641) == 2


def test_emotion_encoder_gives_probabilities(tiny_model):
    we = tiny_model.emotion_encoder(torch.randn(2, 8000))
    assert we.shape == (2, 1, 7)
    torch.testing.assert_close(we.sum(-1), torch.ones(2, 1))
    onehot = tiny_model.emotion_encoder.one_hot("Happy")
    assert onehot.tolist() == [[[0, 0, 0, 1, 0, 0, 0]]]
    assert [emotion_index(e) for e in EMOTIONS] == list(range(7))
    with pytest.raises(ValueError, match="choose one of"):
        emotion_index("bored")


def test_config_round_trip():
    cfg = FloatConfig.tiny()
    assert FloatConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown"):
        FloatConfig.from_dict({**cfg.to_dict(), "bogus": 1})
