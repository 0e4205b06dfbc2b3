"""Could Winograd convolution take the float32 decoder below its direct-convolution FLOP floor?

The decoder's cost is its 3x3 convolutions (37.8 GFLOP per 512 px frame). Winograd F(m x m, 3 x 3)
needs (m + 2)^2 / (9 m^2) of the direct method's multiplications (F(4,3): 4x fewer), paid for with
input and output transforms. This script times, for the decoder's non-upsampling layer shapes at
batch 8 in channels-last float32, `F.conv2d` (oneDNN's direct convolution) against a plain-torch
Winograd: tiles by `unfold`, transforms as small dense matrix products, one batched matmul per
tile position. It prints the time of each, the speed-up and the relative error.

Usage: python experiments/conv_winograd.py [--threads 2] [--batch 8] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

# Lavin & Gray's matrices (B^T, G, A^T) for F(2, 3) and F(4, 3), correlation form.
MATRICES = {
    2: (
        [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
        [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]],
        [[1, 1, 1, 0], [0, 1, -1, -1]],
    ),
    4: (
        [
            [4, 0, -5, 0, 1, 0],
            [0, -4, -4, 1, 1, 0],
            [0, 4, -4, -1, 1, 0],
            [0, -2, -1, 2, 1, 0],
            [0, 2, -1, -2, 1, 0],
            [0, 4, 0, -5, 0, 1],
        ],
        [
            [1 / 4, 0, 0],
            [-1 / 6, -1 / 6, -1 / 6],
            [-1 / 6, 1 / 6, -1 / 6],
            [1 / 24, 1 / 12, 1 / 6],
            [1 / 24, -1 / 12, 1 / 6],
            [0, 0, 1],
        ],
        [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
    ),
}


class Winograd3x3:
    """A 3x3, padding-1 convolution with a fixed weight (C_out, C_in, 3, 3) by Winograd F(m, 3)."""

    def __init__(self, weight: torch.Tensor, m: int) -> None:
        bt, g, at = (torch.tensor(a, dtype=torch.float64) for a in MATRICES[m])
        self.m, self.a = m, m + 2
        u = torch.einsum("ik,ockl,jl->ijco", g, weight.double(), g)  # (a, a, C_in, C_out)
        self.u = u.reshape(self.a * self.a, weight.shape[1], weight.shape[0]).float().contiguous()
        self.kb = torch.kron(bt, bt).float()  # input transform on flattened a x a tiles
        self.ka = torch.kron(at, at).float()  # output transform to m x m tiles

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C_in, H, W), H and W multiples of m -> (B, C_out, H, W) channels-last."""
        m, a = self.m, self.a
        B, C, H, W = x.shape
        nh, nw = H // m, W // m
        padded = F.pad(x.permute(0, 2, 3, 1), (0, 0, 1, 1, 1, 1))  # (B, H + 2, W + 2, C)
        tiles = padded.unfold(1, a, m).unfold(2, a, m)  # (B, nh, nw, C, a, a)
        tiles = tiles.permute(4, 5, 0, 1, 2, 3).reshape(a * a, -1)  # (a*a, B*nh*nw*C)
        v = (self.kb @ tiles).view(a * a, B * nh * nw, C)
        prod = torch.bmm(v, self.u)  # (a*a, tiles, C_out)
        c_out = self.u.shape[2]
        y = (self.ka @ prod.view(a * a, -1)).view(m, m, B, nh, nw, c_out)
        return y.permute(2, 3, 0, 4, 1, 5).reshape(B, H, W, c_out).permute(0, 3, 1, 2)


def best_time(fn, repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"3x3 convolutions of the 512 px decoder, batch {args.batch}, float32 channels-last, {args.threads} threads")
    print("| layer | direct ms | GFLOP/s | F(2,3) ms | speed-up | rel. error | F(4,3) ms | speed-up | rel. error |")
    print("|---|---|---|---|---|---|---|---|---|")
    with torch.inference_mode():
        for channels, size in ((512, 32), (256, 64), (128, 128), (64, 256), (32, 512)):
            x = torch.randn(args.batch, channels, size, size).contiguous(memory_format=torch.channels_last)
            w = torch.randn(channels, channels, 3, 3) / (channels * 9) ** 0.5
            ref = F.conv2d(x, w, padding=1)
            direct = best_time(lambda: F.conv2d(x, w, padding=1), args.repeats)  # noqa: B023
            gflops = 2 * 9 * channels * channels * size * size * args.batch / direct / 1e9
            row = f"| {channels} ch at {size} px | {direct * 1e3:.0f} | {gflops:.0f} |"
            for m in (2, 4):
                conv = Winograd3x3(w, m)
                err = ((conv(x) - ref).norm() / ref.norm()).item()
                t = best_time(lambda: conv(x), args.repeats)  # noqa: B023
                row += f" {t * 1e3:.0f} | {direct / t:.2f}x | {err:.1e} |"
            print(row, flush=True)


if __name__ == "__main__":
    main()
