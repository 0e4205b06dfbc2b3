"""Benchmark of the generation stages on release-size weights, default against the fast path.

Every configuration runs in its own subprocess, so that its peak RSS is its own. Kinds:

* pipeline (one per clip length and precision, side by side; the first precision is the
  baseline of the ratios): seconds per frame of each stage (image, emotion, audio features,
  motion sampling, decoding, video encoding), the real-time factor, the first frame's time after
  the weights are loaded (handed to the video writer; the clip's first two frames are decoded
  alone) and peak RSS, generating a clip (the parity speech repeated) through the same
  streaming loop as `floatalk generate`;
* peak: the machine's GFLOP/s for a matmul and a 3x3 convolution in float32, bfloat16 and int8,
  and the share of the convolution peak each run's decoder reaches (37.8 GFLOP per 512 px frame);
* decode: the same frames decoded frame by frame with floatalk's copy of the release's decoder
  (batch 1; not the release's own code), batched in float32 and in bfloat16; PSNR against float32;
* --device cuda: frames per second at 512 px, NFE 10, decoder batches 1 to 32 in float16 and
  bfloat16 (--compile: torch.compile, --compile-mode reduce-overhead for CUDA graphs), the
  sampler and the batch-1 stream; without a GPU it says so in one sentence and exits 0.

Examples (from the repository root):

    python tests/data/parity/make_release_dir.py checkpoints/parity_release      # once, 1.15 GB
    python benchmarks/bench_generate.py --skip-decode                  # 10 s clip, float32 vs fast
    python benchmarks/bench_generate.py --durations 2 --skip-decode --skip-peak     # a quick run
    python benchmarks/bench_generate.py --only-decode --decode-frames 8
    python benchmarks/bench_generate.py --device cuda --compile

Results go to stdout as tables and, with --json PATH, as JSON lines.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PARITY = REPO / "tests" / "data" / "parity"
DEFAULT_CHECKPOINT = REPO / "checkpoints" / "parity_release"
STAGES = ("image", "emotion", "audio", "motion", "decode", "video")
DECODER_GFLOP = 37.8  # the decoder's 3x3 convolutions per 512 px frame (experiments/conv_winograd.py)
GPU_BATCHES = (1, 2, 4, 8, 16, 32)


# ------------------------------------------------------------------------------------ helpers
def speech(seconds: float, sample_rate: int = 16000) -> np.ndarray:
    """The parity speech clip (espeak-ng, 3.2 s) repeated to `seconds`: (N,) float32."""
    from floatalk.io.audio import load_audio

    clip = load_audio(PARITY / "inputs_a" / "audio.wav", sample_rate=sample_rate)
    n = int(round(seconds * sample_rate))
    return np.resize(clip, n).astype(np.float32)


def reset_peak_rss() -> bool:
    """Reset the kernel's high-water mark of this process (VmHWM); False where not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def vm_hwm_mb() -> float:
    """VmHWM of this process in MiB (peak RSS since start or the last reset)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    """User + system CPU time of this process: less sensitive than wall time to other load on the machine."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Clock:
    """Accumulates wall seconds per stage."""

    def __init__(self) -> None:
        self.total = dict.fromkeys(STAGES, 0.0)

    def run(self, stage: str, fn, *args, **kwargs):
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        self.total[stage] += time.perf_counter() - t0
        return out


def setup_worker(args: argparse.Namespace) -> None:
    """Threads; call `tune_allocator` once the weights are loaded, as `floatalk generate` does."""
    import torch

    torch.set_num_threads(args.threads)


def tune_allocator(args: argparse.Namespace) -> None:
    if args.tune_allocator:
        from floatalk.pipeline import reuse_freed_memory

        reuse_freed_memory()


def load_pipe(args: argparse.Namespace, dtype_name: str, decode: str = "batched"):
    import torch

    from floatalk.pipeline import FloatPipeline

    return FloatPipeline.from_pretrained(
        args.checkpoint, device=args.device, dtype=getattr(torch, dtype_name), decode=decode
    )


