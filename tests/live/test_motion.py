"""A live step's traced FMT computes what the eager network does, for every window shape."""

from __future__ import annotations

import torch

from floatalk.live.motion import sample_window, traced_fmt
from floatalk.sampling.sampler import SamplerSettings


def test_the_traced_network_matches_the_eager_one_for_each_window_shape(bundled_pipe):
    fmt = bundled_pipe.model.fmt
    fast = traced_fmt(fmt)
    assert traced_fmt(fmt) is fast  # one per loaded model, shared by its sessions
    settings = SamplerSettings(a_cfg_scale=2.0, e_cfg_scale=1.5, nfe=4, method="euler")
    g = torch.Generator().manual_seed(3)
    D, Da, Lp = fmt.cfg.dim_x, fmt.cfg.dim_a, fmt.cfg.prev
    with torch.inference_mode():
        for n in (11, 3, 11):  # a shape seen again reuses its trace; another gets its own
            x0, wa = torch.randn(1, n, D, generator=g), torch.randn(1, n, Da, generator=g)
            r_s, we = torch.randn(1, D, generator=g), torch.softmax(torch.randn(1, 1, fmt.cfg.dim_e, generator=g), -1)
            prev_x, prev_wa = torch.randn(1, Lp, D, generator=g), torch.randn(1, Lp, Da, generator=g)
            eager = sample_window(fmt, x0, wa, r_s, we, prev_x, prev_wa, settings)
            traced = sample_window(fast, x0, wa, r_s, we, prev_x, prev_wa, settings)
            assert traced.shape == eager.shape == (1, n, D)
            assert torch.allclose(traced, eager, atol=1e-4, rtol=1e-4), (traced - eager).abs().max()
    assert len(fast.graphs) >= 2
