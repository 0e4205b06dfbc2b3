"""Checkpoint folders: strict release loading with one-sentence errors, and the floatalk format."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from floatalk import FloatPipeline
from floatalk.checkpoint import load_model, save_pretrained
from floatalk.errors import CheckpointError, UserInputError
from floatalk.model_folders import CONFIG_FILE, WEIGHTS_FILE


@pytest.fixture(scope="module")
def release_state(release_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(release_dir / "float.pth", weights_only=True)


def copy_release(release_dir: Path, dst: Path, state: dict[str, torch.Tensor] | None) -> Path:
    """A release folder sharing the HF sub-folders (symlinks) with its own float.pth."""
    dst.mkdir()
    for name in ("wav2vec2-base-960h", "wav2vec-english-speech-emotion-recognition"):
        os.symlink(release_dir / name, dst / name)
    if state is not None:
        torch.save(state, dst / "float.pth")
    return dst


def one_sentence(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and text.endswith(".")
    return text


@pytest.mark.slow
def test_missing_key_names_file_and_key(release_dir, release_state, tmp_path):
    state = dict(release_state)
    del state["fmt.blocks.3.mlp.fc1.bias"]
    folder = copy_release(release_dir, tmp_path / "ck", state)
    with pytest.raises(CheckpointError) as info:
        load_model(folder)
    msg = one_sentence(info.value)
    assert "float.pth" in msg and "fmt.blocks.3.mlp.fc1.bias" in msg and "missing" in msg


@pytest.mark.slow
def test_unexpected_key_and_wrong_shape(release_dir, release_state, tmp_path):
    state = dict(release_state)
    state["fmt.extra_head.weight"] = torch.zeros(2)
    with pytest.raises(CheckpointError, match=r"unexpected key 'fmt\.extra_head\.weight'"):
        load_model(copy_release(release_dir, tmp_path / "a", state))
    state = dict(release_state)
    state["fmt.c_embedder.weight"] = torch.zeros(1024, 1030)
    with pytest.raises(
        CheckpointError, match=r"'fmt\.c_embedder\.weight' has shape \(1024, 1030\), expected \(1024, 1031\)"
    ):
        load_model(copy_release(release_dir, tmp_path / "b", state))


def test_missing_files_and_folders(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(tmp_path / "nowhere")
    with pytest.raises(CheckpointError, match="neither"):
        load_model(tmp_path)
    (tmp_path / "float.pth").write_bytes(b"")
    with pytest.raises(CheckpointError, match="missing the sub-folder 'wav2vec2-base-960h'"):
        load_model(tmp_path)
    assert issubclass(CheckpointError, UserInputError)


@pytest.mark.slow
def test_pickled_objects_are_refused(release_dir, tmp_path):
    """weights_only=True: a float.pth holding arbitrary objects is not executed, it is refused."""
    folder = copy_release(release_dir, tmp_path / "ck", None)
    torch.save({"opt": argparse_like()}, folder / "float.pth")
    with pytest.raises(CheckpointError, match="Could not read checkpoint file"):
        load_model(folder)


class argparse_like:  # noqa: N801 - stands for a pickled options object
    pass


def test_floatalk_format_round_trip(tiny_model, tmp_path):
    folder = save_pretrained(tiny_model, tmp_path / "tiny")
    assert sorted(p.name for p in folder.iterdir()) == [CONFIG_FILE, WEIGHTS_FILE]
    loaded = load_model(folder)
    assert loaded.cfg == tiny_model.cfg
    a, b = tiny_model.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_floatalk_format_errors(tiny_model, tmp_path):
    folder = save_pretrained(tiny_model, tmp_path / "tiny")
    meta = json.loads((folder / CONFIG_FILE).read_text())
    (folder / CONFIG_FILE).write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(CheckpointError, match="format version 99"):
        load_model(folder)
    (folder / CONFIG_FILE).write_text(json.dumps(meta))
    from safetensors.torch import load_file, save_file

    state = load_file(folder / WEIGHTS_FILE)
    state.pop("fmt.decoder.linear.weight")
    save_file(state, folder / WEIGHTS_FILE)
    with pytest.raises(CheckpointError, match=r"model\.safetensors' is missing the key 'fmt\.decoder\.linear\.weight'"):
        load_model(folder)
    (folder / WEIGHTS_FILE).write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="Could not read checkpoint file"):
        load_model(folder)


def test_pipeline_round_trip_gives_identical_outputs(tiny_model, tmp_path):
    pipe = FloatPipeline(tiny_model)
    pipe.save_pretrained(tmp_path / "p")
    again = FloatPipeline.from_pretrained(tmp_path / "p")
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    audio = (rng.standard_normal(16000) * 0.1).astype(np.float32)
    a = pipe(image=image, audio=audio, crop=False, nfe=3, seed=5)
    b = again(image=image, audio=audio, crop=False, nfe=3, seed=5)
    assert np.array_equal(a.frames, b.frames) and torch.equal(a.motion, b.motion)
    assert a.frames.shape == (25, 32, 32, 3) and a.motion.shape == (25, 32)


def test_motion_autoencoder_alone_is_a_model_folder_part(tiny_model, tmp_path):
    """A stage-1 export: the same folder format holding the auto-encoder alone, read by
    load_motion_autoencoder with the strict loader's sentences, refused as a whole model."""
    from safetensors.torch import load_file, save_file

    from floatalk.checkpoint import load_motion_autoencoder

    ae = tiny_model.motion_autoencoder
    folder = save_pretrained(ae, tmp_path / "mae", extra={"trained": {"step": 3}})
    assert sorted(p.name for p in folder.iterdir()) == [CONFIG_FILE, WEIGHTS_FILE]
    assert json.loads((folder / CONFIG_FILE).read_text())["part"] == "motion_ae"
    for source, module in (
        (folder, ae),
        (save_pretrained(tiny_model, tmp_path / "whole"), tiny_model.motion_autoencoder),
    ):
        loaded = load_motion_autoencoder(source)
        a, b = module.state_dict(), loaded.state_dict()
        assert loaded.cfg == module.cfg and a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(CheckpointError, match="holds only a motion auto-encoder") as info:
        load_model(folder)
    one_sentence(info.value)
    state = load_file(folder / WEIGHTS_FILE)
    state.pop("dec.to_rgbs.0.bias")
    save_file(state, folder / WEIGHTS_FILE)
    with pytest.raises(CheckpointError, match=r"model\.safetensors' is missing the key 'dec\.to_rgbs\.0\.bias'"):
        load_motion_autoencoder(folder)
