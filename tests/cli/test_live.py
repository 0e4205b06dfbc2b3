"""`floatalk live` end to end on the bundled model: a video a viewer would have seen, its latency
figures, and user mistakes as exit 2 before the model loads."""

from __future__ import annotations

import json
import math

import pytest

from floatalk.cli.main import main
from floatalk.io.video import probe_video


@pytest.fixture(autouse=True)
def _keep_threads():
    """`floatalk live --threads` sets torch's thread count for its process; run in the test
    process, it must not change the count the tests after it run with (the golden logs)."""
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_live_writes_the_video_and_the_figures(example, tmp_path, capsys):
    out, stats = tmp_path / "live.mp4", tmp_path / "stats.json"
    code = main(
        ["live", "--image", str(example.image), "--audio", str(example.audio), "--out", str(out)]
        + ["--stats-json", str(stats), "--chunk-ms", "80", "--lookahead-ms", "40"]
    )
    assert code == 0
    info = probe_video(out)
    figures = json.loads(stats.read_text())
    assert figures["frames"] == math.ceil(2.0 * 25)
    assert figures["algorithmic_latency_ms"] == 120.0
    assert {"latency_p95_ms", "first_frame_ms", "fps", "late_frames", "realtime_factor"} <= set(figures)
    assert (info["video_codec"], info["audio_codec"], info["n_frames"]) == ("h264", "aac", 50)
    assert abs(info["audio_duration"] - 2.0) < 0.1
    err = capsys.readouterr().err
    assert "latency per chunk" in err and "torch threads: " in err and "(auto)" in err  # auto is the default


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--chunk-ms", "0"], "--chunk-ms"),
        (["--lookahead-ms", "5000"], "--lookahead-ms"),
        (["--head-motion", "-1"], "--head-motion"),
        (["--threads", "0"], "--threads"),
        (["--threads", "many"], "--threads"),
    ],
)
def test_live_mistakes_exit_2_with_one_line(example, tmp_path, capsys, extra, needle):
    args = ["live", "--image", str(example.image), "--audio", str(example.audio), "--out", str(tmp_path / "x.mp4")]
    assert main([*args, *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err
    assert not list(tmp_path.iterdir())
