"""A recording streamed through a live session as a microphone would deliver it, with the
latency a viewer would see: what `floatalk live` and benchmarks/bench_live.py run.

Pieces of `piece_ms` arrive at the times their last samples would be captured (the first
sample at t = 0). Paced (`realtime`), the stream waits for those times and the clock says when
frames were ready. Unpaced, pieces are pushed back to back and each push's measured compute time
is laid on the real-time schedule (a push starts when its piece has arrived and the previous push
is done), which gives the same figures without the waiting.

A frame k is due at k / fps + the playout delay (the algorithmic latency plus one chunk, the time
a step may take); one ready later is late: a viewer would have seen the previous frame again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from floatalk.live.session import LiveOutput, LiveSession

__all__ = ["LiveReport", "replay", "viewer_frames"]


@dataclass
class LiveReport:
    """Latency figures of one replay, in milliseconds unless named otherwise."""

    chunk_ms: float
    lookahead_ms: float
    algorithmic_latency_ms: float  # lookahead + chunk
    playout_delay_ms: float  # when a frame is due after its audio: algorithmic latency + chunk
    latency_p50_ms: float  # per piece that released frames: its last sample arriving -> its frames ready
    latency_p95_ms: float
    latency_max_ms: float
    compute_p50_ms: float  # per step of the session
    compute_p95_ms: float
    compute_max_ms: float
    first_frame_ms: float  # the first sample arriving -> the first frame ready
    frames: int
    late_frames: int  # ready after they were due (a viewer sees the previous frame again)
    audio_s: float
    compute_s: float  # all steps together
    fps: float  # frames per second of compute: the rate the session sustains
    realtime_factor: float  # compute time / audio time (below 1 keeps up)
    realtime: bool  # paced at real time (else the schedule is laid out from measured compute)

    def to_json(self) -> dict:
        return asdict(self)

    def summary(self) -> list[str]:
        """Lines for a terminal."""
        return [
            f"latency per chunk: p50 {self.latency_p50_ms:.0f} ms, p95 {self.latency_p95_ms:.0f} ms, "
            f"max {self.latency_max_ms:.0f} ms (algorithmic {self.algorithmic_latency_ms:.0f} ms = "
            f"lookahead {self.lookahead_ms:.0f} + chunk {self.chunk_ms:.0f})",
            f"compute per step: p50 {self.compute_p50_ms:.0f} ms, p95 {self.compute_p95_ms:.0f} ms, "
            f"max {self.compute_max_ms:.0f} ms; first frame {self.first_frame_ms:.0f} ms after the first audio",
            f"{self.frames} frames, {self.fps:.1f} fps sustained, real-time factor {self.realtime_factor:.2f}, "
            f"{self.late_frames} late (shown as a repeat of the previous frame)",
        ]


def _ms(values: list[float], q: float) -> float:
    return float(np.percentile(values, q) * 1000) if values else 0.0


def replay(
    session: LiveSession,
    wave: np.ndarray,
    piece_ms: float,
    realtime: bool = False,
    on_output: Callable[[LiveOutput], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[LiveOutput, np.ndarray, LiveReport]:
    """Stream (N,) float32 `wave` through `session` in pieces of `piece_ms`, then close it.

    Returns (all output joined, (T,) seconds at which each frame was ready, the report);
    `on_output` sees each push's output as it comes."""
    sr = session.sr
    piece = max(1, round(piece_ms * sr / 1000))
    outputs, ready, latencies = [], [], []
    t0 = clock()
    done = 0.0  # unpaced: when the previous push finished on the real-time schedule
    n_pieces = -(-len(wave) // piece)
    for i in range(n_pieces + 1):
        last = i == n_pieces
        arrive = min(len(wave), (i + 1) * piece) / sr
        if realtime:
            sleep(max(0.0, t0 + arrive - clock()))
        start = clock()
        out = session.close() if last else session.push(wave[i * piece : (i + 1) * piece])
        spent = clock() - start
        at = (clock() - t0) if realtime else max(arrive, done) + spent
        done = at
        if len(out):
            latencies.append(at - arrive)
            ready.append(np.full(len(out), at))
            outputs.append(out)
            if on_output is not None:
                on_output(out)
    joined = session.join(outputs)
    ready_s = np.concatenate(ready) if ready else np.zeros(0)
    return joined, ready_s, _report(session, joined, ready_s, latencies, len(wave) / sr, realtime)


def _report(
    session: LiveSession, out: LiveOutput, ready_s: np.ndarray, latencies: list[float], audio_s: float, realtime: bool
) -> LiveReport:
    lookahead = session.lookahead_ms or 0.0
    algorithmic = lookahead + session.chunk_ms
    delay = (algorithmic + session.chunk_ms) / 1000
    due = out.index / session.fps + delay
    compute = out.compute_s
    total = float(sum(compute))
    return LiveReport(
        chunk_ms=session.chunk_ms,
        lookahead_ms=lookahead,
        algorithmic_latency_ms=algorithmic,
        playout_delay_ms=delay * 1000,
        latency_p50_ms=_ms(latencies, 50),
        latency_p95_ms=_ms(latencies, 95),
        latency_max_ms=_ms(latencies, 100),
        compute_p50_ms=_ms(compute, 50),
        compute_p95_ms=_ms(compute, 95),
        compute_max_ms=_ms(compute, 100),
        first_frame_ms=float(ready_s[0] * 1000) if len(ready_s) else 0.0,
        frames=len(out),
        late_frames=int(np.sum(ready_s > due + 1e-9)),
        audio_s=audio_s,
        compute_s=total,
        fps=len(out) / total if total > 0 else 0.0,
        realtime_factor=total / audio_s if audio_s > 0 else 0.0,
        realtime=realtime,
    )


def viewer_frames(out: LiveOutput, ready_s: np.ndarray, report: LiveReport, fps: int) -> np.ndarray:
    """What a viewer with the report's playout delay saw: (T, S, S, 3), each late frame replaced by
    the last frame shown before it (the first frame stands in when the very first is late)."""
    due = out.index / fps + report.playout_delay_ms / 1000
    on_time = ready_s <= due + 1e-9
    shown = np.maximum.accumulate(np.where(on_time, np.arange(len(on_time)), -1))
    return out.frames[np.maximum(shown, 0)]
