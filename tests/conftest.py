"""Shared fixtures: the parity data kept in tests/data/parity, release-format checkpoints, tiny models."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
PARITY = REPO / "tests" / "data" / "parity"  # a copy of the release-parity contract (tests/data/README.md)
PARITY_FILES = (
    "schema.tsv",
    "make_release_dir.py",
    "wav2vec2_config.json",
    "emotion_config.json",
    "preprocessor_config.json",
    "expected_a.npz",
    "inputs_a/image.png",
    "inputs_a/audio.wav",
)


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


def require_parity() -> Path:
    """PARITY when its files are there; otherwise skip the test, or fail it when CI is set."""
    missing = [name for name in PARITY_FILES if not (PARITY / name).is_file()]
    if missing:
        message = f"parity data missing from {PARITY} ({', '.join(missing)}; see tests/data/README.md)"
        if os.environ.get("CI"):
            pytest.fail(message + "; CI is set, so this is a failure")
        pytest.skip(message)
    return PARITY


@pytest.fixture(scope="session")
def expected(parity_dir: Path) -> dict[str, np.ndarray]:
    with np.load(parity_dir / "expected_a.npz") as data:
        return {k: data[k] for k in data.files}


def build_release_dir(parity_dir: Path, out: Path, style: str = "release") -> Path:
    """Rebuild a release-format folder with the fill rule (tests/data/parity/make_release_dir.py)."""
    if not (out / "float.pth").is_file():
        subprocess.run(
            [sys.executable, str(parity_dir / "make_release_dir.py"), str(out), "--style", style],
            check=True,
            capture_output=True,
        )
    return out


@pytest.fixture(scope="session")
def release_dir(parity_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_release_dir(parity_dir, tmp_path_factory.mktemp("release") / "float")


@pytest.fixture(scope="session")
def release_pipe(release_dir: Path):
    from floatalk import FloatPipeline

    return FloatPipeline.from_pretrained(release_dir)


@pytest.fixture()
def tiny_model():
    from floatalk.config import FloatConfig
    from floatalk.models import FloatModel

    torch.manual_seed(0)
    model = FloatModel(FloatConfig.tiny()).eval()
    # adaLN-Zero makes a fresh FMT output zeros; give it random weights so tests see real signal.
    with torch.no_grad():
        for p in model.fmt.parameters():
            if p.requires_grad:
                p.copy_(torch.randn_like(p) * 0.05)
    return model


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
