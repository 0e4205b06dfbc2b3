"""floatalk evaluate and its metrics: the landmark meter on the synthetic world, the learned
metrics' architectures against the public files' keys, their statistics against independent
computations, and the report end to end."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from floatalk.cli.main import main
from floatalk.errors import UserInputError
from floatalk.evaluation import arcface, fid, fvd, syncnet
from floatalk.evaluation import face_track as ft
from floatalk.evaluation.lipsync import pearson
from floatalk.evaluation.quality import ssim
from floatalk.evaluation.report import METRICS, OFFLINE_METRICS, evaluate
from floatalk.evaluation.weights import WEIGHT_FILES, load_metric_weights
from floatalk.io.audio import load_audio
from floatalk.io.video import VideoWriter, read_video_frames
from floatalk.synth import generate_world

SHIFT = 6400  # 0.4 s at 16 kHz

# Keys and shapes of the public weight files (from the architectures' published definitions).
PUBLISHED = {
    fid.FIDInception: {
        "Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3),
        "Conv2d_1a_3x3.bn.running_var": (32,),
        "Mixed_5b.branch_pool.conv.weight": (32, 192, 1, 1),
        "Mixed_6b.branch7x7_2.conv.weight": (128, 128, 1, 7),
        "Mixed_7b.branch3x3dbl_3b.conv.weight": (384, 384, 3, 1),
        "Mixed_7c.branch_pool.conv.weight": (192, 2048, 1, 1),
        "fc.weight": (1008, 2048),
    },
    fvd.I3D: {
        "Conv3d_1a_7x7.conv3d.weight": (64, 3, 7, 7, 7),
        "Conv3d_2c_3x3.bn.running_mean": (192,),
        "Mixed_3b.b1b.conv3d.weight": (128, 96, 3, 3, 3),
        "Mixed_5c.b3b.bn.running_var": (128,),
        "logits.conv3d.weight": (400, 1024, 1, 1, 1),
        "logits.conv3d.bias": (400,),
    },
    syncnet.SyncNet: {
        "netcnnaud.0.weight": (64, 1, 3, 3),
        "netcnnaud.18.weight": (512, 256, 5, 4),
        "netcnnaud.19.running_mean": (512,),
        "netfcaud.0.weight": (512, 512),
        "netfcaud.3.weight": (1024, 512),
        "netcnnlip.0.weight": (96, 3, 5, 7, 7),
        "netcnnlip.18.weight": (512, 256, 1, 6, 6),
        "netfclip.3.bias": (1024,),
    },
    arcface.IResNet: {
        "conv1.weight": (64, 3, 3, 3),
        "prelu.weight": (64,),
        "layer1.0.downsample.0.weight": (64, 64, 1, 1),
        "layer3.29.conv2.weight": (256, 256, 3, 3),
        "bn2.running_var": (512,),
        "fc.weight": (512, 25088),
        "features.weight": (512,),
    },
}


@pytest.mark.parametrize("net", list(PUBLISHED), ids=lambda n: n.__name__)
def test_architectures_have_the_published_keys(net) -> None:
    state = net().state_dict()
    for key, shape in PUBLISHED[net].items():
        assert tuple(state[key].shape) == shape, key
    if net is arcface.IResNet:
        assert "layer3.30.conv1.weight" not in state and "layer4.2.bn3.weight" in state  # 3, 13, 30, 3 blocks


def test_weights_load_strictly_with_one_sentence(tmp_path: Path) -> None:
    net = syncnet.SyncNet()
    state = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}  # old files lack them
    torch.save(state, tmp_path / "syncnet_v2.model")
    fresh = syncnet.SyncNet()
    load_metric_weights(fresh, "lse", tmp_path)
    assert torch.equal(fresh.netfcaud[3].weight, net.netfcaud[3].weight)
    with pytest.raises(UserInputError, match="no 'syncnet_v2.model' in"):
        load_metric_weights(fresh, "lse", tmp_path / "elsewhere")
    with pytest.raises(UserInputError, match="pass --weights"):
        load_metric_weights(fresh, "lse", None)
    torch.save({k: v for k, v in state.items() if k != "netcnnlip.0.weight"}, tmp_path / "syncnet_v2.model")
    with pytest.raises(UserInputError, match="missing the key 'netcnnlip.0.weight'"):
        load_metric_weights(fresh, "lse", tmp_path)
    torch.save(state | {"netfcaud.3.weight": torch.zeros(512, 512)}, tmp_path / "syncnet_v2.model")
    with pytest.raises(UserInputError, match=r"'netfcaud.3.weight' has shape \(512, 512\)"):
        load_metric_weights(fresh, "lse", tmp_path)


def test_frechet_distance_matches_scipy() -> None:
    from scipy import linalg

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(200, 12)), rng.normal(size=(150, 12)) @ rng.normal(size=(12, 12)) * 0.5 + 1.0
    mu1, s1 = fid.feature_statistics(a)
    mu2, s2 = fid.feature_statistics(b)
    root = linalg.sqrtm(s1 @ s2).real
    expected = float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * root))
    assert fid.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-6)
    assert fid.frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-6)


def test_lse_offset_search_matches_a_direct_computation() -> None:
    rng = np.random.default_rng(1)
    video = rng.normal(size=(40, 16))
    audio = np.roll(video, 3, axis=0) + 0.1 * rng.normal(size=video.shape)  # audio 3 frames late
    got = syncnet.lse_from_embeddings(torch.from_numpy(video), torch.from_numpy(audio))
    # direct: mean over frames i of |v_i - a_(i+d)| with a zero outside, for d = -15..15
    means = []
    for d in range(-15, 16):
        dist = [np.linalg.norm(video[i] - (audio[i + d] if 0 <= i + d < len(audio) else 0) + 1e-6) for i in range(40)]
        means.append(np.mean(dist))
    means = np.array(means)
    assert got["lse_offset"] == 15 - int(np.argmin(means)) == -3  # syncnet_python: offset = vshift - argmin
    assert got["lse_d"] == pytest.approx(means.min(), rel=1e-5)
    assert got["lse_c"] == pytest.approx(np.median(means) - means.min(), rel=1e-5)


def test_mfcc_has_13_coefficients_at_100_hz_and_log_energy() -> None:
    rng = np.random.default_rng(2)
    wave = rng.normal(scale=3000, size=16000)
    feats = syncnet.mfcc(wave)
    assert feats.shape == (99, 13)
    frame0 = np.append(wave[:1], wave[1:400] - 0.97 * wave[:399])
    energy = (np.abs(np.fft.rfft(frame0, 512)) ** 2 / 512).sum()
    assert feats[0, 0] == pytest.approx(np.log(energy))


def test_blinks_are_short_dips_of_the_eye_openness() -> None:
    openness = np.full(100, 0.4)
    openness[10:13] = 0.2  # a blink
    openness[50:52] = 0.25  # another
    openness[70:95] = 0.1  # eyes closed for a second: not a blink
    assert ft.count_blinks(openness, fps=25) == 2


def test_ssim_matches_scikit_image() -> None:
    metrics = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(3)
    a = cv2.GaussianBlur(rng.integers(0, 256, (64, 80, 3), dtype=np.uint8), (0, 0), 1.5)
    b = np.clip(a + rng.normal(0, 12, a.shape), 0, 255).astype(np.uint8)
    luma = np.array([0.299, 0.587, 0.114])
    expected = metrics.structural_similarity(
        a @ luma, b @ luma, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
    )
    assert ssim(a, b) == pytest.approx(expected, abs=1e-9)
    assert ssim(a, a) == pytest.approx(1.0)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("evaluate") / "world"
    generate_world(out, clips=6, seconds=3.0, size=96, seed=7171, workers=2)
    return out


@pytest.mark.slow
def test_landmark_meter_on_the_synthetic_world(world: Path) -> None:
    clips = [(read_video_frames(p), load_audio(p), p) for p in sorted(world.glob("clip_*.mp4"))]
    tracks = [ft.track_faces(frames) for frames, _, _ in clips]
    own, shifted, foreign, truth, blinks = [], [], [], [], []
    for i, ((_, audio, path), track) in enumerate(zip(clips, tracks)):
        own.append(ft.score_lipsync_mesh(track, audio))
        late = np.concatenate([np.zeros(SHIFT, np.float32), audio[:-SHIFT]])
        shifted.append(ft.score_lipsync_mesh(track, late)["correlation"])
        foreign.append(ft.score_lipsync_mesh(track, clips[(i + 1) % len(clips)][1])["correlation"])
        hidden = json.loads(path.with_suffix(".json").read_text())  # only the test reads it
        truth.append(pearson(ft.mouth_opening_mesh(track.filled()), hidden["mouth_open"]))
        lids = np.asarray(hidden["blink"]) > 0.5
        blinks.append((ft.count_blinks(ft.eye_openness(track.filled())), int(np.sum(lids[1:] & ~lids[:-1]))))
    assert np.mean([s["correlation"] for s in own]) >= 0.85
    assert np.mean([s["best_offset"] == 0 for s in own]) >= 0.9
    assert np.mean(shifted) <= 0.3 and np.mean(foreign) <= 0.3
    assert np.mean(truth) >= 0.9
    assert all(s["face_detected"] for s in own)
    counted, real = np.sum(blinks, axis=0)
    assert real > 0 and abs(counted - real) <= 1, blinks


@pytest.mark.slow
def test_eval_lipsync_meters_give_the_same_keys(world: Path, capsys) -> None:
    video = str(world / "clip_00000.mp4")
    outs = []
    for meter in ("synthetic", "landmarks"):
        assert main(["eval-lipsync", video, "--meter", meter]) == 0
        outs.append(json.loads(capsys.readouterr().out))
    assert set(outs[0]) <= set(outs[1]) and outs[1]["correlation"] > 0.8


def test_csim_same_face_beats_another_face() -> None:
    data = pytest.importorskip("skimage.data")
    from floatalk.evaluation.identity import FaceEmbedder, csim

    embed = FaceEmbedder()
    astronaut, camera = data.astronaut(), np.repeat(data.camera()[..., None], 3, axis=2)
    ok, jpeg = cv2.imencode(".jpg", astronaut[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 20])
    recompressed = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)[..., ::-1]
    blurred = cv2.GaussianBlur(camera, (0, 0), 2)
    a, c = embed(astronaut), embed(camera)
    different = csim(a, c)
    assert csim(a, embed(recompressed)) > different + 0.05
    assert csim(c, embed(blurred)) > different + 0.05


def _degrade(src: Path, dst: Path, frames: int | None = None) -> None:
    """Re-encode a world clip blurred (with its soundtrack), optionally cut to `frames`."""
    video = read_video_frames(src)[:frames]
    audio = load_audio(src)
    with VideoWriter(dst, fps=25, audio=audio[: len(video) * 640], sample_rate=16000) as writer:
        for frame in video:
            writer.write(cv2.GaussianBlur(frame, (0, 0), 1.0))


@pytest.mark.slow
def test_evaluate_report_with_every_offline_metric(world: Path, tmp_path: Path, capsys) -> None:
    gen = tmp_path / "gen"
    gen.mkdir()
    _degrade(world / "clip_00000.mp4", gen / "clip_00000.mp4")
    _degrade(world / "clip_00001.mp4", gen / "clip_00001.mp4", frames=60)  # shorter than its reference
    _degrade(world / "clip_00002.mp4", gen / "stranger.mp4")  # no reference of that name
    out = tmp_path / "report.json"
    assert main(["evaluate", str(gen), "--reference", str(world), "--out", str(out), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "stranger: No reference video named 'stranger'" in err
    report = json.loads(out.read_text())
    assert report["metrics"] == list(OFFLINE_METRICS)
    row = report["videos"]["clip_00001"]
    assert row["frames_compared"] == 60
    for key in ("sync_r", "sync_offset", "lmd_mouth", "lmd_face", "csim", "yaw_std", "motion_energy"):
        assert key in row and np.isfinite(row[key]), key
    assert row["psnr"] > 25 and row["ssim"] > 0.8 and row["csim"] > 0.9 and row["sync_r"] > 0.7
    assert report["mean"]["psnr"] == pytest.approx(np.mean([r["psnr"] for r in report["videos"].values()]), abs=1e-5)
    with pytest.raises(UserInputError, match="pass --reference"):
        evaluate(gen, metrics=["psnr"])
    with pytest.raises(UserInputError, match="needs SyncNet v2"):
        evaluate(gen, weights=tmp_path, metrics=["lse"])


def _keeps_scale(net: torch.nn.Module) -> torch.nn.Module:
    """Random weights whose activations keep their size through the network's depth (He init).
    PyTorch's default init shrinks them about 1e-8-fold over Inception's or I3D's depth: all
    features are then nearly equal and every Frechet distance rounds to 0."""
    for module in net.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Conv3d)):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    return net


@pytest.mark.slow
def test_learned_metrics_run_end_to_end_on_files_of_the_published_schema(world: Path, tmp_path: Path) -> None:
    weights = tmp_path / "weights"
    weights.mkdir()
    torch.manual_seed(0)
    for metric, net in (("fid", fid.FIDInception), ("fvd", fvd.I3D)):
        torch.save(_keeps_scale(net()).state_dict(), weights / WEIGHT_FILES[metric][0])
    torch.save(syncnet.SyncNet().state_dict(), weights / WEIGHT_FILES["lse"][0])
    torch.save(arcface.IResNet().state_dict(), weights / WEIGHT_FILES["csim_arcface"][0])
    gen, other = tmp_path / "gen", tmp_path / "other"
    gen.mkdir()
    other.mkdir()
    _degrade(world / "clip_00000.mp4", gen / "clip_00000.mp4", frames=32)  # two 16-frame clips for FVD
    _degrade(world / "clip_00003.mp4", other / "clip_00000.mp4", frames=32)  # another face, same name
    metrics = ["fid", "fvd", "lse", "csim_arcface"]
    report = evaluate(gen, world, weights=weights, metrics=metrics, fid_frames=3, csim_frames=2)
    assert not report["errors"], report["errors"]
    for row in report["videos"].values():
        assert np.isfinite(row["lse_d"]) and np.isfinite(row["lse_c"]) and -15 <= row["lse_offset"] <= 15
    assert set(METRICS) == set(OFFLINE_METRICS) | {"fid", "fvd", "lse", "csim_arcface"}
    # FID: the set against itself is 0 (to rounding), the blurred copy against its reference more,
    # another face against it more again; FVD (whose random I3D ranks blur above a new face): the
    # set against itself 0, the blurred copy more. Random weights fix no scale, but a degenerate
    # network (every feature alike, or exploding) would leave the 0.1 .. 1e4 range.
    kw = {"weights": weights, "fid_frames": 3, "csim_frames": 2}
    same = evaluate(gen, gen, metrics=["fid", "fvd"], **kw)["mean"]
    far = evaluate(other, world, metrics=["fid", "csim_arcface"], **kw)["mean"]
    near = report["mean"]
    for metric in ("fid", "fvd"):
        assert 0.1 < near[metric] < 1e4 and abs(same[metric]) <= 1e-3 * near[metric], (metric, same, near)
    assert near["fid"] < far["fid"] < 1e4, (near, far)
    assert -1 <= far["csim_arcface"] < near["csim_arcface"] <= 1, (near, far)
