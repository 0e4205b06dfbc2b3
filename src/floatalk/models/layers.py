"""StyleGAN2 building blocks used by the motion auto-encoder.

Equalized learning rate (weights stored at unit scale, multiplied by 1/sqrt(fan_in) at run
time), fused leaky ReLU (slope 0.2, gain sqrt 2, per-channel bias), FIR blur with the
[1, 3, 3, 1] kernel around up- and down-sampling, and modulated / demodulated convolution.

Modulated convolution has two evaluations. `forward` is the release's: every sample gets its
own modulated weight and the batch runs as one grouped convolution (groups = B), which costs
as much per sample as B = 1. `forward_batched` is StyleGAN2's non-fused path: scale the input
activations by the style, run one convolution with the shared weight for the whole batch and
leave demodulation (a per-sample, per-output-channel factor) to the caller. Both are equal in
exact arithmetic; they round differently.

Letters: B batch, C channels, H, W height and width.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)


def fir_kernel(taps: Sequence[int]) -> Tensor:
    """Separable 2-D FIR kernel normalised to sum 1: (K, K) float32."""
    k = torch.tensor(list(taps), dtype=torch.float32)
    k2 = k[None, :] * k[:, None]
    return k2 / k2.sum()


def fused_leaky_relu(x: Tensor, bias: Tensor) -> Tensor:
    """sqrt(2) * leaky_relu(x + bias, 0.2); bias broadcasts against x."""
    return F.leaky_relu(x + bias, LRELU_SLOPE) * LRELU_GAIN


class Blur(nn.Module):
    """FIR filter: optional zero-insertion upsampling, constant zero padding, then the kernel.

    pad = (before, after) applied on both spatial axes; `up` inserts up-1 zeros after each
    sample (the kernel is then scaled by up**2 to keep the signal level).
    """

    def __init__(self, taps: Sequence[int], pad: tuple[int, int], up: int = 1, gain: float = 1.0) -> None:
        super().__init__()
        # The filter is convolution (flipped kernel) as in upfirdn2d; the kernel is symmetric anyway.
        kernel = torch.flip(fir_kernel(taps) * gain, [0, 1])
        self.register_buffer("kernel", kernel, persistent=False)
        # The kernel is separable: outer(k1, k1) with k1 the normalised, flipped taps times sqrt(gain).
        total = float(sum(taps))
        self.taps_1d = tuple(t / total * math.sqrt(gain) for t in reversed(list(taps)))
        self.pad = pad
        self.up = up

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, C, H*up + p0 + p1 - K + 1, ...)."""
        B, C, H, W = x.shape
        if self.up > 1:
            z = x.new_zeros(B, C, H * self.up, W * self.up)
            z[:, :, :: self.up, :: self.up] = x
            x = z
        p0, p1 = self.pad
        x = F.pad(x, (p0, p1, p0, p1))
        k = self.kernel.to(x.dtype)
        weight = k[None, None].expand(C, 1, *k.shape)
        return F.conv2d(x, weight, groups=C)

    def forward_fast(self, x: Tensor, bias: Tensor | None = None) -> Tensor:
        """Same result as `forward` (to rounding) without materialising padded or zero-stuffed inputs.

        Without upsampling and with symmetric padding: one depthwise convolution that pads and adds
        `bias` (C,) itself, keeping the memory format. 2x upsampling: polyphase and separable
        (`upsample_2x` along H, then W), meant for the decoder's 3-channel skips. Other layouts
        fall back to `forward`.
        """
        C = x.shape[1]
        p0, p1 = self.pad
        K = self.kernel.shape[-1]
        if self.up == 1 and p0 == p1:
            weight = self.kernel.to(x.dtype)[None, None].expand(C, 1, K, K)
            return F.conv2d(x, weight, bias, padding=p0, groups=C)
        if self.up == 2:
            out = upsample_2x(upsample_2x(x, self.taps_1d, p0, p1, dim=2), self.taps_1d, p0, p1, dim=3)
        else:
            out = self.forward(x)
        return out if bias is None else out + bias.view(1, C, 1, 1)


