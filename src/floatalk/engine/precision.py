"""What a generation runs in: the float32 reference, bfloat16 / float16, or the fast path.

A `RunPrecision` names the networks and dtypes one generation uses: the flow-matching
transformer (FMT) and the dtype of its inputs, the dtype of the decoder's convolutions, and the
audio encoder. `FloatEngine.precision(name)` builds each once, from the loaded model, and keeps it.

The fast path ("fast") applies only what holds quality: frames at least 33 dB PSNR from
float32's on the parity inputs and lip sync at least 0.95 of float32's on held-out clips
(benchmarks/eval_fast_path.py; the figures: docs/PERFORMANCE.md):

* the decoder's convolutions at 256 px and up in bfloat16 (40.3 dB), only on CPUs with native
  bfloat16 arithmetic (AVX-512 BF16 or AMX; `native_bfloat16`): elsewhere bfloat16 is emulated
  and slower than float32, and fast runs as float32;
* on a GPU, fast is bfloat16.

Measured and left out: the FMT's linear layers in int8 (`quantize_linears`, torch.ao dynamic
quantisation, the time embedding kept float since the FMT reads its weight's dtype) sampled a
window 1.9-2.7x faster (three runs at load 4-6 on 2 cores) but moved the motion latents by 1.6 %
and the frames to 27.5 dB PSNR; the audio encoder in int8, 27.3 dB.

Letters: none (no tensors are shaped here).
"""

from __future__ import annotations

import copy
import functools
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

__all__ = ["DTYPES", "RunPrecision", "native_bfloat16", "quantize_linears"]

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
"""The plain precisions by name (the fast path is the other choice)."""


@dataclass(frozen=True)
class RunPrecision:
    """The networks and dtypes of one generation (see the module docstring)."""

    name: str  # float32, bfloat16, float16 or fast
    fmt: nn.Module  # the flow-matching transformer to sample with
    dtype: torch.dtype  # the FMT's input dtype (its weights' for a plain precision)
    decode_dtype: torch.dtype  # the decoder's convolutions at float32_below px and up
    audio_encoder: nn.Module  # wa from the waveform


@functools.cache
def native_bfloat16() -> bool:
    """True when this CPU does bfloat16 arithmetic natively (AVX-512 BF16 or AMX-BF16): only then is
    a bfloat16 convolution faster than a float32 one. Linux reads /proc/cpuinfo's flags; elsewhere
    oneDNN's own answer."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def quantize_linears(module: nn.Module, keep: tuple[str, ...] = ()) -> nn.Module:
    """An int8 copy of `module` (float32): each nn.Linear, except those under a name in `keep`,
    becomes torch.ao's dynamically quantized linear (int8 weights per tensor, activations
    quantized per call). The original is not changed."""
    names = {
        name
        for name, child in module.named_modules()
        if isinstance(child, nn.Linear) and not any(name == k or name.startswith(k + ".") for k in keep)
    }
    from torch.ao.quantization import default_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():
        # torch.ao's eager quantisation says it will move to torchao; it is what this torch offers.
        warnings.simplefilter("ignore")
        float_copy = copy.deepcopy(module).float()
        return quantize_dynamic(float_copy, dict.fromkeys(names, default_dynamic_qconfig), dtype=torch.qint8)
