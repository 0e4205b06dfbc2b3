"""floatalk.apps.live.runner: a session refused at its start when the model is too slow for real
time, and its slot given back."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from floatalk.apps.examples import EXAMPLE_OPTIONS, write_example
from floatalk.apps.live.runner import LiveRunner
from floatalk.apps.live.sessions import LiveError, LiveLimits, LivePool, parse_start
from floatalk.apps.uploads import Limits


def test_a_model_too_slow_for_real_time_is_refused_at_the_start(tiny_bundle_dir: Path, tmp_path: Path) -> None:
    from floatalk.pipeline import FloatPipeline

    example = write_example(tmp_path, seconds=0.5, size=64)
    photo = base64.b64encode(example.image.read_bytes()).decode()
    request = parse_start({"type": "start", "image": photo, "options": EXAMPLE_OPTIONS}, Limits())
    too_fast = LiveLimits(min_speed=1e6, warmup_s=0.1)  # no machine makes a million times real time
    pool = LivePool(limits=too_fast, loader=lambda: FloatPipeline.from_pretrained(tiny_bundle_dir))
    runner = LiveRunner(pool, pool.acquire(), request, Limits(), tmp_path)
    with pytest.raises(LiveError) as refused:
        runner.call(runner.open).result(timeout=120)
    assert refused.value.code == 1008 and "too slow for a live session" in str(refused.value)
    runner.shutdown()
    assert pool.active == 0