# ------------------------------------------------------------------------------------ workers
def worker_pipeline(args: argparse.Namespace) -> dict:
    """One clip through the streaming loop of `floatalk generate`, timed stage by stage, in one precision."""
    import torch

    from floatalk.engine.core import FIRST_FRAMES
    from floatalk.io.video import VideoWriter
    from floatalk.sampling.sampler import SamplerSettings, iter_motion_windows

    setup_worker(args)
    t0 = time.perf_counter()
    pipe = load_pipe(args, "float32")
    run = pipe.precision(args.precision)  # built now: part of loading, not of the generation
    tune_allocator(args)
    load_s = time.perf_counter() - t0
    rss_loaded = max_rss_mb()
    wave = speech(args.duration, pipe.sample_rate)
    soundtrack = speech(args.duration, 48000)
    hwm_reset = reset_peak_rss()
    load_before, cpu0 = os.getloadavg()[0], cpu_seconds()
    clock = Clock()
    settings = SamplerSettings(nfe=args.nfe)
    with torch.inference_mode(), tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        src = clock.run("image", pipe.encode_image, PARITY / "inputs_a" / "image.png", crop=False)
        we = clock.run("emotion", pipe.encode_emotion, wave).to(run.dtype)
        r_s = src.r_s.to(run.dtype)
        generator = torch.Generator().manual_seed(15)
        prev_x = prev_wa = None
        frames_done, first_frame_s = 0, None
        features = pipe.iter_audio_features(wave, run.audio_encoder)
        with VideoWriter(Path(tmp) / "out.mp4", fps=pipe.fps, audio=soundtrack, sample_rate=48000) as writer:
            while (wa := clock.run("audio", next, features, None)) is not None:
                wa = wa.to(run.dtype)
                windows = iter_motion_windows(run.fmt, wa, r_s, we, settings, generator, 0, prev_x, prev_wa)
                while (window := clock.run("motion", next, windows, None)) is not None:
                    first = FIRST_FRAMES if frames_done == 0 else 0
                    batches = pipe.decode(src, window, args.batch_size, first, run.decode_dtype)
                    while (frames := clock.run("decode", next, batches, None)) is not None:
                        clock.run("video", writer.write, frames)
                        if first_frame_s is None:
                            first_frame_s = time.perf_counter() - start  # handed to the writer
                        frames_done += len(frames)
                    prev_x = window[:, -pipe.cfg.fmt.prev :]
                prev_wa = wa[:, -pipe.cfg.fmt.prev :]
    total = sum(clock.total.values())
    return {
        "kind": "pipeline",
        "duration_s": args.duration,
        "precision": args.precision,
        "decode_dtype": str(run.decode_dtype).removeprefix("torch."),
        "frames": frames_done,
        "load_s": load_s,
        "stage_s": clock.total,
        "stage_s_per_frame": {k: v / frames_done for k, v in clock.total.items()},
        "total_s": total,
        "rtf": total / args.duration,
        "cpu_s_per_frame": (cpu_seconds() - cpu0) / frames_done,
        "load_avg_1min": [load_before, os.getloadavg()[0]],
        "first_frame_after_load_s": first_frame_s,
        "peak_rss_mb": max_rss_mb(),
        "rss_after_load_mb": rss_loaded,
        "generation_peak_rss_mb": vm_hwm_mb() if hwm_reset else None,
    }


