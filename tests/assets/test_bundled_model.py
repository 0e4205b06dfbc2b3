"""The demo model shipped in the package (src/floatalk/assets/demo_model, trained by scripts/train_demo.sh).

These run the real bundled weights on a synthetic clip from a world seed training never used,
so they fail if the bundle is missing, does not load, or stops making the face talk.
"""

from __future__ import annotations

import numpy as np
import pytest

from floatalk.assets import DEMO_EXPRESSION_SCALE
from floatalk.synth.world import clip_specs, make_clip

HELD_OUT_SEED = 4242  # training used world seed 1; the model card's evaluation uses 9001


@pytest.fixture(scope="module")
def pipe():
    from floatalk import FloatPipeline
    from floatalk.assets import demo_model_path

    path = demo_model_path()
    assert path is not None, "the package ships no demo model"
    return FloatPipeline.from_pretrained(path)


@pytest.fixture(scope="module")
def clips():
    return [make_clip(s) for s in clip_specs(2, 3.0, 128, HELD_OUT_SEED, expression_scale=DEMO_EXPRESSION_SCALE)]


def test_bundle_is_a_few_megabytes():
    from floatalk.assets import demo_model_path

    size = sum(f.stat().st_size for f in demo_model_path().iterdir())
    assert 1e6 < size < 12e6


def test_bundled_model_talks_in_sync_with_unseen_speech(pipe, clips):
    from floatalk.evaluation import psnr, score_lipsync

    clip, other = clips
    out = pipe(image=clip.frames[0], audio=clip.audio, crop=False, seed=15)
    assert out.frames.shape == (75, 128, 128, 3) and out.frames.dtype == np.uint8
    r = score_lipsync(out.frames, clip.audio)["correlation"]
    shuffled = score_lipsync(out.frames, other.audio)["correlation"]
    assert r >= 0.5, f"lip sync with its own speech r={r:.2f}"
    assert shuffled < r - 0.3, f"lip sync with another clip's speech r={shuffled:.2f} (own {r:.2f})"
    # The first frame keeps the source identity.
    assert psnr(out.frames[0], clip.frames[0]) > 20
