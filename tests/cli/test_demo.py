"""The bundled-model wiring: `generate` without --checkpoint and `floatalk demo` use floatalk.assets.

These tests point the bundle location at a tiny model saved in a temporary folder: they check the
wiring (fp16 loading, defaults, errors) quickly; tests/assets/test_bundled_model.py runs the real bundle.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from floatalk.cli.main import main
from floatalk.io.video import probe_video, read_video_frames


def test_fp16_bundle_loads(tiny_bundle):
    from floatalk import FloatPipeline
    from floatalk.assets import demo_model_path

    assert demo_model_path() == tiny_bundle
    pipe = FloatPipeline.from_pretrained(tiny_bundle)
    assert all(p.dtype == torch.float32 for p in pipe.model.parameters())


def test_generate_defaults_to_the_bundled_model(tiny_bundle, tmp_path, parity_dir):
    out = tmp_path / "x.mp4"
    code = main(
        [
            "generate",
            "--image",
            str(parity_dir / "inputs_a" / "image.png"),
            "--audio",
            str(parity_dir / "inputs_a" / "audio.wav"),
            "--out",
            str(out),
            "--quiet",
            "--nfe",
            "3",
        ]
    )
    assert code == 0 and probe_video(out)["width"] == 64


def test_no_model_at_all_is_a_clear_error(tmp_path, monkeypatch, parity_dir, capsys):
    import floatalk.assets as assets

    monkeypatch.setattr(assets, "DEMO_MODEL", tmp_path / "missing")
    code = main(
        [
            "generate",
            "--image",
            str(parity_dir / "inputs_a" / "image.png"),
            "--audio",
            str(parity_dir / "inputs_a" / "audio.wav"),
            "--out",
            str(tmp_path / "x.mp4"),
            "--quiet",
        ]
    )
    assert code == 2 and "--checkpoint" in capsys.readouterr().err


def test_demo_command_writes_a_video(tiny_bundle, tmp_path):
    out = tmp_path / "demo.mp4"
    assert main(["demo", "--out", str(out), "--seconds", "2", "--side-by-side", "--quiet"]) == 0
    info = probe_video(out)
    assert (info["video_codec"], info["audio_codec"], info["n_frames"], info["width"]) == ("h264", "aac", 50, 128)


@pytest.mark.slow
def test_demo_writes_the_example_in_a_child_and_the_same_video(tmp_path, monkeypatch):
    """Without --side-by-side the example is synthesised by a forked child while the model loads:
    the video is the one made with the example written in-process (as where fork is not the way).
    The real bundled model: the tiny stand-in's random weights turn rounding into visible change."""
    from floatalk.apps import examples

    out = tmp_path / "demo.mp4"
    assert main(["demo", "--out", str(out), "--seconds", "1", "--seed", "5", "--quiet"]) == 0
    monkeypatch.setattr(examples, "sys", SimpleNamespace(platform="darwin"))
    same = tmp_path / "in_process.mp4"
    assert main(["demo", "--out", str(same), "--seconds", "1", "--seed", "5", "--quiet"]) == 0
    frames = read_video_frames(out)
    assert frames.shape == (25, 128, 128, 3)
    assert np.array_equal(frames, read_video_frames(same))