def worker_peak(args: argparse.Namespace) -> dict:
    """The machine's peak GFLOP/s on `--threads` threads: a large matmul and a 3x3 convolution of the
    decoder's shape (256 channels at 64 px, batch 8, channels-last), in float32, bfloat16 and int8
    (int8: torch._int_mm for the matmul, torch.ao's quantized convolution), best of a few runs."""
    import torch

    torch.set_num_threads(args.threads)
    out: dict = {"kind": "peak", "threads": args.threads}

    def best(fn, flops: float, reps: int = 8) -> float:
        fn()
        seconds = min(timed(fn) for _ in range(reps))
        return flops / seconds / 1e9

    def timed(fn) -> float:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    n = 2048
    a, b = torch.randn(n, n), torch.randn(n, n)
    with torch.inference_mode():
        out["matmul_float32"] = best(lambda: a @ b, 2 * n**3)
        ab, bb = a.bfloat16(), b.bfloat16()
        out["matmul_bfloat16"] = best(lambda: ab @ bb, 2 * n**3)
        try:
            ai, bi = torch.randint(-64, 64, (n, n), dtype=torch.int8), torch.randint(-64, 64, (n, n), dtype=torch.int8)
            out["matmul_int8"] = best(lambda: torch._int_mm(ai, bi), 2 * n**3)
        except (RuntimeError, AttributeError) as exc:
            out["matmul_int8"] = None
            out["matmul_int8_error"] = str(exc).splitlines()[0]
        batch, ch, px = 8, 256, 64
        flops = 2 * batch * ch * ch * 9 * px * px
        x = torch.randn(batch, ch, px, px).contiguous(memory_format=torch.channels_last)
        conv = torch.nn.Conv2d(ch, ch, 3, padding=1, bias=False).to(memory_format=torch.channels_last)
        out["conv_float32"] = best(lambda: conv(x), flops)
        conv_bf, x_bf = conv.bfloat16(), x.bfloat16()
        out["conv_bfloat16"] = best(lambda: conv_bf(x_bf), flops)
        conv.float()
        try:
            from torch.ao.nn.quantized import Conv2d as QConv2d

            qconv = QConv2d(ch, ch, 3, padding=1, bias=False)
            qconv.set_weight_bias(torch.quantize_per_tensor(conv.weight.detach(), 0.01, 0, torch.qint8), None)
            qx = torch.quantize_per_tensor(x, 0.05, 64, torch.quint8)
            out["conv_int8"] = best(lambda: qconv(qx), flops)
        except (RuntimeError, AttributeError) as exc:
            out["conv_int8"] = None
            out["conv_int8_error"] = str(exc).splitlines()[0]
    out["load_avg_1min"] = os.getloadavg()[0]
    return out


def worker_decode(args: argparse.Namespace) -> dict:
    """The same frames decoded three ways: release (batch 1), batched float32, bfloat16."""
    import torch

    from floatalk.convert import to_pixels
    from floatalk.evaluation import psnr

    torch.set_num_threads(args.threads)
    pipe = load_pipe(args, "float32")
    ae = pipe.model.motion_autoencoder
    motion = torch.from_numpy(np.load(PARITY / "expected_a.npz")["sample_predicted_emotion"][0])
    n = min(args.decode_frames, motion.shape[0])
    picks = np.linspace(0, motion.shape[0] - 1, n).round().astype(int)
    results: dict[str, dict] = {}
    frames: dict[str, np.ndarray] = {}
    with torch.inference_mode():
        src = pipe.encode_image(PARITY / "inputs_a" / "image.png", crop=False)
        styles = src.s_r + motion[picks]
        fast_feats = src.fast_feats

        def release_way() -> np.ndarray:
            return np.concatenate([to_pixels(ae.decode(s[None], src.feats)) for s in styles])

        def batched(dtype: torch.dtype, below: int):
            def run() -> np.ndarray:
                out = [
                    to_pixels(ae.decode_fast(styles[i : i + args.batch_size], fast_feats, dtype, below))
                    for i in range(0, n, args.batch_size)
                ]
                return np.concatenate(out)

            return run

        def measure(name: str, fn) -> None:
            best, best_cpu = float("inf"), float("inf")
            for _ in range(args.repeats):
                t0, c0 = time.perf_counter(), cpu_seconds()
                frames[name] = fn()
                best = min(best, time.perf_counter() - t0)
                best_cpu = min(best_cpu, cpu_seconds() - c0)
            results[name] = {"s_per_frame": best / n, "cpu_s_per_frame": best_cpu / n}

        measure("release_b1_f32", release_way)
        measure("batched_f32_default_alloc", batched(torch.float32, 0))
        if args.tune_allocator:
            from floatalk.pipeline import reuse_freed_memory

            reuse_freed_memory()
            measure("release_b1_f32_tuned_alloc", release_way)
        measure("batched_f32", batched(torch.float32, 0))
        for below in sorted({pipe.float32_below, 128}, reverse=True):
            measure(f"bf16_below{below}", batched(torch.bfloat16, below))
        measure("bf16_all", batched(torch.bfloat16, 0))
    base = results["release_b1_f32"]["s_per_frame"]
    for name, r in results.items():
        r["speedup_vs_release_b1"] = base / r["s_per_frame"]
        r["psnr_vs_batched_f32"] = psnr(frames[name], frames["batched_f32"])
        r["psnr_vs_release_b1"] = psnr(frames[name], frames["release_b1_f32"])
    return {
        "kind": "decode",
        "frames": n,
        "batch_size": args.batch_size,
        "threads": args.threads,
        "load_avg_1min": os.getloadavg()[0],
        "results": results,
    }