def upsample_2x(x: Tensor, taps: Sequence[float], p0: int, p1: int, dim: int) -> Tensor:
    """1-D FIR upsampling by 2 along `dim` (zero insertion, zero pad (p0, p1), correlation with
    `taps`) computed polyphase: each output phase is a short sum of shifted inputs, so no
    zero-stuffed tensor and no convolution are needed. Length 2N + p0 + p1 - K + 1.
    """
    n, K = x.shape[dim], len(taps)
    n_out = 2 * n + p0 + p1 - K + 1
    phases = []
    for a in (0, 1):
        count = (n_out - a + 1) // 2
        # Output 2i + a takes tap t where a + t - p0 is even, from input i + (a + t - p0) / 2.
        terms = [(taps[t], (a + t - p0) // 2) for t in range(K) if (a + t - p0) % 2 == 0]
        lo = max(0, -min(m for _, m in terms))
        hi = max(0, count - 1 + max(m for _, m in terms) - (n - 1))
        pad = [0, 0] * (x.dim() - 1 - dim) + [lo, hi]
        xp = F.pad(x, pad)
        acc = None
        for weight, m in terms:
            part = xp.narrow(dim, lo + m, count) * weight
            acc = part if acc is None else acc + part
        phases.append(acc)
    even, odd = phases
    if odd.shape[dim] < even.shape[dim]:
        odd = F.pad(odd, [0, 0] * (x.dim() - 1 - dim) + [0, 1])
    out = torch.stack([even, odd], dim=dim + 1).flatten(dim, dim + 1)
    return out.narrow(dim, 0, n_out)


class EqualConv2d(nn.Module):
    """Conv2d with equalized learning rate (weight * 1/sqrt(in * k * k))."""

    def __init__(
        self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, padding: int = 0, bias: bool = True
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None
        self.scale = 1.0 / math.sqrt(in_ch * kernel * kernel)
        self.stride = stride
        self.padding = padding

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, stride=self.stride, padding=self.padding)


class EqualLinear(nn.Module):
    """Linear layer with equalized learning rate; `bias_init` sets the initial bias value."""

    def __init__(self, in_dim: int, out_dim: int, bias_init: float = 0.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim))
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init)))
        self.scale = 1.0 / math.sqrt(in_dim)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)


