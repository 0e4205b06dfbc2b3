"""floatalk.apps.live.sessions: the start message read once and the pool's slots."""

from __future__ import annotations

import base64

import pytest

from floatalk.apps.live.sessions import LiveError, LiveLimits, LivePool, parse_start
from floatalk.apps.uploads import Limits

PHOTO = base64.b64encode(b"\x89PNG not really").decode()


def _start(**fields) -> dict:
    return {"type": "start", "image": PHOTO, **fields}


def test_a_start_message_is_read_once_with_its_defaults() -> None:
    request = parse_start(_start(options={"emotion": "happy", "no-blink": True}), Limits())
    assert (request.sample_rate, request.format, request.chunk_ms, request.lookahead_ms) == (16000, "s16le", 120, 80)
    assert request.job.generate.forced_emotion == "happy" and request.job.generate.blink is False
    assert request.fps is None and request.image.startswith(b"\x89PNG")
    assert parse_start(_start(options={"fps": 10}), Limits()).fps == 10
    assert parse_start(_start(fps=5, format="f32le", sample_rate=48000), Limits()).max_chunk_bytes(LiveLimits()) == (
        2 * 48000 * 4
    )
    with_prefix = parse_start(_start(image="data:image/png;base64," + PHOTO), Limits())
    assert with_prefix.image.startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("message", "code", "words"),
    [
        ({"type": "ready"}, 1008, "JSON object of type 'start'"),
        ({"type": "start"}, 1008, "'image' (base64) or 'job'"),
        (_start(job="x"), 1008, "one of them"),
        (
            _start(options={"timeline": {"segments": [{"start": 0, "end": 2, "emotion": "sad"}]}}),
            1008,
            "not available live",
        ),
        (_start(options={"paste_back": True}), 1008, "'paste_back' is not available live"),
        (_start(options={"pose_video": "a.mp4"}), 1008, "file paths are not accepted"),
        (_start(sample_rate=16000.5), 1003, "'sample_rate' must be a whole number"),
        (_start(format="mp3"), 1003, "'mp3' is not supported"),
        (_start(chunk_ms=0), 1008, "'chunk_ms' must be a number from 1 to 2000"),
        (_start(lookahead_ms=None), 1008, "'lookahead_ms' must be a number from 0 to 2000"),
        (_start(fps=0), 1008, "'fps' must be a whole number"),
        (_start(image=""), 1008, "base64 string"),
        (_start(image=PHOTO * 40), 1009, "larger than"),
    ],
)
def test_a_bad_start_message_is_one_sentence_with_its_close_code(message: dict, code: int, words: str) -> None:
    with pytest.raises(LiveError) as refused:
        parse_start(message, Limits(max_upload_bytes=512))
    assert refused.value.code == code and words in str(refused.value) and str(refused.value).endswith(".")


def test_the_pool_hands_out_each_slot_once() -> None:
    pool = LivePool(limits=LiveLimits(max_sessions=2), loader=lambda: "pipe")
    first, second = pool.acquire(), pool.acquire()
    assert {first, second} == {0, 1} and pool.acquire() is None and pool.active == 2
    pool.release(first)
    pool.release(first)  # twice: still one slot
    assert pool.active == 1 and pool.acquire() == first
    assert pool.pipeline(0) == "pipe"
