"""floatalk/live/session.py: a live session against the offline generation, continuity for any
piece size, controls changed mid-way, and one-sentence errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from floatalk.editing.atlas import GROUPS
from floatalk.errors import UserInputError
from floatalk.live import LiveOutput, LiveSession, pcm_from_s16le

SLOW = pytest.mark.slow  # the fast tier keeps two piece sizes; the full suite runs all five


def stream(session: LiveSession, wave: np.ndarray, piece: int) -> LiveOutput:
    outputs = [session.push(wave[i : i + piece]) for i in range(0, len(wave), piece)]
    return session.join([*outputs, session.close()])


def test_one_chunk_with_unlimited_lookahead_is_the_offline_generation(bundled_pipe, example, example_wave):
    offline = bundled_pipe(example.image, example_wave)
    session = bundled_pipe.live(example.image, lookahead_ms=None)
    assert len(session.push(example_wave)) == 0  # nothing is made before close without a lookahead limit
    out = session.close()
    assert torch.equal(out.motion, offline.motion)
    assert np.array_equal(out.frames, offline.frames)
    assert np.array_equal(out.audio, example_wave)


@pytest.mark.parametrize(
    "piece_ms",
    [pytest.param(1, marks=SLOW), 7, 40, pytest.param(130, marks=SLOW), pytest.param(2000, marks=SLOW)],
)
def test_any_piece_size_gives_every_frame_once_in_order(bundled_pipe, example, example_wave, piece_ms):
    session = bundled_pipe.live(example.image, chunk_ms=120, lookahead_ms=80)
    out = stream(session, example_wave, piece_ms * 16)
    T = math.ceil(len(example_wave) / 640)
    assert np.array_equal(out.index, np.arange(T))
    assert out.frames.shape == (T, 128, 128, 3)
    assert np.array_equal(out.audio, example_wave)


def frame_steps(frames: np.ndarray) -> np.ndarray:
    """(T - 1,) mean absolute pixel change from each frame to the next."""
    return np.abs(np.diff(frames.astype(np.float32), axis=0)).mean(axis=(1, 2, 3))


def test_chunk_boundaries_do_not_show(bundled_pipe, tmp_path):
    # The timeline's boundary rule: the largest step within 2 frames of a chunk boundary is no
    # larger than the 99th percentile of the clip's steps away from boundaries (a 6 s clip, so
    # that there are enough steps away from boundaries for a percentile).
    from floatalk.apps.examples import write_example

    long = write_example(tmp_path, seconds=6.0)
    wave = bundled_pipe.load_audio(long.audio)
    session = bundled_pipe.live(long.image, chunk_ms=400, lookahead_ms=80)
    outputs = [session.push(wave[i : i + 6400]) for i in range(0, len(wave), 6400)]
    out = session.join([*outputs, session.close()])
    starts = np.cumsum([len(o) for o in outputs if len(o)])[:-1]  # first frames of later pushes' output
    steps = frame_steps(out.frames)  # steps[k - 1]: frame k - 1 -> k
    near = np.zeros(len(steps), bool)
    for k in starts:
        near[max(0, k - 3) : k + 2] = True  # the steps into frames k - 2 .. k + 1
    assert near.any() and (~near).sum() >= 60
    assert steps[near].max() <= np.percentile(steps[~near], 99)


def head_effects(session: LiveSession, motion: torch.Tensor) -> np.ndarray:
    editor = session.controls.editor
    return editor.effects(motion)[:, editor.atlas.rows(GROUPS["head"])]


def test_head_motion_zero_mid_way_holds_the_head(bundled_pipe, example, example_wave):
    plain = bundled_pipe.live(example.image, chunk_ms=120, lookahead_ms=80)
    free = stream(plain, example_wave, 1920)
    held = bundled_pipe.live(example.image, chunk_ms=120, lookahead_ms=80)
    half = len(example_wave) // 2
    first = stream_part(held, example_wave[:half], 1920)
    held.update(head_motion=0.0)
    rest = held.join([held.push(example_wave[half:]), held.close()])
    assert torch.equal(first.motion, free.motion[: len(first)])  # nothing changes before the update
    settled = slice(len(first) + 6, None)  # after the 6-frame ramp
    before = np.abs(head_effects(plain, free.motion[settled])).mean()
    after = np.abs(head_effects(held, rest.motion[6:])).mean()
    assert after < 0.1 * before
    assert len(first) + len(rest) == len(free)


def stream_part(session: LiveSession, wave: np.ndarray, piece: int) -> LiveOutput:
    return session.join([session.push(wave[i : i + piece]) for i in range(0, len(wave), piece)])


def test_a_forced_emotion_mid_way_changes_the_stream(bundled_pipe, example, example_wave):
    plain = bundled_pipe.live(example.image, chunk_ms=120, lookahead_ms=80)
    free = stream(plain, example_wave, 1920)
    happy = bundled_pipe.live(example.image, chunk_ms=120, lookahead_ms=80)
    half = len(example_wave) // 2
    first = stream_part(happy, example_wave[:half], 1920)
    happy.update(emotion="happy", e_cfg_scale=3.0)
    rest = happy.join([happy.push(example_wave[half:]), happy.close()])
    assert torch.equal(first.motion, free.motion[: len(first)])
    change = (rest.motion - free.motion[len(first) :]).abs().mean()
    assert change > 0.1 * free.motion.abs().mean()
    assert happy.emotion.forced is not None and happy.emotion.forced.argmax().item() == 3  # happy


def one_sentence(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text and text.endswith(".")
    return text


@pytest.mark.parametrize(
    ("pcm", "needle"),
    [
        (np.zeros(10, np.int16), "float"),
        (np.zeros((2, 10), np.float32), "1-D"),
        (b"\x00\x00", "pcm_from_s16le"),
        (np.array([0.0, np.nan], np.float32), "NaN"),
        ([0.0, 0.1], "list"),
    ],
)
def test_bad_pushes_are_one_sentence(bundled_pipe, example, pcm, needle):
    session = bundled_pipe.live(example.image)
    with pytest.raises(UserInputError) as exc:
        session.push(pcm)
    assert needle in one_sentence(exc)


@pytest.mark.parametrize(
    ("controls", "needle"),
    [
        ({"nfe": 3}, "cannot be changed live"),
        ({"head_motion": -1.0}, "head_motion"),
        ({"emotion": "bored"}, "emotion"),
        ({"blink": "yes"}, "blink"),
    ],
)
def test_bad_updates_are_one_sentence_and_change_nothing(bundled_pipe, example, controls, needle):
    session = bundled_pipe.live(example.image)
    with pytest.raises(UserInputError) as exc:
        session.update(**controls)
    assert needle in one_sentence(exc)
    assert session.controls.target["head_motion"] == 1.0 and session.emotion.forced is None


def test_closed_sessions_and_bad_settings_are_one_sentence(bundled_pipe, example):
    session = bundled_pipe.live(example.image)
    session.close()
    for call in (lambda: session.push(np.zeros(10, np.float32)), session.close, lambda: session.update(blink=False)):
        with pytest.raises(UserInputError) as exc:
            call()
        assert "closed" in one_sentence(exc)
    for kwargs in ({"chunk_ms": 0}, {"lookahead_ms": -5}, {"timeline": {"segments": []}}, {"precision": "fast"}):
        with pytest.raises(UserInputError) as exc:
            bundled_pipe.live(example.image, **kwargs)
        one_sentence(exc)


def test_s16le_helper():
    data = np.array([0, 16384, -32768], "<i2").tobytes()
    assert np.array_equal(pcm_from_s16le(data), np.array([0.0, 0.5, -1.0], np.float32))
    with pytest.raises(UserInputError) as exc:
        pcm_from_s16le(data[:-1])
    one_sentence(exc)
