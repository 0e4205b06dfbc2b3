"""Windowed motion sampling (paper section 3.4).

The T frames are generated in ceil(T / L) non-overlapping windows of L = 50. Window 0 gets
zeros as previous latents and previous audio; window k gets the last L' = 10 latents of
window k-1's result and the last L' audio features of window k-1. The last window's audio
features are replicate-padded to L and the result is cut back to T.

Seeding contract: window w's initial noise x0 is the w-th draw of randn(B, L, Dx) from the
given CPU generator, drawn in window order, nothing else drawn from it (matches the release
run after torch.manual_seed(seed)).

Letters: B batch, T frames, L window, L' previous frames, Dx motion dim, Da audio dim, E emotions.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from floatalk.models.fmt import FlowMatchingTransformer
from floatalk.sampling.guidance import GuidedField
from floatalk.sampling.ode import METHODS, num_steps, solve


@dataclass(frozen=True)
class SamplerSettings:
    """How motion is sampled."""

    a_cfg_scale: float = 2.0  # audio guidance scale
    e_cfg_scale: float = 1.0  # emotion guidance scale (on top of audio)
    nfe: int = 10  # Euler: time-grid points (nfe - 1 evaluations per window), see floatalk.sampling.ode
    method: str = "euler"  # euler | midpoint | rk4

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown ODE method {self.method!r}; choose one of: {', '.join(METHODS)}")
        num_steps(self.method, self.nfe)


def iter_motion_windows(
    fmt: FlowMatchingTransformer,
    wa: Tensor,
    r_s: Tensor,
    we: Tensor,
    settings: SamplerSettings,
    generator: torch.Generator,
    start_window: int = 0,
    prev_x: Tensor | None = None,
    prev_wa: Tensor | None = None,
    frame_offset: int = 0,
    e_scales: Tensor | None = None,
) -> Iterator[Tensor]:
    """Yield the motion latents of each window in order: (B, n_w, Dx), n_w = L except the last.

    wa (B, T, Da) audio features, r_s (B, Dx) reference motion, we (B, 1, E) emotion, or
    (B, T_all, E) one emotion vector per frame of the whole clip, indexed from `frame_offset`
    (the clip frame of wa's first frame; the context frames of a window take the emotion of the
    frames they are). e_scales: None (settings.e_cfg_scale) or (T_all,) per-frame emotion
    guidance, indexed the same way. `start_window`, `prev_x`, `prev_wa` let a caller continue a
    sequence (streaming).
    """
    cfg = fmt.cfg
    L, Lp = cfg.window, cfg.prev
    B, T, _ = wa.shape
    dtype, device = wa.dtype, wa.device
    if prev_x is None:
        prev_x = torch.zeros(B, Lp, cfg.dim_x, dtype=dtype, device=device)
    if prev_wa is None:
        prev_wa = torch.zeros(B, Lp, cfg.dim_a, dtype=dtype, device=device)
    per_frame = we.shape[1] > 1 or e_scales is not None
    n_windows = -(-T // L)
    for w in range(start_window, n_windows):
        x0 = torch.randn(B, L, cfg.dim_x, generator=generator).to(device=device, dtype=dtype)
        wa_w = wa[:, w * L : (w + 1) * L]
        n_valid = wa_w.shape[1]
        if n_valid < L:
            # Replicate the last audio frame to fill the window (release behaviour).
            wa_w = F.pad(wa_w.transpose(1, 2), (0, L - n_valid), mode="replicate").transpose(1, 2)
        we_w, e_cfg = we, settings.e_cfg_scale
        if per_frame:
            # The window's tokens are frames first - Lp .. first + L - 1 of the clip (clamped to it).
            first = frame_offset + w * L
            index = torch.arange(first - Lp, first + L).clamp(0, None)
            if we.shape[1] > 1:
                we_w = we[:, index.clamp(max=we.shape[1] - 1)].to(dtype)
            if e_scales is not None:
                e_cfg = e_scales[index.clamp(max=len(e_scales) - 1)].to(device=device, dtype=dtype).view(1, -1, 1)
        field = GuidedField(fmt, wa_w, r_s, we_w, prev_x, prev_wa, settings.a_cfg_scale, e_cfg)
        x1 = solve(field, x0, settings.method, settings.nfe)  # (B, L, Dx)
        prev_x, prev_wa = x1[:, L - Lp :], wa_w[:, L - Lp :]
        yield x1[:, :n_valid]


def sample_motion(
    fmt: FlowMatchingTransformer,
    wa: Tensor,
    r_s: Tensor,
    we: Tensor,
    settings: SamplerSettings,
    generator: torch.Generator,
) -> Tensor:
    """All T motion latents r_d: (B, T, Dx). Arguments as in `iter_motion_windows`."""
    return torch.cat(list(iter_motion_windows(fmt, wa, r_s, we, settings, generator)), dim=1)
