"""Live mode on held-out clips of the synthetic world: speed, latency and lip sync against the
offline generation, with a table against the lookahead and the chunk size.

For each clip (world seed --seed, never seen in training), the portrait (the clip's first frame)
is animated offline and through a live session streamed in pieces of the chunk size
(`floatalk.live.replay`, unpaced: each push's measured compute is laid on the real-time
schedule). Lip sync is the synthetic-world meter (`floatalk.evaluation.lipsync.score_lipsync`,
the correlation of mouth opening with the speech envelope at offset 0) of the frames against the
clip's speech. Boundaries: the largest pixel step within 2 frames of a chunk boundary against the
99th percentile of the clip's steps away from boundaries (chunks of 400 ms, so that some steps are).

    python benchmarks/bench_live.py [--clips 4] [--seconds 6] [--device cpu|cuda] [--threads auto|N]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from _common import machine, print_machine, write_json
from floatalk.evaluation.lipsync import score_lipsync
from floatalk.live.replay import replay
from floatalk.live.threads import fastest_threads
from floatalk.pipeline import FloatPipeline
from floatalk.synth.world import clip_specs, make_clip

TARGETS = {"fps": 25.0, "algorithmic_latency_ms": 200.0, "compute_p95_ms": 100.0, "first_frame_ms": 500.0, "sync": 0.9}


def lipsync(frames: np.ndarray, wave: np.ndarray) -> float:
    return float(score_lipsync(frames, wave)["correlation"])


def _step_ratio(frames: np.ndarray, cuts: np.ndarray) -> float:
    steps = np.abs(np.diff(frames.astype(np.float32), axis=0)).mean(axis=(1, 2, 3))
    near = np.zeros(len(steps), bool)
    for k in cuts:
        near[max(0, k - 3) : k + 2] = True
    return float(steps[near].max() / np.percentile(steps[~near], 99))


def boundary_ratio(
    pipe: FloatPipeline, image: np.ndarray, wave: np.ndarray, offline: np.ndarray
) -> tuple[float, float]:
    """Largest step near a chunk boundary / the 99th percentile of steps away from boundaries, for
    the live stream and, as the statistic's own noise, for the offline frames (which have no
    boundary) at the same positions."""
    session = pipe.live(image, crop=False, chunk_ms=400, lookahead_ms=80)
    outputs = [session.push(wave[i : i + 6400]) for i in range(0, len(wave), 6400)]
    out = session.join([*outputs, session.close()])
    cuts = np.cumsum([len(o) for o in outputs if len(o)])[:-1]
    return _step_ratio(out.frames, cuts), _step_ratio(offline, cuts)


def run_live(pipe, image, wave, chunk_ms, lookahead_ms) -> tuple[dict, float]:
    session = pipe.live(image, crop=False, chunk_ms=chunk_ms, lookahead_ms=lookahead_ms)
    out, _, report = replay(session, wave, chunk_ms)
    return report.to_json(), lipsync(out.frames, wave)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", type=int, default=4)
    p.add_argument("--seconds", type=float, default=6.0)
    p.add_argument("--seed", type=int, default=8181, help="world seed of the held-out clips (training used 1)")
    p.add_argument("--checkpoint", default="bundled")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument(
        "--threads",
        default="auto",
        help="torch CPU threads, or auto (default): as `floatalk live` picks them, the faster of 1 and every core "
        "on the first clip's warm-up step",
    )
    p.add_argument("--chunk-ms", type=float, default=120.0)
    p.add_argument("--lookahead-ms", type=float, default=80.0)
    p.add_argument("--lookaheads", default="0,40,80,160,320")
    p.add_argument("--chunks", default="40,120,200,400")
    p.add_argument("--out", type=Path, default=Path("outputs/bench_live.json"))
    args = p.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("No CUDA GPU is visible to torch here: nothing to measure with --device cuda; run it on a GPU.")
        return
    if args.threads != "auto":
        torch.set_num_threads(int(args.threads))
    t = time.perf_counter()
    pipe = FloatPipeline.from_pretrained(args.checkpoint, device=args.device)
    loaded = time.perf_counter() - t
    specs = clip_specs(args.clips, args.seconds, pipe.image_size, args.seed)
    threads = args.threads
    if threads == "auto":
        threads = f"auto: {fastest_threads(pipe.live(make_clip(specs[0]).frames[0], crop=False))}"
    info = machine() | {"threads": threads, "device": args.device}
    print_machine(info)
    print(f"model loaded in {loaded:.1f} s; torch threads {threads}")
    rows: dict[str, list] = {}
    default, offline_sync, boundaries = [], [], []
    for spec in specs:
        clip = make_clip(spec)
        image, wave = clip.frames[0], clip.audio.astype(np.float32)
        pipe.live(image, crop=False).close()  # measures (or reads) the portrait's atlas before timing
        offline = pipe(image, wave, crop=False).frames
        offline_sync.append(lipsync(offline, wave))
        report, sync = run_live(pipe, image, wave, args.chunk_ms, args.lookahead_ms)
        default.append(report | {"sync": sync})
        boundaries.append(boundary_ratio(pipe, image, wave, offline))
        for la in map(float, args.lookaheads.split(",")):
            rows.setdefault(f"lookahead {la:g} ms, chunk {args.chunk_ms:g} ms", []).append(
                run_live(pipe, image, wave, args.chunk_ms, la)
            )
        for chunk in map(float, args.chunks.split(",")):
            rows.setdefault(f"chunk {chunk:g} ms, lookahead {args.lookahead_ms:g} ms", []).append(
                run_live(pipe, image, wave, chunk, args.lookahead_ms)
            )
        print(
            f"{spec.name}: offline sync {offline_sync[-1]:.3f}, live {sync:.3f}, p95 {report['compute_p95_ms']:.0f} ms"
        )
    summary = summarise(default, offline_sync, boundaries, rows)
    print_summary(summary)
    write_json(args.out, {"machine": info, "args": vars(args) | {"out": str(args.out)}, "summary": summary})


def summarise(default: list[dict], offline_sync: list[float], boundaries: list[float], rows: dict) -> dict:
    off = float(np.mean(offline_sync))
    table = {
        name: {
            "sync": float(np.mean([s for _, s in runs])),
            "sync_vs_offline": float(np.mean([s for _, s in runs]) / off),
            "compute_p95_ms": float(np.max([r["compute_p95_ms"] for r, _ in runs])),
            "algorithmic_latency_ms": runs[0][0]["algorithmic_latency_ms"],
            "fps": float(np.mean([r["fps"] for r, _ in runs])),
        }
        for name, runs in rows.items()
    }
    return {
        "fps": float(np.mean([d["fps"] for d in default])),
        "realtime_factor": float(np.mean([d["realtime_factor"] for d in default])),
        "algorithmic_latency_ms": default[0]["algorithmic_latency_ms"],
        "compute_p50_ms": float(np.median([d["compute_p50_ms"] for d in default])),
        "compute_p95_ms": float(np.max([d["compute_p95_ms"] for d in default])),
        "latency_p95_ms": float(np.max([d["latency_p95_ms"] for d in default])),
        "first_frame_ms": float(np.max([d["first_frame_ms"] for d in default])),
        "late_frames": int(sum(d["late_frames"] for d in default)),
        "frames": int(sum(d["frames"] for d in default)),
        "sync_live": float(np.mean([d["sync"] for d in default])),
        "sync_offline": off,
        "sync": float(np.mean([d["sync"] for d in default]) / off),
        "boundary_ratio_max": float(np.max([live for live, _ in boundaries])),
        "boundary_ratio_offline_max": float(np.max([off for _, off in boundaries])),
        "boundary_ratios": [[live, off] for live, off in boundaries],
        "table": table,
    }


def print_summary(s: dict) -> None:
    def mark(ok: bool) -> str:
        return "met" if ok else "NOT met"

    print(
        f"sustained {s['fps']:.1f} fps (target >= 25: {mark(s['fps'] >= TARGETS['fps'])}), real-time factor "
        f"{s['realtime_factor']:.2f}"
    )
    print(
        f"algorithmic latency {s['algorithmic_latency_ms']:.0f} ms (target <= 200: "
        f"{mark(s['algorithmic_latency_ms'] <= TARGETS['algorithmic_latency_ms'])})"
    )
    print(
        f"compute per chunk p50 {s['compute_p50_ms']:.0f} ms, p95 {s['compute_p95_ms']:.0f} ms (target <= 100: "
        f"{mark(s['compute_p95_ms'] <= TARGETS['compute_p95_ms'])}); latency p95 {s['latency_p95_ms']:.0f} ms; "
        f"{s['late_frames']} of {s['frames']} frames late"
    )
    print(
        f"first frame {s['first_frame_ms']:.0f} ms after the first audio (target <= 500: "
        f"{mark(s['first_frame_ms'] <= TARGETS['first_frame_ms'])})"
    )
    print(
        f"lip sync live {s['sync_live']:.3f} vs offline {s['sync_offline']:.3f}: {s['sync']:.2f} of offline "
        f"(target >= 0.9: {mark(s['sync'] >= TARGETS['sync'])})"
    )
    pairs = ", ".join(f"{live:.2f}/{off:.2f}" for live, off in s["boundary_ratios"])
    print(
        f"chunk boundaries: near step / inside p99 = {s['boundary_ratio_max']:.2f} (worst clip; <= 1 ok); "
        f"per clip live/offline at the same positions: {pairs}"
    )
    print(f"{'setting':<36} {'sync':>6} {'of offline':>10} {'p95 ms':>7} {'alg. ms':>8} {'fps':>6}")
    for name, r in s["table"].items():
        print(
            f"{name:<36} {r['sync']:>6.3f} {r['sync_vs_offline']:>10.2f} {r['compute_p95_ms']:>7.0f} "
            f"{r['algorithmic_latency_ms']:>8.0f} {r['fps']:>6.1f}"
        )


if __name__ == "__main__":
    main()
