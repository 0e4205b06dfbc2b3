"""Sampler tests: ODE solvers checked analytically, guidance formula, windows, seeding."""

from __future__ import annotations

import math

import pytest
import torch

from floatalk.sampling.guidance import GuidedField, guided_velocity
from floatalk.sampling.ode import num_steps, solve, time_grid
from floatalk.sampling.sampler import SamplerSettings, iter_motion_windows, sample_motion


class Counter:
    def __init__(self, fn):
        self.fn, self.calls = fn, 0

    def __call__(self, t, x):
        self.calls += 1
        return self.fn(t, x)


def test_euler_keeps_the_release_meaning_of_nfe():
    grid = time_grid("euler", 10)
    assert len(grid) == 10 and grid[0] == 0 and grid[-1] == 1
    # v = 2t: Euler sums h * 2 t_k over the 9 left points = 2 * (1/81) * 36.
    f = Counter(lambda t, x: torch.ones_like(x) * 2 * t)
    x1 = solve(f, torch.zeros(3), "euler", nfe=10)
    assert f.calls == 9
    torch.testing.assert_close(x1, torch.full((3,), 72 / 81))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_euler_is_bit_for_bit_torchdiffeqs(dtype):
    """floatalk's own Euler (no torchdiffeq import on the default path) gives torchdiffeq's bits."""
    from torchdiffeq import odeint

    weight = torch.randn(16, 16, generator=torch.Generator().manual_seed(0)).to(dtype)

    def field(t, x):
        return torch.tanh(x @ weight) * (1 + t) - 0.3 * x

    x0 = torch.randn(2, 5, 16, generator=torch.Generator().manual_seed(1)).to(dtype)
    for nfe in (2, 3, 10, 25):
        grid = time_grid("euler", nfe)
        ours = solve(field, x0, "euler", nfe=nfe)
        theirs = odeint(field, x0, grid, method="euler")[-1]
        assert ours.dtype == x0.dtype and torch.equal(ours, theirs)


def test_midpoint_is_exact_for_linear_time_and_honours_nfe():
    f = Counter(lambda t, x: torch.ones_like(x) * 2 * t)
    x1 = solve(f, torch.ones(2), "midpoint", nfe=10)
    assert f.calls == 2 * num_steps("midpoint", 10) == 8
    torch.testing.assert_close(x1, torch.full((2,), 2.0))


def test_rk4_is_exact_for_cubic_time_and_honours_nfe():
    f = Counter(lambda t, x: torch.ones_like(x) * 4 * t**3)
    x1 = solve(f, torch.zeros(2), "rk4", nfe=9)
    assert f.calls == 4 * num_steps("rk4", 9) == 8
    torch.testing.assert_close(x1, torch.ones(2))


@pytest.mark.parametrize(("method", "order"), [("euler", 1), ("midpoint", 2), ("rk4", 4)])
def test_convergence_order_on_exponential_growth(method, order):
    """dx/dt = x from 1: error against e shrinks like h^order."""
    f = lambda t, x: x  # noqa: E731
    per = {"euler": 1, "midpoint": 2, "rk4": 4}[method]
    e1 = abs(solve(f, torch.ones(1, dtype=torch.float64), method, nfe=4 * per + 1).item() - math.e)
    e2 = abs(solve(f, torch.ones(1, dtype=torch.float64), method, nfe=8 * per + 1).item() - math.e)
    assert math.log2(e1 / e2) == pytest.approx(order, abs=0.35)


def test_invalid_settings_are_rejected():
    with pytest.raises(ValueError, match="unknown ODE method"):
        SamplerSettings(method="dopri5")
    with pytest.raises(ValueError, match="at least 2"):
        SamplerSettings(nfe=1)


def _conditions(fmt, B=1, T=19):
    cfg = fmt.cfg
    torch.manual_seed(1)
    return (
        torch.randn(B, T, cfg.dim_a),
        torch.randn(B, cfg.dim_x),
        torch.softmax(torch.randn(B, 1, cfg.dim_e), -1),
    )


