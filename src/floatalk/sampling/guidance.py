"""Incremental classifier-free guidance around the FMT (paper eq. 6).

One batch of three passes: u = v(no audio, no emotion), a = v(audio, no emotion),
ae = v(audio, emotion); the null condition is zeros, while r_s, prev_x and prev_wa are
always kept. v = u + a_cfg * (a - u) + e_cfg * (ae - a). With both scales 1 this equals
ae, computed as a single conditional pass.

Letters: B batch, L window, L' previous frames, N = L' + L, Dx motion dim, Da audio dim, E emotions.
"""

from __future__ import annotations

import torch
from torch import Tensor

from floatalk.models.fmt import FlowMatchingTransformer


def guided_velocity(
    fmt: FlowMatchingTransformer,
    t: Tensor,
    x: Tensor,
    wa: Tensor,
    wr: Tensor,
    we: Tensor,
    prev_x: Tensor,
    prev_wa: Tensor,
    a_cfg_scale: float = 2.0,
    e_cfg_scale: float | Tensor = 1.0,
) -> Tensor:
    """Guided vector field for all N tokens: (B, N, Dx). Shapes as in `FlowMatchingTransformer.forward`;
    we may be (B, N, E) per token, and e_cfg_scale a (1, N, 1) tensor of per-token scales."""
    if a_cfg_scale == 1.0 and isinstance(e_cfg_scale, float | int) and e_cfg_scale == 1.0:
        return fmt(t, x, wa, wr, we, prev_x, prev_wa)
    null_wa, null_we = torch.zeros_like(wa), torch.zeros_like(we)
    out = fmt(
        t,
        x.repeat(3, 1, 1),
        torch.cat([null_wa, wa, wa]),
        wr.repeat(3, 1),
        torch.cat([null_we, we, null_we]),
        prev_x.repeat(3, 1, 1),
        prev_wa.repeat(3, 1, 1),
    )
    u, ae, a = out.chunk(3, dim=0)
    return u + a_cfg_scale * (a - u) + e_cfg_scale * (ae - a)


class GuidedField:
    """The ODE right-hand side for one window: (t, x (B, L, Dx)) -> velocity (B, L, Dx).

    Holds the window's conditions; counts its evaluations in `calls`.
    """

    def __init__(
        self,
        fmt: FlowMatchingTransformer,
        wa: Tensor,
        wr: Tensor,
        we: Tensor,
        prev_x: Tensor,
        prev_wa: Tensor,
        a_cfg_scale: float,
        e_cfg_scale: float | Tensor,
    ) -> None:
        self.fmt, self.wa, self.wr, self.we = fmt, wa, wr, we
        self.prev_x, self.prev_wa = prev_x, prev_wa
        self.a_cfg_scale, self.e_cfg_scale = a_cfg_scale, e_cfg_scale
        self.calls = 0

    def __call__(self, t: Tensor, x: Tensor) -> Tensor:
        self.calls += 1
        # The network sees t as a 1-element tensor (broadcast over the batch), as in the release.
        v = guided_velocity(
            self.fmt,
            t.reshape(1),
            x,
            self.wa,
            self.wr,
            self.we,
            self.prev_x,
            self.prev_wa,
            self.a_cfg_scale,
            self.e_cfg_scale,
        )
        return v[:, self.prev_x.shape[1] :]
