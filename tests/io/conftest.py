"""Shared fixtures of the floatalk.io tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from floatalk.io import load_image


@pytest.fixture(scope="module")
def portrait(parity_dir: Path) -> np.ndarray:
    """A 512x512 photo with one face (NASA astronaut photo, public domain)."""
    return load_image(parity_dir / "inputs_a" / "image.png")
