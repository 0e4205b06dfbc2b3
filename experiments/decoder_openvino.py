"""Does the motion auto-encoder's decoder run faster through OpenVINO / onnxruntime than in torch?

Measures, on the CPU, seconds per 512 px frame of the release-size decoder (`ae.dec`) at
batch 8 (and other batch sizes) for:

- `torch-fast`: floatalk's own float32 batched decoder (`pipe.decode`, uint8 out), the baseline;
- `torch-plain`: the release's nn.Module path (`ae.decode`: per-sample modulated weights, grouped
  convolutions);
- `ov-plain`: that same plain path converted to OpenVINO as is (one static model per batch size);
- `ov-nonfused`: an export-friendly rewrite of the decoder written here (`NonFusedDecoder`:
  StyleGAN2's non-fused modulation, shared constant conv weights, 3-channel RGB warp, transposed
  convolutions for the 2x FIR upsampling), converted to OpenVINO float32 with a dynamic batch;
- `ov-int8`: `ov-nonfused` after NNCF post-training quantization, calibrated on styles drawn from
  another seed than the test styles, with NNCF's default choice of what to quantize;
  `ov-int8-fromN` quantizes only the styled convolutions (more than 3 output channels) whose
  output has at least N pixels, and keeps float32 the 3-channel convolutions (flow and mask
  logits, whose errors the warps amplify) and all other op types (blurs, skip upsamplings,
  modulation, element-wise ops); a `-mixed` suffix uses NNCF's MIXED preset (asymmetric
  activations) instead of PERFORMANCE;
- `ort-nonfused`: `NonFusedDecoder` exported to ONNX (TorchScript exporter) run by onnxruntime.

Every path's frames go through the same uint8 conversion as `pipe.decode` and are compared (PSNR,
dB, pixels 0-255) with `pipe.decode`'s float32 frames on 2 random motions x `--frames` frames.
Timing: each repeat runs every path once over the same 8 frames per batch size (round robin,
so load changes hit all paths alike); the best of `--repeats` is reported. torch runs with
`--threads` threads, OpenVINO with INFERENCE_NUM_THREADS and one stream, onnxruntime with as
many intra-op threads. The CPU model and the load averages before and after are printed.

OpenVINO, NNCF and onnxruntime are not project dependencies: install them into a scratch folder,
    pip install --target ../ovpkgs --no-deps openvino openvino-telemetry nncf onnxruntime onnx \
        ninja psutil pydot scikit-learn tabulate joblib threadpoolctl
(--no-deps keeps pip from replacing torch; the remaining NNCF/onnxruntime dependencies are the
project's own) and run from the repository root:
    PYTHONPATH=../ovpkgs python experiments/decoder_openvino.py \
        --checkpoint checkpoints/parity_release --image tests/data/parity/inputs_a/image.png
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from floatalk.convert import to_pixels
from floatalk.models.layers import LRELU_GAIN, LRELU_SLOPE
from floatalk.models.motion_ae import StyledConv, SynthesisDecoder, identity_grid
from floatalk.pipeline import FloatPipeline

ALL_PATHS = (
    "torch-fast", "torch-plain", "ov-plain", "ov-nonfused", "ov-int8", "ov-int8-from0", "ov-int8-from64",
    "ov-int8-from128", "ov-int8-from256", "ort-nonfused",
)  # fmt: skip
Decoder = Callable[[Tensor], np.ndarray]  # styles (B, D) -> uint8 frames (B, S, S, 3)


class PlainDecoder(nn.Module):
    """forward(style, f0, ..., fn) = ae.dec(style, [f0, ..., fn]): the release path, unchanged."""

    def __init__(self, dec: SynthesisDecoder) -> None:
        super().__init__()
        self.dec = dec

    def forward(self, style: Tensor, *feats: Tensor) -> Tensor:
        return self.dec(style, list(feats))


class NonFusedDecoder(nn.Module):
    """The decoder's arithmetic in export-friendly form, all weights precomputed as buffers.

    Styled conv: s = modulation(style), d = rsqrt((s^2) W2^T + 1e-8) with W2 the per-(out, in)
    sums of squared scaled weights; out = leaky(conv(x * s) * d * g + b * g). Upsampling layers:
    stride-2 transposed conv then the 4x4 blur as a depthwise conv. The 2x FIR upsampling of the
    3-channel flow and RGB skips (zero insertion, pad (2, 1), 4x4 blur) is a depthwise stride-2
    transposed conv with padding 1. ToRGB's 1x1 conv is applied to the features before warping
    (linear, so it commutes with grid_sample and the mask). Equal to `ae.decode` up to rounding.
    Inputs: style (B, D), encoder feature maps from 8 px up, batch 1.
    """

    def __init__(self, dec: SynthesisDecoder) -> None:
        super().__init__()
        self.n_scales = len(dec.to_flows)
        with torch.no_grad():
            self.register_buffer("const", dec.input.input.detach().clone())
            self._styled("c1", dec.conv1)
            for i, sc in enumerate(dec.convs):
                self._styled(f"c{i + 2}", sc)
            for k, (tf, tr) in enumerate(zip(dec.to_flows, dec.to_rgbs, strict=True)):
                mod = tf.conv.modulation
                self.register_buffer(f"f{k}_mw", (mod.weight * mod.scale).clone())
                self.register_buffer(f"f{k}_mb", mod.bias.clone())
                self.register_buffer(f"f{k}_w", (tf.conv.scale * tf.conv.weight[0]).clone())  # (3, C, 1, 1)
                self.register_buffer(f"f{k}_b", tf.bias.clone())
                self.register_buffer(f"f{k}_up", self._up_kernel(tf.upsample.kernel))
                conv = tr.conv[0]
                self.register_buffer(f"r{k}_w", (conv.weight * conv.scale).clone())  # (3, C, 1, 1)
                self.register_buffer(f"r{k}_b1", tr.conv[1].bias.clone())
                self.register_buffer(f"r{k}_b", tr.bias.clone())
                self.register_buffer(f"r{k}_up", self._up_kernel(tr.upsample.kernel))
                size = 2 ** (k + 3)
                self.register_buffer(f"grid{k}", identity_grid(size, size, torch.device("cpu")))

    @staticmethod
    def _up_kernel(kernel: Tensor) -> Tensor:
        """Blur(up=2, pad=(2, 1)) as conv_transpose2d(stride 2, padding 1): the flipped kernel, (3, 1, K, K)."""
        return torch.flip(kernel, [0, 1])[None, None].expand(3, 1, *kernel.shape).clone()

    def _styled(self, name: str, sc: StyledConv) -> None:
        m = sc.conv
        scaled = m.scale * m.weight[0]  # (C_out, C_in, k, k)
        self.register_buffer(f"{name}_mw", (m.modulation.weight * m.modulation.scale).clone())
        self.register_buffer(f"{name}_mb", m.modulation.bias.clone())
        self.register_buffer(f"{name}_sq", scaled.pow(2).sum([2, 3]).clone())  # (C_out, C_in)
        self.register_buffer(f"{name}_w", (scaled.transpose(0, 1) if m.upsample else scaled).contiguous())
        self.register_buffer(f"{name}_b", (sc.activate.bias.view(-1) * LRELU_GAIN).clone())
        if m.upsample:
            k = m.blur.kernel
            self.register_buffer(f"{name}_blur", k[None, None].expand(m.out_ch, 1, *k.shape).clone())

    def _buf(self, name: str) -> Tensor:
        return getattr(self, name)

    def _styled_forward(self, name: str, x: Tensor, style: Tensor) -> Tensor:
        s = F.linear(style, self._buf(f"{name}_mw"), self._buf(f"{name}_mb"))  # (B, C_in)
        d = torch.rsqrt(F.linear(s * s, self._buf(f"{name}_sq")) + 1e-8) * LRELU_GAIN  # (B, C_out)
        h = x * s[:, :, None, None]
        w = self._buf(f"{name}_w")
        if hasattr(self, f"{name}_blur"):
            blur = self._buf(f"{name}_blur")
            h = F.conv_transpose2d(h, w, stride=2)
            h = F.conv2d(h, blur, padding=1, groups=blur.shape[0])
        else:
            h = F.conv2d(h, w, padding=w.shape[-1] // 2)
        h = h * d[:, :, None, None] + self._buf(f"{name}_b")[None, :, None, None]
        return F.leaky_relu(h, LRELU_SLOPE)

    @staticmethod
    def _up2(x: Tensor, kernel: Tensor) -> Tensor:
        return F.conv_transpose2d(x, kernel, stride=2, padding=1, groups=3)

    def forward(self, style: Tensor, *feats: Tensor) -> Tensor:
        B = style.shape[0]
        x = self._styled_forward("c1", self.const.expand(B, -1, -1, -1), style)
        rgb: Tensor | None = None
        flow: Tensor | None = None
        for k, feat in enumerate(feats):
            x = self._styled_forward(f"c{2 * k + 2}", x, style)
            x = self._styled_forward(f"c{2 * k + 3}", x, style)
            s = F.linear(style, self._buf(f"f{k}_mw"), self._buf(f"f{k}_mb"))
            logits = F.conv2d(x * s[:, :, None, None], self._buf(f"f{k}_w")) + self._buf(f"f{k}_b")
            if flow is not None:
                logits = logits + self._up2(flow, self._buf(f"f{k}_up"))
            flow = logits
            grid = torch.tanh(logits[:, 0:2]).permute(0, 2, 3, 1) + self._buf(f"grid{k}")
            mask = torch.sigmoid(logits[:, 2:3])
            proj = F.conv2d(feat, self._buf(f"r{k}_w")).expand(B, -1, -1, -1)
            warped = F.grid_sample(proj, grid, mode="bilinear", padding_mode="zeros", align_corners=False) * mask
            out = F.leaky_relu(warped + self._buf(f"r{k}_b1"), LRELU_SLOPE) * LRELU_GAIN + self._buf(f"r{k}_b")
            rgb = out if rgb is None else out + self._up2(rgb, self._buf(f"r{k}_up"))
            if k + 1 < len(feats):
                full = F.grid_sample(
                    feat.expand(B, -1, -1, -1), grid, mode="bilinear", padding_mode="zeros", align_corners=False
                )
                x = full * mask + x * (1.0 - mask)
        assert rgb is not None
        return rgb


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def load_avg() -> str:
    return "/".join(f"{v:.2f}" for v in os.getloadavg())


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return "?"
    return next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")), "?")


def int8_ignored(model: object, from_px: int) -> tuple[list[str], list[str]]:
    """What NNCF should leave in float32 for `ov-int8-fromN`: (op names, op types).

    Kept: every Convolution / ConvolutionBackpropData with more than 3 output channels and an
    output of at least `from_px` pixels (the styled 3x3 convs; an upsampling conv's output is
    2H + 1 before its blur). Left float32: the 3-channel convs (flow and mask logits, the RGB
    projections) and every op of any other type (NNCF's CPU preset would otherwise also quantize
    the inputs of element-wise ops: modulation, demodulation, blends, the flow sums).
    """
    names = []
    types = set()
    for op in model.get_ordered_ops():  # type: ignore[attr-defined]
        types.add(op.get_type_name())
        if op.get_type_name() in ("Convolution", "ConvolutionBackpropData"):
            shape = op.get_output_partial_shape(0)
            channels = shape[1].get_length() if shape[1].is_static else 0
            size = shape[3].get_length() if shape[3].is_static else 0
            if channels <= 3 or size < from_px:
                names.append(op.get_friendly_name())
    keep = {"Convolution", "ConvolutionBackpropData", "Parameter", "Constant", "Result"}
    return names, sorted(types - keep)


def count_ops(model: object, kind: str) -> int:
    return sum(op.get_type_name() == kind for op in model.get_ordered_ops())  # type: ignore[attr-defined]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", default="checkpoints/parity_release")
    ap.add_argument("--image", default="tests/data/parity/inputs_a/image.png")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", default="8,1,4", help="batch sizes to time (8 frames each)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--frames", type=int, default=8, help="test frames per motion (2 motions)")
    ap.add_argument("--calib", type=int, default=32, help="calibration styles for int8 (seed 1)")
    ap.add_argument("--paths", default=",".join(ALL_PATHS))
    ap.add_argument("--workdir", default=None, help="where converted models go (default: a temporary folder)")
    ap.add_argument("--profile", action="store_true", help="print OpenVINO's time per op type (last batch run)")
    ap.add_argument("--reuse", action="store_true", help="load the models already in --workdir instead of converting")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    wanted = args.paths.split(",")
    batches = [int(b) for b in args.batches.split(",")]
    print(f"cpu: {cpu_model()}; torch {torch.__version__}, {torch.get_num_threads()} threads; load {load_avg()}")

    pipe = FloatPipeline.from_pretrained(args.checkpoint)
    src = pipe.encode_image(args.image, crop=False)
    ae = pipe.model.motion_autoencoder
    feats = [f.float().contiguous() for f in src.feats]
    D = src.s_r.shape[-1]
    gen = torch.Generator().manual_seed(0)
    motions = [0.3 * torch.randn(1, args.frames, D, generator=gen) for _ in range(2)]  # test set
    calib_gen = torch.Generator().manual_seed(1)
    calib_styles = src.s_r + 0.3 * torch.randn(args.calib, D, generator=calib_gen)  # int8 calibration only

    def baseline(styles: Tensor) -> np.ndarray:
        return np.concatenate(list(pipe.decode(src, (styles - src.s_r)[None], len(styles), dtype=torch.float32)))

    def module_decoder(module: nn.Module) -> Decoder:
        @torch.inference_mode()
        def run(styles: Tensor) -> np.ndarray:
            return to_pixels(module(styles, *feats))

        return run

    paths: dict[str, Callable[[int], Decoder]] = {}  # name -> batch size -> decoder
    if "torch-fast" in wanted:
        paths["torch-fast"] = lambda b: baseline
    if "torch-plain" in wanted:
        paths["torch-plain"] = lambda b: module_decoder(PlainDecoder(ae.dec).eval())

    nonfused = NonFusedDecoder(ae.dec).eval()
    with torch.inference_mode():
        styles0 = src.s_r + motions[0][0]
        ref_raw = ae.decode(styles0, feats)
        diff = (nonfused(styles0, *feats) - ref_raw).abs().max().item()
    print(f"NonFusedDecoder vs ae.decode (torch float32): max abs diff {diff:.2e}")

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="decoder_ov_"))
    workdir.mkdir(parents=True, exist_ok=True)
    example = (torch.cat([styles0] * 8)[:8], *feats)
    ov_wanted = [p for p in wanted if p.startswith("ov-")]
    requests: dict[int, list[tuple[str, object]]] = {}  # batch size -> (path, OpenVINO request), for --profile
    if ov_wanted:
        import openvino as ov

        core = ov.Core()
        config = {"INFERENCE_NUM_THREADS": args.threads, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY"}
        print(f"openvino {ov.__version__}; config {config}")

        def compile_at(model: object, b: int, tag: str) -> Decoder:
            m = model.clone()  # type: ignore[attr-defined]
            m.reshape({m.inputs[0]: ov.PartialShape([b, D])})
            compiled = core.compile_model(m, "CPU", {**config, "PERF_COUNT": args.profile})
            request = compiled.create_infer_request()
            requests.setdefault(b, []).append((tag, request))
            print(f"compiled {tag} b={b}: inference precision {compiled.get_property('INFERENCE_PRECISION_HINT')}")
            feat_np = [f.numpy() for f in feats]

            def run(styles: Tensor) -> np.ndarray:
                out = request.infer([styles.numpy(), *feat_np])[0]
                return to_pixels(torch.from_numpy(out))

            return run

        def convert(name: str, module: nn.Module, ex: tuple[Tensor, ...], dynamic: bool) -> object:
            if args.reuse and (workdir / f"{name}.xml").exists():
                print(f"reusing {workdir / name}.xml")
                return core.read_model(workdir / f"{name}.xml")
            t0 = time.perf_counter()
            shapes = [ov.PartialShape([-1 if dynamic else ex[0].shape[0], D])]
            shapes += [ov.PartialShape(list(f.shape)) for f in ex[1:]]
            model = ov.convert_model(module, example_input=ex, input=shapes)
            ov.save_model(model, workdir / f"{name}.xml", compress_to_fp16=False)
            print(f"converted {name} in {time.perf_counter() - t0:.1f} s")
            return model

        if "ov-plain" in wanted:
            plain = PlainDecoder(ae.dec).eval()

            def ov_plain(b: int) -> Decoder:
                ex = (example[0][:b], *feats)
                try:
                    with torch.no_grad():
                        model = convert(f"plain_b{b}", plain, ex, dynamic=False)
                    return compile_at(model, b, "ov-plain")
                except Exception as exc:  # report and go on with the other paths
                    print(f"ov-plain b={b} FAILED: {type(exc).__name__}: {str(exc)[:400]}")
                    raise

            paths["ov-plain"] = ov_plain
        fp32_model = None
        int8_variants = [p for p in wanted if p.startswith("ov-int8")]
        if "ov-nonfused" in wanted or int8_variants:
            with torch.no_grad():
                fp32_model = convert("nonfused", nonfused, example, dynamic=True)
        if "ov-nonfused" in wanted:
            paths["ov-nonfused"] = lambda b: compile_at(fp32_model, b, "ov-nonfused")
        for variant in int8_variants:
            if args.reuse and (workdir / f"{variant}.xml").exists():
                print(f"reusing {workdir / variant}.xml")
                saved = core.read_model(workdir / f"{variant}.xml")
                print(f"{variant}: {count_ops(saved, 'FakeQuantize')} FakeQuantize ops")
                paths[variant] = lambda b, q=saved, v=variant: compile_at(q, b, v)
                continue
            import nncf

            t0 = time.perf_counter()
            items = [calib_styles[i : i + 8].numpy() for i in range(0, args.calib, 8)]
            feat_np = [f.numpy() for f in feats]
            dataset = nncf.Dataset(items, lambda s, fn=feat_np: [s, *fn])
            kwargs: dict[str, object] = {}
            spec = variant.removesuffix("-mixed")
            if spec.startswith("ov-int8-from"):
                names, types = int8_ignored(fp32_model, int(spec.removeprefix("ov-int8-from")))
                kwargs["ignored_scope"] = nncf.IgnoredScope(names=names, types=types, validate=False)
            if variant.endswith("-mixed"):
                kwargs["preset"] = nncf.QuantizationPreset.MIXED
            q = nncf.quantize(fp32_model, dataset, subset_size=len(items), **kwargs)
            print(f"{variant}: {count_ops(q, 'FakeQuantize')} FakeQuantize ops")
            ov.save_model(q, workdir / f"{variant}.xml", compress_to_fp16=False)
            took = time.perf_counter() - t0
            print(f"quantized {variant} (nncf {nncf.__version__}) on {args.calib} styles in {took:.1f} s")
            paths[variant] = lambda b, q=q, v=variant: compile_at(q, b, v)

    if "ort-nonfused" in wanted:
        import onnxruntime as ort

        onnx_path = workdir / "nonfused.onnx"
        t0 = time.perf_counter()
        names = ["style"] + [f"f{i}" for i in range(len(feats))]
        if not (args.reuse and onnx_path.exists()):
            with torch.no_grad():
                torch.onnx.export(
                    nonfused, example, str(onnx_path), input_names=names, output_names=["image"],
                    dynamic_axes={"style": {0: "batch"}, "image": {0: "batch"}}, opset_version=17, dynamo=False,
                )  # fmt: skip
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = args.threads
        opts.inter_op_num_threads = 1
        session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        print(f"exported ONNX + onnxruntime {ort.__version__} session in {time.perf_counter() - t0:.1f} s")
        feed_feats = {n: f.numpy() for n, f in zip(names[1:], feats, strict=True)}

        def ort_run(styles: Tensor) -> np.ndarray:
            out = session.run(None, {"style": styles.numpy(), **feed_feats})[0]
            return to_pixels(torch.from_numpy(out))

        paths["ort-nonfused"] = lambda b: ort_run

    # Quality at batch 8 (or the first batch size): every path against pipe.decode's float32 frames.
    refs = [baseline(src.s_r + m[0]) for m in motions]
    qb = batches[0]
    decoders: dict[str, dict[int, Decoder]] = {}
    quality: dict[str, float] = {}
    for name, make in paths.items():
        try:
            decoders[name] = {qb: make(qb)}
        except Exception as exc:
            print(f"{name}: unavailable ({type(exc).__name__}: {str(exc)[:300]})")
            continue
        outs = [
            np.concatenate([decoders[name][qb](st[i : i + qb]) for i in range(0, len(st), qb)])
            for st in (src.s_r + m[0] for m in motions)
        ]
        quality[name] = psnr(np.concatenate(outs), np.concatenate(refs))
    n_frames = 8
    timing_styles = src.s_r + 0.3 * torch.randn(n_frames, D, generator=torch.Generator().manual_seed(2))
    times: dict[tuple[str, int], float] = {}
    load_before = load_avg()
    for b in batches:
        for name in decoders:
            if b not in decoders[name]:
                try:
                    decoders[name][b] = paths[name](b)
                except Exception as exc:
                    print(f"{name} b={b}: unavailable ({type(exc).__name__}: {str(exc)[:200]})")
                    continue
            decoders[name][b](timing_styles[:b])  # warm-up
        for _ in range(args.repeats):
            for name in decoders:
                if b not in decoders[name]:
                    continue
                t0 = time.perf_counter()
                for i in range(0, n_frames, b):
                    decoders[name][b](timing_styles[i : i + b])
                dt = (time.perf_counter() - t0) / n_frames
                times[(name, b)] = min(times.get((name, b), float("inf")), dt)
        print(f"timed batch {b}; load {load_avg()}")
    print(f"\nload average before timing {load_before}, after {load_avg()}; best of {args.repeats}, {n_frames} frames")
    header = "path".ljust(16) + "".join(f"b={b} s/frame".rjust(15) for b in batches) + "   x vs torch-fast(b)"
    print(header + f"   PSNR dB (b={qb}, {2 * args.frames} frames)")
    for name in decoders:
        row = name.ljust(16)
        for b in batches:
            t = times.get((name, b))
            row += (f"{t:.3f}" if t is not None else "-").rjust(15)
        speed = [
            f"{times[('torch-fast', b)] / times[(name, b)]:.2f}"
            for b in batches
            if (name, b) in times and ("torch-fast", b) in times
        ]
        row += "   " + "/".join(speed).ljust(18) + f"   {quality.get(name, float('nan')):.2f}"
        print(row)

    if args.profile:
        for b, entries in requests.items():
            for tag, request in entries:
                per_type: dict[str, float] = {}
                for info in request.profiling_info:  # type: ignore[attr-defined]
                    key = f"{info.node_type}/{info.exec_type}"
                    per_type[key] = per_type.get(key, 0.0) + info.real_time.total_seconds()
                total = sum(per_type.values())
                top = sorted(per_type.items(), key=lambda kv: -kv[1])[:10]
                shares = ", ".join(f"{k} {v / total:.0%}" for k, v in top)
                print(f"profile {tag} b={b}: {total:.3f} s in the last call; {shares}")


if __name__ == "__main__":
    main()
