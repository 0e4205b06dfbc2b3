"""floatalk/live/replay.py: a recording streamed through a session, its latency report, and what a
viewer sees when frames are late."""

from __future__ import annotations

import math

import numpy as np
import torch

from floatalk.live import LiveOutput
from floatalk.live.replay import replay, viewer_frames


def test_replay_reports_every_frame_and_consistent_figures(bundled_pipe, example, example_wave):
    session = bundled_pipe.live(example.image, chunk_ms=120, lookahead_ms=80)
    seen = []
    out, ready, report = replay(session, example_wave, 120, on_output=seen.append)
    T = math.ceil(len(example_wave) / 640)
    assert np.array_equal(out.index, np.arange(T)) and sum(len(o) for o in seen) == T
    assert len(ready) == T and np.all(np.diff(ready) >= 0)
    assert report.frames == T and report.algorithmic_latency_ms == 200.0
    assert report.latency_p50_ms <= report.latency_p95_ms <= report.latency_max_ms
    assert report.first_frame_ms > 0 and report.realtime_factor > 0 and report.fps > 0
    # a frame is never ready before its audio and the lookahead have arrived
    assert np.all(ready[:-5] >= (out.index[:-5] + 1) / 25 + 0.08 - 1e-9)


def test_viewer_sees_the_previous_frame_in_place_of_a_late_one(bundled_pipe, example, example_wave):
    session = bundled_pipe.live(example.image, chunk_ms=120, lookahead_ms=80)
    out, ready, report = replay(session, example_wave[:8000], 120)
    frames = np.arange(len(out))[:, None, None, None].repeat(2, 1).astype(np.uint8)
    fake = LiveOutput(frames, out.index, out.audio, torch.zeros(len(out), 1))
    due = out.index / 25 + report.playout_delay_ms / 1000
    late = due + 1.0
    late[:3] = due[:3]  # on time
    shown = viewer_frames(fake, late, report, 25)
    assert shown[:3, 0, 0, 0].tolist() == [0, 1, 2]
    assert np.all(shown[3:, 0, 0, 0] == 2)
