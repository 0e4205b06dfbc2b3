"""Training both stages on a small synthetic clip folder at 64 px (tiny preset)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from floatalk.cli.main import main
from floatalk.convert import to_tensor

FLOATALK = str(Path(sys.executable).parent / "floatalk")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Clips of the synthetic world (floatalk synth-data), preprocessed at 64 px, plus one broken file."""
    root = tmp_path_factory.mktemp("train")
    videos = root / "videos"
    assert (
        main(
            [
                "synth-data",
                "--out",
                str(videos),
                "--clips",
                "6",
                "--seconds",
                "3",
                "--size",
                "96",
                "--seed",
                "3",
                "--quiet",
            ]
        )
        == 0
    )
    (videos / "broken.mp4").write_bytes(b"not a video")
    assert (
        main(
            [
                "preprocess",
                "--videos",
                str(videos),
                "--out",
                str(root / "data"),
                "--size",
                "64",
                "--val-fraction",
                "0.2",
                "--quiet",
            ]
        )
        == 0
    )
    return root / "data"


def read_log(run: Path, column: str) -> list[float]:
    with open(run / "log.csv", newline="") as f:
        return [float(r[column]) for r in csv.DictReader(f) if r.get(column)]


def test_preprocess_manifest_splits_by_identity_and_lists_failures(data):
    from floatalk.config import EMOTIONS

    manifest = json.loads((data / "manifest.json").read_text())
    clips = manifest["clips"]
    assert len(clips) == 6 and manifest["size"] == 64 and manifest["fps"] == 25
    assert [s["video"].endswith("broken.mp4") for s in manifest["skipped"]] == [True]
    by_split = {}
    for c in clips:
        by_split.setdefault(c["identity"], set()).add(c["split"])
        frames = np.load(data / "clips" / c["name"] / "frames.npy", mmap_mode="r")
        assert frames.shape == (c["frames"], 64, 64, 3) and frames.dtype == np.uint8
        assert c["frames"] == 75 and c["emotion"] in EMOTIONS
    assert all(len(s) == 1 for s in by_split.values())  # no identity in both splits
    assert {c["split"] for c in clips} == {"train", "val"}


def test_preprocess_is_resumable(data, tmp_path):
    stamp = {p: p.stat().st_mtime_ns for p in (data / "clips").glob("*/frames.npy")}
    videos = data.parent / "videos"
    assert main(["preprocess", "--videos", str(videos), "--out", str(data), "--size", "64", "--quiet"]) == 0
    assert {p: p.stat().st_mtime_ns for p in (data / "clips").glob("*/frames.npy")} == stamp


@pytest.fixture(scope="module")
def stage1(data, tmp_path_factory) -> Path:
    """A 40-step stage-1 run (its tests are slow: the fast tier's stage-1 and stage-2 runs are the
    golden ones, tests/training/test_golden_training.py)."""
    run = tmp_path_factory.mktemp("runs") / "mae"
    assert (
        main(
            [
                "train",
                "motion-ae",
                "--data",
                str(data),
                "--out",
                str(run),
                "--config",
                "tiny",
                "--max-steps",
                "40",
                "--batch-size",
                "4",
                "--log-every",
                "5",
                "--ckpt-every",
                "20",
                "--sample-every",
                "40",
                "--mouth-weight",
                "10",
                "--near-pairs",
                "0.5",
                "--speech-anchor",
                "1",
                "--expression-anchor",
                "1",
                "--ema-decay",
                "0.9",
                "--quiet",
            ]
        )
        == 0
    )
    return run


