"""Motion auto-encoder (paper section 3.1; LIA-style).

Encoder: image (B, 3, S, S) in [-1, 1] -> identity latent s_r (B, D) and the feature maps
of every scale, plus 20 motion coefficients lambda = fc(s_r). Motion basis: Q = QR(D_w +
1e-8).Q, (D, M) orthonormal; a motion latent is r = Q lambda. Decoder: StyleGAN2 synthesis
from a constant, every layer styled by w = s_r + r_d, which at each scale predicts a flow
and a mask to warp the encoder's feature map of that scale and blend it in.

Two decoder evaluations: `decode` is the release's (per-sample modulated weights, a grouped
convolution), kept for exactness; `decode_fast` modulates activations and runs one
shared-weight convolution per layer for the whole batch (StyleGAN2's non-fused path), in
channels-last layout, optionally with the big convolutions in bfloat16. Flows, masks,
warping and the RGB sum always run in float32 there: warping amplifies any error in the flow.

Letters: B batch, D style dim (512), M motion dim (20), S image size, C channels.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from floatalk.config import MotionAEConfig
from floatalk.models.layers import (
    LRELU_GAIN,
    LRELU_SLOPE,
    Blur,
    ConvLayer,
    EqualConv2d,
    EqualLinear,
    FusedLeakyReLU,
    ModulatedConv2d,
)

# The batched decoder runs the scales of at least SPLIT_FROM_PX pixels SPLIT_ROWS frames at a time
# (`SynthesisDecoder.forward_fast`): less memory, the same pixels and time.
SPLIT_FROM_PX = 256
SPLIT_ROWS = 2


class ResBlock(nn.Module):
    """Two 3x3 convs (the second halves the size) plus a blurred 1x1 skip, summed / sqrt 2."""

    def __init__(self, in_ch: int, out_ch: int, taps: tuple[int, ...]) -> None:
        super().__init__()
        self.conv1 = ConvLayer(in_ch, in_ch, 3, blur_taps=taps)
        self.conv2 = ConvLayer(in_ch, out_ch, 3, downsample=True, blur_taps=taps)
        self.skip = ConvLayer(in_ch, out_ch, 1, downsample=True, activate=False, blur_taps=taps)

    def forward(self, x: Tensor) -> Tensor:
        return (self.conv2(self.conv1(x)) + self.skip(x)) / math.sqrt(2.0)


class AppearanceNet(nn.Module):
    """1x1 conv, log2(S)-2 down-sampling ResBlocks (S -> 4 px), 4x4 conv to a D-vector."""

    def __init__(self, cfg: MotionAEConfig) -> None:
        super().__init__()
        log_size = int(math.log2(cfg.size))
        convs: list[nn.Module] = [ConvLayer(3, cfg.channels(cfg.size), 1, blur_taps=cfg.blur_kernel)]
        in_ch = cfg.channels(cfg.size)
        for i in range(log_size, 2, -1):
            out_ch = cfg.channels(2 ** (i - 1))
            convs.append(ResBlock(in_ch, out_ch, cfg.blur_kernel))
            in_ch = out_ch
        convs.append(EqualConv2d(in_ch, cfg.style_dim, 4, bias=False))
        self.convs = nn.ModuleList(convs)

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """x (B, 3, S, S) -> s_r (B, D), feats from 8 px up to S px (log2(S)-2 maps)."""
        outs = []
        h = x
        for conv in self.convs:
            h = conv(h)
            outs.append(h)
        # outs: S px, S/2, ..., 4 px, 1x1 vector. The decoder consumes 8 px .. S px.
        feats = outs[-3::-1]
        return outs[-1].flatten(1), feats


class MotionEncoder(nn.Module):
    """Appearance network plus the linear motion head (5 EqualLinear, no activations)."""

    def __init__(self, cfg: MotionAEConfig) -> None:
        super().__init__()
        self.net_app = AppearanceNet(cfg)
        d = cfg.style_dim
        self.fc = nn.Sequential(*[EqualLinear(d, d) for _ in range(4)], EqualLinear(d, cfg.motion_dim))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, list[Tensor]]:
        """x (B, 3, S, S) -> (s_r (B, D), lambda (B, M), feature maps)."""
        s_r, feats = self.net_app(x)
        return s_r, self.fc(s_r), feats


class MotionBasis(nn.Module):
    """Learned D x M matrix whose QR factor Q is the orthonormal motion basis."""

    def __init__(self, style_dim: int, motion_dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(style_dim, motion_dim))

    def basis(self) -> Tensor:
        """Q: (D, M) with orthonormal columns."""
        q, _ = torch.linalg.qr(self.weight + 1e-8)
        return q

    def forward(self, coeffs: Tensor) -> Tensor:
        """lambda (..., M) -> r = sum_i lambda_i Q[:, i], (..., D)."""
        q = self.basis()
        # Same reduction order as the release: form lambda_i * Q[:, i] for every i, then sum.
        return (coeffs.unsqueeze(-1) * q.T).sum(dim=-2)


class ConstantInput(nn.Module):
    """The learned 4x4 starting tensor of the synthesis network."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, 4, 4))

    def forward(self, batch: int) -> Tensor:
        return self.input.expand(batch, -1, -1, -1)


