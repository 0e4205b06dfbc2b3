"""Motion control and editing: the atlas, effect-space edits, the timeline, pose and reenactment."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from floatalk.editing import EffectEditor, MotionAtlas, MotionControls, Timeline
from floatalk.editing.atlas import EFFECTS
from floatalk.editing.controls import TRACK_STEP
from floatalk.errors import UserInputError


@pytest.fixture(scope="module")
def pipe(make_tiny_model):
    from floatalk import FloatPipeline

    return FloatPipeline(make_tiny_model())


@pytest.fixture(scope="module")
def portrait() -> np.ndarray:
    from floatalk.synth.world import clip_specs, make_clip

    return make_clip(clip_specs(1, 0.2, 64, 5, onset=0.1)[0]).frames[0]


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    t = np.arange(int(16000 * 2.4)) / 16000
    return (0.3 * np.sin(2 * np.pi * 180 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


def test_defaults_leave_outputs_bit_identical(pipe, portrait, speech):
    plain = pipe(portrait, speech, crop=False, nfe=3)
    neutral = pipe(
        portrait, speech, crop=False, nfe=3, head_motion=1.0, mouth_scale=1.0, expression_scale=1.0, blink=True
    )
    np.testing.assert_array_equal(plain.frames, neutral.frames)
    np.testing.assert_array_equal(plain.motion.numpy(), neutral.motion.numpy())


def _editor(rng: np.random.Generator, M: int = 12, D: int = 16) -> tuple[EffectEditor, torch.Tensor]:
    # Orthogonal rows of different lengths: well conditioned, so the ridge barely matters.
    rows, _ = np.linalg.qr(rng.normal(size=(M, len(EFFECTS))))
    A = rows.T * rng.uniform(0.5, 2.0, size=(len(EFFECTS), 1)) * 0.01
    atlas = MotionAtlas(A.tolist(), EFFECTS, 1.0, "test", "x")
    q, _ = torch.linalg.qr(torch.randn(D, M, dtype=torch.float64))
    return EffectEditor(atlas, q, torch.zeros(M, dtype=torch.float64)), q


def test_effect_space_edit_scales_the_chosen_effects_and_keeps_the_others():
    rng = np.random.default_rng(0)
    editor, q = _editor(rng)
    motion = (torch.randn(30, q.shape[1], dtype=torch.float64) @ q.T).float()
    before = editor.effects(motion)
    still = editor.effects(editor.edit(motion, MotionControls(head_motion=0.0)))
    np.testing.assert_allclose(still[:, :4], 0.0, atol=1e-2 * np.abs(before[:, :4]).max())
    np.testing.assert_allclose(still[:, 4:], before[:, 4:], atol=1e-2 * np.abs(before).max())
    doubled = editor.effects(editor.edit(motion, MotionControls(mouth_scale=2.0)))
    np.testing.assert_allclose(doubled[:, 4:6], 2 * before[:, 4:6], atol=1e-2 * np.abs(before).max())
    assert editor.edit(motion, MotionControls()) is motion


def test_an_edit_keeps_the_off_span_motion_in_the_share_of_the_smallest_intensity():
    rng = np.random.default_rng(2)
    editor, q = _editor(rng)
    inside = torch.randn(20, q.shape[1], dtype=torch.float64) @ q.T
    off = torch.randn(20, q.shape[0], dtype=torch.float64)
    off = off - (off @ q) @ q.T  # orthogonal to the basis
    motion = (inside + off).float()

    def off_part(latents: torch.Tensor) -> np.ndarray:
        m = latents.double()
        return (m - (m @ q) @ q.T).numpy()

    ramp = np.linspace(0.0, 2.0, 20)
    amplified = editor.edit(motion, MotionControls(head_motion=2.0, mouth_scale=ramp))
    expected = np.minimum(ramp, 1.0)[:, None] * off.numpy()  # none at mouth 0, all from mouth 1 on
    np.testing.assert_allclose(off_part(amplified), expected, atol=1e-5)
    assert np.abs(off_part(editor.edit(motion, MotionControls(head_motion=0.0)))).max() < 1e-5
    tracked = editor.edit(motion, MotionControls(), head=np.zeros((20, 4)))  # a pose video replaces the head
    assert np.abs(off_part(tracked)).max() < 1e-5


def test_per_frame_controls_and_a_reference_head():
    rng = np.random.default_rng(1)
    editor, q = _editor(rng)
    motion = (torch.randn(20, q.shape[1], dtype=torch.float64) @ q.T).float()
    ramp = np.linspace(1.0, 0.0, 20)
    e = editor.effects(editor.edit(motion, MotionControls(head_motion=ramp)))
    base = editor.effects(motion)
    np.testing.assert_allclose(e[:, 0], ramp * base[:, 0], atol=1e-2 * np.abs(base).max())
    head = rng.normal(size=(20, 4)) * 0.01
    posed = editor.effects(editor.edit(motion, MotionControls(), head=head))
    # a reference head track is approached by a TRACK_STEP share of the way, the rest held
    expected = base[:, :4] + TRACK_STEP * (head - base[:, :4])
    np.testing.assert_allclose(posed[:, :4], expected, atol=1e-2 * np.abs(base).max())
    np.testing.assert_allclose(posed[:, 4:], base[:, 4:], atol=1e-2 * np.abs(base).max())


def test_head_motion_zero_changes_the_video_and_caches_its_atlas(pipe, portrait, speech, tmp_path, monkeypatch):
    from floatalk.editing.atlas import cache_dir

    monkeypatch.setenv("FLOATALK_CACHE", str(tmp_path))
    plain = pipe(portrait, speech, crop=False, nfe=3)
    still = pipe(portrait, speech, crop=False, nfe=3, head_motion=0.0)
    assert still.frames.shape == plain.frames.shape and not np.array_equal(still.frames, plain.frames)
    cached = list(cache_dir().rglob("*.json"))
    assert len(cached) == 1
    atlas = MotionAtlas.load(cached[0])
    assert atlas.matrix.shape == (len(EFFECTS), pipe.cfg.motion_ae.motion_dim)
    again = pipe(portrait, speech, crop=False, nfe=3, head_motion=0.0)
    np.testing.assert_array_equal(again.frames, still.frames)


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"segments": [{"start": 0, "end": 2}, {"start": 1, "end": 3}]}, "overlap"),
        ({"segments": [{"start": 0, "end": 1, "emotion": "bored"}]}, "segments[0].emotion 'bored'"),
        ({"segments": [{"start": 0, "end": 1, "head_motion": -1}]}, "segments[0].head_motion must be between"),
        ({"segments": [{"start": 0, "end": 1, "mouth_scale": "big"}]}, "segments[0].mouth_scale must be a number"),
        ({"segments": [{"start": 1, "end": 0.5}]}, "ends"),
        ({"segments": [{"start": 0, "end": 1, "speed": 2}]}, "unknown field 'speed'"),
        ({"segments": [{"end": 1}]}, "needs 'start'"),
        ({"segments": []}, "non-empty"),
        ({"segments": [{"start": 0, "end": 1, "blink": "no"}]}, "blink must be true or false"),
    ],
)
def test_bad_timelines_get_one_sentence_naming_the_field(data, needle):
    with pytest.raises(UserInputError, match=None) as info:
        Timeline.from_dict(data)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_timeline_files_name_the_bad_line_and_times_past_the_audio(tmp_path, pipe, portrait, speech):
    bad = tmp_path / "bad.json"
    bad.write_text('{"segments": [\n  {"start": 0, "end": 1},\n  {"start": 1 "end": 2}\n]}')
    with pytest.raises(UserInputError, match="line 3"):
        Timeline.load(bad)
    late = {"segments": [{"start": 0, "end": 1}, {"start": 5, "end": 6, "emotion": "sad"}]}
    with pytest.raises(UserInputError, match="past the end of the 2.40 s audio"):
        pipe(portrait, speech, crop=False, nfe=2, timeline=late)


def test_cli_timeline_mistake_is_exit_2(tmp_path, capsys):
    from floatalk.cli.main import main

    tl = tmp_path / "t.json"
    tl.write_text(json.dumps({"segments": [{"start": 0, "end": 1, "emotion": "bored"}]}))
    code = main(
        ["generate", "--image", "x.png", "--audio", "y.wav", "--out", str(tmp_path / "o.mp4"), "--timeline", str(tl)]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "bored" in err


def test_segments_blend_smoothly():
    tl = Timeline.from_dict(
        {
            "transition": 0.4,
            "segments": [{"start": 0, "end": 2, "head_motion": 0}, {"start": 2, "end": 4, "head_motion": 2}],
        }
    )
    auto = np.full(7, 1 / 7)
    defaults = {
        "emotion": "auto",
        "e_cfg_scale": 1.0,
        "head_motion": 1.0,
        "mouth_scale": 1.0,
        "expression_scale": 1.0,
        "blink": 1.0,
    }
    f = tl.frames(150, 25, defaults, auto)
    h = f.head_motion
    assert np.allclose([h[25], h[75], h[125]], [0, 2, 1])  # inside segments and in the gap after them
    steps = np.abs(np.diff(h))
    assert steps.max() <= 2 / 10 + 1e-9  # a jump of 2 spread over 10 frames (0.4 s)
    assert f.emotion is None and np.all(f.mouth_scale == 1)
    tl2 = Timeline.from_dict({"segments": [{"start": 1, "end": 2, "emotion": "sad"}]})
    e = tl2.frames(75, 25, defaults, auto).emotion
    assert e.shape == (75, 7) and np.allclose(e.sum(1), 1)
    assert e[37].argmax() == 5 and np.allclose(e[5], auto)


def test_frames_near_a_boundary_cover_the_ramp_and_two_more():
    from floatalk.timeline import BOUNDARY_MARGIN

    defaults = {"emotion": "auto", "e_cfg_scale": 1.0, "head_motion": 1.0, "mouth_scale": 1.0}
    defaults |= {"expression_scale": 1.0, "blink": 1.0}
    for transition in (0.0, 0.4, 0.5):
        segs = [{"start": 0, "end": 2, "emotion": "sad"}, {"start": 2, "end": 4, "emotion": "happy"}]
        f = Timeline.from_dict({"transition": transition, "segments": segs}).frames(100, 25, defaults, np.ones(7) / 7)
        moving = np.flatnonzero(np.any(np.diff(f.emotion, axis=0) != 0, axis=1))  # steps into frames moving + 1
        touched = np.union1d(moving, moving + 1)
        near = np.flatnonzero(f.near_boundary)
        # every frame the ramp moves, plus the margin either side, and nothing else
        assert near.tolist() == list(range(touched[0] - BOUNDARY_MARGIN, touched[-1] + BOUNDARY_MARGIN + 1))
    same = Timeline.from_dict({"segments": [{"start": 0, "end": 2, "head_motion": 1}]})
    assert not same.frames(100, 25, defaults, np.ones(7) / 7).near_boundary.any()  # nothing changes: no boundary


def test_boundary_ease_caps_the_face_near_boundaries_and_keeps_the_rest():
    from floatalk.editing import BoundaryEase
    from floatalk.editing.controls import EASE_PERCENTILE

    rng = np.random.default_rng(3)
    editor, q = _editor(rng)
    T = 120
    An = editor.A / editor.norms[:, None]
    coeffs = np.cumsum(rng.normal(size=(T, q.shape[1])) * 0.1, axis=0)
    coeffs[50:] += 3.0 * np.linalg.pinv(An)[:, 0]  # a jump of the head's first effect into frame 50
    motion = (torch.from_numpy(coeffs) @ q.T).float()
    near = np.zeros(T, bool)
    near[45:56] = True  # across the edge between the pipeline's first two windows
    ease = BoundaryEase(editor, near)
    eased = torch.cat([ease(motion[a : a + 50], a) for a in range(0, T, 50)])  # window by window, as streamed
    x, y = editor.coefficients(motion) @ An.T, editor.coefficients(eased) @ An.T
    face = [i for i in range(len(EFFECTS)) if EFFECTS[i] not in ("mouth_open", "mouth_width")]
    mouth = [i for i in range(len(EFFECTS)) if i not in face]
    steps = np.linalg.norm(np.diff(x[:, face], axis=0), axis=1)
    # the limits the first two windows see: the steps outside the boundary so far
    limit = max(np.percentile(steps[:n][~near[1 : n + 1]], EASE_PERCENTILE) for n in (49, 99))
    shown = np.linalg.norm(np.diff(y[:, face], axis=0), axis=1)
    changed = np.flatnonzero(np.any(eased.numpy() != motion.numpy(), axis=1))
    assert changed[0] >= 45 and changed[-1] < T - 1  # untouched before, and caught up before the end
    # (within 2 %: the ridge of the pseudo-inverse leaves about 0.1 % of a lag of 10 limits)
    assert steps[49] > 5 * limit and shown[changed[0] - 1 : changed[-1] + 1].max() <= limit * 1.02
    np.testing.assert_array_equal(eased[: changed[0]].numpy(), motion[: changed[0]].numpy())
    np.testing.assert_array_equal(eased[changed[-1] + 1 :].numpy(), motion[changed[-1] + 1 :].numpy())
    np.testing.assert_allclose(y[:, mouth], x[:, mouth], atol=1e-3 * np.abs(x).max())  # the mouth as generated
    again = BoundaryEase(editor, near)
    np.testing.assert_array_equal(again(motion, 0).numpy()[:45], motion.numpy()[:45])
    assert BoundaryEase(editor, np.zeros(T, bool))(motion, 0) is motion  # no boundary: nothing changes


def test_timeline_emotion_is_a_per_frame_condition(pipe, portrait, speech):
    tl = {"segments": [{"start": 0, "end": 1.2, "emotion": "happy"}, {"start": 1.2, "end": 2.4, "emotion": "sad"}]}
    out = pipe(portrait, speech, crop=False, nfe=3, timeline=tl)
    forced = pipe(portrait, speech, crop=False, nfe=3, emotion="happy")
    assert out.frames.shape == forced.frames.shape
    assert not np.array_equal(out.frames, forced.frames)
    streamed = np.concatenate([f for _, f in pipe.stream(portrait, speech, crop=False, nfe=3, timeline=tl)])
    np.testing.assert_array_equal(out.frames, streamed)


def test_a_video_becomes_crops_at_the_model_s_frame_rate(tmp_path, portrait):
    from floatalk.io.driving import load_face_video
    from floatalk.io.video import VideoWriter

    levels = tmp_path / "levels.mp4"  # 10 frames at 10 fps, frame k a flat grey of 20 k + 30
    with VideoWriter(levels, fps=10) as w:
        for k in range(10):
            w.write(np.full((48, 80, 3), 20 * k + 30, np.uint8))
    crops = load_face_video(levels, 32, 25, crop=False)
    assert crops.shape == (25, 32, 32, 3) and crops.dtype == np.uint8  # 1 s at 25 fps
    middle = crops[:, 16, 16, 0].astype(float)  # inside the letterboxed frame
    shown = np.floor(np.arange(25) * 10 / 25).astype(int)  # the latest frame shown at each output time
    np.testing.assert_allclose(middle, 20 * shown + 30, atol=6)
    assert crops[:, 0, 16].max() < 8  # the 80x48 frame letterboxed: black above it
    assert len(load_face_video(levels, 32, 25, crop=False, max_frames=7)) == 7

    face = tmp_path / "face.mp4"  # the portrait on a wider canvas: the crop finds it, one box for the clip
    with VideoWriter(face, fps=25) as w:
        for _ in range(6):
            canvas = np.full((96, 160, 3), 40, np.uint8)
            canvas[16:80, 48:112] = portrait
            w.write(canvas)
    crops = load_face_video(face, 64, 25, crop=True)
    assert crops.shape == (6, 64, 64, 3) and np.abs(np.diff(crops.astype(int), axis=0)).mean() < 2
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(levels.read_bytes()[:300])
    with pytest.raises(UserInputError) as err:
        load_face_video(damaged, 32, 25, crop=False)
    assert "\n" not in str(err.value) and "damaged.mp4" in str(err.value)


def test_ping_pong():
    from floatalk.editing.plan import ping_pong

    assert ping_pong(np.arange(3), 8).tolist() == [0, 1, 2, 1, 0, 1, 2, 1]
    assert ping_pong(np.arange(5), 3).tolist() == [0, 1, 2]


def _reenact_release_size(release_dir, parity_dir, tmp_path, frames: int, absolute: bool) -> None:
    from floatalk import FloatPipeline
    from floatalk.io.image import load_image
    from floatalk.io.video import VideoWriter, probe_video
    from floatalk.render import reenact_video

    photo = load_image(parity_dir / "inputs_a" / "image.png")
    driving = tmp_path / "driving.mp4"
    with VideoWriter(driving, fps=25, audio=np.zeros(8000, np.float32), sample_rate=16000) as w:
        for dx in range(frames):  # the photo sliding right: a moving "face"
            w.write(np.roll(photo, dx * 3, axis=1))
    pipe = FloatPipeline.from_pretrained(release_dir)
    out = tmp_path / "out.mp4"
    report = reenact_video(pipe, photo, driving, out, crop=False, batch_size=4, absolute=absolute)
    info = probe_video(out)
    assert (
        (info["width"], info["height"], info["n_frames"])
        == (512, 512, frames)
        == (report.width, report.height, report.frames)
    )
    assert info["audio_codec"] == "aac"


@pytest.mark.slow
def test_absolute_reenactment_on_the_release_size_folder(release_dir, parity_dir, tmp_path):
    # the release-size encoder, decoder and muxing (relative motion also measures the photo's
    # atlas at 512 px, about 30 s on 2 cores: the slow test below)
    _reenact_release_size(release_dir, parity_dir, tmp_path, frames=4, absolute=True)


@pytest.mark.slow
def test_reenactment_on_the_release_size_folder(release_dir, parity_dir, tmp_path):
    _reenact_release_size(release_dir, parity_dir, tmp_path, frames=10, absolute=False)