def test_guidance_formula(tiny_model):
    fmt = tiny_model.fmt
    cfg = fmt.cfg
    wa, wr, we = _conditions(fmt, T=cfg.window)
    x = torch.randn(1, cfg.window, cfg.dim_x)
    px, pwa = torch.randn(1, cfg.prev, cfg.dim_x), torch.randn(1, cfg.prev, cfg.dim_a)
    t = torch.tensor([0.4])
    u = fmt(t, x, torch.zeros_like(wa), wr, torch.zeros_like(we), px, pwa)
    a = fmt(t, x, wa, wr, torch.zeros_like(we), px, pwa)
    ae = fmt(t, x, wa, wr, we, px, pwa)
    got = guided_velocity(fmt, t, x, wa, wr, we, px, pwa, a_cfg_scale=2.5, e_cfg_scale=1.5)
    torch.testing.assert_close(got, u + 2.5 * (a - u) + 1.5 * (ae - a), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(guided_velocity(fmt, t, x, wa, wr, we, px, pwa, 1.0, 1.0), ae)
    field = GuidedField(fmt, wa, wr, we, px, pwa, 2.0, 1.0)
    assert field(torch.tensor(0.4), x).shape == x.shape and field.calls == 1


def test_windows_stitch_with_previous_latents_and_audio(tiny_model):
    """Window k is conditioned on the last L' latents and audio frames of window k-1."""
    fmt = tiny_model.fmt
    cfg = fmt.cfg
    L, Lp = cfg.window, cfg.prev
    T = 2 * L + 3  # three windows, the last padded
    wa, wr, we = _conditions(fmt, T=T)
    seen = []
    original = fmt.forward

    def spy(t, x, wa_, wr_, we_, prev_x, prev_wa):
        seen.append((prev_x.clone(), prev_wa.clone(), wa_.clone()))
        return original(t, x, wa_, wr_, we_, prev_x, prev_wa)

    fmt.forward = spy
    try:
        windows = list(iter_motion_windows(fmt, wa, wr, we, SamplerSettings(nfe=3), torch.Generator().manual_seed(0)))
    finally:
        del fmt.forward
    assert [w.shape[1] for w in windows] == [L, L, 3]
    calls = len(seen) // 3
    first, second, third = seen[0], seen[calls], seen[2 * calls]
    assert torch.equal(first[0], torch.zeros_like(first[0])) and torch.equal(first[1], torch.zeros_like(first[1]))
    # Batch of 3 under guidance: row 1 is the fully conditioned one.
    torch.testing.assert_close(second[0][1], windows[0][0, L - Lp :])
    torch.testing.assert_close(second[1][1], wa[0, L - Lp : L])
    torch.testing.assert_close(third[0][1], windows[1][0, L - Lp :])
    # Last window: audio replicate-padded from its final real frame.
    last = third[2][1]
    assert torch.equal(last[:3], wa[0, 2 * L :]) and torch.equal(last[3:], wa[0, -1:].expand(L - 3, -1))


def test_same_seed_same_motion_other_seed_other_motion(tiny_model):
    fmt = tiny_model.fmt
    wa, wr, we = _conditions(fmt)
    s = SamplerSettings(nfe=4)
    a = sample_motion(fmt, wa, wr, we, s, torch.Generator().manual_seed(3))
    b = sample_motion(fmt, wa, wr, we, s, torch.Generator().manual_seed(3))
    c = sample_motion(fmt, wa, wr, we, s, torch.Generator().manual_seed(4))
    assert a.shape == (1, wa.shape[1], fmt.cfg.dim_x)
    assert torch.equal(a, b) and not torch.allclose(a, c)


def test_noise_is_drawn_per_window_in_order(tiny_model):
    """With a field of constant velocity c, each window is its noise carried from t = 0 to 1, noise + c
    (guidance mixes equal velocities into c): window w's noise is the w-th draw."""
    fmt = tiny_model.fmt
    cfg = fmt.cfg
    wa, wr, we = _conditions(fmt, T=2 * cfg.window)
    fmt.forward = lambda t, x, *a: torch.full((x.shape[0], cfg.prev + cfg.window, cfg.dim_x), 0.5)
    try:
        out = sample_motion(fmt, wa, wr, we, SamplerSettings(), torch.Generator().manual_seed(9))
    finally:
        del fmt.forward
    g = torch.Generator().manual_seed(9)
    noise = torch.cat([torch.randn(1, cfg.window, cfg.dim_x, generator=g) for _ in range(2)], dim=1)
    torch.testing.assert_close(out, noise + 0.5, atol=1e-6, rtol=0)