class NoiseStrength(nn.Module):
    """StyleGAN2 noise-injection strength. Kept so release checkpoints load strictly; FLOAT
    injects no noise at inference, so the weight never enters the computation."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))


class StyledConv(nn.Module):
    """Modulated 3x3 conv (optionally 2x up) + fused leaky ReLU."""

    def __init__(self, in_ch: int, out_ch: int, style_dim: int, upsample: bool, taps: tuple[int, ...]) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, out_ch, 3, style_dim, upsample=upsample, blur_taps=taps)
        self.noise = NoiseStrength()
        self.activate = FusedLeakyReLU(out_ch)

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        return self.activate(self.conv(x, style))

    def forward_fast(self, x: Tensor, style: Tensor, rows: slice | None = None) -> Tensor:
        """Non-fused evaluation in x's dtype and memory format: x (B, C_in, H, W), style (B, D) float32.

        The demodulation d, the activation bias and the gain sqrt 2 are applied in one pass,
        leaky(z) * g = leaky(g * z) for g > 0, then the leaky ReLU in place. rows: x holds only
        these rows of the style's batch (see `SynthesisDecoder.forward_fast`).
        """
        s, d = self.conv.coefficients(style)
        if rows is not None:
            s, d = s[rows], d[rows]
        out = self.conv.forward_batched(x, s)
        scale = (d * LRELU_GAIN).to(out.dtype)[:, :, None, None]
        bias = (self.activate.bias * LRELU_GAIN).to(out.dtype)
        out = torch.addcmul(bias, out, scale, out=out)
        return F.leaky_relu_(out, LRELU_SLOPE)


class ToRGB(nn.Module):
    """Unmodulated 1x1 conv + leaky ReLU to RGB, plus bias, plus the upsampled previous RGB."""

    def __init__(self, in_ch: int, taps: tuple[int, ...], upsample: bool = True) -> None:
        super().__init__()
        self.conv = ConvLayer(in_ch, 3, 1, blur_taps=taps)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))
        if upsample:
            p = len(taps) - 2
            self.upsample = Blur(taps, pad=((p + 1) // 2 + 1, p // 2), up=2, gain=4.0)

    def forward(self, x: Tensor, skip: Tensor | None = None) -> Tensor:
        out = self.conv(x) + self.bias
        if skip is not None:
            out = out + self.upsample(skip)
        return out

    def project(self, feat: Tensor) -> Tensor:
        """The 1x1 conv (no bias) of an encoder feature map: (n, C, H, W) -> (n, 3, H, W) float32.

        The conv is linear and unmodulated, so conv(grid_sample(feat) * mask) equals
        grid_sample(conv(feat)) * mask: the batched decoder warps this 3-channel projection,
        computed once per source image, instead of C channels per frame.
        """
        conv = self.conv[0]
        return pointwise_conv(feat.float(), conv.scale * conv.weight[:, :, 0, 0])

    def forward_fast(self, projected: Tensor, skip: Tensor | None = None) -> Tensor:
        """projected: the masked, warped `project(feat)` (B, 3, H, W) float32 -> RGB (B, 3, H, W) float32."""
        out = F.leaky_relu(projected + self.conv[1].bias, LRELU_SLOPE) * LRELU_GAIN + self.bias
        if skip is not None:
            out = out + self.upsample.forward_fast(skip)
        return out


class ToFlow(nn.Module):
    """Predicts a flow field and a blend mask, warps the encoder features and blends them in.

    Output channels of the 1x1 modulated conv (no demodulation): 2 flow offsets (tanh) added
    to an identity grid in [-1, 1], 1 mask logit (sigmoid). The raw 3 channels accumulate
    across scales like the RGB skips.
    """

    def __init__(self, in_ch: int, style_dim: int, taps: tuple[int, ...]) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))
        p = len(taps) - 2
        self.upsample = Blur(taps, pad=((p + 1) // 2 + 1, p // 2), up=2, gain=4.0)

    def forward(
        self, x: Tensor, style: Tensor, feat: Tensor, skip: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """x (B, C, H, W), feat (B or 1, C, H, W) -> (masked warp, blended features, raw flow logits)."""
        out = self.conv(x, style) + self.bias
        if skip is not None:
            out = out + self.upsample(skip)
        B, _, H, W = x.shape
        grid = identity_grid(H, W, x.device)
        flow = torch.tanh(out[:, 0:2]).permute(0, 2, 3, 1) + grid.to(out.dtype)  # (B, H, W, 2)
        mask = torch.sigmoid(out[:, 2:3])
        if feat.shape[0] != B:
            feat = feat.expand(B, -1, -1, -1)
        warped = F.grid_sample(feat, flow, mode="bilinear", padding_mode="zeros", align_corners=False) * mask
        return warped, warped + x * (1.0 - mask), out

    def logits_fast(self, x: Tensor, style: Tensor, skip: Tensor | None = None, rows: slice | None = None) -> Tensor:
        """The raw 3-channel output of `forward` (flow offsets, mask logit), float32 (B, 3, H, W).

        x in any dtype and memory format; the 1x1 modulated conv is a batched matmul in x's dtype
        (bfloat16 matmuls accumulate in float32; rounding the 3 outputs costs about 0.2 dB of
        PSNR, converting x to float32 first about 10 % of the bfloat16 decoding time). rows: x
        holds only these rows of the style's batch.
        """
        s = self.conv.modulation(style)  # (B, C)
        if rows is not None:
            s = s[rows]
        weight = (self.conv.scale * self.conv.weight[0, :, :, 0, 0])[None] * s[:, None]  # (B, 3, C)
        out = pointwise_conv(x, weight).float() + self.bias
        if skip is not None:
            out = out + self.upsample.forward_fast(skip)
        return out


def warp_grid(logits: Tensor) -> tuple[Tensor, Tensor]:
    """ToFlow logits (B, 3, H, W) -> sampling grid (B, H, W, 2) and mask (B, 1, H, W), as in `ToFlow.forward`."""
    _, _, H, W = logits.shape
    grid = torch.tanh(logits[:, 0:2]).permute(0, 2, 3, 1) + identity_grid(H, W, logits.device)
    return grid, torch.sigmoid(logits[:, 2:3])


def warp(feat: Tensor, grid: Tensor, mask: Tensor) -> Tensor:
    """grid_sample(feat, grid) * mask in float32, feat (1 or B, C, H, W) -> (B, C, H, W) contiguous."""
    B = grid.shape[0]
    out = F.grid_sample(feat.expand(B, -1, -1, -1), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.mul_(mask)


def pointwise_conv(x: Tensor, weight: Tensor) -> Tensor:
    """1x1 convolution to a few channels as a matmul: x (B, C, H, W), weight (O, C) or (B, O, C) -> (B, O, H, W).

    Reads x in place for both layouts (channels-last is viewed as (B, H*W, C), contiguous as
    (B, C, H*W)); the output is contiguous.
    """
    B, C, H, W = x.shape
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        flat = x.permute(0, 2, 3, 1).reshape(B, H * W, C).transpose(1, 2)  # (B, C, HW) view
    else:
        flat = x.reshape(B, C, H * W)
    out = torch.matmul(weight.to(x.dtype), flat)  # (B, O, HW)
    return out.reshape(B, -1, H, W)


def channels_last_features(feats: list[Tensor]) -> list[Tensor]:
    """Encoder feature maps in float32 channels-last layout, the layout `decode_fast` samples fastest."""
    return [f.float().contiguous(memory_format=torch.channels_last) for f in feats]


def identity_grid(height: int, width: int, device: torch.device) -> Tensor:
    """(1, H, W, 2) grid of (x, y) in [-1, 1], endpoints included (float64 linspace, then float32)."""
    ys = torch.linspace(-1.0, 1.0, height, dtype=torch.float64)
    xs = torch.linspace(-1.0, 1.0, width, dtype=torch.float64)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy], dim=-1).float().unsqueeze(0).to(device)


class SynthesisDecoder(nn.Module):
    """Flow-warping StyleGAN2 synthesis: style (B, D) + encoder features -> image (B, 3, S, S)."""

    def __init__(self, cfg: MotionAEConfig) -> None:
        super().__init__()
        taps = cfg.blur_kernel
        d = cfg.style_dim
        self.direction = MotionBasis(d, cfg.motion_dim)
        c4 = cfg.channels(4)
        self.input = ConstantInput(c4)
        self.conv1 = StyledConv(c4, c4, d, upsample=False, taps=taps)
        # The release defines a 4 px RGB head that its forward pass never uses; kept for loading.
        self.to_rgb1 = ToRGB(c4, taps, upsample=False)
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        self.to_flows = nn.ModuleList()
        in_ch = c4
        for i in range(3, int(math.log2(cfg.size)) + 1):
            out_ch = cfg.channels(2**i)
            self.convs.append(StyledConv(in_ch, out_ch, d, upsample=True, taps=taps))
            self.convs.append(StyledConv(out_ch, out_ch, d, upsample=False, taps=taps))
            self.to_rgbs.append(ToRGB(out_ch, taps))
            self.to_flows.append(ToFlow(out_ch, d, taps))
            in_ch = out_ch

    def forward(self, style: Tensor, feats: list[Tensor], grids: list[Tensor] | None = None) -> Tensor:
        """style (B, D) = s_r + r_d, feats from the encoder (batch B or 1) -> raw image (B, 3, S, S).

        `grids`, when given, receives each scale's sampling grid (B, H, W, 2) from 8 px up (training's
        landmark-flow loss reads them)."""
        x = self.conv1(self.input(style.shape[0]), style)
        rgb: Tensor | None = None
        flow: Tensor | None = None
        for k, feat in enumerate(feats):
            x = self.convs[2 * k](x, style)
            x = self.convs[2 * k + 1](x, style)
            warped, x, flow = self.to_flows[k](x, style, feat, flow)
            if grids is not None:
                grids.append(warp_grid(flow)[0])
            # The RGB skip is taken from the masked warp, not from the blended features.
            rgb = self.to_rgbs[k](warped, rgb)
        assert rgb is not None
        return rgb

    def forward_fast(
        self,
        style: Tensor,
        feats: list[Tensor],
        dtype: torch.dtype = torch.float32,
        float32_below: int = 0,
        rows: slice | None = None,
    ) -> Tensor:
        """Batched non-fused evaluation: style (B, D), feats (batch 1 or B) -> (B, 3, S, S) float32.

        The styled convolutions of every scale of at least `float32_below` pixels run in `dtype`
        (float32, bfloat16 or float16), smaller scales in float32; activations are channels-last.
        The scales of at least SPLIT_FROM_PX pixels run SPLIT_ROWS frames at a time (`_scales`).

        rows: decode only these frames of the batch, (n, 3, S, S), with the same bits as they
        have in the whole batch's result. The BLAS sums a matrix product's rows in an order that
        depends on how many rows there are, so the per-frame style coefficients (small linear
        layers) are computed for the whole batch and sliced; the convolutions, warps and blends
        give each frame the same bits whatever the batch (tests/engine/test_streaming.py).
        """
        style = style.float()
        first = 0 if rows is None else rows.indices(style.shape[0])[0]
        B = style.shape[0] if rows is None else len(range(*rows.indices(style.shape[0])))
        cl = torch.channels_last

        def at(res: int) -> torch.dtype:
            return dtype if res >= float32_below else torch.float32

        x = self.input(B).to(at(4)).contiguous(memory_format=cl)
        x = self.conv1.forward_fast(x, style, rows)
        split = next((k for k, f in enumerate(feats) if f.shape[-1] >= SPLIT_FROM_PX), len(feats))
        rgb, x, flow = self._scales(x, None, None, style, feats, range(split), rows, at)
        if split == len(feats):
            assert rgb is not None
            return rgb
        # The large scales hold most of a pass's memory (activations of B frames at 256 and 512 px)
        # and cost the same per frame in any batch: they run SPLIT_ROWS frames at a time.
        # A single frame convolves with other bits than in a batch (oneDNN picks another kernel):
        # a last group of one joins the group before it.
        starts = list(range(0, B, SPLIT_ROWS))
        if len(starts) > 1 and B - starts[-1] == 1:
            starts.pop()
        parts = []
        for lo, hi in zip(starts, [*starts[1:], B], strict=True):
            sub = slice(first + lo, first + hi)
            part, _, _ = self._scales(
                x[lo:hi], None if rgb is None else rgb[lo:hi], None if flow is None else flow[lo:hi],
                style, feats, range(split, len(feats)), sub, at,
            )  # fmt: skip
            assert part is not None
            parts.append(part)
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def _scales(
        self,
        x: Tensor,
        rgb: Tensor | None,
        flow: Tensor | None,
        style: Tensor,
        feats: list[Tensor],
        scales: range,
        rows: slice | None,
        at: Callable[[int], torch.dtype],
    ) -> tuple[Tensor | None, Tensor, Tensor | None]:
        """`forward_fast`'s scales `scales` for x (n, C, H, W) -> (rgb, x, flow logits) after them.

        Per scale: the flow logits from the 1x1 modulated conv, the RGB skip from the warped
        3-channel projection of the features (`ToRGB.project`), and, except at the last scale
        whose blended features nothing reads, the warped features blended into x."""
        cl = torch.channels_last
        for k in scales:
            feat = feats[k]
            x = x.to(at(feat.shape[-1]))
            x = self.convs[2 * k].forward_fast(x, style, rows)
            x = self.convs[2 * k + 1].forward_fast(x, style, rows)
            flow = self.to_flows[k].logits_fast(x, style, flow, rows)
            grid, mask = warp_grid(flow)
            rgb = self.to_rgbs[k].forward_fast(warp(self.to_rgbs[k].project(feat), grid, mask), rgb)
            if k + 1 < len(feats):
                # grid_sample writes (B, C, H, W) contiguous; blending that with channels-last x
                # directly is several times slower than converting it first.
                warped = warp(feat.float(), grid, mask).to(dtype=x.dtype, memory_format=cl)
                x = torch.addcmul(warped, x.contiguous(memory_format=cl), (1.0 - mask).to(x.dtype))
        return rgb, x, flow


class MotionAutoEncoder(nn.Module):
    """Encoder + motion basis + decoder; `enc` / `dec` names follow the release checkpoint."""

    def __init__(self, cfg: MotionAEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.enc = MotionEncoder(cfg)
        self.dec = SynthesisDecoder(cfg)

    def encode(self, image: Tensor) -> tuple[Tensor, Tensor, list[Tensor]]:
        """image (B, 3, S, S) -> (s_r (B, D), lambda (B, M), feature maps)."""
        return self.enc(image)

    def motion(self, coeffs: Tensor) -> Tensor:
        """lambda (..., M) -> motion latent r (..., D)."""
        return self.dec.direction(coeffs)

    def decode(self, style: Tensor, feats: list[Tensor], grids: list[Tensor] | None = None) -> Tensor:
        """style (B, D) -> raw image (B, 3, S, S) (not clamped); `grids` as in `SynthesisDecoder.forward`."""
        return self.dec(style, feats, grids)

    def decode_fast(
        self,
        style: Tensor,
        feats: list[Tensor],
        dtype: torch.dtype = torch.float32,
        float32_below: int = 0,
        rows: slice | None = None,
    ) -> Tensor:
        """Batched decoder: style (B, D) -> raw image (B, 3, S, S) float32 (not clamped).

        Equal to `decode` up to rounding (float32) or to bfloat16 precision in the convolutions
        of scales >= `float32_below` pixels. Pass `feats` in channels-last layout
        (`channels_last_features`) to avoid converting them on every call. rows: only these
        frames of the batch, bit for bit as in the whole batch (`SynthesisDecoder.forward_fast`).
        """
        return self.dec.forward_fast(style, feats, dtype, float32_below, rows)

    def forward(self, source: Tensor, driving: Tensor) -> Tensor:
        """Self-reconstruction used in training: render `driving`'s motion on `source`'s identity.

        source, driving (B, 3, S, S) -> (B, 3, S, S). Style = s_src + Q lambda_drv.
        """
        s_src, _, feats = self.enc(source)
        _, lam_drv, _ = self.enc(driving)
        return self.dec(s_src + self.motion(lam_drv), feats)
