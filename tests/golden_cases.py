"""The golden generation case: what the bundled model makes for a fixed synthetic portrait and
speech, as hashes (recorded by tests/golden/record_generation.py, checked by
tests/test_golden_generation.py). A refactor of the render path must reproduce them exactly."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

GOLDEN = Path(__file__).resolve().parent / "golden" / "generation.json"
WORLD_SEED = 777  # a world seed training never used


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def generation_case() -> dict[str, object]:
    """Run the case and return its hashes and a few readable numbers."""
    import soundfile as sf
    import torch
    from PIL import Image

    from floatalk.assets import DEMO_EXPRESSION_SCALE, demo_model_path
    from floatalk.io.video import read_video_frames
    from floatalk.pipeline import FloatPipeline
    from floatalk.synth.world import clip_specs, make_clip

    torch.set_num_threads(2)
    clip = make_clip(clip_specs(1, 2.5, 128, WORLD_SEED, expression_scale=DEMO_EXPRESSION_SCALE)[0])
    pipe = FloatPipeline.from_pretrained(demo_model_path())
    out = pipe(
        image=clip.frames[0], audio=clip.audio, crop=False, seed=15, emotion="sad", e_cfg_scale=2.0, batch_size=4
    )
    values: dict[str, object] = {
        "call_frames": _digest(out.frames),
        "call_motion": _digest(out.motion.numpy()),
        "call_shape": list(out.frames.shape),
        "call_mean": float(out.frames.mean()),
    }
    with tempfile.TemporaryDirectory() as tmp:
        image, audio, video = Path(tmp) / "p.png", Path(tmp) / "a.wav", Path(tmp) / "v.mp4"
        Image.fromarray(clip.frames[0]).save(image)
        sf.write(audio, clip.audio, 16000, subtype="PCM_16")
        cmd = [sys.executable, "-m", "floatalk.cli.main", "generate", "--image", str(image), "--audio", str(audio)]
        cmd += ["--out", str(video), "--no-crop", "--quiet", "--seed", "3", "--batch-size", "8"]
        subprocess.run(cmd, check=True, capture_output=True)
        frames = read_video_frames(video)
    values["cli_frames"] = _digest(frames)
    values["cli_shape"] = list(frames.shape)
    return values