def worker_gpu(args: argparse.Namespace) -> dict:
    """GPU throughput: batched decoding and the batch-1 stream at 512 px, NFE 10."""
    import torch

    from floatalk.sampling.sampler import SamplerSettings, iter_motion_windows

    torch.backends.cudnn.benchmark = True
    pipe = load_pipe(args, args.dtype)
    ae = pipe.model.motion_autoencoder
    dev = pipe.device
    out: dict = {"kind": "gpu", "dtype": args.dtype, "device_name": torch.cuda.get_device_name(dev)}
    decode_fast = ae.decode_fast
    if args.compile:
        decode_fast = torch.compile(ae.decode_fast, mode=args.compile_mode, dynamic=False)
    with torch.inference_mode():
        src = pipe.encode_image(PARITY / "inputs_a" / "image.png", crop=False)
        dtype = getattr(torch, args.dtype)
        for bs in GPU_BATCHES:
            styles = src.s_r + 0.1 * torch.randn(bs, src.s_r.shape[1], device=dev)
            for _ in range(3):
                decode_fast(styles, src.fast_feats, dtype, 0)
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            reps = max(2, 64 // bs)
            for _ in range(reps):
                decode_fast(styles, src.fast_feats, dtype, 0)
            torch.cuda.synchronize()
            out[f"decode_fps_b{bs}"] = reps * bs / (time.perf_counter() - t0)
        wave = speech(args.duration, pipe.sample_rate)
        wa = pipe.encode_audio(wave).to(pipe.dtype)
        we = pipe.encode_emotion(wave).to(pipe.dtype)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        windows = iter_motion_windows(
            pipe.model.fmt, wa, src.r_s.to(pipe.dtype), we, SamplerSettings(nfe=args.nfe), torch.Generator()
        )
        n = sum(w.shape[1] for w in windows)
        torch.cuda.synchronize()
        out["motion_fps"] = n / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        done = 0
        for _, frames in pipe.stream(PARITY / "inputs_a" / "image.png", wave, crop=False, batch_size=1):
            done += len(frames)
        out["stream_b1_fps"] = done / (time.perf_counter() - t0)
    return out


# -------------------------------------------------------------------------------------- driver
def run_worker(kind: str, args: argparse.Namespace, **extra: object) -> dict:
    cmd = [sys.executable, __file__, "--worker", kind, "--checkpoint", str(args.checkpoint)]
    cmd += ["--threads", str(args.threads), "--nfe", str(args.nfe), "--batch-size", str(args.batch_size)]
    cmd += ["--decode-frames", str(args.decode_frames), "--repeats", str(args.repeats), "--device", args.device]
    if not args.tune_allocator:
        cmd.append("--no-tune-allocator")
    if args.compile:
        cmd += ["--compile", "--compile-mode", args.compile_mode]
    for key, value in extra.items():
        cmd += [f"--{key.replace('_', '-')}", str(value)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"worker {kind} {extra} failed with exit code {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def print_pipeline_row(r: dict) -> None:
    per = r["stage_s_per_frame"]
    gen = r["generation_peak_rss_mb"]
    cells = [f"{r['duration_s']:g} s", r["precision"], r["decode_dtype"], str(r["frames"])]
    cells += [f"{per[k]:.3f}" for k in STAGES]
    cells += [f"{r['total_s'] / r['frames']:.3f}", f"{r['rtf']:.2f}", f"{r['first_frame_after_load_s']:.1f} s"]
    cells += [f"{r['peak_rss_mb']:.0f}", "-" if gen is None else f"{gen:.0f}", f"{r['cpu_s_per_frame']:.3f}"]
    cells += ["/".join(f"{v:.1f}" for v in r["load_avg_1min"])]
    print("| " + " | ".join(cells) + " |", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT, help="release or floatalk folder")
    p.add_argument(
        "--durations", type=float, nargs="+", default=[10.0], help="clip lengths in s (default 10; 2 for a quick run)"
    )
    p.add_argument(
        "--precisions",
        nargs="+",
        default=["float32", "fast"],
        choices=["float32", "bfloat16", "float16", "fast"],
        help="generation precisions, side by side; the first is the baseline of the ratios (default float32 fast)",
    )
    p.add_argument(
        "--dtypes",
        nargs="+",
        default=["float16", "bfloat16"],
        choices=["float32", "bfloat16", "float16"],
        help="--device cuda: the decoder's dtypes (default float16 bfloat16)",
    )
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    p.add_argument("--nfe", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=8, help="frames per decoder call (default 8)")
    p.add_argument("--decode-frames", type=int, default=16, help="frames for the decoder comparison (default 16)")
    p.add_argument("--repeats", type=int, default=2, help="decoder comparison: best of this many runs (default 2)")
    p.add_argument("--skip-decode", action="store_true", help="skip the decoder comparison")
    p.add_argument("--only-decode", action="store_true", help="only the decoder comparison")
    p.add_argument(
        "--no-tune-allocator",
        dest="tune_allocator",
        action="store_false",
        help="keep glibc's default of returning big blocks to the OS (see reuse_freed_memory)",
    )
    p.add_argument("--rounds", type=int, default=1, help="runs of each precision, alternating; best kept (default 1)")
    p.add_argument("--skip-peak", action="store_true", help="skip the peak GFLOP/s microbenchmarks")
    p.add_argument("--gpu", action="store_true", help="the same as --device cuda")
    p.add_argument("--compile", action="store_true", help="--device cuda: torch.compile the batched decoder")
    p.add_argument(
        "--compile-mode",
        default="max-autotune-no-cudagraphs",
        choices=["default", "max-autotune-no-cudagraphs", "reduce-overhead"],
        help="--compile's mode; reduce-overhead captures CUDA graphs (default max-autotune-no-cudagraphs)",
    )
    p.add_argument("--json", type=Path, help="append every result as one JSON line to this file")
    p.add_argument("--worker", choices=["pipeline", "decode", "gpu", "peak"], help=argparse.SUPPRESS)
    p.add_argument("--precision", default="float32", help=argparse.SUPPRESS)
    p.add_argument("--duration", type=float, default=5.0, help=argparse.SUPPRESS)
    p.add_argument("--dtype", default="float32", help=argparse.SUPPRESS)
    p.add_argument(
        "--device", default="cpu", choices=["cpu", "cuda"], help="cuda: frames per second on the GPU (default cpu)"
    )
    args = p.parse_args(argv)

    if args.worker:
        worker = {"pipeline": worker_pipeline, "decode": worker_decode, "gpu": worker_gpu, "peak": worker_peak}
        worker = worker[args.worker]
        print(json.dumps(worker(args)))
        return 0
    from _common import machine

    info = machine()
    print(f"CPU: {info['cpu_model']} ({info['logical_cores']} logical cores), load {info['load_avg_1min']:.2f}")
    if args.gpu or args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            print("No CUDA GPU here: the GPU measurement (--device cuda) is skipped.")
            return 0
        args.device = "cuda"
    if not args.checkpoint.exists():
        raise SystemExit(
            f"no checkpoint at {args.checkpoint}: build one with "
            f"`python {PARITY / 'make_release_dir.py'} {args.checkpoint}` or pass --checkpoint"
        )
    results: list[dict] = []
    if args.device == "cuda":
        rows = []
        for dtype in args.dtypes:
            r = run_worker("gpu", args, dtype=dtype, duration=max(args.durations))
            results.append(r)
            rows.append(r)
        print(f"\nGPU: {rows[0]['device_name']}; 512 px, NFE {args.nfe}; frames per second")
        print("| dtype | " + " | ".join(f"decode b{b}" for b in GPU_BATCHES) + " | motion | stream b1 |")
        print("|---" * (3 + len(GPU_BATCHES)) + "|")
        for r in rows:
            cells = [f"{r.get(f'decode_fps_b{b}', float('nan')):.1f}" for b in GPU_BATCHES]
            print(f"| {r['dtype']} | " + " | ".join(cells) + f" | {r['motion_fps']:.1f} | {r['stream_b1_fps']:.1f} |")
    else:
        if not args.only_decode:
            print(
                "\n| audio | precision | decoder dtype | frames | "
                + " | ".join(f"{s} s/f" for s in STAGES)
                + " | total s/f | RTF | first frame after load | peak RSS MiB | generation peak MiB | CPU s/f "
                "| load before/after |"
            )
            print("|---" * (12 + len(STAGES)) + "|", flush=True)
            best: dict[tuple[float, str], dict] = {}
            for duration in args.durations:
                for _ in range(args.rounds):  # precisions alternate, so a burst of load hits both alike
                    for precision in args.precisions:
                        r = run_worker("pipeline", args, duration=duration, precision=precision)
                        print_pipeline_row(r)
                        results.append(r)
                        key = (duration, precision)
                        if key not in best or r["total_s"] < best[key]["total_s"]:
                            best[key] = r
            print(
                f"\nratios to floatalk {args.precisions[0]} (the baseline; not the release's own code), "
                f"best of {args.rounds} round(s) each; CPU seconds are less sensitive to other load than wall seconds:"
            )
            for duration in args.durations:
                base = best[(duration, args.precisions[0])]
                for precision in args.precisions[1:]:
                    r = best[(duration, precision)]
                    speed = (base["total_s"] / base["frames"]) / (r["total_s"] / r["frames"])
                    cpu = base["cpu_s_per_frame"] / r["cpu_s_per_frame"]
                    first = r["first_frame_after_load_s"] / base["first_frame_after_load_s"]
                    print(
                        f"  {duration:g} s, {precision}: {speed:.2f}x the speed ({cpu:.2f}x in CPU seconds), "
                        f"first frame at {first:.2f}x the time"
                    )
        peak = None
        if not args.skip_peak:
            peak = run_worker("peak", args)
            results.append(peak)
            print(f"\npeak GFLOP/s, {peak['threads']} threads (load {peak['load_avg_1min']:.2f}):")
            print("| kernel | float32 | bfloat16 | int8 |")
            print("|---|---|---|---|")
            for kernel in ("matmul", "conv"):
                cells = [peak.get(f"{kernel}_{d}") for d in ("float32", "bfloat16", "int8")]
                print(f"| {kernel} | " + " | ".join("-" if c is None else f"{c:.0f}" for c in cells) + " |")
            for r in results:
                if r["kind"] != "pipeline":
                    continue
                decode_s = r["stage_s_per_frame"]["decode"]
                reached = DECODER_GFLOP / decode_s
                top = peak.get(f"conv_{r['decode_dtype']}") or peak["conv_float32"]
                print(
                    f"decoder, {r['duration_s']:g} s {r['precision']} ({r['decode_dtype']}): {decode_s:.3f} s/frame = "
                    f"{reached:.0f} GFLOP/s, {reached / top:.0%} of the {r['decode_dtype']} convolution peak"
                )
        if not args.skip_decode:
            r = run_worker("decode", args)
            results.append(r)
            print(f"\ndecoder, {r['frames']} frames, batch {r['batch_size']}, {r['threads']} threads:")
            print(
                "| path | s/frame | CPU s/frame | speed-up vs floatalk's frame-by-frame release decoder "
                "| PSNR vs batched f32 (dB) | PSNR vs release (dB) |"
            )
            print("|---|---|---|---|---|---|")
            for name, v in r["results"].items():
                print(
                    f"| {name} | {v['s_per_frame']:.3f} | {v['cpu_s_per_frame']:.3f} "
                    f"| {v['speedup_vs_release_b1']:.2f}x | {v['psnr_vs_batched_f32']:.1f} "
                    f"| {v['psnr_vs_release_b1']:.1f} |",
                    flush=True,
                )
    print(f"load at the end: {os.getloadavg()[0]:.2f}")
    if args.json:
        with args.json.open("a") as fh:
            for r in results:
                fh.write(json.dumps(r) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