@pytest.mark.slow
def test_motion_ae_loss_falls(stage1):
    l1 = read_log(stage1, "l1")
    assert len(l1) == 8 and np.mean(l1[-2:]) < 0.85 * np.mean(l1[:2])
    assert len(read_log(stage1, "anchor")) == 8 and len(read_log(stage1, "mouth")) == 8
    assert len(read_log(stage1, "e_anchor")) == 8
    # The export is a floatalk model folder holding the auto-encoder alone.
    meta = json.loads((stage1 / "motion_ae" / "floatalk_config.json").read_text())
    assert meta["part"] == "motion_ae" and meta["trained"]["step"] == 40
    assert (stage1 / "motion_ae" / "model.safetensors").is_file()
    assert list((stage1 / "samples").glob("*.png"))
    # The held-out probe re-rendered the validation clips and scored them with the lip-sync meter.
    with open(stage1 / "probe.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["step"] for r in rows] == ["40"]
    assert float(rows[0]["truth_r"]) > 0.8 and -1 <= float(rows[0]["recon_r"]) <= 1
    assert 10 < float(rows[0]["still_psnr"]) < 60 and float(rows[0]["psnr"]) > 0


@pytest.mark.slow
def test_motion_ae_exports_the_weight_average(stage1):
    from safetensors.torch import load_file

    exported = load_file(stage1 / "motion_ae" / "model.safetensors")
    state = torch.load(stage1 / "checkpoints" / "last.pt", weights_only=True)
    assert all(torch.equal(exported[k], state["ema"][k]) for k in exported)
    assert any(not torch.equal(exported[k], state["model"][k]) for k in exported)


def test_pair_batch_near_pairs_and_the_plug_ins_deltas(data):
    """pair_batch draws near pairs as documented; the anchors read each pair's two frames' truth."""
    from floatalk.training.auxiliary import ExpressionAnchor, Reconstruction, SpeechAnchor
    from floatalk.training.data import read_manifest
    from floatalk.training.motion_ae_trainer import pair_batch

    meta, clips = read_manifest(data)
    frames = [c.load_frames() for c in clips]
    speech = SpeechAnchor(2.0, meta["fps"])
    speech.prepare(clips)
    assert all(len(o) == c.frames for o, c in zip(speech.rows, clips))
    batch = pair_batch(frames, 64, np.random.default_rng(0), near=(1.0, 2))
    assert batch.src.shape == batch.drv.shape == (64, 3, 64, 64) and batch.pairs.shape == (64, 3)
    # Replay the draws: every driving frame is within 2 frames of its source.
    rng = np.random.default_rng(0)
    for k in range(64):
        c = int(rng.integers(len(clips)))
        n = frames[c].shape[0]
        i, _ = rng.integers(n, size=2)
        rng.random()
        j = int(np.clip(i + rng.integers(-2, 3), 0, n - 1))
        assert abs(i - j) <= 2 and tuple(batch.pairs[k]) == (c, i, j)
        assert torch.equal(batch.drv[k], to_tensor(frames[c][j])[0])
    # With no motion (lambda = 0) each anchor is the mean square of the truth's differences.
    zeros = torch.zeros(64, 8)
    out = Reconstruction(batch.drv, zeros, zeros, [])
    c, i, j = batch.pairs.T
    delta = np.array([speech.rows[a][y] - speech.rows[a][x] for a, x, y in zip(c, i, j)])
    term, logs = speech.loss(batch, out)
    assert logs["anchor"] == pytest.approx(np.mean(delta**2), rel=1e-5) and term.item() == pytest.approx(
        2 * logs["anchor"]
    )
    expression = ExpressionAnchor(1.0, motion_dim=8)
    expression.rows = [
        np.random.default_rng(k).normal(size=(cl.frames, 3)).astype(np.float32) for k, cl in enumerate(clips)
    ]
    rows = np.stack([expression.rows[a][y] - expression.rows[a][x] for a, x, y in zip(c, i, j)])
    assert expression.loss(batch, out)[1]["e_anchor"] == pytest.approx(np.mean(rows**2), rel=1e-5)


def test_pair_batch_first_frame_sources(data):
    """--first-source: with probability p the source is one of the clip's first frames and the
    driving frame anywhere; the other pairs are drawn as before."""
    from floatalk.training.configs import FIRST_FRAMES
    from floatalk.training.data import read_manifest
    from floatalk.training.motion_ae_trainer import pair_batch

    _, clips = read_manifest(data)
    frames = [c.load_frames() for c in clips]
    batch = pair_batch(frames, 200, np.random.default_rng(1), first=0.5)
    for (c, i, _), src in zip(batch.pairs, batch.src):
        assert torch.equal(src, to_tensor(frames[c][i])[0])
    # Half the pairs by construction, plus the few plain pairs that hit an early frame by chance.
    assert 0.4 < np.mean(batch.pairs[:, 1] < FIRST_FRAMES) < 0.7
    plain = pair_batch(frames, 200, np.random.default_rng(1))
    assert np.mean(plain.pairs[:, 1] < FIRST_FRAMES) < 0.15


def test_preprocess_keeps_the_worlds_expression_truth(data, tmp_path):
    """preprocess stores each clip's per-frame expression truth from the world's sidecar; the
    expression anchor standardises it and refuses clips without it in one sentence."""
    import shutil

    from floatalk.errors import UserInputError
    from floatalk.training.auxiliary import expression_truth
    from floatalk.training.data import read_manifest

    _, clips = read_manifest(data)
    for clip in clips:
        rows = clip.load_annotation("expression")
        truth = json.loads((data.parent / "videos" / f"{clip.name}.json").read_text())["expression_frames"]
        assert rows.shape == (clip.frames, 5) and np.allclose(rows, np.array(truth)[: clip.frames], atol=1e-6)
    scaled = expression_truth(clips)
    stacked = np.concatenate(scaled)
    moving = np.concatenate([c.load_annotation("expression") for c in clips]).std(axis=0) > 1e-8
    assert np.allclose(stacked.std(axis=0)[moving], 1.0, atol=1e-5)
    bare = tmp_path / clips[0].name
    shutil.copytree(clips[0].folder, bare)
    (bare / "expression.npy").unlink()
    with pytest.raises(UserInputError, match="expression truth") as err:
        expression_truth([replace_folder(clips[0], bare)])
    assert len(str(err.value).splitlines()) == 1


def test_preprocess_maps_the_worlds_landmarks_into_the_crop(data, tmp_path):
    """landmarks.npy holds each frame's landmarks in the crop's [-1, 1] coordinates: sampled there,
    the crop shows the pupil darker than the eye around it; the landmark flow reads them (one row
    per frame, refused otherwise) and its loss is small for the auto-encoder's identity warp."""
    import shutil

    import torch.nn.functional as F

    from floatalk.errors import UserInputError
    from floatalk.synth.face import LANDMARK_NAMES
    from floatalk.training.auxiliary import LandmarkFlow, Reconstruction, clip_landmarks
    from floatalk.training.data import read_manifest
    from floatalk.training.motion_ae_trainer import pair_batch

    _, clips = read_manifest(data)
    eyes = [LANDMARK_NAMES.index(f"eye_{s}_centre") for s in ("left", "right")]
    for clip in clips:
        marks = clip.load_annotation("landmarks")
        assert marks.shape == (clip.frames, len(LANDMARK_NAMES), 2) and np.abs(marks).max() < 1.2
        crops = torch.from_numpy(np.array(clip.load_frames())).permute(0, 3, 1, 2).float().mean(1, keepdim=True)
        centre = torch.from_numpy(marks[:, eyes])  # (T, 2, 2)
        side = centre + torch.tensor([0.06, 0.0])  # 2 px to the right at 64 px: the white of the eye
        pupil, white = (F.grid_sample(crops, p[:, :, None], align_corners=False).flatten(1) for p in (centre, side))
        assert (pupil < white - 10).float().mean() > 0.8  # eyes shut in blinks
    frames = [c.load_frames() for c in clips]
    flow = LandmarkFlow(1.0)
    flow.prepare(clips)
    batch = pair_batch(frames, 8, np.random.default_rng(0))
    centres = (torch.arange(64) * 2 + 1) / 64 - 1
    grid = torch.stack(torch.meshgrid(centres, centres, indexing="xy"), dim=-1).expand(8, 64, 64, 2)
    _, logs = flow.loss(batch, Reconstruction(batch.drv, torch.zeros(8, 1), torch.zeros(8, 1), [grid]))
    moved = [np.abs(flow.rows[c][j] - flow.rows[c][i]).sum(-1).mean() for c, i, j in batch.pairs]
    assert 0 < logs["flow"] <= 1.5 * np.mean(moved)  # an identity warp misses by the landmarks' motion
    bare = tmp_path / clips[0].name
    shutil.copytree(clips[0].folder, bare)
    np.save(bare / "landmarks.npy", np.load(bare / "landmarks.npy")[:-1])
    with pytest.raises(UserInputError, match="not one row for each of the 75 frames"):
        clip_landmarks([replace_folder(clips[0], bare)])
    (bare / "landmarks.npy").unlink()
    with pytest.raises(UserInputError, match="--landmark-flow needs per-frame landmarks, which clip"):
        clip_landmarks([replace_folder(clips[0], bare)])


def test_landmark_flow_loss_measures_the_warps_correspondence():
    """Zero for a warp that carries every driving landmark to the source's; the shift otherwise;
    points outside the crop do not count; and the loss's gradient moves the grid the right way."""
    from floatalk.models.motion_ae import identity_grid
    from floatalk.training.losses import landmark_flow_loss

    size = 32
    # grid_sample's own coordinates: pixel centres at (2i + 1) / size - 1.
    centres = (torch.arange(size) * 2 + 1) / size - 1
    exact = torch.stack(torch.meshgrid(centres, centres, indexing="xy"), dim=-1)[None]  # (1, H, W, 2)
    drv = torch.tensor([[[0.1, -0.2], [-0.4, 0.3], [0.5, 1.5]]])
    shift = torch.tensor([0.05, -0.1])
    assert landmark_flow_loss([exact], drv, drv).item() < 1e-3
    shifted = exact + shift
    assert landmark_flow_loss([shifted], drv + shift, drv).item() < 1e-3
    assert landmark_flow_loss([exact], drv + shift, drv).item() == pytest.approx(float(shift.norm()), abs=1e-3)
    grid = identity_grid(size, size, torch.device("cpu")).clone().requires_grad_(True)
    landmark_flow_loss([grid], drv + shift, drv).backward()
    i = int((drv[0, 0, 0] + 1) / 2 * size)
    j = int((drv[0, 0, 1] + 1) / 2 * size)
    assert grid.grad[0, j, i, 0] < 0 and grid.grad[0, j, i, 1] > 0  # descent moves x by +0.05, y by -0.1


def test_landmark_flow_flag_trains_and_needs_landmarks(data, tmp_path):
    run = tmp_path / "mae_flow"
    args = ["train", "motion-ae", "--data", str(data), "--out", str(run), "--config", "tiny", "--max-steps", "3"]
    args += ["--batch-size", "2", "--log-every", "1", "--sample-every", "100", "--quiet"]
    assert main([*args, "--landmark-flow", "5"]) == 0
    flow = read_log(run, "flow")
    assert len(flow) == 3 and all(0 < v < 0.5 for v in flow)
    assert json.loads((run / "config.json").read_text())["losses"]["landmark_flow"] == 5.0
    assert main([*args[:5], str(tmp_path / "neg"), *args[6:], "--landmark-flow", "-1"]) == 2


def test_window_batch_first_reference():
    """--first-reference: with probability p a window's reference is one of its clip's first frames."""
    from floatalk.training.configs import FIRST_FRAMES
    from floatalk.training.fmt_trainer import window_batch

    rng = np.random.default_rng(0)
    cache = [
        {
            "r": rng.normal(size=(60, 4)).astype(np.float32),
            "feats": np.zeros((60, 3), np.float16),
            "probs": np.eye(7)[k],
        }
        for k in range(3)
    ]
    early = {bytes(c["r"][i]) for c in cache for i in range(FIRST_FRAMES)}

    def share(p: float) -> float:
        b = window_batch(cache, 20, 5, 400, np.random.default_rng(1), first_reference=p)
        assert b["ref"].shape == (400, 4) and b["x1"].shape == (400, 20, 4) and b["we"].shape == (400, 1, 7)
        return float(np.mean([bytes(ref.numpy()) in early for ref in b["ref"]]))

    assert share(1.0) == 1.0
    assert 0.45 < share(0.5) < 0.62  # half by construction, plus about 8 % of the others by chance
    assert share(0.0) < 0.15


def test_perceptual_weight_channel_base_and_adam_beta1_flags(data, tmp_path):
    """--perceptual-weight 0 skips the term, --channel-base narrows the model, --adam-beta1 reaches Adam."""
    run = tmp_path / "mae_no_perceptual"
    args = ["train", "motion-ae", "--data", str(data), "--out", str(run), "--config", "tiny", "--max-steps", "4"]
    args += ["--batch-size", "2", "--log-every", "1", "--sample-every", "100", "--perceptual-weight", "0"]
    assert main([*args, "--channel-base", "512", "--adam-beta1", "0.9", "--quiet"]) == 0
    assert read_log(run, "perceptual") == [0.0] * 4 and all(v > 0 for v in read_log(run, "l1"))
    config = json.loads((run / "config.json").read_text())
    assert config["losses"]["perceptual"] == 0.0 and config["model"]["channel_base"] == 512
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert config["losses"]["adam_beta1"] == 0.9 and state["opt_g"]["param_groups"][0]["betas"] == (0.9, 0.99)
    # The exported auto-encoder is the narrower one (tiny: 1024 / 64 px = 16 channels; 512 gives 8).
    from floatalk.training.motion_ae_trainer import load_motion_ae

    assert load_motion_ae(run).cfg.channels(64) == 8
    assert main([*args[:5], str(tmp_path / "other"), *args[6:], "--channel-base", "100", "--quiet"]) == 2
    assert main([*args[:5], str(tmp_path / "other"), *args[6:], "--adam-beta1", "1.5", "--quiet"]) == 2


def replace_folder(clip, folder: Path):
    import dataclasses

    return dataclasses.replace(clip, folder=folder)


@pytest.mark.slow
def test_fmt_loss_falls_and_result_loads(stage1, data, tmp_path):
    from floatalk import FloatPipeline

    run = tmp_path / "fmt"
    assert (
        main(
            [
                "train",
                "fmt",
                "--data",
                str(data),
                "--motion-ae",
                str(stage1),
                "--out",
                str(run),
                "--config",
                "tiny",
                "--max-steps",
                "60",
                "--batch-size",
                "8",
                "--lr",
                "1e-3",
                "--log-every",
                "5",
                "--quiet",
            ]
        )
        == 0
    )
    fm = read_log(run, "fm")
    assert np.mean(fm[-3:]) < 0.9 * np.mean(fm[:3])
    pipe = FloatPipeline.from_pretrained(run / "model")
    out = pipe(
        image=np.load(data / "clips" / "clip_00000" / "frames.npy")[0],
        audio=np.zeros(8000, np.float32),
        crop=False,
        nfe=3,
        emotion="happy",
    )
    assert out.frames.shape == (13, 64, 64, 3)


@pytest.mark.slow
def test_two_process_torchrun_keeps_identical_weights(data, tmp_path):
    run = tmp_path / "ddp"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            FLOATALK,
            "train",
            "motion-ae",
            "--data",
            str(data),
            "--out",
            str(run),
            "--config",
            "tiny",
            "--max-steps",
            "6",
            "--batch-size",
            "2",
            "--ckpt-every",
            "3",
            "--device",
            "cpu",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert state["step"] == 6 and len(state["rank_checksums"]) == 2
    assert state["rank_checksums"][0] == state["rank_checksums"][1]


@pytest.mark.slow
def test_kill_9_then_resume_continues_exactly(data, tmp_path):
    run, ref = tmp_path / "killed", tmp_path / "straight"
    cmd = [
        FLOATALK,
        "train",
        "motion-ae",
        "--data",
        str(data),
        "--config",
        "tiny",
        "--batch-size",
        "2",
        "--ckpt-every",
        "4",
        "--log-every",
        "1",
        "--quiet",
    ]
    proc = subprocess.Popen([*cmd, "--out", str(run), "--max-steps", "10000"], stderr=subprocess.DEVNULL)
    ckpt = run / "checkpoints" / "last.pt"
    deadline = time.time() + 240
    while time.time() < deadline:
        if ckpt.is_file() and torch.load(ckpt, weights_only=True)["step"] >= 8:
            break
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    saved = torch.load(ckpt, weights_only=True)  # the checkpoint survived the kill intact
    step = int(saved["step"])
    assert step >= 8 and step % 4 == 0
    target = step + 4
    assert subprocess.run([*cmd, "--out", str(run), "--max-steps", str(target), "--resume"]).returncode == 0
    assert subprocess.run([*cmd, "--out", str(ref), "--max-steps", str(target)]).returncode == 0
    resumed = torch.load(ckpt, weights_only=True)
    straight = torch.load(ref / "checkpoints" / "last.pt", weights_only=True)
    assert resumed["step"] == straight["step"] == target
    for key in ("model", "disc"):
        assert all(torch.equal(resumed[key][k], straight[key][k]) for k in straight[key])
    opt_a, opt_b = resumed["opt_g"]["state"], straight["opt_g"]["state"]
    assert all(torch.equal(opt_a[i]["exp_avg_sq"], opt_b[i]["exp_avg_sq"]) for i in opt_b)
    steps = [int(s) for s in read_log_steps(run)]
    assert steps == sorted(set(steps)) and steps[-1] == target  # log rows after the checkpoint were dropped


def read_log_steps(run: Path) -> list[str]:
    with open(run / "log.csv", newline="") as f:
        return [r["step"] for r in csv.DictReader(f)]


@pytest.mark.slow
def test_run_folder_is_not_overwritten_and_mismatch_refuses(stage1, data, capsys):
    code = main(["train", "motion-ae", "--data", str(data), "--out", str(stage1), "--config", "tiny", "--quiet"])
    assert code == 2 and "--resume" in capsys.readouterr().err
    code = main(
        ["train", "motion-ae", "--data", str(data), "--out", str(stage1), "--config", "demo", "--resume", "--quiet"]
    )
    err = capsys.readouterr().err
    assert code == 2 and ("model config" in err or "px" in err)


@pytest.mark.slow
def test_fmt_with_a_local_wav2vec2_folder(stage1, data, tmp_path):
    """--wav2vec2 DIR: the release's audio front end read from a local Hugging Face folder."""
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    from floatalk import FloatPipeline
    from floatalk.config import tiny_wav2vec2_config

    w2v = tmp_path / "w2v"
    Wav2Vec2Model(Wav2Vec2Config(**tiny_wav2vec2_config())).save_pretrained(w2v)
    run = tmp_path / "fmt_w2v"
    assert (
        main(
            [
                "train",
                "fmt",
                "--data",
                str(data),
                "--motion-ae",
                str(stage1),
                "--out",
                str(run),
                "--config",
                "tiny",
                "--max-steps",
                "3",
                "--batch-size",
                "2",
                "--wav2vec2",
                str(w2v),
                "--quiet",
            ]
        )
        == 0
    )
    pipe = FloatPipeline.from_pretrained(run / "model")
    assert pipe.cfg.audio.kind == "wav2vec2"
    assert (run / "samples" / "step_0000003.mp4").is_file()


@pytest.mark.slow
def test_init_from_fine_tunes_the_given_auto_encoder(stage1, data, tmp_path):
    """--init-from starts stage 1 from another run's exported weights, not from scratch, and the
    run records it together with --eye-weight."""
    from safetensors.torch import load_file

    run = tmp_path / "finetune"
    args = ["train", "motion-ae", "--data", str(data), "--config", "tiny", "--max-steps", "1", "--batch-size", "2"]
    args += ["--lr", "1e-9", "--warmup", "1", "--eye-weight", "5", "--sample-every", "10", "--quiet"]
    assert main([*args, "--out", str(run), "--init-from", str(stage1)]) == 0
    assert main([*args, "--out", str(tmp_path / "scratch")]) == 0
    start = load_file(stage1 / "motion_ae" / "model.safetensors")
    tuned = load_file(run / "motion_ae" / "model.safetensors")
    scratch = load_file(tmp_path / "scratch" / "motion_ae" / "model.safetensors")
    assert max((tuned[k] - start[k]).abs().max().item() for k in start) < 1e-6
    assert max((scratch[k] - start[k]).abs().max().item() for k in start) > 1e-2
    config = json.loads((run / "config.json").read_text())
    assert config["init_from"] == str(stage1) and config["losses"]["region"] == 5.0


@pytest.mark.slow
def test_fmt_condition_dropout_flags(stage1, data, tmp_path, capsys):
    base = ["train", "fmt", "--data", str(data), "--motion-ae", str(stage1), "--config", "tiny", "--quiet"]
    assert main([*base, "--out", str(tmp_path / "bad"), "--drop-audio", "1.5"]) == 2
    assert "--drop-audio must be between 0 and 1" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
    run = tmp_path / "fmt"
    assert main([*base, "--out", str(run), "--max-steps", "1", "--drop-audio", "0.5", "--drop-reference", "0.3"]) == 0
    losses = json.loads((run / "config.json").read_text())["losses"]
    assert (losses["drop_audio"], losses["drop_emotion"], losses["drop_reference"]) == (0.5, 0.1, 0.3)


def test_load_motion_ae_reads_the_export_of_older_versions(tmp_path):
    """Stage-1 runs of older versions exported motion_ae/motion_ae.safetensors + motion_ae_config.json."""
    import dataclasses

    from safetensors.torch import save_file

    from floatalk.errors import UserInputError
    from floatalk.models.motion_ae import MotionAutoEncoder
    from floatalk.training.motion_ae_trainer import load_motion_ae
    from floatalk.training.presets import preset

    ae = MotionAutoEncoder(preset("tiny").motion_ae)
    old = tmp_path / "old_run" / "motion_ae"
    old.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in ae.state_dict().items()}, old / "motion_ae.safetensors")
    (old / "motion_ae_config.json").write_text(json.dumps(dataclasses.asdict(ae.cfg)))
    loaded = load_motion_ae(tmp_path / "old_run")
    assert loaded.cfg == ae.cfg and all(torch.equal(v, loaded.state_dict()[k]) for k, v in ae.state_dict().items())
    with pytest.raises(UserInputError, match="is not a motion-ae run"):
        load_motion_ae(tmp_path)


