"""StyleGAN2 discriminator: residual down-sampling blocks, minibatch standard deviation, linear head."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from floatalk.config import MotionAEConfig
from floatalk.models.layers import ConvLayer, EqualLinear, fused_leaky_relu
from floatalk.models.motion_ae import ResBlock


class Discriminator(nn.Module):
    """Image (B, 3, S, S) in [-1, 1] -> realism logit (B, 1). Channels follow the motion AE config."""

    def __init__(self, cfg: MotionAEConfig, stddev_group: int = 4) -> None:
        super().__init__()
        taps = cfg.blur_kernel
        blocks: list[nn.Module] = [ConvLayer(3, cfg.channels(cfg.size), 1, blur_taps=taps)]
        in_ch = cfg.channels(cfg.size)
        for i in range(int(math.log2(cfg.size)), 2, -1):
            out_ch = cfg.channels(2 ** (i - 1))
            blocks.append(ResBlock(in_ch, out_ch, taps))
            in_ch = out_ch
        self.blocks = nn.Sequential(*blocks)
        self.stddev_group = stddev_group
        self.final_conv = ConvLayer(in_ch + 1, in_ch, 3, blur_taps=taps)
        self.fc1 = EqualLinear(in_ch * 16, in_ch)
        self.fc1_bias = nn.Parameter(torch.zeros(in_ch))
        self.fc2 = EqualLinear(in_ch, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.blocks(x)  # (B, C, 4, 4)
        B, C, H, W = h.shape
        g = min(B, self.stddev_group)
        while B % g:
            g -= 1
        # Minibatch stddev: one extra channel with the mean feature std within groups of g samples.
        y = h.view(g, B // g, 1, C, H, W)
        y = torch.sqrt(y.var(0, unbiased=False) + 1e-8).mean([2, 3, 4], keepdim=True).squeeze(2)  # (B/g, 1, 1, 1)
        y = y.repeat(g, 1, H, W)
        h = self.final_conv(torch.cat([h, y], 1)).flatten(1)
        return self.fc2(fused_leaky_relu(self.fc1(h), self.fc1_bias))
