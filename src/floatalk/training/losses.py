"""Losses for the motion auto-encoder (stage 1).

- L1 reconstruction.
- Multi-scale perceptual loss: L1 between features of a VGG19-style network (relu1_1, relu2_1,
  relu3_1, relu4_1) at 1, 1/2 and 1/4 scale. Supply ImageNet VGG19 weights with `vgg_weights`
  (a state dict with torchvision's `features.N.weight` keys); without them a documented
  substitute is used: the same layout at a quarter of the width with fixed random weights
  (seeded, never trained), a random-feature perceptual loss that needs no download.
- Region terms: extra L1 on the eye band and the mouth box of the 1.6x face crop (fixed
  relative boxes; the crop puts the eyes near 40 % and the mouth near 70 % of the height).
- StyleGAN2 non-saturating adversarial loss with lazy R1 on real images.
- Landmark flow: where data gives per-frame landmarks (the synthetic world does), the decoder's
  warp at each driving landmark should sample the source at that landmark.

Letters: B batch, S image size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

VGG_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512)
TAPS = (1, 6, 11, 20)  # indices of relu1_1, relu2_1, relu3_1, relu4_1 in torchvision's vgg19.features
EYES = (0.30, 0.50, 0.18, 0.82)  # (top, bottom, left, right) as fractions of the crop
MOUTH = (0.60, 0.85, 0.28, 0.72)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class PerceptualNet(nn.Module):
    """VGG19 features up to relu4_1; frozen. width_div > 1 narrows it (random-feature substitute)."""

    def __init__(self, vgg_weights: dict[str, Tensor] | None = None, width_div: int = 4, seed: int = 1234) -> None:
        super().__init__()
        div = 1 if vgg_weights is not None else width_div
        layers: list[nn.Module] = []
        c_in = 3
        for item in VGG_LAYOUT:
            if item == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                c_out = int(item) // div
                layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU()]
                c_in = c_out
        self.features = nn.Sequential(*layers)
        if vgg_weights is not None:
            own = {k: v for k, v in vgg_weights.items() if k.startswith("features.") and int(k.split(".")[1]) <= 20}
            self.load_state_dict(own, strict=True)
        else:
            g = torch.Generator().manual_seed(seed)
            for m in self.features:
                if isinstance(m, nn.Conv2d):
                    nn.init.normal_(m.weight, std=(2.0 / (m.in_channels * 9)) ** 0.5, generator=g)
                    nn.init.zeros_(m.bias)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False).eval()

    def forward(self, x: Tensor) -> list[Tensor]:
        """x (B, 3, S, S) in [-1, 1] -> feature maps at the four taps."""
        h = ((x + 1) / 2 - self.mean) / self.std
        out = []
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in TAPS:
                out.append(h)
        return out


def perceptual_loss(net: PerceptualNet, fake: Tensor, real: Tensor, scales: int = 3) -> Tensor:
    """Mean L1 between features of fake and real at `scales` image scales."""
    total = fake.new_zeros(())
    for s in range(scales):
        if s:
            fake, real = F.avg_pool2d(fake, 2), F.avg_pool2d(real, 2)
        for a, b in zip(net(fake), net(real)):
            total = total + (a - b).abs().mean()
    return total / scales


def region_l1(fake: Tensor, real: Tensor, box: tuple[float, float, float, float]) -> Tensor:
    S = fake.shape[-1]
    t, b, lft, r = (round(v * S) for v in box)
    return (fake[..., t:b, lft:r] - real[..., t:b, lft:r]).abs().mean()


def generator_adv_loss(fake_logits: Tensor) -> Tensor:
    """Non-saturating: softplus(-D(G(z)))."""
    return F.softplus(-fake_logits).mean()


def discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    return F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()


def r1_penalty(disc: nn.Module, real: Tensor) -> Tensor:
    """||grad_x D(x)||^2 on real images, mean over the batch."""
    real = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(disc(real).sum(), real, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def landmark_flow_loss(grids: list[Tensor], marks_src: Tensor, marks_drv: Tensor) -> Tensor:
    """Mean distance between where the decoder's warp samples at each driving landmark and where
    that landmark is in the source, averaged over scales (a sparse flow supervision).

    grids: the per-scale sampling grids (B, H, W, 2) of `MotionAutoEncoder.decode`; marks_src,
    marks_drv: (B, L, 2) landmark (x, y) in grid_sample coordinates ([-1, 1], outer pixel edges).
    The output pixel at a driving landmark should read the source's feature at the same landmark;
    points outside either crop are left out. Returns a scalar in those coordinates (0 if none)."""
    inside = ((marks_src.abs() < 1) & (marks_drv.abs() < 1)).all(dim=-1).float()  # (B, L)
    total = marks_src.new_zeros(())
    for grid in grids:
        at = F.grid_sample(grid.permute(0, 3, 1, 2), marks_drv.unsqueeze(2).to(grid.dtype), align_corners=False)
        err = ((at.squeeze(-1).transpose(1, 2).float() - marks_src).pow(2).sum(-1) + 1e-8).sqrt()  # (B, L)
        total = total + (err * inside).sum() / inside.sum().clamp(min=1.0)
    return total / max(1, len(grids))