def test_train_help_lists_every_flag_of_the_configs_without_importing_torch():
    """The parsers are made from the config dataclasses: every option field is a flag with its help,
    and building them imports neither torch nor transformers."""
    code = """
import argparse, dataclasses, json, sys
from floatalk.cli import train
from floatalk.options import flag_name, option_fields
from floatalk.training.configs import FMTTrainConfig, MotionAETrainConfig

def flags(cls, default=None):
    out = []
    for f in option_fields(cls):
        value = f.default if default is None else getattr(default, f.name)
        if dataclasses.is_dataclass(value):
            out += flags(type(value), value)
        else:
            out.append((flag_name(f), f.metadata["floatalk"]["help"]))
    return out

parser = argparse.ArgumentParser(prog="floatalk")
train.add_parser(parser.add_subparsers())
stages = {"motion-ae": MotionAETrainConfig, "fmt": FMTTrainConfig}
helps = {}
for action in parser._subparsers._group_actions[0].choices["train"]._subparsers._group_actions:
    for name, sub in action.choices.items():
        helps[name] = " ".join(sub.format_help().split())
print(json.dumps({
    "heavy": sorted(m for m in ("torch", "transformers") if m in sys.modules),
    "missing": [(s, flag) for s, cls in stages.items() for flag, text in flags(cls)
                if f"{flag} " not in helps[s] or " ".join(text.split())[:40] not in helps[s]],
    "flags": {s: sorted(flag for flag, _ in flags(cls)) for s, cls in stages.items()},
}))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["heavy"] == [] and result["missing"] == []
    common = "data out config resume device quiet max-steps batch-size grad-accum lr warmup seed ckpt-every log-every"
    common += " sample-every"
    stage1 = "size channel-base vgg-weights init-from perceptual-weight eye-weight mouth-weight adv-weight near-pairs"
    stage1 += " near-gap first-source speech-anchor ema-decay expression-anchor adam-beta1 landmark-flow"
    stage2 = "motion-ae wav2vec2 emotion-model drop-audio drop-emotion drop-reference ema-decay first-reference"
    expected = {
        s: sorted("--" + f for f in (common + " " + extra).split())
        for s, extra in (("motion-ae", stage1), ("fmt", stage2))
    }
    assert result["flags"] == expected  # the flags (and names) of scripts/train_demo.sh and earlier versions


def test_bad_values_are_refused_before_a_run_folder_is_made(tmp_path, capsys):
    """The configs check their values when made from the flags: one sentence naming the flag, exit 2."""
    base = ["--data", str(tmp_path), "--out", str(tmp_path / "run"), "--quiet"]
    cases = [
        (["motion-ae", "--near-pairs", "1.5"], "--near-pairs must be between 0 and 1 (got 1.5)."),
        (["motion-ae", "--speech-anchor", "-1"], "--speech-anchor must not be negative (got -1.0)."),
        (["motion-ae", "--ema-decay", "1"], "--ema-decay must be in [0, 1) (got 1.0)."),
        (["motion-ae", "--size", "100"], "--size must be 64, 128, 256 or 512 (got 100)."),
        (["motion-ae", "--max-steps", "0"], "--max-steps must be at least 1 (got 0)."),
        (
            ["fmt", "--motion-ae", str(tmp_path), "--drop-audio", "1.5"],
            "--drop-audio must be between 0 and 1 (got 1.5).",
        ),
        (["fmt", "--motion-ae", str(tmp_path), "--warmup", "0"], "--warmup must be at least 1 (got 0)."),
    ]
    for args, sentence in cases:
        assert main(["train", *args, *base]) == 2
        err = capsys.readouterr().err
        assert err.strip().endswith(sentence) and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "run").exists()
