"""Shared fixtures: the parity data kept in tests/data/parity, release-format checkpoints, tiny models."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import torch

if TYPE_CHECKING:
    from floatalk.config import FloatConfig
    from floatalk.models import FloatModel

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from support import build_release_dir, require_parity, tone_voice  # noqa: E402 - after the offline switches


@pytest.fixture(scope="session", autouse=True)
def _threads() -> None:
    # The parity data were produced with 2 intra-op threads; fix it so results are repeatable.
    torch.set_num_threads(2)


@pytest.fixture(scope="session", autouse=True)
def _atlas_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    # Motion atlases measured by the tests stay in the session's temporary folder, not ~/.cache.
    if "FLOATALK_CACHE" not in os.environ:
        os.environ["FLOATALK_CACHE"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def parity_dir() -> Path:
    """tests/data/parity, which the repository carries. Without it (a checkout that left it out) the
    tests that need it skip, saying why; under CI (the `CI` environment variable set) a missing
    folder is a failure."""
    return require_parity()


@pytest.fixture(scope="session")
def expected(parity_dir: Path) -> dict[str, np.ndarray]:
    with np.load(parity_dir / "expected_a.npz") as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="session")
def release_dir(parity_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_release_dir(parity_dir, tmp_path_factory.mktemp("release") / "float")


@pytest.fixture(scope="session")
def release_pipe(release_dir: Path):
    from floatalk import FloatPipeline

    return FloatPipeline.from_pretrained(release_dir)


def _random_tiny_model(cfg: FloatConfig | None = None) -> FloatModel:
    from floatalk.config import FloatConfig
    from floatalk.models import FloatModel

    torch.manual_seed(0)
    model = FloatModel(cfg or FloatConfig.tiny()).eval()
    # adaLN-Zero makes a fresh FMT output zeros; give it random weights so tests see real signal.
    with torch.no_grad():
        for p in model.fmt.parameters():
            if p.requires_grad:
                p.copy_(torch.randn_like(p) * 0.05)
    return model


@pytest.fixture(scope="session")
def make_tiny_model() -> Callable[..., FloatModel]:
    """The one recipe for a small model with random weights: make_tiny_model(cfg=None) gives a
    FloatModel of `cfg` (FloatConfig.tiny(), 32 px, when None) in eval mode, the same weights on
    every call (drawn after torch.manual_seed(0)), its FMT's included."""
    return _random_tiny_model


@pytest.fixture()
def tiny_model(make_tiny_model) -> FloatModel:
    """A fresh FloatConfig.tiny() model with random weights (the caller may change it)."""
    return make_tiny_model()


@pytest.fixture(scope="session")
def tiny_dir(make_tiny_model, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model saved as a floatalk model folder (for --checkpoint and from_pretrained)."""
    from floatalk.checkpoint import save_pretrained

    return save_pretrained(make_tiny_model(), tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def tiny_bundle_dir(make_tiny_model, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stand-in for the bundled demo model: the "tiny" training preset (64 px, log-mel audio),
    random weights, stored in float16 as the bundle is. Same wiring, seconds instead of a minute."""
    from floatalk.checkpoint import save_pretrained
    from floatalk.training.presets import preset

    folder = tmp_path_factory.mktemp("tiny_bundle") / "demo_model"
    return save_pretrained(make_tiny_model(preset("tiny")), folder, dtype=torch.float16)


@pytest.fixture()
def tiny_bundle(tiny_bundle_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """floatalk.assets.DEMO_MODEL pointed at `tiny_bundle_dir` for one test."""
    import floatalk.assets as assets

    monkeypatch.setattr(assets, "DEMO_MODEL", tiny_bundle_dir)
    return tiny_bundle_dir


@pytest.fixture(scope="session")
def bundled_pipe():
    """The bundled demo model, loaded once for the session."""
    from floatalk import FloatPipeline

    return FloatPipeline.from_pretrained("bundled")


@pytest.fixture(scope="session")
def example(tmp_path_factory: pytest.TempPathFactory):
    """The bundled model's example inputs (a synthetic portrait and 2 s of speech) as files."""
    from floatalk.apps.examples import write_example

    return write_example(tmp_path_factory.mktemp("example"), seconds=2.0)


@pytest.fixture(scope="session")
def scene_group():
    """A drawn group photo of two portraits side by side (faces 1 and 2 from the left), 212 x 136 px."""
    from floatalk.synth.group import GroupSpec, make_group_scene

    return make_group_scene(GroupSpec("test", seed=2, faces=2, seconds=4.8, size=96))


@pytest.fixture(scope="session")
def scene_files(scene_group, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`scene_group`'s photo.png, 1.2 s recordings (ann.wav: face 1 speaks 0-0.5 s, bob.wav: face 2
    0.6-1.2 s, mix.wav both, quiet.wav silence) and turns.json for the mix, in one folder."""
    import json

    from PIL import Image

    from floatalk.io.audio import write_wav

    folder = tmp_path_factory.mktemp("scene")
    Image.fromarray(scene_group.photo).save(folder / "photo.png")
    ann, bob = tone_voice(0.0, 0.5, 200, 1.2), tone_voice(0.6, 1.2, 310, 1.2)
    for name, wave in (("ann", ann), ("bob", bob), ("mix", ann + bob), ("quiet", np.zeros_like(ann))):
        write_wav(folder / f"{name}.wav", np.rint(wave * 32767).astype(np.int16), 16000)
    turns = [{"start": 0, "end": 0.5, "face": 1}, {"start": 0.6, "end": 1.2, "face": 2}]
    (folder / "turns.json").write_text(json.dumps(turns))
    return folder