class FusedLeakyReLU(nn.Module):
    """Per-channel bias + leaky ReLU with gain sqrt(2); bias stored as (1, C, 1, 1)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return fused_leaky_relu(x, self.bias)


class ConvLayer(nn.Sequential):
    """[Blur] -> EqualConv2d -> [FusedLeakyReLU]; indices match the release's state-dict keys.

    With `downsample` the blur (pad so that a stride-2 conv halves the size) comes first.
    With `activate` the conv has no bias of its own: the activation carries it.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int,
        downsample: bool = False,
        activate: bool = True,
        blur_taps: Sequence[int] = (1, 3, 3, 1),
    ) -> None:
        layers: list[nn.Module] = []
        if downsample:
            p = (len(blur_taps) - 2) + (kernel - 1)
            layers.append(Blur(blur_taps, pad=((p + 1) // 2, p // 2)))
            stride, padding = 2, 0
        else:
            stride, padding = 1, kernel // 2
        layers.append(EqualConv2d(in_ch, out_ch, kernel, stride=stride, padding=padding, bias=False))
        if activate:
            layers.append(FusedLeakyReLU(out_ch))
        super().__init__(*layers)


class ModulatedConv2d(nn.Module):
    """Style-modulated convolution (StyleGAN2), optionally demodulated and 2x upsampling.

    weight: (1, C_out, C_in, k, k); modulation: EqualLinear(style_dim -> C_in, bias 1).
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int,
        style_dim: int,
        demodulate: bool = True,
        upsample: bool = False,
        blur_taps: Sequence[int] = (1, 3, 3, 1),
    ) -> None:
        super().__init__()
        self.in_ch, self.out_ch, self.kernel = in_ch, out_ch, kernel
        self.weight = nn.Parameter(torch.randn(1, out_ch, in_ch, kernel, kernel))
        self.modulation = EqualLinear(style_dim, in_ch, bias_init=1.0)
        self.scale = 1.0 / math.sqrt(in_ch * kernel * kernel)
        self.demodulate = demodulate
        self.upsample = upsample
        self._cache: dict[torch.dtype, tuple[tuple, Tensor, Tensor]] = {}  # see shared_weight
        if upsample:
            # After a stride-2 transposed conv, blur with pad chosen to give exactly 2x the size.
            p = (len(blur_taps) - 2) - (kernel - 1)
            self.blur = Blur(blur_taps, pad=((p + 1) // 2 + 1, p // 2 + 1), gain=4.0)

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        """x (B, C_in, H, W), style (B, style_dim) -> (B, C_out, H', W'), H' = 2H when upsampling."""
        B, C, H, W = x.shape
        s = self.modulation(style).view(B, 1, C, 1, 1)
        w = self.scale * self.weight * s  # (B, C_out, C_in, k, k)
        if self.demodulate:
            w = w * torch.rsqrt(w.pow(2).sum([2, 3, 4]) + 1e-8).view(B, self.out_ch, 1, 1, 1)
        k = self.kernel
        x = x.reshape(1, B * C, H, W)
        if self.upsample:
            # conv_transpose2d wants (in, out/groups, k, k) per group.
            w = w.transpose(1, 2).reshape(B * C, self.out_ch, k, k)
            out = F.conv_transpose2d(x, w, stride=2, padding=0, groups=B)
            out = out.view(B, self.out_ch, out.shape[-2], out.shape[-1])
            return self.blur(out)
        out = F.conv2d(x, w.reshape(B * self.out_ch, C, k, k), padding=k // 2, groups=B)
        return out.view(B, self.out_ch, out.shape[-2], out.shape[-1])

    def shared_weight(self, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        """The batch-shared weight of the non-fused path in `dtype` and the float32 (C_out, C_in)
        sums over k x k of its squares (for demodulation).

        The weight is (C_out, C_in, k, k), or (C_in, C_out, k, k) for conv_transpose2d when
        upsampling. Outside autograd both are cached until the parameter changes (in place, or
        moved), so repeated decoder calls do not rescale and convert the weights again.
        """
        w = self.weight
        cacheable = not torch.is_grad_enabled()
        key = (w.device, w.data_ptr(), w._version)
        hit = self._cache.get(dtype) if cacheable else None
        if hit is not None and hit[0] == key:
            return hit[1], hit[2]
        scaled = self.scale * w[0]  # (C_out, C_in, k, k)
        squares = scaled.pow(2).sum([2, 3])
        shared = (scaled.transpose(0, 1) if self.upsample else scaled).to(dtype).contiguous()
        if cacheable:
            self._cache[dtype] = (key, shared, squares)
        return shared, squares

    def coefficients(self, style: Tensor) -> tuple[Tensor, Tensor | None]:
        """style (B, style_dim) -> modulation s (B, C_in) and demodulation d (B, C_out) or None.

        d = 1 / sqrt(sum over C_in, k, k of (scale * weight * s)^2 + 1e-8), computed from the
        per-channel sums of squared weights, so no per-sample weight is formed. float32 in, float32 out.
        """
        s = self.modulation(style)
        if not self.demodulate:
            return s, None
        _, squares = self.shared_weight(self.weight.dtype)  # (C_out, C_in)
        return s, torch.rsqrt(s.pow(2) @ squares.T + 1e-8)

    def forward_batched(self, x: Tensor, s: Tensor) -> Tensor:
        """Non-fused path: conv(x * s) with the shared weight, in x's dtype; demodulation NOT applied.

        x (B, C_in, H, W) (channels-last is fastest on CPU), s (B, C_in) from `coefficients`
        -> (B, C_out, H', W'). The caller multiplies by d[:, :, None, None] (it commutes with the
        blur), which it can fuse with the bias of the activation that follows.
        """
        w, _ = self.shared_weight(x.dtype)
        x = x * s.to(x.dtype)[:, :, None, None]
        if self.upsample:
            out = F.conv_transpose2d(x, w, stride=2)
            return self.blur.forward_fast(out)
        return F.conv2d(x, w, padding=self.kernel // 2)
