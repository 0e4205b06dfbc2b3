"""Flow matching transformer (paper section 3.3): the vector-field predictor v(x, t | c).

A window of L motion latents is generated with L' previous latents as context (L' + L
tokens). Tokens: Linear(Dx -> Dh)(cat[prev_x, x]) + a fixed interleaved sin/cos position
table. Frame-wise condition c_l = Linear(Dx + Da + E -> Dh)(cat[r_s, wa_l, we]) + t_emb(t).
DiT blocks with adaLN-Zero applied per frame (each token has its own shift/scale/gate) and
attention restricted to a band |i - j| <= 2. Output: frame-wise adaLN + Linear(Dh -> Dx).

Letters: B batch, L window, L' previous frames, N = L' + L tokens, Dx motion dim,
Da audio dim, E emotions, Dh hidden size.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from floatalk.config import FMTConfig


def sinusoid_table(n_pos: int, dim: int) -> Tensor:
    """(n_pos, dim) table, interleaved: column 2i = sin(p / 10000^(2i/dim)), 2i+1 = cos(same angle).

    Angles are computed in float64 and rounded to float32 before sin/cos (release layout).
    """
    expo = np.array([2 * (j // 2) / dim for j in range(dim)], dtype=np.float64)
    angle = torch.from_numpy((np.arange(n_pos, dtype=np.float64)[:, None] / 10000.0**expo).astype(np.float32))
    table = angle.clone()
    table[:, 0::2] = torch.sin(angle[:, 0::2])
    table[:, 1::2] = torch.cos(angle[:, 1::2])
    return table


def band_mask(n: int, band: int) -> Tensor:
    """(n, n) bool, True where token i may attend to token j: |i - j| <= band."""
    idx = torch.arange(n)
    return (idx[:, None] - idx[None, :]).abs() <= band


def modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """Frame-wise adaptive LayerNorm modulation: x * (1 + scale) + shift, all (B, N, D)."""
    return x * (1 + scale) + shift


class TimestepEmbedder(nn.Module):
    """Flow time t in [0, 1] -> (B, Dh): sinusoidal features (cos half first) then a 2-layer MLP."""

    def __init__(self, hidden: int, freq_dim: int = 256) -> None:
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

    def features(self, t: Tensor) -> Tensor:
        """t (B,) -> (B, freq_dim)."""
        half = self.freq_dim // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
        args = t[:, None].float() * freqs[None]
        return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)

    def forward(self, t: Tensor) -> Tensor:
        return self.mlp(self.features(t).to(self.mlp[0].weight.dtype))


class SequenceEmbed(nn.Module):
    """Per-frame linear embedding of motion latents (B, N, Dx) -> (B, N, Dh)."""

    def __init__(self, dim_in: int, hidden: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim_in, hidden)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x)


class BandAttention(nn.Module):
    """Multi-head self-attention with a boolean attention mask (True = may attend)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # each (B, heads, N, C / heads)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.proj(out.transpose(1, 2).reshape(B, N, C))


class Mlp(nn.Module):
    """fc1 -> tanh-approximated GELU -> fc2."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class FMTBlock(nn.Module):
    """DiT block with frame-wise adaLN-Zero: 6 modulation vectors per token from c."""

    def __init__(self, hidden: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.attn = BandAttention(hidden, heads)
        self.norm2 = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(hidden, int(hidden * mlp_ratio))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 6 * hidden))

    def forward(self, x: Tensor, c: Tensor, mask: Tensor) -> Tensor:
        """x, c (B, N, Dh) -> (B, N, Dh)."""
        shift1, scale1, gate1, shift2, scale2, gate2 = self.adaLN_modulation(c).chunk(6, dim=-1)
        x = x + gate1 * self.attn(modulate(self.norm1(x), shift1, scale1), mask)
        return x + gate2 * self.mlp(modulate(self.norm2(x), shift2, scale2))


class FinalLayer(nn.Module):
    """Frame-wise adaLN (shift, scale) then Linear(Dh -> Dx)."""

    def __init__(self, hidden: int, dim_out: int) -> None:
        super().__init__()
        self.norm_final = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 2 * hidden))
        self.linear = nn.Linear(hidden, dim_out)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=-1)
        return self.linear(modulate(self.norm_final(x), shift, scale))


class FlowMatchingTransformer(nn.Module):
    """v = fmt(t, x, wa, wr, we, prev_x, prev_wa): the predicted velocity for all N tokens."""

    def __init__(self, cfg: FMTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        n = cfg.prev + cfg.window
        self.x_embedder = SequenceEmbed(cfg.dim_x, cfg.hidden)
        self.pos_embed = nn.Parameter(sinusoid_table(n, cfg.hidden).unsqueeze(0), requires_grad=False)
        self.t_embedder = TimestepEmbedder(cfg.hidden, cfg.t_freq_dim)
        self.c_embedder = nn.Linear(cfg.dim_x + cfg.dim_a + cfg.dim_e, cfg.hidden)
        self.blocks = nn.ModuleList(FMTBlock(cfg.hidden, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth))
        self.decoder = FinalLayer(cfg.hidden, cfg.dim_x)
        self.register_buffer("attn_mask", band_mask(n, cfg.attention_band), persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """DiT initialisation: xavier linears, zero biases, zero adaLN and output layers (adaLN-Zero)."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.t_embedder.mlp[0].weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[2].weight, std=0.02)
        for layer in [*(b.adaLN_modulation[1] for b in self.blocks), self.decoder.adaLN_modulation[1]]:
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        nn.init.zeros_(self.decoder.linear.weight)
        nn.init.zeros_(self.decoder.linear.bias)

    def forward(
        self,
        t: Tensor,
        x: Tensor,
        wa: Tensor,
        wr: Tensor,
        we: Tensor,
        prev_x: Tensor,
        prev_wa: Tensor,
    ) -> Tensor:
        """Velocity for every token.

        t (B,) or (1,) flow time; x (B, L, Dx) noisy latents; wa (B, L, Da) audio features;
        wr (B, Dx) reference motion r_s; we (B, 1, E) emotion; prev_x (B, L', Dx) and
        prev_wa (B, L', Da) context. Returns (B, L' + L, Dx); the first L' rows are context.
        A window shorter than cfg.window (a live session's) takes the first L' + L positions
        and the band mask cut to them; a full window is the release's computation.
        """
        x = torch.cat([prev_x, x], dim=1)
        wa = torch.cat([prev_wa, wa], dim=1)
        B, N, _ = x.shape
        h = self.x_embedder(x) + self.pos_embed[:, :N].to(x.dtype)
        cond = torch.cat([wr.unsqueeze(1).expand(B, N, -1), wa, we.expand(B, N, -1)], dim=-1)
        c = self.t_embedder(t).unsqueeze(1) + self.c_embedder(cond)  # (B, N, Dh)
        mask = self.attn_mask[:N, :N]
        for block in self.blocks:
            h = block(h, c, mask)
        return self.decoder(h, c)
