"""Motion for a live session: one FMT window re-sampled from the committed latents.

The offline sampler (floatalk.engine.motion, floatalk.sampling) draws window w's noise as the
w-th randn(1, L, D) of its generator and samples non-overlapping windows of L frames. A live
session samples a window starting at any committed frame C, with the last L' committed latents
as context, and keeps only the first few frames. Its noise is indexed by frame: frame f takes
row f mod L of the (f div L)-th draw, so a window starting at a multiple of L sees exactly the
offline noise, and a frame keeps its noise in every window that re-samples it.

Letters: L window, L' previous frames, n frames of a live window (<= L), D latent size, Da audio dim.
"""

from __future__ import annotations

import threading
import warnings
import weakref

import torch
import torch.nn.functional as F
from torch import Tensor

from floatalk.models.fmt import FlowMatchingTransformer
from floatalk.sampling.guidance import GuidedField
from floatalk.sampling.ode import solve
from floatalk.sampling.sampler import SamplerSettings

__all__ = ["NoiseBank", "TracedFMT", "context", "pad_frames", "sample_window", "traced_fmt"]


class NoiseBank:
    """Initial noise by frame number, drawn from `generator` in blocks of L (the offline order)."""

    def __init__(self, generator: torch.Generator, window: int, dim: int) -> None:
        self.generator, self.window, self.dim = generator, window, dim
        self.blocks: dict[int, Tensor] = {}  # block number -> (1, L, D)
        self.drawn = 0  # blocks drawn so far

    def take(self, start: int, n: int) -> Tensor:
        """Noise of frames start .. start + n - 1: (1, n, D) float32 on the CPU."""
        last = (start + n - 1) // self.window
        while self.drawn <= last:
            self.blocks[self.drawn] = torch.randn(1, self.window, self.dim, generator=self.generator)
            self.drawn += 1
        for block in [b for b in self.blocks if b < start // self.window]:
            del self.blocks[block]  # frames before `start` are committed for good
        rows = torch.cat([self.blocks[b] for b in range(start // self.window, last + 1)], dim=1)
        offset = start - (start // self.window) * self.window
        return rows[:, offset : offset + n]


def pad_frames(x: Tensor, n: int) -> Tensor:
    """(1, m, C) -> (1, n, C): cut, or extended by repeating the last row (the release's padding)."""
    if x.shape[1] >= n:
        return x[:, :n]
    return F.pad(x.transpose(1, 2), (0, n - x.shape[1]), mode="replicate").transpose(1, 2)


def context(x: Tensor | None, n: int, dim: int, like: Tensor) -> Tensor:
    """The last n rows of (1, m, dim) `x`, zeros in front where m < n (none before frame 0): (1, n, dim)."""
    rows = x[:, -n:] if x is not None else like.new_zeros(1, 0, dim)
    if rows.shape[1] < n:
        rows = torch.cat([like.new_zeros(1, n - rows.shape[1], dim), rows], dim=1)
    return rows


class TracedFMT:
    """A live step's FMT: the network traced and frozen (TorchScript) once per input shape and
    called in place of the eager module. A live window is small (a few new frames, the band's
    margin, the context), so the eager network spends most of its time between operations; the
    frozen graph cuts that. Same weights and operations, outputs within float32 rounding of the
    eager network's (about 1e-6); a live window's shape is the same step after step, so a trace
    is made once per session shape (the first one costs a fraction of a second)."""

    def __init__(self, fmt: FlowMatchingTransformer) -> None:
        self.fmt = fmt
        self.graphs: dict[tuple, torch.jit.ScriptModule] = {}
        self.lock = threading.Lock()

    def __call__(
        self, t: Tensor, x: Tensor, wa: Tensor, wr: Tensor, we: Tensor, prev_x: Tensor, prev_wa: Tensor
    ) -> Tensor:
        """`FlowMatchingTransformer.forward`'s arguments and result."""
        args = (t, x, wa, wr, we, prev_x, prev_wa)
        key = tuple((tuple(a.shape), a.dtype, a.device.type) for a in args)
        with self.lock:
            graph = self.graphs.get(key)
            if graph is None:
                graph = self.graphs[key] = self._trace(args)
        return graph(*args)

    def _trace(self, args: tuple[Tensor, ...]) -> torch.jit.ScriptModule:
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TorchScript's notices about tracing, not the user's concern
            plain = tuple(a.clone() for a in args)
            traced = torch.jit.trace(self.fmt.eval(), plain, check_trace=False)
            return torch.jit.optimize_for_inference(torch.jit.freeze(traced))


_TRACED: weakref.WeakKeyDictionary[FlowMatchingTransformer, TracedFMT] = weakref.WeakKeyDictionary()


def traced_fmt(fmt: FlowMatchingTransformer) -> TracedFMT:
    """The `TracedFMT` of `fmt`, shared by every live session of the same loaded model."""
    found = _TRACED.get(fmt)
    if found is None:
        found = _TRACED.setdefault(fmt, TracedFMT(fmt))
    return found


@torch.inference_mode()
def sample_window(
    fmt: FlowMatchingTransformer | TracedFMT,
    x0: Tensor,
    wa: Tensor,
    r_s: Tensor,
    we: Tensor,
    prev_x: Tensor,
    prev_wa: Tensor,
    settings: SamplerSettings,
) -> Tensor:
    """One window's motion latents: (1, n, D).

    x0 (1, n, D) noise; wa (1, n, Da) the window's audio features; r_s (1, D); we (1, 1, K);
    prev_x (1, L', D) committed latents and prev_wa (1, L', Da) their audio features."""
    field = GuidedField(fmt, wa, r_s, we, prev_x, prev_wa, settings.a_cfg_scale, settings.e_cfg_scale)
    return solve(field, x0, settings.method, settings.nfe)
